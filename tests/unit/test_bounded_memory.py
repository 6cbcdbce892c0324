"""What keeps memory bounded at scale (EvalSample, the streaming ExampleGen, Transform without in-component
statistics) keeps what a user relies on: whole users, the same splits as TFX, the same DAG when unset."""

from __future__ import annotations

import collections
import json
import os
from typing import Any

import pytest
import tensorflow as tf
import tensorflow_data_validation as tfdv
from conftest import REPO
from tfx.components.example_gen.import_example_gen import executor as tfx_import_executor
from tfx.components.statistics_gen import executor as tfx_statistics_executor
from tfx.components.statistics_gen.executor import DEFAULT_FILE_NAME, SAMPLE_RATE_BY_SPLIT_PROPERTY_NAME
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils, standard_artifacts
from tfx.utils import io_utils

from components.drift_gate import statistics_options
from components.eval_sample import SCHEMA_FILE, EvalSample, sample_rate
from components.evaluation import evaluated_features
from components.example_gen import BatchedExecutor
from components.model.features import ITEM_ID, LABEL, USER_ID
from components.statistics_gen import BatchedExecutor as BatchedStatisticsExecutor
from pipeline.config import load_config
from pipeline.dag import create_pipeline
from pipeline.plan import Night


def _example(user: str, item: str) -> bytes:
    feature = {
        USER_ID: tf.train.Feature(bytes_list=tf.train.BytesList(value=[user.encode()])),
        ITEM_ID: tf.train.Feature(bytes_list=tf.train.BytesList(value=[item.encode()])),
    }
    # Deterministic, as recpipe's writers serialize: TFX keys a whole record by that serialization.
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString(deterministic=True)


def _write(path: str, records: list[bytes]) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with tf.io.TFRecordWriter(path, options="GZIP") as writer:
        for record in records:
            writer.write(record)


def _read(pattern: str) -> list[bytes]:
    files = sorted(tf.io.gfile.glob(pattern))
    return [r.numpy() for r in tf.data.TFRecordDataset(files, compression_type="GZIP")]


def _users(records: list[bytes]) -> collections.Counter:
    return collections.Counter(
        tf.train.Example.FromString(r).features.feature[USER_ID].bytes_list.value[0].decode() for r in records
    )


def _examples_artifact(tmp_path, splits: dict[str, list[bytes]]) -> standard_artifacts.Examples:
    examples = standard_artifacts.Examples()
    examples.uri = str(tmp_path / "examples")
    examples.split_names = artifact_utils.encode_split_names(list(splits))
    for split, records in splits.items():
        _write(os.path.join(artifact_utils.get_split_uri([examples], split), "part.gz"), records)
    return examples


def _schema_artifact(repo) -> standard_artifacts.Schema:
    schema = standard_artifacts.Schema()
    schema.uri = str(repo / "schema")
    return schema


def _sample(tmp_path, splits: dict[str, list[bytes]], which: str, max_examples: int, columns: str = USER_ID):
    sampled, evaluator_schema = standard_artifacts.Examples(), standard_artifacts.Schema()
    sampled.uri = str(tmp_path / f"sampled-{max_examples}")
    evaluator_schema.uri = str(tmp_path / f"schema-{max_examples}")
    EvalSample.test_call(
        examples=_examples_artifact(tmp_path, splits),
        schema=_schema_artifact(REPO),
        sampled=sampled,
        evaluator_schema=evaluator_schema,
        splits=which,
        max_examples=max_examples,
        columns=columns,
    )
    return sampled


# 400 users with 1..9 events each: a user's events must be kept or dropped together.
EVENTS = [_example(f"u{u}", f"i{(u * 7 + k) % 50}") for u in range(400) for k in range(1 + u % 9)]


def test_sample_keeps_whole_users_about_the_cap_and_the_same_users_every_night(tmp_path):
    all_users = _users(EVENTS)
    first = _sample(tmp_path, {"eval": EVENTS}, "eval", max_examples=600)
    kept = _read(os.path.join(artifact_utils.get_split_uri([first], "eval"), "*"))
    kept_users = _users(kept)
    assert all(kept_users[u] == all_users[u] for u in kept_users), "a sampled user lost some of their events"
    assert 0.7 * 600 <= len(kept) <= 1.3 * 600, len(kept)
    assert first.get_int_custom_property("examples_in") == len(EVENTS)
    assert first.get_int_custom_property("examples_sampled") == len(kept)
    again = _sample(tmp_path / "again", {"eval": EVENTS}, "eval", max_examples=600)
    assert _users(_read(os.path.join(artifact_utils.get_split_uri([again], "eval"), "*"))) == kept_users


def test_held_out_span_samples_the_same_users_in_train_and_eval(tmp_path):
    train, evaluation = EVENTS[::2], EVENTS[1::2]
    sampled = _sample(tmp_path, {"train": train, "eval": evaluation}, "train,eval", max_examples=500)
    assert artifact_utils.decode_split_names(sampled.split_names) == ["train", "eval"]
    kept = {
        s: _read(os.path.join(artifact_utils.get_split_uri([sampled], s), "*")) for s in ("train", "eval")
    }
    users_in_both = set(_users(train)) & set(_users(evaluation))
    assert set(_users(kept["train"])) & users_in_both == set(_users(kept["eval"])) & users_in_both
    assert 0.7 * 500 <= len(kept["train"]) + len(kept["eval"]) <= 1.3 * 500


