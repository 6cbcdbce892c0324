"""The click-log contract: one tf.train.Example per impression.

Every module (generator, importer, schema, transform, model, signatures, evaluation) takes feature
names from here, so renaming a feature is a one-line change that the tests then check everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

LABEL = "clicked"
USER_ID = "user_id"
ITEM_ID = "item_id"
EVENT_TS = "event_ts"
POSITION = "position"
DEVICE = "device"
ITEM_CATEGORY = "item_category"
ITEM_PRICE = "item_price"
USER_AGE = "user_age"
DWELL_MS = "dwell_ms"


@dataclass(frozen=True)
class RawFeature:
    name: str
    dtype: str  # "bytes" | "int64" | "float"
    required: bool
    doc: str


RAW_FEATURES: dict[str, RawFeature] = {
    f.name: f
    for f in [
        RawFeature(USER_ID, "bytes", True, "who saw the impression"),
        RawFeature(ITEM_ID, "bytes", True, "what was shown"),
        RawFeature(EVENT_TS, "int64", True, "impression time, epoch seconds (UTC)"),
        RawFeature(LABEL, "int64", True, "1 if the impression was clicked, else 0 (the label)"),
        RawFeature(POSITION, "int64", True, "0-based slot on screen"),
        RawFeature(DEVICE, "bytes", True, "mobile | desktop | tablet | tv | unknown"),
        RawFeature(ITEM_CATEGORY, "bytes", True, "catalogue category of the item"),
        RawFeature(ITEM_PRICE, "float", True, "item price, >= 0"),
        RawFeature(USER_AGE, "int64", False, "user age in years; absent when unknown"),
        RawFeature(DWELL_MS, "float", True, "time spent after a click, ms; 0 without a click"),
    ]
}

DEVICES = ("mobile", "desktop", "tablet", "tv", "unknown")

# Features a ranking request carries at serving time. dwell_ms is measured only after a click,
# so feeding it to the model would leak the label; it is validated and logged, never a model input.
SERVING_FEATURES = (USER_ID, ITEM_ID, EVENT_TS, POSITION, DEVICE, ITEM_CATEGORY, ITEM_PRICE, USER_AGE)

# Names of the transformed features (outputs of preprocessing_fn, inputs of the model).
T_USER = "user_idx"
T_ITEM = "item_idx"
T_DEVICE = "device_idx"
T_CATEGORY = "category_idx"
T_PRICE = "price_z"
T_AGE = "age_bucket"
T_POSITION = "position_bucket"
T_HOUR = "hour_bucket"
T_LABEL = LABEL

# Vocabulary file names written by Transform; the model reads their sizes from the transform output.
VOCAB_FILES = {USER_ID: "user_id", ITEM_ID: "item_id", DEVICE: "device", ITEM_CATEGORY: "item_category"}
