"""The quality benchmark's metric code, splits and baselines, on examples small enough to work by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from bench.quality import (
    Bpr,
    BprSettings,
    Ease,
    MostPopular,
    Result,
    Split,
    evaluate,
    leave_one_out,
    load_quality_config,
    over_seeds,
    render_quality,
    stratified_split,
)
from components.ranking_metrics import hit_rate_ndcg, rank_of_first, ranking_metrics, top_k
from pipeline.cli import main

LOG2_3 = math.log2(3)


def test_rank_of_first_counts_ties_against_the_held_out_item():
    scores = np.array([[0.9, 0.1, 0.5], [0.5, 0.9, 0.5], [0.2, 0.2, 0.2]])
    assert rank_of_first(scores).tolist() == [0, 2, 2]


def test_hit_rate_and_ndcg_of_leave_one_out_by_hand():
    hr, ndcg = hit_rate_ndcg(np.array([0, 1, 12]), k=10)
    assert hr == pytest.approx(2 / 3)
    assert ndcg == pytest.approx((1 + 1 / LOG2_3 + 0) / 3)


def test_top_k_orders_best_first_and_breaks_ties_by_index():
    assert top_k(np.array([[1.0, 3.0, 3.0, 0.0], [0.0, -1.0, 5.0, 4.0]]), 2).tolist() == [[1, 2], [2, 3]]


def test_ranking_metrics_match_hand_worked_values():
    recommended = np.array([[3, 1, 7], [5, 6, 8], [0, 1, 2]])
    relevant = [{1, 2}, {5, 8, 9, 10}, set()]  # the third user has no test item: not averaged
    got = ranking_metrics(recommended, relevant, k=3)
    idcg2 = 1 + 1 / LOG2_3
    idcg3 = 1 + 1 / LOG2_3 + 0.5
    assert got["precision"] == pytest.approx((1 / 3 + 2 / 3) / 2)
    assert got["recall"] == pytest.approx((1 / 2 + 2 / 4) / 2)
    assert got["ndcg"] == pytest.approx(((1 / LOG2_3) / idcg2 + (1 + 0.5) / idcg3) / 2)
    # MAP divides by the number of relevant items: (1/2)/2 and (1/1 + 2/3)/4
    assert got["map"] == pytest.approx((0.25 + (1 + 2 / 3) / 4) / 2)


def test_ranking_metrics_refuse_a_test_set_without_relevant_items():
    with pytest.raises(ValueError, match="no user has a relevant item"):
        ranking_metrics(np.array([[0, 1]]), [set()], k=2)


def _ratings(rows):
    return pd.DataFrame(rows, columns=["user", "item", "rating", "ts"]).astype({"user": str, "item": str})


def test_leave_one_out_holds_out_the_latest_and_samples_unseen_negatives():
    rows = [("a", "m1", 5, 10), ("a", "m2", 3, 30), ("a", "m3", 4, 20), ("b", "m4", 4, 5), ("b", "m5", 2, 6)]
    rows += [("c" if i < 15 else "d", f"m{i}", 4, i) for i in range(30)]  # 30 items in the data set
    split = leave_one_out(_ratings(rows), negatives=5, seed=1)
    held = dict(zip(split.test["user"], split.test["item"], strict=True))
    assert held == {"a": "m2", "b": "m5", "c": "m14", "d": "m29"}
    assert not ((split.train["user"] == "a") & (split.train["item"] == "m2")).any()
    for user, row in zip(split.test["user"], split.candidates, strict=True):
        rated = set(split.train[split.train["user"] == user]["item"]) | {held[user]}
        assert row[0] == held[user] and len(set(row)) == 6
        assert not set(row[1:]) & rated


def test_leave_one_out_names_a_user_without_enough_unseen_items():
    rows = [("a", "m1", 5, 1), ("a", "m2", 5, 2), ("b", "m1", 5, 1)]
    with pytest.raises(ValueError, match="user a rated all but 0 items"):
        leave_one_out(_ratings(rows), negatives=1, seed=0)


def test_stratified_split_keeps_each_items_share_and_is_reproducible():
    rng = np.random.default_rng(0)
    rows = [(f"u{u}", f"m{m}", 4, int(rng.integers(1000))) for m in range(5) for u in range(4 * (m + 1))]
    ratings = _ratings(rows)
    split = stratified_split(ratings, 0.75, seed=42)
    train_counts = split.train.groupby("item").size()
    for m in range(5):
        assert train_counts[f"m{m}"] == round(0.75 * 4 * (m + 1))
    # test ratings of users with nothing in training cannot be ranked for them, and are dropped
    assert set(split.test["user"]) <= set(split.train["user"])
    both = split.train.merge(split.test, on=["user", "item"])
    assert both.empty
    again = stratified_split(ratings, 0.75, seed=42)
    pd.testing.assert_frame_equal(split.train, again.train)


def _two_communities() -> Split:
    """Users 0-19 watch items a0-a9, users 20-39 watch b0-b9; a few of each user's items are held out."""
    rng = np.random.default_rng(3)
    train, test = [], []
    for u in range(40):
        group = "a" if u < 20 else "b"
        watched = rng.permutation(10)
        for rank, m in enumerate(watched[:8]):
            (train if rank < 6 else test).append((f"u{u}", f"{group}{m}", 5, rank))
    return Split("msr", _ratings(train), _ratings(test))