def test_a_span_under_the_cap_is_evaluated_whole(tmp_path):
    sampled = _sample(tmp_path, {"eval": EVENTS}, "eval", max_examples=10 * len(EVENTS))
    assert _read(os.path.join(artifact_utils.get_split_uri([sampled], "eval"), "*")) == EVENTS
    assert sample_rate(100, 100) == 1.0 and sample_rate(1000, 100) == pytest.approx(0.1)


def test_the_evaluator_decodes_only_the_columns_it_reads(tmp_path, repo):
    config = load_config(repo / "configs" / "local.yaml")
    columns = evaluated_features(config.evaluation.slice_features)
    sampled = _sample(tmp_path, {"eval": EVENTS}, "eval", max_examples=600, columns=",".join(columns))
    written = io_utils.SchemaReader().read(str(tmp_path / "schema-600" / SCHEMA_FILE))
    assert sorted(f.name for f in written.feature) == sorted(columns) == sorted([LABEL, USER_ID, "device"])
    full = io_utils.SchemaReader().read(str(repo / "schema" / "schema.pbtxt"))
    assert {f.name: f for f in written.feature}["device"] == {f.name: f for f in full.feature}["device"]
    assert sampled.get_int_custom_property("examples_sampled") > 0

    shipped = _components(config)
    assert shipped["Evaluator"].inputs["schema"].producer_component_id == "EvalSample"


def test_a_slice_feature_the_schema_lacks_is_named_before_the_evaluator_runs(tmp_path):
    with pytest.raises(ValueError, match=r"\['devise'\].*evaluation.slice_features"):
        _sample(tmp_path, {"eval": EVENTS}, "eval", max_examples=600, columns=f"{LABEL},{USER_ID},devise")


def _components(config) -> dict:
    """The pipeline's components by id, as `create_pipeline` builds them for `config`."""
    return {c.id: c for c in create_pipeline(config, Night(span=20240101)).components}


def test_the_shipped_config_bounds_the_evaluator_and_none_switches_the_sample_off(repo):
    config = load_config(repo / "configs" / "local.yaml")
    shipped = _components(config)
    assert shipped["Evaluator"].inputs["examples"].producer_component_id == "EvalSample"
    assert shipped["EvalSample"].exec_properties["max_examples"] == 100_000

    plain = _components(config.with_overrides(**{"evaluation.max_examples": None}))
    assert "EvalSample" not in plain
    assert plain["Evaluator"].inputs["examples"].producer_component_id == "ImportExampleGen"

    capped = _components(config.with_overrides(**{"evaluation.max_examples": 1000}))
    assert capped["Evaluator"].inputs["examples"].producer_component_id == "EvalSample"
    assert capped["EvalSample"].exec_properties["max_examples"] == 1000


def _run_example_gen(executor, tmp_path, name: str, split_feature: str | None) -> dict[str, list[bytes]]:
    examples = standard_artifacts.Examples()
    examples.uri = str(tmp_path / name)
    split = example_gen_pb2.SplitConfig(
        splits=[
            example_gen_pb2.SplitConfig.Split(name="train", hash_buckets=4),
            example_gen_pb2.SplitConfig.Split(name="eval", hash_buckets=1),
        ],
    )
    if split_feature:
        split.partition_feature_name = split_feature
    properties = {
        "input_base": str(tmp_path / "input"),
        "input_config": json.dumps({"splits": [{"name": "clicks", "pattern": "span-1/*"}]}),
        "output_config": json.dumps({"split_config": json.loads(_json(split))}),
        "output_data_format": example_gen_pb2.FORMAT_TF_EXAMPLE,
        "output_file_format": example_gen_pb2.FORMAT_TFRECORDS_GZIP,
    }
    executor().Do({}, {"examples": [examples]}, properties)
    assert json.loads(examples.split_names) == ["train", "eval"]
    return {
        s: _read(os.path.join(artifact_utils.get_split_uri([examples], s), "*")) for s in ("train", "eval")
    }


def _json(message) -> str:
    from google.protobuf import json_format

    return json_format.MessageToJson(message, preserving_proto_field_name=True)


