"""Negatives the way the NCF paper trains: for every click, items sampled from the catalogue, fresh every
epoch, inside the trainer's tf.data pipeline over Transform's integer item ids, so nothing new is written
to disk. A sampled item carries its own side features (category, price), read from the catalogue the
export builds for `recommend`, never copied from the clicked row.

The sampling runs after the in-memory cache and after sharding, so every epoch (and every worker, on its
own shard) draws new items.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from components.model import features as F

NEG_ITEM = "neg_item_idx"
NEG_CATEGORY = "neg_category_idx"
NEG_PRICE = "neg_price_z"
ITEM_SIDE = {F.T_ITEM: NEG_ITEM, F.T_CATEGORY: NEG_CATEGORY, F.T_PRICE: NEG_PRICE}
# Log-probability that one draw is the row's own item ([batch]) and each sampled item ([batch, negatives]):
# what a sampled softmax subtracts from each logit so that frequent draws are not mistaken for bad items.
LOG_Q = "sampling_log_q"
NEG_LOG_Q = "neg_sampling_log_q"


@dataclass(frozen=True)
class Catalogue:
    """Every vocabulary item's side features as last seen in the training data, its clicks and its logged
    impressions there."""

    category: np.ndarray  # [items] int64 category index
    price: np.ndarray  # [items] float32 transformed price
    clicks: np.ndarray  # [items] int64
    impressions: np.ndarray  # [items] int64: logged rows, clicked or not
    rows: int  # every row read, OOV items included: the split's size, so nothing counts it again

    @property
    def size(self) -> int:
        return len(self.category)


CATALOGUE_FEATURES = (F.T_ITEM, F.T_CATEGORY, F.T_PRICE)  # what read_catalogue needs besides the label


def read_catalogue(dataset: tf.data.Dataset, n_items: int) -> Catalogue:
    """One pass over (transformed features, label) batches; ids past the vocabulary (OOV) are ignored."""
    category = np.zeros(n_items, np.int64)
    price = np.zeros(n_items, np.float32)
    clicks = np.zeros(n_items, np.int64)
    impressions = np.zeros(n_items, np.int64)
    rows = 0
    for features, label in dataset:
        items = features[F.T_ITEM].numpy()
        rows += len(items)
        keep = items < n_items
        category[items[keep]] = features[F.T_CATEGORY].numpy()[keep]
        price[items[keep]] = features[F.T_PRICE].numpy()[keep]
        clicked = keep & (np.reshape(label.numpy(), [-1]) > 0)
        np.add.at(clicks, items[clicked], 1)
        np.add.at(impressions, items[keep], 1)
    return Catalogue(category, price, clicks, impressions, rows)


def sampling_logits(catalogue: Catalogue, how: str, alpha: float) -> np.ndarray:
    """Log-probabilities of drawing each item: uniform, or proportional to (clicks + 1) ** alpha (the +1
    keeps never-clicked items drawable)."""
    if how == "uniform":
        return np.zeros(catalogue.size, np.float32)
    return (alpha * np.log1p(catalogue.clicks)).astype(np.float32)


def with_negatives(
    dataset: tf.data.Dataset, catalogue: Catalogue, negatives: int, how: str, alpha: float, seed: int
) -> tf.data.Dataset:
    """Add NEG_ITEM / NEG_CATEGORY / NEG_PRICE / NEG_LOG_Q, each [batch, negatives], and LOG_Q ([batch]) to
    every batch's features.

    Each batch draws with its own seed from a random stream that is re-randomized every iteration: a plain
    random op under a global seed (the trainer sets one) would draw the same items every epoch.
    """
    logits = tf.constant(sampling_logits(catalogue, how, alpha))[None, :]
    log_q = tf.nn.log_softmax(logits[0])
    # An item past the vocabulary (OOV) is never drawn; it counts as a never-clicked item does.
    oov_log_q = -tf.reduce_logsumexp(logits)
    category = tf.constant(catalogue.category)
    price = tf.constant(catalogue.price)
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)

    def add(batch, pair):
        features, label = batch
        rows = tf.shape(features[F.T_ITEM])[0]
        if how == "uniform":
            items = tf.random.stateless_uniform(
                [rows, negatives], seed=pair, minval=0, maxval=catalogue.size, dtype=tf.int64
            )
        else:
            draws = tf.random.stateless_categorical(logits, rows * negatives, seed=pair)
            items = tf.reshape(draws, [rows, negatives])
        features = {
            **features,
            NEG_ITEM: items,
            NEG_CATEGORY: tf.gather(category, items),
            NEG_PRICE: tf.gather(price, items),
            NEG_LOG_Q: tf.gather(log_q, items),
            LOG_Q: _log_q_of(features[F.T_ITEM], log_q, oov_log_q),
        }
        return features, label

    return tf.data.Dataset.zip((dataset, seeds)).map(add, num_parallel_calls=tf.data.AUTOTUNE)


def _log_q_of(items: tf.Tensor, log_q: tf.Tensor, oov_log_q: tf.Tensor) -> tf.Tensor:
    items = tf.reshape(tf.cast(items, tf.int64), [-1])
    known = items < tf.size(log_q, out_type=tf.int64)
    return tf.where(known, tf.gather(log_q, tf.where(known, items, 0)), oov_log_q)
