"""The TFMA EvalConfig that decides whether a model is blessed.

Two gates, each with an absolute bar and a no-regression bar against the last blessed model:
AUC (also reported per slice, e.g. by device) and NDCG@k over each user's impressions (gain = clicked).
Beside them only cheap diagnostics: the example count and calibration (mean label and prediction), summed
from AUC's histogram. AUC and calibration are TFMA's, their shared histogram filled by a lean combiner
(components/histogram_metrics.py). NDCG is TFMA's formula computed in the same per-example pass
(components/user_ndcg.py) instead of TFMA's query-grouped second pass. Log loss is left to the Trainer's
validation: TFMA computes every metric per example in Python, and it cost 4 of the Evaluator's 29 s with a
baseline on make run's data.
"""

from __future__ import annotations

import json

import tensorflow_model_analysis as tfma

from components.histogram_metrics import (
    HistogramExampleCount,
    HistogramMeanLabel,
    HistogramMeanPrediction,
    LeanAUC,
)
from components.model import features as F
from components.model.signatures import OUTPUT_KEY
from components.user_ndcg import UserNDCG

EVAL_SIGNATURE = "serving_tf_example"
HISTOGRAM_MODULE = LeanAUC.__module__
# Scored through the signature as a plain SavedModel. Left unset, TFMA loads each model as Keras once
# to find its type and again in every Beam stage, and computes the Keras model's compiled loss besides:
# 30 of TFMA's 78 s with a baseline on make run's data (docs/bench/speed-notes.md).
MODEL_TYPE = tfma.constants.TF_GENERIC


def _bar(lower_bound: float, max_drop: float) -> list[tfma.PerSliceMetricThreshold]:
    """Gate on the overall slice only: a plain threshold would also apply to every device slice,
    and a small slice's noisy AUC would then veto a good model."""
    threshold = tfma.MetricThreshold(
        value_threshold=tfma.GenericValueThreshold(lower_bound={"value": lower_bound}),
        # Ignored by the Evaluator when there is no baseline yet (the first night).
        change_threshold=tfma.GenericChangeThreshold(
            direction=tfma.MetricDirection.HIGHER_IS_BETTER, absolute={"value": -max_drop}
        ),
    )
    return [tfma.PerSliceMetricThreshold(slicing_specs=[tfma.SlicingSpec()], threshold=threshold)]


def evaluated_features(slice_features: list[str]) -> list[str]:
    """The raw features TFMA decodes for itself, beside the records' bytes it feeds the models."""
    return [F.LABEL, F.USER_ID, *slice_features]


def build_eval_config(
    auc_lower_bound: float,
    ndcg_lower_bound: float,
    ndcg_top_k: int,
    max_auc_drop: float,
    max_ndcg_drop: float,
    slice_features: list[str],
) -> tfma.EvalConfig:
    return tfma.EvalConfig(
        model_specs=[
            tfma.ModelSpec(
                signature_name=EVAL_SIGNATURE,
                label_key=F.LABEL,
                prediction_key=OUTPUT_KEY,
                model_type=MODEL_TYPE,
            )
        ],
        slicing_specs=[tfma.SlicingSpec()] + [tfma.SlicingSpec(feature_keys=[f]) for f in slice_features],
        metrics_specs=[
            tfma.MetricsSpec(
                metrics=[
                    tfma.MetricConfig(class_name=HistogramExampleCount.__name__, module=HISTOGRAM_MODULE),
                    tfma.MetricConfig(
                        class_name=LeanAUC.__name__,
                        module=HISTOGRAM_MODULE,
                        per_slice_thresholds=_bar(auc_lower_bound, max_auc_drop),
                    ),
                    # Calibration, summed from AUC's histogram instead of a combiner of its own.
                    tfma.MetricConfig(class_name=HistogramMeanLabel.__name__, module=HISTOGRAM_MODULE),
                    tfma.MetricConfig(class_name=HistogramMeanPrediction.__name__, module=HISTOGRAM_MODULE),
                    tfma.MetricConfig(
                        class_name=UserNDCG.__name__,
                        module=UserNDCG.__module__,
                        config=json.dumps({"user_key": F.USER_ID, "gain_key": F.LABEL, "top_k": ndcg_top_k})[
                            1:-1
                        ],
                        per_slice_thresholds=_bar(ndcg_lower_bound, max_ndcg_drop),
                    ),
                ]
            ),
        ],
    )
