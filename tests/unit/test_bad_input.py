"""Issue 7: every kind of bad input stops the night with a message naming the file, span or feature and the
fix, and the model being served stays byte-for-byte what it was.

Cases the pre-flight catches run the real `recpipe run` (they stop before TFX starts). Cases the schema
catches are checked with TFDV's own validate_statistics against schema/schema.pbtxt, the call TFX's
ExampleValidator makes; test_pipeline_e2e.py proves that such anomalies stop a real run before training
with serving untouched.
"""

from __future__ import annotations

import datetime as dt
import gzip
import os
import shutil
from pathlib import Path

import pytest
import tensorflow as tf
import yaml
from click.testing import CliRunner
from conftest import REPO, make_config

from components.serving_layout import push_model
from pipeline.cli import main as cli
from pipeline.data.clicklog import SpanWriter, to_example
from pipeline.data.synthetic import SyntheticSpec, generate

SPAN = 20240102


def _event(i: int, **changes) -> dict:
    event = {
        "user_id": f"u{i % 50}",
        "item_id": f"i{i % 40}",
        "event_ts": 1704240000 + i,  # 2024-01-03 00:00 UTC: the day of the spans these tests write
        "clicked": int(i % 7 == 0),
        "position": i % 10,
        "device": "mobile",
        "item_category": "cat01",
        "item_price": 9.5,
        "user_age": 30,
        "dwell_ms": 0.0,
    }
    event.update(changes)
    return event


@pytest.fixture
def night(tmp_path):
    """A good click log of two days, a config over it, and a model being served."""
    data = tmp_path / "data"
    generate(data, SyntheticSpec(days=2, events_per_day=400, seed=3))
    config = make_config(tmp_path, data)
    model = tmp_path / "served-model"
    (model / "variables").mkdir(parents=True)
    (model / "saved_model.pb").write_bytes(os.urandom(256))
    (model / "variables" / "variables.index").write_bytes(os.urandom(64))
    push_model(model, config.serving.root, config.serving.model_name, 5, {"model_uri": "/mlmd/served"})
    path = tmp_path / "night.yaml"
    path.write_text(yaml.safe_dump(config.model_dump()))
    return data, config, path


def _snapshot(root: str) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in Path(root).rglob("*") if p.is_file()}


def _run_stops(night, *words: str, extra: tuple[str, ...] = ()) -> str:
    """`recpipe run` exits 3 (bad input) with all `words` in its message; serving unchanged; no component ran."""
    _, config, path = night
    before = _snapshot(config.serving.root)
    result = CliRunner().invoke(cli, ["run", "--config", str(path), *extra])
    assert result.exit_code == 3, result.output
    message = " ".join(result.output.split())  # rich may wrap; compare words
    for word in words:
        assert word in message, message
    assert _snapshot(config.serving.root) == before
    assert not Path(config.metadata_path).exists(), "the run must stop before any TFX component"
    return message


def _span_dir(data: Path, span: int = SPAN) -> Path:
    return data / f"span-{span}"


