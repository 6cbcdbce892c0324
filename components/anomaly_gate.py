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


@tfx.dsl.components.component
def AnomalyGate(
    anomalies: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ExampleAnomalies],
) -> None:
    problems = describe(read_anomalies(anomalies))
    if problems:
        raise DataAnomaliesError(
            "the input data does not match the schema; nothing was trained or pushed.\n  "
            + "\n  ".join(problems)
            + "\nFix the data (or, if the change is intended, update schema/schema.pbtxt) and run again."
            + f"\nFull report: {anomalies.uri}"
        )
