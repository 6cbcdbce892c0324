"""Serving signatures of the exported model, each with the Transform graph inside.

- serving_default: raw feature values, as a TF Serving REST client sends them
  ({"instances": [{"user_id": "42", "item_id": "1024", ...}]}); user_age -1 means unknown.
- serving_tf_example: serialized tf.Example (gRPC clients, batch scoring, and TFMA's Evaluator).
- transform_features: serialized tf.Example -> transformed features (debugging skew).
"""

from __future__ import annotations

import tensorflow as tf
import tensorflow_transform as tft

from components.model import features as F
from components.model.model import INPUT_FEATURES

OUTPUT_KEY = "click_probability"

RAW_INPUT_SPECS = {
    F.USER_ID: tf.string,
    F.ITEM_ID: tf.string,
    F.EVENT_TS: tf.int64,
    F.POSITION: tf.int64,
    F.DEVICE: tf.string,
    F.ITEM_CATEGORY: tf.string,
    F.ITEM_PRICE: tf.float32,
    F.USER_AGE: tf.int64,
}
assert set(RAW_INPUT_SPECS) == set(F.SERVING_FEATURES)


def make_signatures(
    model, tf_transform_output: tft.TFTransformOutput
) -> dict[str, tf.types.experimental.ConcreteFunction]:
    # Keeping the layer on the model makes Keras track it, so the vocabulary assets are saved with it.
    model.tft_layer = tf_transform_output.transform_features_layer()
    raw_spec = tf_transform_output.raw_feature_spec()
    example_spec = {name: raw_spec[name] for name in F.SERVING_FEATURES}

    def score(raw_features: dict[str, tf.Tensor]) -> tf.Tensor:
        transformed = model.tft_layer(raw_features)
        return tf.reshape(model({k: transformed[k] for k in INPUT_FEATURES}), [-1])

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def serve_tf_examples(examples):
        return {OUTPUT_KEY: score(tf.io.parse_example(examples, example_spec))}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def transform_features(examples):
        raw = tf.io.parse_example(examples, raw_spec)
        raw.pop(F.LABEL, None)
        return model.tft_layer(raw)

    @tf.function(
        input_signature=[tf.TensorSpec([None], dtype, name=name) for name, dtype in RAW_INPUT_SPECS.items()]
    )
    def serve_raw(user_id, item_id, event_ts, position, device, item_category, item_price, user_age):
        column = lambda t: tf.reshape(t, [-1, 1])  # noqa: E731 - the [batch, 1] shape parse_example gives
        known_age = tf.where(user_age >= 0)
        raw = {
            F.USER_ID: column(user_id),
            F.ITEM_ID: column(item_id),
            F.EVENT_TS: column(event_ts),
            F.POSITION: column(position),
            F.DEVICE: column(device),
            F.ITEM_CATEGORY: column(item_category),
            F.ITEM_PRICE: column(item_price),
            # Optional feature: a sparse [batch, 1] tensor holding only the known ages, as parsing gives.
            F.USER_AGE: tf.SparseTensor(
                indices=tf.concat([known_age, tf.zeros_like(known_age)], axis=1),
                values=tf.gather_nd(user_age, known_age),
                dense_shape=tf.stack([tf.shape(user_age, out_type=tf.int64)[0], tf.constant(1, tf.int64)]),
            ),
        }
        return {OUTPUT_KEY: score(raw)}

    return {
        "serving_default": serve_raw.get_concrete_function(),
        "serving_tf_example": serve_tf_examples.get_concrete_function(),
        "transform_features": transform_features.get_concrete_function(),
    }


def warmup_requests(users: list[bytes], items: list[bytes]) -> list:
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
