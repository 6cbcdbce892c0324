"""Sampled negatives (fresh every epoch, with the sampled item's own side features) and the ranking
objectives the trainer fits NeuMF with."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from helpers import model_params

from components.model import features as F
from components.model.model import INPUT_FEATURES, ModelShape, build_neumf
from components.model.negatives import (
    LOG_Q,
    NEG_CATEGORY,
    NEG_ITEM,
    NEG_LOG_Q,
    NEG_PRICE,
    read_catalogue,
    with_negatives,
)
from components.model.ranking import SampledNegativesTrainer

ITEMS, USERS = 50, 40


def _rows(n: int, seed: int = 0) -> tuple[dict, np.ndarray]:
    """Transformed rows: each item has category item % 7 and price item / 10; user u clicks items u % 10."""
    rng = np.random.default_rng(seed)
    users = rng.integers(0, USERS, n)
    items = rng.integers(0, ITEMS, n)
    clicked = (items % 10 == users % 10).astype(np.int64)
    features = {name: np.zeros(n, np.int64) for name in INPUT_FEATURES}
    features.update(
        {
            F.T_USER: users,
            F.T_ITEM: items,
            F.T_CATEGORY: items % 7,
            F.T_PRICE: (items / 10).astype(np.float32),
        }
    )
    return features, clicked


def _dataset(n: int = 2000, batch: int = 100, seed: int = 0) -> tf.data.Dataset:
    features, labels = _rows(n, seed)
    return tf.data.Dataset.from_tensor_slices((features, labels)).batch(batch)


def test_the_catalogue_holds_each_items_side_features_and_clicks():
    catalogue = read_catalogue(_dataset(), ITEMS)
    assert (catalogue.category == np.arange(ITEMS) % 7).all()
    assert np.allclose(catalogue.price, np.arange(ITEMS) / 10)
    features, labels = _rows(2000)
    assert catalogue.clicks.sum() == labels.sum() and catalogue.impressions.sum() == len(labels)


def test_a_sampled_item_carries_its_own_side_features_not_the_clicked_rows():
    catalogue = read_catalogue(_dataset(), ITEMS)
    for features, _ in with_negatives(_dataset(), catalogue, 4, "uniform", 0.0, seed=1).take(3):
        items = features[NEG_ITEM].numpy()
        assert items.shape == (100, 4) and (items >= 0).all() and (items < ITEMS).all()
        assert (features[NEG_CATEGORY].numpy() == items % 7).all()
        assert np.allclose(features[NEG_PRICE].numpy(), items / 10)


def test_negatives_are_drawn_afresh_every_epoch_even_from_the_cache():
    """Also under a global seed, which the trainer sets (a plain random op would then repeat each epoch)."""
    tf.keras.utils.set_random_seed(7)
    catalogue = read_catalogue(_dataset(), ITEMS)
    ds = with_negatives(_dataset().cache(), catalogue, 3, "uniform", 0.0, seed=7)
    epochs = [np.concatenate([f[NEG_ITEM].numpy() for f, _ in ds]) for _ in range(2)]
    assert (epochs[0] != epochs[1]).mean() > 0.9


def test_popularity_sampling_draws_popular_items_more_often():
    catalogue = read_catalogue(_dataset(), ITEMS)
    catalogue.clicks[:] = 0
    catalogue.clicks[3] = 10_000
    draws = {}
    for how in ("uniform", "popularity"):
        features, _ = next(iter(with_negatives(_dataset(), catalogue, 50, how, 1.0, seed=2)))
        draws[how] = (features[NEG_ITEM].numpy() == 3).mean()
    assert draws["uniform"] < 0.05 < 0.5 < draws["popularity"]


def test_each_row_carries_the_probability_of_drawing_its_item_and_each_negative():
    """What the sampled softmax's logQ correction subtracts: under popularity sampling a popular item's
    draw probability is its share of (clicks + 1) ** alpha; uniform sampling gives every item 1 / size."""
    catalogue = read_catalogue(_dataset(), ITEMS)
    catalogue.clicks[:] = 0
    catalogue.clicks[3] = 99
    features, _ = next(iter(with_negatives(_dataset(), catalogue, 20, "popularity", 1.0, seed=2)))
    q = np.exp(features[NEG_LOG_Q].numpy())
    share = np.where(features[NEG_ITEM].numpy() == 3, 100.0, 1.0) / (100.0 + ITEMS - 1)
    assert np.allclose(q, share, rtol=1e-4)
    own = np.where(features[F.T_ITEM].numpy() == 3, 100.0, 1.0) / (100.0 + ITEMS - 1)
    assert np.allclose(np.exp(features[LOG_Q].numpy()), own, rtol=1e-4)
    features, _ = next(iter(with_negatives(_dataset(), catalogue, 20, "uniform", 1.0, seed=2)))
    assert np.allclose(features[NEG_LOG_Q].numpy(), -np.log(ITEMS)) and np.allclose(features[LOG_Q], -np.log(ITEMS))


def test_the_sampled_softmax_corrects_each_logit_by_its_draw_probability():
    """A popular negative drawn often must not count as more evidence against it than a rare one."""
    trainer = _trainer("softmax", click_weight=0.0)
    logits, negatives, labels = tf.constant([2.0]), tf.constant([[0.0, 1.0]]), tf.constant([1.0])
    log_q = tf.constant([np.log(0.1)], tf.float32)
    negative_log_q = tf.constant([[np.log(0.5), np.log(0.01)]], tf.float32)
    terms = trainer.objective_terms(logits, negatives, labels, log_q, negative_log_q).numpy()
    corrected = np.array([2.0 - np.log(0.1), 0.0 - np.log(0.5), 1.0 - np.log(0.01)])
    assert np.allclose(terms, np.log(np.exp(corrected).sum()) - corrected[0], atol=1e-5)
    # The same draw probability for every item (uniform sampling) leaves the loss as it was.
    same = tf.constant(np.log(1 / ITEMS), tf.float32)
    uniform = trainer.objective_terms(logits, negatives, labels, tf.fill([1], same), tf.fill([1, 2], same))
    assert np.allclose(uniform, trainer.objective_terms(logits, negatives, labels), atol=1e-5)


def _trainer(loss: str, impression_weight: float = 1.0, click_weight: float = 1.0) -> SampledNegativesTrainer:
    shape = ModelShape(
        users=USERS, items=ITEMS, devices=2, categories=7, age_buckets=2, position_buckets=2, hour_buckets=2
    )
    params = model_params(
        gmf_dim=8, mlp_dim=8, mlp_layers=[16, 8], l2=0.0, learning_rate=0.01, steps_per_execution=1
    )
    return SampledNegativesTrainer(
        build_neumf(shape, params), loss, params, click_weight=click_weight, impression_weight=impression_weight
    )


@pytest.mark.parametrize("loss", ["logloss", "bpr", "softmax"])
def test_the_objectives_by_hand(loss):
    trainer = _trainer(loss, impression_weight=0.5, click_weight=0.25)
    logits = tf.constant([2.0, -1.0])
    negatives = tf.constant([[0.0, 1.0], [3.0, 3.0]])
    labels = tf.constant([1.0, 0.0])
    terms = trainer.objective_terms(logits, negatives, labels).numpy()
    softplus = lambda x: np.log1p(np.exp(x))  # noqa: E731
    impression = np.array([0.25 * softplus(-2.0), 0.5 * softplus(-1.0)])  # a click weighs 0.25, a non-click 0.5
    ranked = {
        "logloss": softplus(0.0) + softplus(1.0),
        "bpr": (softplus(0.0 - 2.0) + softplus(1.0 - 2.0)) / 2,
        "softmax": np.log(np.exp(2.0) + np.exp(0.0) + np.exp(1.0)) - 2.0,
    }[loss]
    # Only the click is ranked against its negatives; the non-click row keeps its impression term alone.
    assert np.allclose(terms, impression + np.array([ranked, 0.0]), atol=1e-5)


@pytest.mark.parametrize(
    ("loss", "click_weight"), [("logloss", 1.0), ("bpr", 1.0), ("softmax", 1.0), ("softmax", 0.0)]
)
def test_training_with_sampled_negatives_ranks_each_users_items_first(loss, click_weight):
    """Users click only items of their own residue class; after training, each user's clicked class
    outranks the other items."""
    tf.keras.utils.set_random_seed(0)
    catalogue = read_catalogue(_dataset(4000), ITEMS)
    clicks_only = _dataset(4000).unbatch().filter(lambda f, y: y > 0).batch(64).cache()
    trainer = _trainer(loss, click_weight=click_weight)
    trainer.fit(with_negatives(clicks_only, catalogue, 4, "uniform", 0.0, seed=3), epochs=15, verbose=0)
    users = np.repeat(np.arange(USERS), ITEMS)
    items = np.tile(np.arange(ITEMS), USERS)
    grid = {name: np.zeros(len(users), np.int64) for name in INPUT_FEATURES}
    grid.update(
        {
            F.T_USER: users,
            F.T_ITEM: items,
            F.T_CATEGORY: items % 7,
            F.T_PRICE: (items / 10).astype(np.float32),
        }
    )
    scores = trainer.neumf.predict(grid, batch_size=4096, verbose=0).reshape(USERS, ITEMS)
    top = np.argsort(-scores, axis=1)[:, :5]
    hit = (top % 10 == (np.arange(USERS) % 10)[:, None]).mean()
    assert hit >= 0.7, f"{loss}: {hit:.2f} of each user's top 5 are items they click (chance: 0.10)"
