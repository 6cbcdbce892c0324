"""Recommendation quality under the two published MovieLens protocols, for our model and three baselines.

Both protocols treat every rating as an interaction (implicit feedback). Our model is trained the way
the nightly pipeline trains it: the training split is written as a click-log span (every rating a
click), the whole TFX pipeline runs on it with the trainer sampling unrated movies as negatives afresh
every epoch (trainer.negatives in the pipeline config), and the
exported SavedModel's `score_items` signature ranks items. The baselines (most-popular, BPR matrix
factorisation, EASE) are fitted in NumPy on the same split, and every model is scored by the same
metric code (components/ranking_metrics.py), so the comparison between rows is exact even where a
comparison with a published figure on another MovieLens release is not.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field
from scipy import sparse

from components.ranking_metrics import hit_rate_ndcg, rank_of_first, ranking_metrics, top_k
from pipeline.config import load_config, resolve_paths
from pipeline.data.movielens import ImportOptions, write_spans
from pipeline.runners import run_pipeline

ProtocolName = Literal["ncf", "msr"]


class BprSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    factors: int = Field(64, ge=1)
    epochs: int = Field(100, ge=1)
    learning_rate: float = Field(0.05, gt=0)
    reg: float = Field(0.01, ge=0)
    batch_size: int = Field(256, ge=1)


class QualityConfig(BaseModel):
    """configs/bench-quality.yaml: protocol constants are those of the papers; the rest is ours to tune."""

    model_config = ConfigDict(extra="forbid")
    pipeline_config: str = "configs/movielens-implicit.yaml"
    k: int = Field(10, ge=1)
    ncf_negatives: int = Field(
        99, ge=1, description="sampled non-interacted items ranked with each held-out one"
    )
    msr_train_ratio: float = Field(0.75, gt=0, lt=1)
    seed: int = 42
    train_negatives_per_rating: int = Field(
        0,
        ge=0,
        description="unrated movies written per rating into our training span as fixed non-click "
        "impressions; 0: positives only, the trainer samples negatives itself (trainer.negatives)",
    )
    ease_lambda: float = Field(250.0, gt=0)
    neumf_seeds: list[int] = Field(
        [42],
        min_length=1,
        description="trainer.seed of each fit of our model; the table shows their mean and range, as one "
        "fit's figure moves with the seed",
    )
    bpr: BprSettings = BprSettings()
    score_users_per_call: int = Field(64, ge=1)


def load_quality_config(path: str | Path) -> QualityConfig:
    return QualityConfig.model_validate(yaml.safe_load(Path(path).read_text()) or {})


# ---- splits -------------------------------------------------------------------------------------------


@dataclass
class Split:
    protocol: ProtocolName
    train: pd.DataFrame
    test: pd.DataFrame
    candidates: np.ndarray | None = None  # ncf: [users, 1 + negatives] item ids, held-out item first


def leave_one_out(ratings: pd.DataFrame, negatives: int, seed: int) -> Split:
    """NCF protocol: each user's latest interaction is held out and ranked among `negatives` items the
    user never interacted with (sampled uniformly from all items of the data set)."""
    ordered = ratings.sort_values(["user", "ts", "item"], kind="stable")
    last = ~ordered.duplicated("user", keep="last")
    train, test = ordered[~last], ordered[last]
    test = test[test["user"].isin(set(train["user"]))].sort_values("user")
    catalogue = np.array(sorted(ratings["item"].unique()))
    seen = ratings.groupby("user")["item"].agg(set).to_dict()
    rng = np.random.default_rng(seed)
    rows = []
    for user, held_out in zip(test["user"], test["item"], strict=True):
        rated = seen[user]
        if len(catalogue) - len(rated) < negatives:
            raise ValueError(
                f"user {user} rated all but {len(catalogue) - len(rated)} items; need {negatives}"
            )
        picked: list[str] = []
        while len(picked) < negatives:
            for item in catalogue[rng.integers(0, len(catalogue), negatives)]:
                if item not in rated and item not in picked and len(picked) < negatives:
                    picked.append(item)
        rows.append([held_out, *picked])
    return Split("ncf", train.reset_index(drop=True), test.reset_index(drop=True), np.array(rows))


def stratified_split(ratings: pd.DataFrame, ratio: float, seed: int) -> Split:
    """Microsoft Recommenders' python_stratified_split(filter_by='item'): each item's ratings are shuffled
    (seed) and the first round(ratio * n) go to training, so every item keeps the same share in both."""
    parts_train, parts_test = [], []
    for _, group in ratings.groupby("item", sort=True):
        shuffled = group.sample(frac=1, random_state=seed)
        cut = round(ratio * len(shuffled))
        parts_train.append(shuffled.iloc[:cut])
        parts_test.append(shuffled.iloc[cut:])
    train = pd.concat(parts_train).reset_index(drop=True)
    test = pd.concat(parts_test)
    test = test[test["user"].isin(set(train["user"]))].reset_index(drop=True)
    return Split("msr", train, test)


def protocol_split(
    ratings: pd.DataFrame, protocol: ProtocolName, settings: QualityConfig, seed: int
) -> Split:
    """The protocol's split of `ratings` with its constants from `settings`."""
    if protocol == "ncf":
        return leave_one_out(ratings, settings.ncf_negatives, seed)
    return stratified_split(ratings, settings.msr_train_ratio, seed)


