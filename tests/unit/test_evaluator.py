"""The Evaluator's batched reading gives TFX's own Evaluator's metrics and verdict."""

import json

import pytest
import tensorflow as tf
import tensorflow_model_analysis as tfma
from google.protobuf import json_format
from helpers import spy_batched_reads

from components.model import features as F
from components.model.signatures import OUTPUT_KEY
from pipeline.data.clicklog import to_example

ROWS = 1800
START = 1704067200


def _row(i: int) -> dict:
    user, item = i % 23, (i * 5) % 31
    return {
        F.USER_ID: f"u{user}",
        F.ITEM_ID: f"i{item}",
        F.EVENT_TS: START + i,  # unique: no two of a user's examples tie on score
        F.LABEL: int((user * item) % 10 < 3),
        F.POSITION: i % 12,
        F.DEVICE: ("mobile", "tv", "desktop")[i % 3],
        F.ITEM_CATEGORY: "cat01",
        F.ITEM_PRICE: 10.0,
        F.USER_AGE: 30,
        F.DWELL_MS: 0.0,
    }


def _saved_model(path: str, informed: bool) -> str:
    """A model with the signature the Evaluator scores: it knows the click rule when `informed`, and
    otherwise scores by position alone; both break ties by the event time."""

    class Model(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
        def score(self, examples):
            spec = {
                F.USER_ID: tf.io.FixedLenFeature([], tf.string),
                F.ITEM_ID: tf.io.FixedLenFeature([], tf.string),
                F.EVENT_TS: tf.io.FixedLenFeature([], tf.int64),
                F.POSITION: tf.io.FixedLenFeature([], tf.int64),
            }
            parsed = tf.io.parse_example(examples, spec)
            user = tf.strings.to_number(tf.strings.regex_replace(parsed[F.USER_ID], "u", ""), tf.int64)
            item = tf.strings.to_number(tf.strings.regex_replace(parsed[F.ITEM_ID], "i", ""), tf.int64)
            if informed:
                base = tf.where((user * item) % 10 < 3, 0.7, 0.3)
            else:
                base = 0.3 + 0.03 * tf.cast(parsed[F.POSITION], tf.float32)
            tie_break = tf.cast((parsed[F.EVENT_TS] - START) % 1000, tf.float32) * 1e-5
            return {OUTPUT_KEY: base + tie_break}

    model = Model()
    tf.saved_model.save(model, path, signatures={"serving_tf_example": model.score})
    return path


@pytest.fixture
def evaluation_inputs(tmp_path, repo):
    """Examples in two splits of several gzipped files each, a baseline that knows the click rule and a
    candidate that does not, the evaluator's schema, and the pipeline's exec properties."""
    from tfx.types import artifact_utils, standard_artifacts
    from tfx.utils import io_utils

    from components.eval_sample import SCHEMA_FILE, columns_schema
    from components.evaluation import build_eval_config, evaluated_features
    from pipeline.config import load_config

    examples = standard_artifacts.Examples()
    examples.uri = str(tmp_path / "examples")
    examples.split_names = artifact_utils.encode_split_names(["train", "eval"])
    rows = [_row(i) for i in range(ROWS)]
    for split, part in (("train", rows[:1200]), ("eval", rows[1200:])):
        folder = artifact_utils.get_split_uri([examples], split)
        tf.io.gfile.makedirs(folder)
        for shard, start in enumerate(range(0, len(part), 400)):
            with tf.io.TFRecordWriter(f"{folder}/data_tfrecord-{shard:05d}-of-00003.gz", "GZIP") as writer:
                for row in part[start : start + 400]:
                    writer.write(to_example(row).SerializeToString())

    evaluation = load_config(repo / "configs" / "local.yaml").evaluation
    schema = standard_artifacts.Schema()
    schema.uri = str(tmp_path / "schema")
    full = io_utils.SchemaReader().read(str(repo / "schema" / "schema.pbtxt"))
    io_utils.write_pbtxt_file(
        f"{schema.uri}/{SCHEMA_FILE}", columns_schema(full, evaluated_features(evaluation.slice_features))
    )
    models = {}
    for name, informed in (("model", False), ("baseline_model", True)):
        models[name] = standard_artifacts.Model()
        models[name].uri = str(tmp_path / name)
        _saved_model(f"{models[name].uri}/Format-Serving", informed)
    properties = {
        "eval_config": json_format.MessageToJson(
            build_eval_config(**evaluation.model_dump(exclude={"max_examples"}))
        ),
        "example_splits": json.dumps(["train", "eval"]),
    }
    inputs = {"examples": [examples], "schema": [schema], **{k: [v] for k, v in models.items()}}
    return inputs, properties


def _evaluate(executor, inputs, properties, out) -> tuple[str, dict]:
    from tfx.types import standard_artifacts

    evaluation, blessing = standard_artifacts.ModelEvaluation(), standard_artifacts.ModelBlessing()
    evaluation.uri, blessing.uri = str(out / "evaluation"), str(out / "blessing")
    tf.io.gfile.makedirs(blessing.uri)
    executor().Do(inputs, {"evaluation": [evaluation], "blessing": [blessing]}, properties)
    metrics = {
        slice_key: values[""][""]
        for slice_key, values in tfma.load_eval_result(evaluation.uri).slicing_metrics
    }
    return tf.io.gfile.listdir(blessing.uri)[0], metrics


def test_batched_evaluator_scores_and_blesses_as_tfx_does(evaluation_inputs, tmp_path, monkeypatch):
    """Reading each file in batches instead of record by record: the same verdict, and every metric of every
    slice TFX's own Evaluator executor computes from the same examples, read by the batched reader."""
    from tfx.components.evaluator import executor as tfx_evaluator_executor

    from components import evaluator as batched

    inputs, properties = evaluation_inputs
    reads = spy_batched_reads(monkeypatch)
    ours = _evaluate(batched.BatchedExecutor, inputs, properties, tmp_path / "ours")
    assert len(reads) == 2, "the batched reader read both splits"
    assert tfx_evaluator_executor.tfxio_utils is not batched._BATCHED_TFXIO_UTILS, "TFX's is back"
    theirs = _evaluate(tfx_evaluator_executor.Executor, inputs, properties, tmp_path / "tfx")
    assert len(reads) == 2, "TFX's executor read through its own reader"

    # The candidate scores by position only and falls far below the baseline: refused by both.
    assert ours[0] == theirs[0] == "NOT_BLESSED"
    assert set(ours[1]) == set(theirs[1]) and len(ours[1]) == 4  # overall and three devices
    for slice_key, want in theirs[1].items():
        got = ours[1][slice_key]
        assert set(got) == set(want), slice_key
        assert got["example_count"]["doubleValue"] > 0
        for name, value in want.items():
            assert got[name]["doubleValue"] == pytest.approx(value["doubleValue"], rel=1e-9, abs=1e-12), (
                slice_key,
                name,
            )
