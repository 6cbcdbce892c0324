"""run_fn: trains NeuMF on Transform's output under MultiWorkerMirroredStrategy and exports it for serving.

The strategy is always MultiWorkerMirroredStrategy: without TF_CONFIG it is a single local worker, and
with TF_CONFIG the same code runs as one of N workers, so one code path is tested and shipped.
"""

from __future__ import annotations

import json
import os
import tempfile

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import tensorflow as tf
import tensorflow_transform as tft
import tf_keras as keras
from tfx import v1 as tfx
from tfx_bsl.public import tfxio

from components import features as F
from components.model import ModelParams, ModelShape, build_neumf
from components.recommend import Recommender, item_catalogue
from components.serving_check import write_warmup
from components.signatures import make_signatures


def _is_chief() -> bool:
    """The chief exports the model: task 'chief' if the cluster has one, else worker 0 (or no TF_CONFIG)."""
    tf_config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    task, cluster = tf_config.get("task", {}), tf_config.get("cluster", {})
    if not task:
        return True
    if "chief" in cluster:
        return task.get("type") == "chief"
    return task.get("type") == "worker" and int(task.get("index", 0)) == 0


def model_shape(tf_transform_output: tft.TFTransformOutput, cfg: dict) -> ModelShape:
    """Embedding table sizes = vocabulary sizes + OOV buckets, read from what Transform computed."""
    vocab = tf_transform_output.vocabulary_size_by_name
    buckets = int(cfg["quantile_buckets"])
    return ModelShape(
        users=vocab(F.VOCAB_FILES[F.USER_ID]) + int(cfg["id_oov_buckets"]),
        items=vocab(F.VOCAB_FILES[F.ITEM_ID]) + int(cfg["id_oov_buckets"]),
        devices=vocab(F.VOCAB_FILES[F.DEVICE]) + int(cfg["category_oov_buckets"]),
        categories=vocab(F.VOCAB_FILES[F.ITEM_CATEGORY]) + int(cfg["category_oov_buckets"]),
        age_buckets=buckets + 1,  # + the "unknown age" bucket
        position_buckets=buckets,
        hour_buckets=buckets,
    )


def _dataset(
    fn_args: tfx.components.FnArgs,
    files: list[str],
    tf_transform_output,
    batch_size: int,
    shuffle: bool,
    cfg: dict,
) -> tf.data.Dataset:
    ds = fn_args.data_accessor.tf_dataset_factory(
        files,
        tfxio.TensorFlowDatasetOptions(
            batch_size=batch_size,
            label_key=F.T_LABEL,
            num_epochs=1,
            shuffle=shuffle,
            shuffle_buffer_size=int(cfg["shuffle_buffer"]),
            shuffle_seed=int(cfg["seed"]),
        ),
        tf_transform_output.transformed_metadata.schema,
    )
    options = tf.data.Options()
    # Shard by element: a span may have a single file, which file-based sharding cannot split.
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return ds.with_options(options).prefetch(tf.data.AUTOTUNE)


def run_fn(fn_args: tfx.components.FnArgs) -> None:
    cfg = fn_args.custom_config or {}
    keras.utils.set_random_seed(int(cfg["seed"]))
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_output)
    global_batch = int(cfg["batch_size"]) * strategy.num_replicas_in_sync
    train_ds = _dataset(fn_args, fn_args.train_files, tf_transform_output, global_batch, True, cfg)
    eval_ds = _dataset(fn_args, fn_args.eval_files, tf_transform_output, global_batch, False, cfg)

    params = ModelParams(
        gmf_dim=int(cfg["gmf_dim"]),
        mlp_dim=int(cfg["mlp_dim"]),
        side_dim=int(cfg["side_dim"]),
        mlp_layers=tuple(cfg["mlp_layers"]),
        l2=float(cfg["l2"]),
        learning_rate=float(cfg["learning_rate"]),
    )
    with strategy.scope():
        model = build_neumf(model_shape(tf_transform_output, cfg), params)

    model.fit(
        train_ds,
        validation_data=eval_ds,
        epochs=int(cfg["epochs"]),
        callbacks=[keras.callbacks.TensorBoard(log_dir=fn_args.model_run_dir, update_freq="epoch")],
        verbose=2,
    )

    signatures = make_signatures(model, tf_transform_output)
    vocab = tf_transform_output.vocabulary_by_name
    items, users = vocab(F.VOCAB_FILES[F.ITEM_ID]), vocab(F.VOCAB_FILES[F.USER_ID])
    catalogue_ds = _dataset(fn_args, fn_args.train_files, tf_transform_output, 8192, False, cfg)
    category, price = item_catalogue(catalogue_ds, len(items))
    model.recommender = Recommender(model, model.tft_layer, items, category, price, known_users=len(users))
    signatures["recommend"] = model.recommender.recommend.get_concrete_function()
    signatures["score_items"] = model.recommender.score_items.get_concrete_function()

    # Every worker must call save (it is a collective op); only the chief's copy is the model.
    export_dir = (
        fn_args.serving_model_dir if _is_chief() else tempfile.mkdtemp(prefix="recpipe-worker-export-")
    )
    model.save(export_dir, save_format="tf", signatures=signatures)
    write_warmup(export_dir, cfg["model_name"], _warmup_requests(users, items))


def _warmup_requests(users: list[bytes], items: list[bytes]) -> list:
    """A few real requests per signature, with known and unknown ids, as clients will send them."""
    import time

    now = int(time.time())
    some_users = [*users[:2], b"warmup-unknown-user"]
    rows = len(some_users)
    return [
        (
            "serving_default",
            {
                F.USER_ID: tf.constant(some_users),
                F.ITEM_ID: tf.constant([*items[: rows - 1], b"warmup-unknown-item"]),
                F.EVENT_TS: tf.fill([rows], tf.constant(now, tf.int64)),
                F.POSITION: tf.range(rows, dtype=tf.int64),
                F.DEVICE: tf.constant([b"mobile", b"desktop", b"unknown"][:rows]),
                F.ITEM_CATEGORY: tf.fill([rows], tf.constant(b"unknown")),
                F.ITEM_PRICE: tf.fill([rows], 9.99),
                F.USER_AGE: tf.constant([30, -1, -1][:rows], tf.int64),
            },
        ),
        (
            "recommend",
            {
                "user_id": tf.constant(some_users[:1]),
                "device": tf.constant([b"mobile"]),
                "event_ts": tf.constant([now], tf.int64),
                "k": tf.constant(10, tf.int32),
                "exclude_item_ids": tf.constant(items[:1]),
            },
        ),
        (
            "recommend",
            {
                "user_id": tf.constant([b"warmup-unknown-user"]),
                "device": tf.constant([b"unknown"]),
                "event_ts": tf.constant([now], tf.int64),
                "k": tf.constant(10, tf.int32),
                "exclude_item_ids": tf.constant([], tf.string),
            },
        ),
        (
            "score_items",
            {
                "user_id": tf.constant(some_users[:1]),
                "device": tf.constant([b"mobile"]),
                "event_ts": tf.constant([now], tf.int64),
                "item_ids": tf.constant(items[:5]),
            },
        ),
    ]
