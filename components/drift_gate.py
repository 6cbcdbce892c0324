"""A gate that fails the night when the newest span drifted from the one before it.

The drift comparators and their thresholds are part of the data contract (schema/schema.pbtxt): L-infinity
distance for categorical features, Jensen-Shannon divergence for numeric ones. TFX 1.16's ExampleValidator
takes no previous statistics, so this gate runs TFDV's own validate_statistics with them and keeps the
comparator findings (schema findings are ExampleValidator's). It sits before Transform, so a drifted day
trains and pushes nothing; the report it writes names the feature and the distance.
"""

# No `from __future__ import annotations`: TFX parses this component's annotations at runtime.

import copy
import logging
import os

import tensorflow_data_validation as tfdv
from tensorflow_metadata.proto.v0 import anomalies_pb2, schema_pb2, statistics_pb2
from tfx import v1 as tfx
from tfx.types import artifact_utils
from tfx.utils import io_utils

from components import storage
from components.anomaly_gate import ANOMALIES_FILE, describe

# The DriftGate artifact's string property naming the features it left out of tonight's comparison; run's
# table, the history and the night report show it (pipeline/records/summary.py).
NOT_COMPARED_PROPERTY = "not_compared"

STATS_FILE = "FeatureStats.pb"


class DataDriftError(RuntimeError):
    """The newest span's distribution moved past a drift threshold; the message names feature and distance."""


def statistics_options(quantile_buckets: int) -> tfdv.StatsOptions:
    """StatisticsGen's options: the quantile histograms the drift comparators read
    (data.statistics_quantile_buckets).

    TFDV's Jensen-Shannon divergence re-buckets the two spans' histograms onto shared boundaries as if
    values were uniform inside a bucket. On equal-width histograms one day's longest dwell moves every
    boundary, so the distance between two normal days grows with the span's size; equal-depth (quantile)
    buckets, enough of them to resolve the clicked tail, keep it small at any size.
    """
    return tfdv.StatsOptions(num_quantiles_histogram_buckets=quantile_buckets)


def load_split_stats(statistics_artifact, split: str):
    path = os.path.join(artifact_utils.get_split_uri([statistics_artifact], split), STATS_FILE)
    return tfdv.load_stats_binary(path)


def _quantile_buckets(statistics) -> dict[str, int]:
    counts = {}
    for feature in statistics.datasets[0].features:
        for histogram in feature.num_stats.histograms:
            if histogram.type == statistics_pb2.Histogram.QUANTILES:
                counts[feature.path.step[-1]] = len(histogram.buckets)
    return counts


def incomparable_features(current, previous, schema) -> list[str]:
    """Numeric features whose quantile histograms the two spans hold at different resolutions.

    Re-bucketing 10 quantile buckets against 100 reads as drift between two normal days (0.05-0.07 for
    dwell_ms), so the first night after data.statistics_quantile_buckets changes cannot compare them; it
    says so instead of stopping the night for nothing or passing without a word.
    """
    quantiles = schema_pb2.HistogramSelection.QUANTILES
    now, before = _quantile_buckets(current), _quantile_buckets(previous)
    return [
        f.name
        for f in schema.feature
        if f.drift_comparator.jensen_shannon_divergence.source.type == quantiles
        and f.name in now
        and f.name in before
        and now[f.name] != before[f.name]
    ]


def drift_anomalies(current, previous, schema, skipped: list[str] | None = None) -> anomalies_pb2.Anomalies:
    """TFDV's comparator findings only (every other anomaly is ExampleValidator's to report); features
    incomparable_features() names (`skipped`, when the caller already has them) are left out."""
    if skipped is None:
        skipped = incomparable_features(current, previous, schema)
    if skipped:
        schema = copy.deepcopy(schema)
        for feature in schema.feature:
            if feature.name in skipped:
                feature.ClearField("drift_comparator")
    found = tfdv.validate_statistics(current, schema, previous_statistics=previous)
    drift = anomalies_pb2.Anomalies()
    drift.CopyFrom(found)
    drift.ClearField("anomaly_info")
    drift.ClearField("dataset_anomaly_info")
    for feature, info in found.anomaly_info.items():
        reasons = [
            r for r in info.reason if anomalies_pb2.AnomalyInfo.Type.Name(r.type).startswith("COMPARATOR_")
        ]
        if reasons:
            kept = drift.anomaly_info[feature]
            kept.CopyFrom(info)
            del kept.reason[:]
            kept.reason.extend(reasons)
    return drift


@tfx.dsl.components.component
def DriftGate(
    statistics: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ExampleStatistics],
    schema: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Schema],
    drift: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.ExampleAnomalies],
    split: tfx.dsl.components.Parameter[str],
    enabled: tfx.dsl.components.Parameter[int],
    span: tfx.dsl.components.Parameter[int],
    previous_span: tfx.dsl.components.Parameter[int],
    previous_statistics: tfx.dsl.components.InputArtifact[
        tfx.types.standard_artifacts.ExampleStatistics
    ] = None,
) -> None:
    drift.split_names = artifact_utils.encode_split_names([split])
    found = anomalies_pb2.Anomalies()
    if previous_statistics is not None and enabled:
        loaded_schema = tfdv.load_schema_text(io_utils.get_only_uri_in_dir(schema.uri))
        current, previous = load_split_stats(statistics, split), load_split_stats(previous_statistics, split)
        skipped = incomparable_features(current, previous, loaded_schema)
        found = drift_anomalies(current, previous, loaded_schema, skipped)
        drift.set_int_custom_property("previous_span", previous_span)
        if skipped:
            note = (
                f"not compared tonight: {', '.join(skipped)} (span {previous_span}'s statistics hold another "
                "number of quantile buckets than data.statistics_quantile_buckets; the next night compares "
                "them)"
            )
            drift.set_string_custom_property(NOT_COMPARED_PROPERTY, note)
            logging.warning("DriftGate: %s", note)
    out = artifact_utils.get_split_uri([drift], split)
    storage.makedirs(out)
    with storage.open(os.path.join(out, ANOMALIES_FILE), "wb") as f:
        f.write(found.SerializeToString())
    problems = describe({split: found})
    drift.set_int_custom_property("drifted", int(bool(problems)))
    if problems:
        raise DataDriftError(
            f"span {span} drifted from span {previous_span}; nothing was trained "
            "or pushed.\n  "
            + "\n  ".join(problems)
            + "\nIf the change is real and intended (a launch, a new category), raise the feature's "
            "drift_comparator threshold in schema/schema.pbtxt or set drift.enabled: false for one run."
            + f"\nFull report: {drift.uri}"
        )