# ---- models -------------------------------------------------------------------------------------------


class Scorer(Protocol):
    name: str

    def fit(self, train: pd.DataFrame) -> None: ...

    def score(self, users: list[str], items: list[str]) -> np.ndarray:
        """[len(users), len(items)]; items the model cannot score get -inf."""


class Interactions:
    """A user x item 0/1 matrix of the training split and the id <-> index maps around it."""

    def __init__(self, train: pd.DataFrame):
        self.users = np.array(sorted(train["user"].unique()))
        self.items = np.array(sorted(train["item"].unique()))
        self.user_index = {u: i for i, u in enumerate(self.users)}
        self.item_index = {v: i for i, v in enumerate(self.items)}
        rows = train["user"].map(self.user_index).to_numpy()
        cols = train["item"].map(self.item_index).to_numpy()
        x = sparse.csr_matrix(
            (np.ones(len(rows), np.float32), (rows, cols)), (len(self.users), len(self.items))
        )
        x.data[:] = 1.0  # a user rating a movie twice is still one interaction
        self.x = x

    def expand(self, users: list[str], items: list[str], known: np.ndarray) -> np.ndarray:
        """Scores over the training catalogue [n_users_total, n_train_items] -> the asked users/items."""
        rows = np.array([self.user_index.get(u, -1) for u in users])
        cols = np.array([self.item_index.get(v, -1) for v in items])
        out = np.full((len(users), len(items)), -np.inf)
        ok_r, ok_c = rows >= 0, cols >= 0
        out[np.ix_(ok_r, ok_c)] = known[np.ix_(rows[ok_r], cols[ok_c])]
        return out


class MostPopular:
    name = "most popular"

    def fit(self, train: pd.DataFrame) -> None:
        self.data = Interactions(train)
        self.counts = np.asarray(self.data.x.sum(axis=0)).ravel()

    def score(self, users: list[str], items: list[str]) -> np.ndarray:
        known = np.broadcast_to(self.counts, (len(self.data.users), len(self.counts)))
        return self.data.expand(users, items, known)


