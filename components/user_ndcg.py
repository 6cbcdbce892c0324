"""The Evaluator's NDCG@k over each user's impressions, computed in TFMA's per-example pass.

TFMA's own NDCG is a query metric: the Evaluator keys every extract by user, groups them (pickling each
extract through a GroupByKey), merges each user's extracts into one, slices and scores those, in a second
pass beside the per-example one that AUC uses. With a baseline on a 100,000-example span that path was
about half of the Evaluator's time (docs/bench/speed-notes.md). `UserNDCG` keeps only (prediction, gain)
per example in its accumulator, by user, and scores each user at the end with TFMA's formula: the same
users (those with a click; the others weigh 0 in TFMA too), the same DCG / ideal DCG at min(k, impressions),
the same unweighted mean. TFMA still holds the thresholds, the baseline comparison and the blessing.

Two differences from TFMA's own. Tied scores share their gains (`ndcg_at_k`), so the verdict does not depend
on the order the examples were read in. And on the device slices only (never gated): TFMA slices a user's
merged list, so a user seen on two devices counts in both slices with all their impressions; here a slice
holds its own impressions.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import apache_beam as beam
import numpy as np
import tensorflow_model_analysis as tfma
from tensorflow_model_analysis.metrics import metric_types, metric_util

from components.histogram_metrics import model_prediction, spec_keys

NDCG = "ndcg"

# user -> [(prediction, gain), ...] in arrival order, as TFMA's merged per-user list keeps them.
Accumulator = dict[Any, list[tuple[float, float]]]


def ndcg_at_k(rows: list[tuple[float, float]], k: int) -> float | None:
    """TFMA's NDCG@k of one user's (prediction, gain) rows, with ties shared; None for a user with no
    positive gain, whom TFMA weighs 0.

    TFMA ranks tied predictions in the order the rows arrive, and that order changes with how the
    examples are read and how Beam merges partial results: the same night could score differently when
    rerun. Here each run of tied predictions shares its gains evenly over the ranks it spans, the expected
    DCG over every order of the tie (as scikit-learn's ndcg_score computes it); without ties it is TFMA's
    number.
    """
    predictions = np.array([p for p, _ in rows])
    gains = np.array([g for _, g in rows], dtype=np.float64)
    if gains.max() <= 0:
        return None
    order = np.argsort(-predictions, kind="stable")
    ranked, scores = gains[order], predictions[order]
    cut = min(k, len(rows))
    discounts = np.zeros(len(rows))
    discounts[:cut] = 1.0 / np.log2(np.arange(2, cut + 2))
    starts = np.flatnonzero(np.r_[True, scores[1:] != scores[:-1]])  # first rank of each run of ties
    sizes = np.diff(np.r_[starts, len(rows)])
    dcg = np.sum(np.add.reduceat(ranked, starts) / sizes * np.add.reduceat(discounts, starts))
    ideal = np.sum(np.sort(gains)[::-1] * discounts)
    return float(dcg / ideal) if ideal > 0 else 0.0


def _scalar(value: Any, what: str, key: metric_types.MetricKey) -> Any:
    array = np.asarray(value)
    if array.size != 1:
        raise ValueError(f"{key.name}: expected one {what} per example, got {array.size}: {value!r}")
    return array.item()


class _UserNDCGCombiner(beam.CombineFn):
    def __init__(
        self,
        key: metric_types.MetricKey,
        eval_config: tfma.EvalConfig | None,
        user_key: str,
        gain_key: str,
        top_k: int,
    ):
        self._key = key
        self._user_key, self._gain_key, self._top_k = user_key, gain_key, top_k
        _, self._prediction_key = spec_keys(eval_config, key.model_name)

    def create_accumulator(self) -> Accumulator:
        return {}

    def add_input(self, accumulator: Accumulator, element: metric_types.StandardMetricInputs) -> Accumulator:
        # TFMA's combined_features view (transformed features first, then raw) costs a ChainMap per example
        # and slice; without transformed features, as the Evaluator scores a plain SavedModel, it is the raw
        # features' dict itself.
        if element.get(tfma.constants.TRANSFORMED_FEATURES_KEY):
            features = element.combined_features
        else:
            features = element.get(tfma.constants.FEATURES_KEY) or {}
        user, gain = (self._feature(features, name) for name in (self._user_key, self._gain_key))
        prediction = model_prediction(element, self._key.model_name, self._prediction_key)
        score = _scalar(prediction, "prediction", self._key)
        accumulator.setdefault(user, []).append((float(score), float(gain)))
        return accumulator

    def _feature(self, features: Any, name: str) -> Any:
        value = features.get(name)
        if value is None:
            raise ValueError(f"{self._key.name}: the evaluated examples have no {name!r} feature")
        return _scalar(value, name, self._key)

    def merge_accumulators(self, accumulators: Iterable[Accumulator]) -> Accumulator:
        accumulators = iter(accumulators)
        result = next(accumulators)
        for accumulator in accumulators:
            for user, rows in accumulator.items():
                result.setdefault(user, []).extend(rows)
        return result

    def extract_output(self, accumulator: Accumulator) -> dict[metric_types.MetricKey, float]:
        scores = [s for rows in accumulator.values() if (s := ndcg_at_k(rows, self._top_k)) is not None]
        return {self._key: sum(scores) / len(scores) if scores else float("nan")}


def _user_ndcg(
    name: str,
    user_key: str,
    gain_key: str,
    top_k: int,
    eval_config: tfma.EvalConfig | None = None,
    model_name: str = "",
    output_name: str = "",
    sub_key: metric_types.SubKey | None = None,
    example_weighted: bool = False,
) -> metric_types.MetricComputations:
    if example_weighted:
        raise ValueError(f"{name}: example weights are not supported; the Evaluator scores unweighted")
    key = metric_types.MetricKey(
        name=name, model_name=model_name, output_name=output_name, sub_key=sub_key, example_weighted=False
    )
    return [
        metric_types.MetricComputation(
            keys=[key],
            preprocessors=[metric_types.CombinedFeaturePreprocessor(feature_keys=[user_key, gain_key])],
            combiner=_UserNDCGCombiner(key, eval_config, user_key, gain_key, top_k),
        )
    ]


class UserNDCG(metric_types.Metric):
    """NDCG@top_k of each user's impressions ranked by the model, gain = `gain_key`, averaged over the users
    with a positive gain. Not called NDCG: TFMA resolves its registered class names to its own classes."""

    def __init__(self, name: str = NDCG, user_key: str = "", gain_key: str = "", top_k: int = 10):
        super().__init__(
            metric_util.merge_per_key_computations(_user_ndcg),
            name=name,
            user_key=user_key,
            gain_key=gain_key,
            top_k=top_k,
        )