@pytest.mark.parametrize("split_feature", [None, USER_ID], ids=["whole record", "user_id"])
def test_batched_example_gen_writes_the_same_splits_as_tfx(tmp_path, split_feature):
    """Splitting file by file in batches changes the order of records in a split, nothing else: TFX's
    ImportExampleGen puts every record in the same split, whether it hashes the record or a feature."""
    _write(str(tmp_path / "input" / "span-1" / "a.gz"), EVENTS[:1000])
    _write(str(tmp_path / "input" / "span-1" / "b.gz"), EVENTS[1000:])
    ours = _run_example_gen(BatchedExecutor, tmp_path, "ours", split_feature)
    theirs = _run_example_gen(tfx_import_executor.Executor, tmp_path, "tfx", split_feature)

    def canonical(records: list[bytes]) -> collections.Counter:  # TFX writes each record re-serialized
        return collections.Counter(
            tf.train.Example.FromString(r).SerializeToString(deterministic=True) for r in records
        )

    for split in ("train", "eval"):
        assert canonical(ours[split]) == canonical(theirs[split]), split
    assert collections.Counter(ours["train"] + ours["eval"]) == collections.Counter(EVENTS), "bytes as logged"
    assert len(ours["train"]) + len(ours["eval"]) == len(EVENTS)
    assert 0.1 < len(ours["eval"]) / len(EVENTS) < 0.3
    # Each input file has its own shard in every split, named as TFX names shards.
    for split in ("train", "eval"):
        shards = sorted(os.listdir(tmp_path / "ours" / f"Split-{split}"))
        assert shards == ["data_tfrecord-00000-of-00002.gz", "data_tfrecord-00001-of-00002.gz"]


def test_batched_example_gen_reads_plain_tfrecords_as_tfx_does(tmp_path):
    """TFX picks a file's compression by its extension; a log exported without gzip still splits."""
    _write(str(tmp_path / "input" / "span-1" / "a.gz"), EVENTS[:500])
    path = tmp_path / "input" / "span-1" / "b.tfrecord"
    with tf.io.TFRecordWriter(str(path)) as writer:
        for record in EVENTS[500:]:
            writer.write(record)
    ours = _run_example_gen(BatchedExecutor, tmp_path, "ours", None)
    assert collections.Counter(ours["train"] + ours["eval"]) == collections.Counter(EVENTS)


def test_transform_computes_no_statistics_of_its_own_unless_asked(repo):
    config = load_config(repo / "configs" / "local.yaml")
    transform = _components(config)["Transform"]
    assert transform.exec_properties["disable_statistics"] == 1
    asked = config.with_overrides(**{"transform.statistics": True})
    transform = _components(asked)["Transform"]
    assert transform.exec_properties["disable_statistics"] == 0


def _run_statistics_gen(executor, examples, tmp_path, name: str, **properties) -> dict[str, Any]:
    statistics = standard_artifacts.ExampleStatistics()
    statistics.uri = str(tmp_path / name)
    options = {"stats_options_json": statistics_options(20).to_json(), **properties}
    executor().Do({"examples": [examples]}, {"statistics": [statistics]}, options)
    return {
        "splits": json.loads(statistics.split_names),
        "span": statistics.span,
        "sample_rates": statistics.get_json_value_custom_property(SAMPLE_RATE_BY_SPLIT_PROPERTY_NAME),
        **{
            split: tfdv.load_stats_binary(
                os.path.join(artifact_utils.get_split_uri([statistics], split), DEFAULT_FILE_NAME)
            ).datasets[0]
            for split in json.loads(statistics.split_names)
        },
    }


def _rounded(dataset) -> dict[str, Any]:
    """Each feature's statistics with its means and deviations to 9 digits: summed in another order."""
    features = {}
    for feature in dataset.features:
        numeric = feature.num_stats
        numeric.mean, numeric.std_dev = round(numeric.mean, 9), round(numeric.std_dev, 9)
        features[feature.path.step[0]] = feature.SerializeToString(deterministic=True)
    return features


def test_batched_statistics_gen_describes_the_splits_as_tfx_does(tmp_path):
    """Reading each file in batches instead of record by record: the same artifact, split names, span and
    statistics (counts, uniques, top values, histograms) as TFX's StatisticsGen executor writes."""
    _write(str(tmp_path / "input" / "span-1" / "a.gz"), EVENTS[:1000])
    _write(str(tmp_path / "input" / "span-1" / "b.gz"), EVENTS[1000:])
    _run_example_gen(BatchedExecutor, tmp_path, "examples", None)
    examples = standard_artifacts.Examples()
    examples.uri = str(tmp_path / "examples")
    examples.split_names = artifact_utils.encode_split_names(["train", "eval"])
    examples.span = 20240105
    ours = _run_statistics_gen(BatchedStatisticsExecutor, examples, tmp_path, "ours")
    theirs = _run_statistics_gen(tfx_statistics_executor.Executor, examples, tmp_path, "tfx")
    assert ours["splits"] == theirs["splits"] == ["train", "eval"]
    assert ours["span"] == theirs["span"] == 20240105
    assert ours["sample_rates"] == theirs["sample_rates"]
    for split in ("train", "eval"):
        assert ours[split].num_examples == theirs[split].num_examples > 0
        assert _rounded(ours[split]) == _rounded(theirs[split]), split
    assert ours["train"].num_examples + ours["eval"].num_examples == len(EVENTS)

    only_train = _run_statistics_gen(
        BatchedStatisticsExecutor, examples, tmp_path, "train-only", exclude_splits=json.dumps(["eval"])
    )
    assert only_train["splits"] == ["train"]
