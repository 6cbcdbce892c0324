"""A gate that fails the run when ExampleValidator found anomalies.

ExampleValidator only writes its findings; no standard component reads them, so without this gate a
night with broken data would still train and push. Transform runs after this gate, so an anomaly stops
the run before any training, and the error names the split, the feature and what TFDV saw.
"""

# No `from __future__ import annotations`: TFX parses this component's annotations at runtime.

import os

from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx import v1 as tfx
from tfx.types import artifact_utils

from components import storage
from components.model import features as F

ANOMALIES_FILE = "SchemaDiff.pb"


class DataAnomaliesError(RuntimeError):
    """The night's data breaks the schema in schema/; the message lists each feature and the fix."""


def read_anomalies(anomalies_artifact) -> "dict[str, anomalies_pb2.Anomalies]":
    """{split: Anomalies proto} from an ExampleAnomalies artifact."""
    out = {}
    for split in artifact_utils.decode_split_names(anomalies_artifact.split_names):
        path = os.path.join(artifact_utils.get_split_uri([anomalies_artifact], split), ANOMALIES_FILE)
        with storage.open(path, "rb") as f:
            out[split] = anomalies_pb2.Anomalies.FromString(f.read())
    return out


def describe(anomalies_by_split: dict[str, anomalies_pb2.Anomalies]) -> list[str]:
    """One line per (split, feature) anomaly: the feature, TFDV's short and long description."""
    lines = []
    for split, anomalies in sorted(anomalies_by_split.items()):
        for feature, info in sorted(anomalies.anomaly_info.items()):
            reasons = (
                "; ".join(f"{r.short_description}: {r.description}" for r in info.reason) or info.description
            )
            lines.append(f"[{split}] feature '{feature}': {reasons}")
        if anomalies.HasField("dataset_anomaly_info"):
            lines.append(f"[{split}] dataset: {anomalies.dataset_anomaly_info.description}")
    return lines


def split_counts(statistics_artifact) -> dict[str, dict[str, int]]:
    """{split: {events, clicks, users, items}} from StatisticsGen's output."""
    from tensorflow_data_validation import load_stats_binary

    counts = {}
    for split in artifact_utils.decode_split_names(statistics_artifact.split_names):
        path = os.path.join(artifact_utils.get_split_uri([statistics_artifact], split), "FeatureStats.pb")
        stats = load_stats_binary(path).datasets[0]
        found = {"events": int(stats.num_examples), "clicks": 0, "users": 0, "items": 0}
        for feature in stats.features:
            name = feature.path.step[0] if feature.path.step else feature.name
            if name == F.USER_ID:
                found["users"] = int(feature.string_stats.unique)
            elif name == F.ITEM_ID:
                found["items"] = int(feature.string_stats.unique)
            elif name == F.LABEL:
                num = feature.num_stats
                found["clicks"] = round(num.mean * num.common_stats.num_non_missing)
        counts[split] = found
    return counts


def shortfalls(have: dict[str, int], minimums: dict[str, int]) -> list[str]:
    """'only 4 clicks, fewer than data.min_clicks = 10' for each count under its minimum (a span in
    pre-flight, a split here)."""
    return [
        f"only {have[name]:,} {'distinct ' if name in ('users', 'items') else ''}{name}, "
        f"fewer than data.min_{name} = {least:,}"
        for name, least in minimums.items()
        if have[name] < least
    ]


def too_small(counts: dict[str, dict[str, int]], minimums: dict[str, int]) -> list[str]:
    return [
        f"[{split}] split: {short}"
        for split, have in sorted(counts.items())
        for short in shortfalls(have, minimums)
    ]


@tfx.dsl.components.component
def AnomalyGate(
    anomalies: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ExampleAnomalies],
    statistics: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ExampleStatistics],
    min_events: tfx.dsl.components.Parameter[int] = 0,
    min_clicks: tfx.dsl.components.Parameter[int] = 0,
    min_users: tfx.dsl.components.Parameter[int] = 0,
    min_items: tfx.dsl.components.Parameter[int] = 0,
) -> None:
    minimums = {"events": min_events, "clicks": min_clicks, "users": min_users, "items": min_items}
    small = too_small(split_counts(statistics), minimums)
    if small:
        raise DataAnomaliesError(
            "a split of the night's span is too small to train and evaluate a recommender on; nothing was "
            "trained or pushed.\n  " + "\n  ".join(small) + "\nCheck the export (or the split settings, "
            "data.train_buckets / eval_buckets); lower a minimum only if such a small day is real."
        )
    problems = describe(read_anomalies(anomalies))
    if problems:
        raise DataAnomaliesError(
            "the input data does not match the schema; nothing was trained or pushed.\n  "
            + "\n  ".join(problems)
            + "\nFix the data (or, if the change is intended, update schema/schema.pbtxt) and run again."
            + f"\nFull report: {anomalies.uri}"
        )