class Ease:
    """EASE (Steck 2019): B = I - P diag(1/diag(P)), P = (X'X + lambda I)^-1, zero diagonal; scores X B."""

    name = "EASE"

    def __init__(self, lam: float):
        self.lam = lam

    def fit(self, train: pd.DataFrame) -> None:
        self.data = Interactions(train)
        gram = (self.data.x.T @ self.data.x).toarray().astype(np.float64)
        gram[np.diag_indices_from(gram)] += self.lam
        p = np.linalg.inv(gram)
        b = -p / np.diag(p)
        b[np.diag_indices_from(b)] = 0.0
        self.scores = np.asarray(self.data.x @ b)

    def score(self, users: list[str], items: list[str]) -> np.ndarray:
        return self.data.expand(users, items, self.scores)


class Bpr:
    """BPR-MF (Rendle 2009) with item biases, by minibatch SGD on (user, clicked, unclicked) triples."""

    name = "BPR-MF"

    def __init__(self, settings: BprSettings, seed: int):
        self.s, self.seed = settings, seed

    def fit(self, train: pd.DataFrame) -> None:
        self.data = Interactions(train)
        s, x = self.s, self.data.x.tocoo()
        rng = np.random.default_rng(self.seed)
        n_users, n_items = x.shape
        u_f = rng.normal(0, 0.1, (n_users, s.factors))
        i_f = rng.normal(0, 0.1, (n_items, s.factors))
        bias = np.zeros(n_items)
        csr = self.data.x
        for _ in range(s.epochs):
            order = rng.permutation(len(x.row))
            for start in range(0, len(order), s.batch_size):
                batch = order[start : start + s.batch_size]
                u, i = x.row[batch], x.col[batch]
                j = rng.integers(0, n_items, len(batch))
                keep = np.asarray(csr[u, j]).ravel() == 0  # drop negatives the user did interact with
                u, i, j = u[keep], i[keep], j[keep]
                diff = i_f[i] - i_f[j]
                margin = (u_f[u] * diff).sum(axis=1) + bias[i] - bias[j]
                g = (1.0 / (1.0 + np.exp(margin)))[:, None]  # d log sigmoid(margin) / d margin
                uu = u_f[u]
                np.add.at(u_f, u, s.learning_rate * (g * diff - s.reg * uu))
                np.add.at(i_f, i, s.learning_rate * (g * uu - s.reg * i_f[i]))
                np.add.at(i_f, j, s.learning_rate * (-g * uu - s.reg * i_f[j]))
                np.add.at(bias, i, s.learning_rate * (g[:, 0] - s.reg * bias[i]))
                np.add.at(bias, j, s.learning_rate * (-g[:, 0] - s.reg * bias[j]))
        self.scores = u_f @ i_f.T + bias

    def score(self, users: list[str], items: list[str]) -> np.ndarray:
        return self.data.expand(users, items, self.scores)


class PipelineModel:
    """Our NeuMF as the nightly pipeline trains it: training split -> span -> TFX pipeline -> SavedModel."""

    name = "recpipe NeuMF (pipeline)"

    def __init__(
        self,
        work: Path,
        settings: QualityConfig,
        genres: dict[str, str],
        repo: Path,
        trainer_seed: int | None = None,
    ):
        self.work, self.settings, self.genres, self.repo = work, settings, genres, repo
        self.trainer_seed = trainer_seed  # None: the pipeline config's own
        self.run_seconds = 0.0

    def fit(self, train: pd.DataFrame) -> None:
        data = self.work / "clicklog"
        options = ImportOptions(
            granularity="all",
            label="all",
            negatives_per_rating=self.settings.train_negatives_per_rating,
            seed=self.settings.seed,
        )
        write_spans(train, self.genres, data, options)
        seed = {} if self.trainer_seed is None else {"trainer.seed": self.trainer_seed}
        config = load_config(self.repo / self.settings.pipeline_config).with_overrides(
            run_root=str(self.work / "runs"),
            **{"data.root": str(data), "serving.root": str(self.work / "serving"), **seed},
        )
        config = resolve_paths(config, self.repo)
        started = time.time()
        summary = run_pipeline(config)
        self.run_seconds = time.time() - started
        self.summary = summary
        self.last_ts = train.groupby("user")["ts"].max().to_dict()
        import tensorflow as tf
        from tfx.utils import path_utils

        self.model = tf.saved_model.load(path_utils.serving_model_dir(summary.model_uri))

    def score(self, users: list[str], items: list[str]) -> np.ndarray:
        import tensorflow as tf

        fn = self.model.signatures["score_items"]
        step = self.settings.score_users_per_call
        item_ids = tf.constant(items)
        out = []
        for start in range(0, len(users), step):
            chunk = users[start : start + step]
            got = fn(
                user_id=tf.constant(chunk),
                device=tf.constant(["unknown"] * len(chunk)),
                event_ts=tf.constant([int(self.last_ts.get(u, 0)) for u in chunk], tf.int64),
                item_ids=item_ids,
            )
            scores = got["scores"].numpy().astype(np.float64)
            scores[:, ~got["known"].numpy()] = -np.inf
            out.append(scores)
        return np.concatenate(out)


