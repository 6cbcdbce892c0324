"""Top-k ranking metrics of the two published evaluation protocols, on plain NumPy arrays.

Shared by the feed-quality gate (components/feed_gate.py) and the MovieLens benchmark. Written here rather than imported so the definitions are visible and pinned: published numbers are only
comparable if the metric is the same one, and the two protocols differ in small ways (log base, how ties
count, what MAP divides by). Every function takes a dense score matrix [users, items] so one
implementation serves the pipeline's model and every baseline alike.
"""

from __future__ import annotations

import numpy as np


def rank_of_first(scores: np.ndarray) -> np.ndarray:
    """0-based rank of column 0 (the held-out item) among each row's candidates.

    Ties count against the held-out item (pessimistic), so a model that scores everything alike gets
    no credit; the NCF reference code's heap-based ranking is arbitrary on ties instead.
    """
    scores = np.asarray(scores, dtype=np.float64)
    target = scores[:, :1]
    others = scores[:, 1:]
    return (others >= target).sum(axis=1)


def hit_rate_ndcg(ranks: np.ndarray, k: int) -> tuple[float, float]:
    """HR@k and NDCG@k of the NCF leave-one-out protocol: one relevant item, gain 1/log2(rank + 2)."""
    ranks = np.asarray(ranks)
    hit = ranks < k
    ndcg = np.where(hit, 1.0 / np.log2(ranks + 2.0), 0.0)
    return float(hit.mean()), float(ndcg.mean())


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Column indices of each row's k highest scores, best first; ties broken by the lower index."""
    scores = np.asarray(scores)
    k = min(k, scores.shape[1])
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.lexsort((part, -part_scores), axis=1)
    return np.take_along_axis(part, order, axis=1)


def ranking_metrics(recommended: np.ndarray, relevant: list[set[int]], k: int) -> dict[str, float]:
    """Precision@k, Recall@k, nDCG@k and MAP as Microsoft Recommenders' python_evaluation defines them.

    `recommended[u]` holds user u's top-k item indices best first; `relevant[u]` the items u rated in the
    test set. Averages run over users with at least one relevant item. MAP is Recommenders' `map_at_k`
    of its published benchmark: the sum of precision at each hit within the top k, divided by the number
    of relevant items (not by min(k, relevant)).
    """
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    totals = {"precision": 0.0, "recall": 0.0, "ndcg": 0.0, "map": 0.0}
    users = 0
    for row, truth in zip(recommended, relevant, strict=True):
        if not truth:
            continue
        users += 1
        hits = np.array([item in truth for item in row[:k]], dtype=bool)
        n_hits = int(hits.sum())
        totals["precision"] += n_hits / k
        totals["recall"] += n_hits / len(truth)
        totals["ndcg"] += discounts[: len(hits)][hits].sum() / discounts[: min(len(truth), k)].sum()
        ranks = np.flatnonzero(hits) + 1
        totals["map"] += (np.arange(1, n_hits + 1) / ranks).sum() / len(truth)
    if users == 0:
        raise ValueError("no user has a relevant item in the test set")
    return {name: value / users for name, value in totals.items()}
