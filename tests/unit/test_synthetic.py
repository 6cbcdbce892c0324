"""The synthetic click log: layout, determinism, realistic CTR, streaming memory."""

import os
import tracemalloc

import numpy as np
import pytest

from pipeline.data.clicklog import list_spans, read_examples, span_files
from pipeline.data.synthetic import SyntheticSpec, generate


def _events(root, span):
    return list(read_examples(span_files(root, span)))


def test_layout_and_contract(tmp_path):
    spec = SyntheticSpec(days=2, events_per_day=1500, seed=3, shard_size=1000)
    written = generate(tmp_path, spec)
    assert written == {20240101: 1500, 20240102: 1500}
    assert list_spans(tmp_path) == [20240101, 20240102]
    assert [os.path.basename(f) for f in span_files(tmp_path, 20240101)] == [
        "part-00000.tfrecord.gz",
        "part-00001.tfrecord.gz",
    ]
    rows = _events(tmp_path, 20240102)
    assert len(rows) == 1500
    required = {
        "user_id",
        "item_id",
        "event_ts",
        "clicked",
        "position",
        "device",
        "item_category",
        "item_price",
        "dwell_ms",
    }
    assert all(required <= row.keys() for row in rows)
    assert any("user_age" not in row for row in rows), "some ages must be absent (optional feature)"
    assert all(1704153600 <= row["event_ts"] < 1704153600 + 86400 for row in rows)  # inside 2024-01-02 UTC
    assert all((row["dwell_ms"] > 0) == (row["clicked"] == 1) for row in rows)
    assert not list(tmp_path.rglob("*.tmp")), "no temporary shard may remain"


def test_same_seed_same_log_other_seed_other_log(tmp_path):
    spec = SyntheticSpec(days=1, events_per_day=2000, seed=11)
    generate(tmp_path / "a", spec)
    generate(tmp_path / "b", SyntheticSpec(days=1, events_per_day=2000, seed=11, shard_size=700))
    generate(tmp_path / "c", SyntheticSpec(days=1, events_per_day=2000, seed=12))
    a, b, c = (_events(tmp_path / x, 20240101) for x in "abc")
    assert a == b, "shard size must not change the events"
    assert a != c


def test_ctr_is_realistic_and_position_biased(tmp_path):
    generate(tmp_path, SyntheticSpec(days=1, events_per_day=20000, seed=5))
    rows = _events(tmp_path, 20240101)
    clicks = np.array([r["clicked"] for r in rows])
    pos = np.array([r["position"] for r in rows])
    assert 0.03 <= clicks.mean() <= 0.2
    assert clicks[pos < 3].mean() > 1.5 * clicks[pos >= 15].mean()


def test_refuses_to_append_to_an_existing_span(tmp_path):
    spec = SyntheticSpec(days=1, events_per_day=100)
    generate(tmp_path, spec)
    with pytest.raises(FileExistsError, match="span-20240101"):
        generate(tmp_path, spec)


def test_memory_does_not_grow_with_events(tmp_path):
    def peak(n):
        tracemalloc.start()
        generate(tmp_path / str(n), SyntheticSpec(days=1, events_per_day=n, seed=1))
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return top

    small, large = peak(10_000), peak(60_000)
    assert large < small * 1.5, f"peak traced memory grew from {small} to {large} bytes with 6x the events"


def test_drift_shifts_only_the_drift_day(tmp_path):
    spec = SyntheticSpec(days=3, events_per_day=2000, seed=3, drift=("device", "item_price"), drift_days=(2,))
    generate(tmp_path, spec)
    days = [_events(tmp_path, s) for s in list_spans(tmp_path)]
    tv = [np.mean([r["device"] == "tv" for r in rows]) for rows in days]
    price = [np.median([r["item_price"] for r in rows]) for rows in days]
    assert tv[0] < 0.1 and tv[1] < 0.1 and tv[2] > 0.55
    assert price[2] > 3 * price[1] and abs(price[1] - price[0]) < 0.2 * price[0]


def test_generate_cli_drift_day_must_be_one_of_the_generated_days(tmp_path):
    from click.testing import CliRunner

    from pipeline.cli import main as cli

    args = ["generate", "--out", str(tmp_path / "a"), "--days", "2", "--events-per-day", "300"]
    result = CliRunner().invoke(cli, [*args, "--drift", "dwell_ms"])
    assert result.exit_code == 0 and "drifted span 20240102: dwell times six times longer" in result.output
    result = CliRunner().invoke(cli, [*args, "--drift", "device", "--drift-day", "2024-03-01"])
    assert result.exit_code == 1 and "outside the generated days" in result.output


def test_the_same_spec_writes_the_same_bytes_every_time(tmp_path):
    """Protobuf serializes a map (Example's features) in an order that can differ between calls unless asked
    to be deterministic; shards that differ byte for byte made a test that cuts a shard depend on test order."""
    spec = SyntheticSpec(days=1, events_per_day=300, seed=3)
    generate(tmp_path / "a", spec)
    generate(
        tmp_path / "other",
        SyntheticSpec(days=1, events_per_day=500, seed=9, drift=("device",), drift_days=(0,)),
    )
    generate(tmp_path / "b", spec)
    [a], [b] = (sorted((tmp_path / x / "span-20240101").glob("part-*")) for x in ("a", "b"))
    assert a.read_bytes() == b.read_bytes()