# ---- evaluation ---------------------------------------------------------------------------------------


@dataclass
class Result:
    protocol: ProtocolName
    model: str
    metrics: dict[str, float]
    fit_seconds: float
    users: int
    extra: dict[str, float] = field(default_factory=dict)


def evaluate(split: Split, model: Scorer, k: int) -> Result:
    """Fit on the split's training part and score its test part by the protocol's own rules."""
    started = time.time()
    model.fit(split.train)
    fit_seconds = time.time() - started
    if split.protocol == "ncf":
        users = list(split.test["user"])
        catalogue = sorted(set(split.candidates.ravel()))
        column = {item: i for i, item in enumerate(catalogue)}
        full = model.score(users, catalogue)
        idx = np.vectorize(column.__getitem__)(split.candidates)
        hr, ndcg = hit_rate_ndcg(rank_of_first(np.take_along_axis(full, idx, axis=1)), k)
        metrics = {"hr": hr, "ndcg": ndcg}
    else:
        users = sorted(split.test["user"].unique())
        catalogue = sorted(split.train["item"].unique())
        column = {item: i for i, item in enumerate(catalogue)}
        scores = model.score(users, catalogue)
        seen = split.train.groupby("user")["item"].agg(set).to_dict()
        for row, user in enumerate(users):
            scores[row, [column[i] for i in seen[user]]] = -np.inf  # never recommend what was seen
        truth = split.test.groupby("user")["item"].agg(set).to_dict()
        relevant = [{column[i] for i in truth[u] if i in column} for u in users]
        metrics = ranking_metrics(top_k(scores, k), relevant, k)
    return Result(split.protocol, model.name, metrics, fit_seconds, len(users))


def over_seeds(fits: dict[int, Result]) -> Result:
    """One row for several fits of a model that differ only in their seed: the mean of each metric and of
    the fit time, with each metric's range and every fit's figure kept in `extra`."""
    first = next(iter(fits.values()))
    metrics: dict[str, float] = {}
    extra: dict[str, float] = {"seeds": float(len(fits))}
    for name in first.metrics:
        values = {seed: r.metrics[name] for seed, r in fits.items()}
        metrics[name] = float(np.mean(list(values.values())))
        extra |= {f"{name} min": min(values.values()), f"{name} max": max(values.values())}
        extra |= {f"{name} seed {seed}": value for seed, value in values.items()}
    for name in first.extra:
        extra[name] = float(np.mean([r.extra[name] for r in fits.values()]))
    fit_seconds = float(np.mean([r.fit_seconds for r in fits.values()]))
    return Result(first.protocol, first.model, metrics, fit_seconds, first.users, extra)


def _pipeline_result(model: PipelineModel, split: Split, k: int) -> Result:
    result = evaluate(split, model, k)
    gates = {g.metric: g.value for g in model.summary.gates if g.value is not None}
    result.extra = {"pipeline eval " + name: value for name, value in gates.items()}
    return result


