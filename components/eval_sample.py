"""EvalSample: the examples the Evaluator scores, capped at about `max_examples` by sampling whole users.

The Evaluator's time grows with the examples it scores (each model, each example, TFMA's per-example
Python), and its memory did too while TFMA's own NDCG grouped every extract of a user in a GroupByKey that
Beam's DirectRunner holds in memory (4.75 GB on a 200,000-example eval split; NDCG is now computed per
example, components/user_ndcg.py). Sampling users, not events,
keeps every user's list whole (NDCG per user is exact for the users kept), AUC unbiased, and candidate and
baseline scored on the same users. The hash is fixed, so a user is in or out on every night and the
baseline comparison is like for like. Streams record batches: memory does not grow with the span.

It also writes the schema the Evaluator decodes the sample with: only the columns TFMA reads itself (the
label, NDCG's user key, the slice features). The models are fed each record's serialized bytes whatever
the schema says, so their scores are unchanged; the other decoded columns only rode along in every
extract (3 of the Evaluator's 19.5 s with a baseline on make run's data, when NDCG still grouped them),
with the same metrics to the last digit.

Only in the DAG when `evaluation.max_examples` is set; otherwise the Evaluator reads ExampleGen's output
and the whole schema.
"""

# No `from __future__ import annotations`: TFX parses this component's annotations at runtime.

import os

import tensorflow as tf
from absl import logging
from tensorflow_metadata.proto.v0 import schema_pb2
from tfx import v1 as tfx
from tfx.components.example_gen import write_split
from tfx.types import artifact_utils
from tfx.utils import io_utils

from components.model import features as F

HASH_BUCKETS = 1_000_000
BATCH = 8192
# One shard per split, named as TFX ExampleGen names its shards.
RECORDS = f"{write_split.DEFAULT_FILE_NAME}-00000-of-00001.gz"
SCHEMA_FILE = "schema.pbtxt"  # as SchemaGen names it


def split_files(examples, split: str) -> list[str]:
    """The gzipped TFRecord files of one split of an Examples artifact."""
    return sorted(tf.io.gfile.glob(os.path.join(artifact_utils.get_split_uri([examples], split), "*")))


def _batches(files: list[str]) -> tf.data.Dataset:
    return tf.data.TFRecordDataset(files, compression_type="GZIP").batch(BATCH)


def count_records(files: list[str]) -> int:
    dataset = _batches(files)
    return int(dataset.reduce(tf.constant(0, tf.int64), lambda n, b: n + tf.size(b, tf.int64)).numpy())


def sample_rate(total: int, max_examples: int) -> float:
    """Share of users to keep so that about `max_examples` of `total` examples remain (1.0: keep all)."""
    return 1.0 if total <= max_examples else max_examples / total


def keep_mask(records: tf.Tensor, rate: float) -> tf.Tensor:
    """True for records whose user falls in the sampled share of the fixed user hash."""
    users = tf.io.parse_example(records, {F.USER_ID: tf.io.FixedLenFeature([], tf.string)})[F.USER_ID]
    return tf.strings.to_hash_bucket_fast(users, HASH_BUCKETS) < int(round(rate * HASH_BUCKETS))


def write_sample(files: list[str], rate: float, out_path: str) -> int:
    """Copy the sampled users' records of `files` to one gzipped TFRecord file; returns how many."""
    kept = 0
    with tf.io.TFRecordWriter(out_path, options="GZIP") as writer:
        for batch in _batches(files):
            chosen = batch if rate >= 1.0 else tf.boolean_mask(batch, keep_mask(batch, rate))
            for record in chosen.numpy():
                writer.write(record)
            kept += int(chosen.shape[0])
    return kept


def columns_schema(schema: schema_pb2.Schema, columns: list[str]) -> schema_pb2.Schema:
    """`schema` cut down to `columns`, each of which it must have."""
    names = {f.name for f in schema.feature}
    missing = [c for c in columns if c not in names]
    if missing:
        raise ValueError(
            f"The Evaluator reads {missing}, which the schema does not have (features: "
            f"{sorted(names)}). Fix evaluation.slice_features in the config, or add "
            "the feature to schema/schema.pbtxt."
        )
    kept = schema_pb2.Schema()
    kept.CopyFrom(schema)
    # Composite features and tensor representations name features that may be gone.
    for field in ("feature", "sparse_feature", "weighted_feature", "tensor_representation_group"):
        kept.ClearField(field)
    kept.feature.extend(f for f in schema.feature if f.name in columns)
    return kept


@tfx.dsl.components.component
def EvalSample(
    examples: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Examples],
    schema: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Schema],
    sampled: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.Examples],
    evaluator_schema: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.Schema],
    splits: tfx.dsl.components.Parameter[str],
    max_examples: tfx.dsl.components.Parameter[int],
    columns: tfx.dsl.components.Parameter[str],
) -> None:
    """Write `splits` of `examples` (comma-separated) with one user sample across them, and the schema
    of the `columns` (comma-separated) the Evaluator decodes."""
    full = io_utils.SchemaReader().read(io_utils.get_only_uri_in_dir(schema.uri))
    io_utils.write_pbtxt_file(
        os.path.join(evaluator_schema.uri, SCHEMA_FILE),
        columns_schema(full, [c for c in columns.split(",") if c]),
    )
    names = [s for s in splits.split(",") if s]
    files = {split: split_files(examples, split) for split in names}
    total = sum(count_records(f) for f in files.values())
    rate = sample_rate(total, max_examples)
    sampled.split_names = artifact_utils.encode_split_names(names)
    sampled.span = examples.span
    kept = 0
    for split in names:
        out_dir = artifact_utils.get_split_uri([sampled], split)
        tf.io.gfile.makedirs(out_dir)
        kept += write_sample(files[split], rate, os.path.join(out_dir, RECORDS))
    sampled.set_int_custom_property("examples_in", total)
    sampled.set_int_custom_property("examples_sampled", kept)
    sampled.set_float_custom_property("user_sample_rate", rate)
    logging.info("EvalSample: %d of %d examples (users sampled at %.4f), splits %s", kept, total, rate, names)
