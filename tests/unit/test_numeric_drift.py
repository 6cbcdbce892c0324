"""The drift gate on heavy-tailed numeric features at nightly volumes: two normal days pass whatever their
size, a day with six times longer dwell stops the night, and statistics of another resolution are named,
not compared."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import tensorflow_data_validation as tfdv
from conftest import REPO

from components.anomaly_gate import describe
from components.drift_gate import drift_anomalies, incomparable_features, statistics_options
from pipeline.config import DataConfig

EVENTS = 300_000  # the size at which equal-width histograms stopped a normal night


def _day(seed: int, dwell_scale: float = 1.0, events: int = EVENTS) -> pd.DataFrame:
    """Dwell 0 on nine impressions in ten, lognormal after a click (its longest value varies day to day)."""
    rng = np.random.default_rng(seed)
    clicked = rng.random(events) < 0.1
    dwell = np.where(clicked, rng.lognormal(8.0, 1.3, events), 0.0) * dwell_scale
    price = rng.lognormal(3.0, 0.8, events)
    return pd.DataFrame({"dwell_ms": dwell.astype(np.float32), "item_price": price.astype(np.float32)})


def _stats(frame: pd.DataFrame, quantile_buckets: int | None = None):
    buckets = quantile_buckets or DataConfig().statistics_quantile_buckets
    return tfdv.generate_statistics_from_dataframe(frame, stats_options=statistics_options(buckets))


@pytest.fixture(scope="module")
def schema():
    return tfdv.load_schema_text(str(REPO / "schema" / "schema.pbtxt"))


@pytest.fixture(scope="module")
def yesterday():
    return _day(1)


def test_two_normal_days_of_300k_events_pass_and_six_times_longer_dwell_stops_the_night(schema, yesterday):
    before = _stats(yesterday)
    assert describe({"train": drift_anomalies(_stats(_day(2)), before, schema)}) == []
    found = "\n".join(describe({"train": drift_anomalies(_stats(_day(3, dwell_scale=6.0)), before, schema)}))
    assert "feature 'dwell_ms'" in found and "Jensen-Shannon divergence" in found


def test_small_normal_days_pass_too(schema):
    small = [_stats(_day(seed, events=2_000)) for seed in (4, 5)]
    assert describe({"train": drift_anomalies(small[1], small[0], schema)}) == []


def test_equal_width_histograms_would_have_stopped_the_normal_night(schema, yesterday):
    """Why the schema's numeric comparators read quantile histograms: TFDV's default source re-buckets
    equal-width histograms whose boundaries follow each day's longest dwell."""
    from tensorflow_metadata.proto.v0 import schema_pb2

    default_source = schema_pb2.Schema()
    default_source.CopyFrom(schema)
    for feature in default_source.feature:
        feature.drift_comparator.jensen_shannon_divergence.ClearField("source")
    found = describe({"train": drift_anomalies(_stats(_day(2)), _stats(yesterday), default_source)})
    assert any("feature 'dwell_ms'" in line for line in found)


def test_statistics_of_another_resolution_are_named_not_compared(schema, yesterday):
    """The first night after data.statistics_quantile_buckets changes: 10 buckets against 100 read as
    drift, so the gate leaves those features out and names them."""
    old, new = _stats(yesterday, quantile_buckets=10), _stats(_day(2))
    assert set(incomparable_features(new, old, schema)) == {"dwell_ms", "item_price"}
    assert describe({"train": drift_anomalies(new, old, schema)}) == []
    assert incomparable_features(new, _stats(yesterday), schema) == []