def run_quality(
    ratings: pd.DataFrame,
    genres: dict[str, str],
    work: Path,
    settings: QualityConfig,
    repo: Path,
    protocols: tuple[ProtocolName, ...] = ("ncf", "msr"),
    progress=print,
) -> list[Result]:
    """Both protocols on ratings as `pipeline.data.movielens.read_ratings` returns them (genres: item -> genre)."""
    results = []
    for protocol in protocols:
        split = protocol_split(ratings, protocol, settings, settings.seed)
        progress(f"{protocol}: {len(split.train):,} training ratings, {len(split.test):,} test ratings")
        models: list[Scorer] = [MostPopular(), Bpr(settings.bpr, settings.seed), Ease(settings.ease_lambda)]
        for model in models:
            results.append(evaluate(split, model, settings.k))
            _report(progress, results[-1])
        fits = {}
        for seed in settings.neumf_seeds:
            model = PipelineModel(work / protocol / f"seed-{seed}", settings, genres, repo, seed)
            fits[seed] = _pipeline_result(model, split, settings.k)
            _report(progress, fits[seed], f" (trainer.seed {seed})")
        results.append(over_seeds(fits))
    return results


def _report(progress, result: Result, note: str = "") -> None:
    figures = ", ".join(f"{n} {v:.4f}" for n, v in result.metrics.items())
    progress(f"{result.protocol}: {result.model}{note}: {figures}")


# ---- report -------------------------------------------------------------------------------------------

# Published figures the issue asks us to stand beside ours: other MovieLens releases, other splits'
# random draws, so they orient rather than compare; the rows computed here are the comparison.
PUBLISHED = {
    "ncf": "Published NeuMF without pre-training on MovieLens-1M (He et al. 2017): HR@10 .705, NDCG@10 .426.",
    "msr": "Published on MovieLens-100k (Microsoft Recommenders benchmark): NCF nDCG@10 .396 (P@10 .347), "
    "BPR nDCG@10 .442, SAR nDCG@10 .382.",
}

_COLUMNS = {
    "ncf": [("hr", "HR@10"), ("ndcg", "NDCG@10")],
    "msr": [("ndcg", "nDCG@10"), ("precision", "Precision@10"), ("recall", "Recall@10"), ("map", "MAP")],
}


def _figure(result: Result, key: str) -> str:
    """A metric, with its range over seeds when the row is several fits."""
    if f"{key} min" not in result.extra:
        return f"{result.metrics[key]:.4f}"
    return f"{result.metrics[key]:.4f} ({result.extra[f'{key} min']:.4f}-{result.extra[f'{key} max']:.4f})"


def _row_name(result: Result) -> str:
    seeds = int(result.extra.get("seeds", 1))
    return result.model if seeds == 1 else f"{result.model}, mean (range) of {seeds} seeds"


def render_quality(results: list[Result]) -> str:
    """Markdown tables, one per protocol, with the published figures beneath."""
    lines: list[str] = []
    titles = {
        "ncf": "NCF protocol: latest interaction of each user held out, ranked among 99 sampled unseen items",
        "msr": "Microsoft Recommenders protocol: 75/25 split stratified by item (seed 42), all unseen items ranked",
    }
    for protocol in ("ncf", "msr"):
        rows = [r for r in results if r.protocol == protocol]
        if not rows:
            continue
        cols = _COLUMNS[protocol]
        lines += [
            f"### {titles[protocol]}",
            "",
            f"{rows[0].users} test users.",
            "",
            "| model | " + " | ".join(c for _, c in cols) + " | fit s |",
        ]
        lines.append("|---|" + "---:|" * (len(cols) + 1))
        for r in rows:
            cells = " | ".join(_figure(r, key) for key, _ in cols)
            lines.append(f"| {_row_name(r)} | {cells} | {r.fit_seconds:.1f} |")
        lines += ["", PUBLISHED[protocol], ""]
    return "\n".join(lines)
