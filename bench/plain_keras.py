"""The floor without TFX: the newest span read with tf.data, the same vocabularies and buckets built with
NumPy, the same NeuMF trained for the same epochs, eval AUC. What hand-glued code costs, so the night-speed
section can say what the pipeline's validation, gates, artifacts and metadata cost on top.

It keeps none of what the pipeline guarantees (schema and drift checks, the transform graph in the served
model, the gates, the push); it only fixes the work a night cannot avoid. It gets the one speed fix every
Keras 2 user can copy (components/model/tracing.py), so the floor is a floor.

usage: python -m bench.plain_keras --data DATA_ROOT [--config configs/local.yaml]   (prints one JSON line)
"""

from __future__ import annotations

import json
import os
import time

import click
import numpy as np
import tensorflow as tf
import tf_keras as keras

from components.model import features as F
from components.model.model import ModelParams, ModelShape, build_neumf
from components.model.tracing import skip_converting_keras
from pipeline.config import load_config
from pipeline.data.layout import SHARD_PATTERN, SPAN_DIR_RE

EVAL_BUCKETS = 5  # one of five records held out, as ExampleGen's 4:1 hash split


def _feature_spec() -> dict:
    kinds = {"bytes": (tf.string, b""), "int64": (tf.int64, -1), "float": (tf.float32, 0.0)}
    return {
        name: tf.io.FixedLenFeature([], kinds[f.dtype][0], default_value=kinds[f.dtype][1])
        for name, f in F.RAW_FEATURES.items()
    }


def read_newest_span(root: str) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Every record of the newest span as NumPy columns, and each record's hash bucket."""
    newest = max(
        name.rstrip("/") for name in tf.io.gfile.listdir(root) if SPAN_DIR_RE.match(name.rstrip("/"))
    )
    files = tf.io.gfile.glob(os.path.join(root, newest, SHARD_PATTERN))
    records = tf.data.TFRecordDataset(files, compression_type="GZIP").batch(8192)
    spec = _feature_spec()
    columns: dict[str, list] = {name: [] for name in spec}
    buckets = []
    for batch in records:
        parsed = tf.io.parse_example(batch, spec)
        for name, values in parsed.items():
            columns[name].append(values.numpy())
        buckets.append(tf.strings.to_hash_bucket_fast(batch, EVAL_BUCKETS).numpy())
    return {k: np.concatenate(v) for k, v in columns.items()}, np.concatenate(buckets)


def _index(train: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, int]:
    """Vocabulary of the train split; unseen values get one OOV index past its end."""
    vocab = np.unique(train)
    at = np.clip(np.searchsorted(vocab, values), 0, len(vocab) - 1)
    return np.where(vocab[at] == values, at, len(vocab)), len(vocab) + 1


def _buckets(train: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    edges = np.unique(np.quantile(train, np.linspace(0, 1, n + 1)[1:-1]))
    return np.digitize(values, edges)


def features(cols: dict[str, np.ndarray], is_train: np.ndarray, buckets: int) -> tuple[dict, ModelShape]:
    """The model inputs preprocessing_fn computes, from the train split's vocabularies and quantiles."""
    out, sizes = {}, {}
    for raw, name in ((F.USER_ID, F.T_USER), (F.ITEM_ID, F.T_ITEM), (F.DEVICE, F.T_DEVICE)):
        out[name], sizes[name] = _index(cols[raw][is_train], cols[raw])
    out[F.T_CATEGORY], sizes[F.T_CATEGORY] = _index(cols[F.ITEM_CATEGORY][is_train], cols[F.ITEM_CATEGORY])
    price = np.log1p(np.maximum(cols[F.ITEM_PRICE], 0.0))
    out[F.T_PRICE] = ((price - price[is_train].mean()) / (price[is_train].std() or 1.0)).astype(np.float32)
    age = cols[F.USER_AGE].astype(np.float32)
    known = age >= 0
    out[F.T_AGE] = np.where(known, _buckets(age[is_train & known], age, buckets), buckets)
    out[F.T_POSITION] = _buckets(cols[F.POSITION][is_train].astype(np.float32), cols[F.POSITION], buckets)
    hour = (cols[F.EVENT_TS] // 3600) % 24
    out[F.T_HOUR] = _buckets(hour[is_train].astype(np.float32), hour, buckets)
    shape = ModelShape(
        users=sizes[F.T_USER],
        items=sizes[F.T_ITEM],
        devices=sizes[F.T_DEVICE],
        categories=sizes[F.T_CATEGORY],
        age_buckets=buckets + 1,
        position_buckets=buckets,
        hour_buckets=buckets,
    )
    return out, shape


@click.command()
@click.option("--data", required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--config", "config_path", default="configs/local.yaml", show_default=True)
def main(data: str, config_path: str) -> None:
    started = time.time()
    skip_converting_keras()
    cfg = load_config(config_path)
    t = cfg.trainer
    keras.utils.set_random_seed(t.seed)
    cols, hash_bucket = read_newest_span(data)
    read_s = time.time() - started
    is_train = hash_bucket < EVAL_BUCKETS - 1
    inputs, shape = features(cols, is_train, cfg.transform.quantile_buckets)
    prepared_s = time.time() - started - read_s
    params = ModelParams(
        t.gmf_dim, t.mlp_dim, t.side_dim, tuple(t.mlp_layers), t.l2, t.learning_rate, t.steps_per_execution
    )
    model = build_neumf(shape, params)
    labels = cols[F.LABEL].astype(np.float32)
    x_train = {k: v[is_train] for k, v in inputs.items()}
    x_eval = {k: v[~is_train] for k, v in inputs.items()}
    fit_started = time.time()
    model.fit(x_train, labels[is_train], batch_size=t.batch_size, epochs=t.epochs, shuffle=True, verbose=0)
    fit_s = time.time() - fit_started
    auc = model.evaluate(x_eval, labels[~is_train], batch_size=8192, return_dict=True, verbose=0)["auc"]
    result = {
        "events": int(len(labels)),
        "train_examples": int(is_train.sum()),
        "eval_examples": int((~is_train).sum()),
        "epochs": t.epochs,
        "read_s": read_s,
        "prepare_s": prepared_s,
        "fit_s": fit_s,
        "auc": float(auc),
        "seconds": time.time() - started,
    }
    click.echo(json.dumps(result))


if __name__ == "__main__":
    main()