# 1. truncated / corrupt gzip TFRecord file in a span
def test_truncated_gzip_shard_is_named_with_how_far_it_read(night):
    data = night[0]
    shard = sorted(_span_dir(data).glob("part-*"))[0]
    content = shard.read_bytes()
    shard.write_bytes(content[: len(content) // 2])
    _run_stops(night, str(shard), "is truncated", "end-of-stream marker", "move it out of")


def test_corrupted_bytes_inside_a_shard_are_caught(night):
    data = night[0]
    shard = sorted(_span_dir(data).glob("part-*"))[0]
    raw = bytearray(gzip.decompress(shard.read_bytes()))
    raw[40:60] = b"\xff" * 20  # inside the first record: its CRC no longer matches
    shard.write_bytes(gzip.compress(bytes(raw)))
    _run_stops(night, str(shard), "corrupt, truncated or not a gzipped TFRecord")


# 2. a file that is not a TFRecord at all in a span folder
def test_a_csv_in_the_span_folder_is_refused_by_name(night):
    (_span_dir(night[0]) / "events.csv").write_text("user_id,item_id\n1,2\n")
    _run_stops(night, "events.csv", "not click-log shards", "Move them out")


@pytest.mark.parametrize("csv", [b"user_id,item_id\n1,2\n", b"a,b\n"], ids=["csv", "tiny-csv"])
def test_a_csv_named_like_a_shard_is_not_a_tfrecord(night, csv):
    fake = _span_dir(night[0]) / "part-00009.tfrecord.gz"
    fake.write_bytes(gzip.compress(csv))
    message = _run_stops(night, str(fake), "Re-export the file")
    assert "not a gzipped TFRecord" in message or "is not a TFRecord file" in message


# 3. an empty span folder, and a missing span for the night asked for
def test_an_empty_newest_span_says_its_export_is_missing(night):
    (night[0] / "span-20240103").mkdir()
    _run_stops(
        night, "span-20240103", "holds no part-*.tfrecord.gz files", "export for this night is missing"
    )


def test_a_missing_span_lists_what_exists(night):
    _run_stops(
        night, "span 20240105 not found", "available: 20240101 .. 20240102", extra=("--span", "20240105")
    )


# 4. a span where nobody clicked
def test_a_span_without_clicks_stops_before_training(night):
    data = night[0]
    shutil.rmtree(_span_dir(data, 20240103), ignore_errors=True)
    with SpanWriter(data, dt.date(2024, 1, 3)) as writer:
        for i in range(300):
            writer.write(to_example(_event(i, clicked=0)))
    _run_stops(night, "span 20240103", "300 impressions and not one click", "label join")


# 10. duplicated events
def test_a_span_logged_several_times_over_is_refused_with_the_fraction(night):
    data = night[0]
    with SpanWriter(data, dt.date(2024, 1, 3)) as writer:
        for _ in range(3):  # a retried upload: every event three times
            for i in range(200):
                writer.write(to_example(_event(i)))
    _run_stops(
        night, "span 20240103", "400 of 600 events (66.7%)", "data.max_duplicate_fraction", "Deduplicate"
    )


# 11. malformed span folder names, and a span dated in the future
@pytest.mark.parametrize("name", ["span-2024-01-03", "span-20240231", "span-2024013"])
def test_a_malformed_span_folder_is_named_with_the_fix(night, name):
    shutil.copytree(_span_dir(night[0]), night[0] / name)
    _run_stops(night, name, "not named span-YYYYMMDD with a real date", "rename it")


def test_a_span_dated_in_the_future_is_refused(night):
    future = dt.date.today() + dt.timedelta(days=30)
    shutil.copytree(_span_dir(night[0]), night[0] / f"span-{future:%Y%m%d}")
    _run_stops(night, f"span-{future:%Y%m%d}", "in the future", "exporter's date or clock")


# 14. a serving path that is not writable
def test_an_unwritable_serving_path_stops_before_training(night, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    config = night[1].with_overrides(**{"serving.root": str(blocker / "serving")})
    night[2].write_text(yaml.safe_dump(config.model_dump()))
    result = CliRunner().invoke(cli, ["run", "--config", str(night[2])])
    assert result.exit_code == 3, "bad input"
    message = " ".join(result.output.split())
    assert "a-file/serving is not writable" in message and "checked before training" in message
    assert not Path(config.metadata_path).exists()


# 12. config errors: unknown key, wrong type, 5-field cron, thresholds out of range
@pytest.mark.parametrize(
    "text, words",
    [
        ("trainer:\n  epocs: 3\n", ["trainer.epocs", "unknown key"]),
        ("trainer:\n  batch_size: lots\n", ["trainer.batch_size", "integer"]),
        ("kubeflow:\n  schedule_cron: '0 2 * * *'\n", ["kubeflow.schedule_cron", "6 fields"]),
        (
            "evaluation:\n  ndcg_lower_bound: 1.2\n",
            ["evaluation.ndcg_lower_bound", "less than or equal to 1"],
        ),
        ("evaluation:\n  max_auc_drop: -0.1\n", ["evaluation.max_auc_drop", "greater than or equal to 0"]),
        ("data:\n  max_duplicate_fraction: 2\n", ["data.max_duplicate_fraction", "less than or equal to 1"]),
    ],
)
def test_config_errors_name_the_file_and_key(tmp_path, text, words):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    result = CliRunner().invoke(cli, ["run", "--config", str(path)])
    assert result.exit_code == 1
    message = " ".join(result.output.split())
    assert str(path) in message and all(w in message for w in words), message


# 5-9: what the curated schema catches (the check ExampleValidator runs, then AnomalyGate's message)


def _anomalies(tmp_path: Path, examples: list[tf.train.Example]) -> str:
    import tensorflow_data_validation as tfdv

    from components.anomaly_gate import describe

    path = tmp_path / "span.tfrecord"
    with tf.io.TFRecordWriter(str(path)) as writer:
        for example in examples:
            writer.write(example.SerializeToString())
    stats = tfdv.generate_statistics_from_tfrecord(data_location=str(path))
    schema = tfdv.load_schema_text(str(REPO / "schema" / "schema.pbtxt"))
    return "\n".join(describe({"train": tfdv.validate_statistics(stats, schema)}))


def _with(i: int, **changes) -> tf.train.Example:
    return to_example(_event(i, **changes))


def _without(i: int, feature: str) -> tf.train.Example:
    example = _with(i)
    del example.features.feature[feature]
    return example


@pytest.mark.parametrize("feature", ["user_id", "item_id"])
def test_examples_missing_an_id_are_anomalies_naming_it(tmp_path, feature):
    found = _anomalies(tmp_path, [_with(i) for i in range(50)] + [_without(i, feature) for i in range(5)])
    assert f"feature '{feature}'" in found and "present in fewer examples than expected" in found


def test_a_feature_of_the_wrong_type_is_an_anomaly_naming_it(tmp_path):
    def price_as_bytes(i):
        example = _with(i)
        example.features.feature["item_price"].Clear()
        example.features.feature["item_price"].bytes_list.value.append(b"9.50 EUR")
        return example

    found = _anomalies(tmp_path, [price_as_bytes(i) for i in range(50)])
    assert "feature 'item_price'" in found and "type" in found.lower()


def test_a_label_outside_0_and_1_is_an_anomaly(tmp_path):
    found = _anomalies(tmp_path, [_with(i) for i in range(50)] + [_with(99, clicked=2)])
    assert "feature 'clicked'" in found and "out-of-range" in found.lower()


@pytest.mark.parametrize(
    "value, words",
    [(float("nan"), "nan"), (-4.0, "out-of-range"), (5e9, "out-of-range")],
    ids=["nan", "negative", "absurd"],
)
def test_nan_negative_and_absurd_prices_are_anomalies(tmp_path, value, words):
    found = _anomalies(tmp_path, [_with(i) for i in range(50)] + [_with(99, item_price=value)])
    assert "feature 'item_price'" in found and words in found.lower()


def test_a_flood_of_unseen_device_values_is_an_anomaly(tmp_path):
    examples = [_with(i, device=f"smart-fridge-{i % 9}") for i in range(40)] + [_with(i) for i in range(10)]
    found = _anomalies(tmp_path, examples)
    assert "feature 'device'" in found and "smart-fridge" in found


def test_a_flood_of_unseen_item_categories_is_drift_naming_the_category(tmp_path):
    """Bad input 9 for an open vocabulary: item_category has no domain in the schema, so new values are
    not anomalies by themselves; its drift comparators against the previous span catch a flood of them."""
    import tensorflow_data_validation as tfdv

    from components.anomaly_gate import describe
    from components.drift_gate import drift_anomalies

    def stats(name: str, examples: list[tf.train.Example]):
        path = tmp_path / f"{name}.tfrecord"
        with tf.io.TFRecordWriter(str(path)) as writer:
            for example in examples:
                writer.write(example.SerializeToString())
        return tfdv.generate_statistics_from_tfrecord(data_location=str(path))

    categories = [f"cat{i % 12:02d}" for i in range(240)]
    yesterday = stats("yesterday", [_with(i, item_category=c) for i, c in enumerate(categories)])
    normal = stats("normal", [_with(i, item_category=c) for i, c in enumerate(reversed(categories))])
    flooded = stats(
        "flooded",
        [_with(i, item_category=c if i % 2 else f"promo-{i % 7}") for i, c in enumerate(categories)],
    )
    schema = tfdv.load_schema_text(str(REPO / "schema" / "schema.pbtxt"))
    assert describe({"train": drift_anomalies(normal, yesterday, schema)}) == []
    found = "\n".join(describe({"train": drift_anomalies(flooded, yesterday, schema)}))
    # No single value moved past L-infinity's 0.1; the flood is the mass on new values, which JSD sees.
    assert "feature 'item_category'" in found and "Jensen-Shannon divergence" in found
    assert "is 0.5 " in found and "above the threshold 0.1" in found


def test_a_shard_cut_anywhere_is_refused_even_where_tensorflow_reads_a_clean_prefix(tmp_path):
    """Cut one 400-record shard at many points: pre-flight refuses every cut, including the cuts at which
    TensorFlow's gzip reader ends without an error and returns fewer records (a half-uploaded shard)."""
    import tensorflow as tf

    from pipeline.errors import InputError
    from pipeline.preflight import EventRules, scan_span

    folder = tmp_path / "span-20240101"
    folder.mkdir()
    whole = tmp_path / "whole.tfrecord.gz"
    with tf.io.TFRecordWriter(str(whole), options="GZIP") as writer:
        for i in range(400):
            writer.write(to_example(_event(i)).SerializeToString())
    content = whole.read_bytes()
    shard = folder / "part-00000.tfrecord.gz"
    silent_in_tensorflow = 0
    for cut in range(10, len(content) - 1, max(1, len(content) // 120)):
        shard.write_bytes(content[:cut])
        try:
            read = sum(1 for _ in tf.data.TFRecordDataset(str(shard), compression_type="GZIP"))
            silent_in_tensorflow += read < 400
        except tf.errors.OpError:
            pass
        with pytest.raises(InputError, match=r"part-00000.tfrecord.gz is (truncated|corrupt)"):
            scan_span(str(folder), "part-*.tfrecord.gz", 20240101, EventRules.of(20240101, 6, 256))
    assert silent_in_tensorflow > 0, "no cut hit the case TensorFlow lets through; the test would prove less"


def test_a_zero_byte_shard_beside_good_ones_stops_the_night(night):
    empty = _span_dir(night[0]) / "part-00009.tfrecord.gz"
    empty.write_bytes(b"")
    _run_stops(night, str(empty), "is empty (0 bytes)", "export of this shard failed")


def _night_of(night, events: list[dict]) -> None:
    """Replace span 20240103 with these events (the newest span, so it is tonight's)."""
    data = night[0]
    shutil.rmtree(_span_dir(data, 20240103), ignore_errors=True)
    with SpanWriter(data, dt.date(2024, 1, 3)) as writer:
        for event in events:
            writer.write(to_example(event))


def test_events_far_from_the_spans_day_are_refused_with_the_fraction_and_an_example(night):
    in_2030, in_1970 = 1893456000, 86400
    _night_of(
        night, [_event(i, event_ts=(in_1970 + i) if i % 20 == 0 else (in_2030 + i)) for i in range(300)]
    )
    _run_stops(
        night,
        "span 20240103",
        "300 of 300 events (100.0%)",
        "outside the span's day",
        "for the day 2024-01-03",
    )


def test_all_zero_timestamps_are_named_as_missing_timestamps_not_duplicates(night):
    _night_of(night, [_event(i, event_ts=0) for i in range(300)])
    message = _run_stops(night, "event_ts 0: the exporter wrote no timestamp")
    assert "Deduplicate" not in message


@pytest.mark.parametrize(
    "change, words",
    [
        ({"user_id": ""}, ["have an empty user_id", "e.g. ''"]),
        ({"user_id": "u\t1"}, ["user_id with control characters", "'u\\t1'"]),
        ({"item_id": " i1"}, ["item_id with control characters", "leading/trailing spaces"]),
        ({"item_id": "x" * 10_000}, ["item_id longer than data.max_id_length"]),
    ],
    ids=["empty", "tab", "leading-space", "10k-chars"],
)
def test_bad_ids_are_refused_with_the_fraction_and_an_example(night, change, words):
    _night_of(night, [_event(i, **(change if i % 10 == 0 else {})) for i in range(300)])
    _run_stops(night, "span 20240103", "30 of 300 events (10.0%)", *words)


def test_unicode_and_emoji_ids_are_legal(night):
    from pipeline.preflight import check_span

    _night_of(night, [_event(i, user_id=f"ユーザー{i % 50}", item_id=f"🎬{i % 40}") for i in range(300)])
    scan = check_span(night[1], 20240103)
    assert scan.users == 50 and scan.items == 40 and not scan.problems


@pytest.mark.parametrize(
    "events, words",
    [
        ([_event(i, item_id="i1") for i in range(300)], ["only 1 distinct items", "data.min_items = 10"]),
        ([_event(i) for i in range(5)], ["only 5 events", "data.min_events = 100"]),
    ],
    ids=["one-item", "five-events"],
)
def test_degenerate_spans_stop_before_training_naming_the_count(night, events, words):
    _night_of(night, events)
    _run_stops(night, "span 20240103", *words)


@pytest.mark.parametrize(
    "content, words",
    [
        (b"\xff\xfe garbage \x00\x01", ["is not UTF-8 text"]),
        (
            b"feature { name: 'user_id' type: BYTES \n this is not a schema",
            ["does not parse as a TFDV schema"],
        ),
    ],
    ids=["binary", "broken-text"],
)
def test_a_garbage_schema_file_is_named_with_the_parse_error(night, tmp_path, content, words):
    schema_dir = tmp_path / "schema"
    schema_dir.mkdir()
    (schema_dir / "schema.pbtxt").write_bytes(content)
    config = night[1].with_overrides(schema_dir=str(schema_dir))
    night[2].write_text(yaml.safe_dump(config.model_dump()))
    _run_stops(night, f"schema file {schema_dir / 'schema.pbtxt'}", *words, "Restore it")


def test_a_split_too_small_to_evaluate_on_is_named_with_the_count():
    """The span passes pre-flight's minimums, but hash-splitting leaves one split too small."""
    from components.anomaly_gate import too_small

    counts = {
        "train": {"events": 950, "clicks": 90, "users": 60, "items": 40},
        "eval": {"events": 50, "clicks": 4, "users": 30, "items": 25},
    }
    minimums = {"events": 100, "clicks": 10, "users": 10, "items": 10}
    assert too_small(counts, minimums) == [
        "[eval] split: only 50 events, fewer than data.min_events = 100",
        "[eval] split: only 4 clicks, fewer than data.min_clicks = 10",
    ]


def test_split_counts_are_read_from_statisticsgen_output(tmp_path):
    import tensorflow_data_validation as tfdv
    from tfx.types import artifact_utils, standard_artifacts

    from components.anomaly_gate import split_counts

    with SpanWriter(tmp_path / "log", dt.date(2024, 1, 3)) as writer:
        for i in range(300):
            writer.write(to_example(_event(i)))
    stats = tfdv.generate_statistics_from_tfrecord(str(tmp_path / "log" / "span-20240103" / "part-*"))
    artifact = standard_artifacts.ExampleStatistics()
    artifact.uri = str(tmp_path / "stats")
    artifact.split_names = artifact_utils.encode_split_names(["eval"])
    (tmp_path / "stats" / "Split-eval").mkdir(parents=True)
    (tmp_path / "stats" / "Split-eval" / "FeatureStats.pb").write_bytes(stats.SerializeToString())
    assert split_counts(artifact) == {"eval": {"events": 300, "clicks": 43, "users": 50, "items": 40}}