@pytest.mark.parametrize(
    "model",
    [Ease(10.0), Bpr(BprSettings(factors=8, epochs=40, learning_rate=0.1), seed=0)],
    ids=["ease", "bpr"],
)
def test_personalised_baselines_recommend_from_the_users_own_community(model):
    split = _two_communities()
    result = evaluate(split, model, k=2)
    popularity = evaluate(split, MostPopular(), k=2)
    # Each user has 2 test items among 4 unseen items of their own community and 10 of the other.
    assert result.metrics["precision"] > 0.45
    assert result.metrics["precision"] > popularity.metrics["precision"] + 0.2


def test_models_never_score_items_they_have_not_seen():
    model = MostPopular()
    model.fit(_ratings([("a", "m1", 5, 1), ("b", "m1", 5, 1), ("b", "m2", 5, 1)]))
    scores = model.score(["a", "new-user"], ["m1", "m2", "m9"])
    assert scores[0].tolist() == [2.0, 1.0, -np.inf]
    assert np.isneginf(scores[1]).all()


def test_shipped_quality_config_loads_and_unknown_keys_are_refused(tmp_path):
    assert load_quality_config("configs/bench-quality.yaml").k == 10
    bad = tmp_path / "q.yaml"
    bad.write_text("ease_lamda: 10\n")
    with pytest.raises(ValueError, match="ease_lamda"):
        load_quality_config(bad)


def test_bench_quality_names_a_ratings_file_it_cannot_read(tmp_path):
    bad = tmp_path / "ratings.csv"
    bad.write_text("user,movie\n1,2\n")
    result = CliRunner().invoke(main, ["bench-quality", str(bad), "--work", str(tmp_path / "w")])
    assert result.exit_code == 1
    assert "ratings.csv" in result.output and "expected columns" in result.output


def test_several_seeds_make_one_row_with_their_mean_and_range():
    metrics = ("ndcg", "precision", "recall", "map")
    fits = {
        seed: Result(
            "msr", "recpipe NeuMF (pipeline)", dict.fromkeys(metrics, v), secs, 7, {"pipeline eval auc": v}
        )
        for seed, v, secs in ((42, 0.24, 100.0), (1, 0.27, 120.0), (2, 0.30, 110.0))
    }
    row = over_seeds(fits)
    assert row.metrics["ndcg"] == pytest.approx(0.27)
    assert row.fit_seconds == pytest.approx(110.0)
    assert (row.extra["ndcg min"], row.extra["ndcg max"]) == (0.24, 0.30)
    assert row.extra["ndcg seed 1"] == 0.27
    assert row.extra["pipeline eval auc"] == pytest.approx(0.27)

    single = Result("msr", "most popular", dict.fromkeys(metrics, 0.22), 0.1, 7)
    table = render_quality([single, row])
    assert "| most popular | 0.2200 | 0.2200 |" in table
    assert "| recpipe NeuMF (pipeline), mean (range) of 3 seeds | 0.2700 (0.2400-0.3000) |" in table
