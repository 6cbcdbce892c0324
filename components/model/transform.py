"""preprocessing_fn: raw click-log features -> model inputs (the graph is also embedded in the served model)."""

from __future__ import annotations

from typing import Any

import tensorflow as tf
import tensorflow_transform as tft

from components.model import features as F


def _dense(x: tf.Tensor | tf.SparseTensor, default: Any) -> tf.Tensor:
    """[batch, 1] (dense or sparse) -> [batch]."""
    if isinstance(x, tf.SparseTensor):
        x = tf.sparse.to_dense(
            tf.sparse.reset_shape(x, [tf.shape(x, out_type=tf.int64)[0], 1]), default_value=default
        )
    return tf.reshape(x, [-1])


def _min_frequency(cfg: dict[str, Any]) -> int | None:
    """TFT warns on a threshold of 1 (a no-op); None means keep every id."""
    threshold = int(cfg["id_vocab_min_frequency"])
    return threshold if threshold > 1 else None


def preprocessing_fn(inputs: dict[str, Any], custom_config: dict[str, Any]) -> dict[str, tf.Tensor]:
    """`custom_config`: the config's transform section (its defaults live in pipeline/config.py only)."""
    cfg = custom_config
    buckets = int(cfg["quantile_buckets"])
    out: dict[str, tf.Tensor] = {}

    # Ids and categories -> vocabulary indices; unseen values land in OOV buckets instead of failing,
    # because tomorrow's users are not in today's vocabulary.
    out[F.T_USER] = tft.compute_and_apply_vocabulary(
        _dense(inputs[F.USER_ID], b""),
        num_oov_buckets=int(cfg["id_oov_buckets"]),
        frequency_threshold=_min_frequency(cfg),
        vocab_filename=F.VOCAB_FILES[F.USER_ID],
    )
    out[F.T_ITEM] = tft.compute_and_apply_vocabulary(
        _dense(inputs[F.ITEM_ID], b""),
        num_oov_buckets=int(cfg["id_oov_buckets"]),
        frequency_threshold=_min_frequency(cfg),
        vocab_filename=F.VOCAB_FILES[F.ITEM_ID],
    )
    out[F.T_DEVICE] = tft.compute_and_apply_vocabulary(
        _dense(inputs[F.DEVICE], b"unknown"),
        num_oov_buckets=int(cfg["category_oov_buckets"]),
        vocab_filename=F.VOCAB_FILES[F.DEVICE],
    )
    out[F.T_CATEGORY] = tft.compute_and_apply_vocabulary(
        _dense(inputs[F.ITEM_CATEGORY], b"unknown"),
        num_oov_buckets=int(cfg["category_oov_buckets"]),
        vocab_filename=F.VOCAB_FILES[F.ITEM_CATEGORY],
    )

    # Price spans orders of magnitude: z-score its log so one luxury item does not flatten the rest.
    out[F.T_PRICE] = tft.scale_to_z_score(tf.math.log1p(tf.maximum(_dense(inputs[F.ITEM_PRICE], 0.0), 0.0)))

    # Quantile buckets. Missing ages get their own bucket (index `buckets`) and are left out of the
    # quantile computation through a zero weight, so they do not drag the boundaries.
    age = tf.cast(_dense(inputs[F.USER_AGE], -1), tf.float32)
    known = tf.cast(age >= 0, tf.float32)
    age_bucket = tft.bucketize(age, buckets, weights=known, elementwise=False)
    out[F.T_AGE] = tf.where(age >= 0, age_bucket, tf.cast(buckets, age_bucket.dtype))
    out[F.T_POSITION] = tft.bucketize(tf.cast(_dense(inputs[F.POSITION], 0), tf.float32), buckets)
    hour = tf.cast(tf.math.floormod(tf.math.floordiv(_dense(inputs[F.EVENT_TS], 0), 3600), 24), tf.float32)
    out[F.T_HOUR] = tft.bucketize(hour, buckets)

    out[F.T_LABEL] = tf.cast(_dense(inputs[F.LABEL], 0), tf.int64)
    return out
