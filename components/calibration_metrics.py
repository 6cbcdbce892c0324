"""Mean label and mean prediction (calibration) read off the histogram TFMA already builds for AUC.

TFMA's own MeanLabel / MeanPrediction run a second per-example Python combiner over every example,
slice and model: 38% of the Evaluator's combiner time on make run's data with a baseline, for two sums.
AUC's confusion matrices come from a calibration histogram whose buckets carry exactly those sums
(weighted labels, weighted predictions, weighted examples), so these metrics ask TFMA for the same
histogram computation, which TFMA de-duplicates with AUC's, and add its buckets up. The values are
the same as TFMA's metrics of the same names: for 0/1 labels the histogram's fractional-label split
keeps each example once, at its own weight.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import tensorflow_model_analysis as tfma
from tensorflow_model_analysis.metrics import calibration_histogram, metric_types, metric_util

MEAN_LABEL = "mean_label"
MEAN_PREDICTION = "mean_prediction"


def _mean_from_histogram(field: str) -> Callable[..., metric_types.MetricComputations]:
    """Computations of sum(`field`) / sum(weighted_examples) over the buckets of AUC's histogram."""

    def computations(
        name: str,
        eval_config: tfma.EvalConfig | None = None,
        model_name: str = "",
        output_name: str = "",
        sub_key: metric_types.SubKey | None = None,
        aggregation_type: metric_types.AggregationType | None = None,
        class_weights: dict[int, float] | None = None,
        example_weighted: bool = False,
    ) -> metric_types.MetricComputations:
        key = metric_types.MetricKey(
            name=name,
            model_name=model_name,
            output_name=output_name,
            sub_key=sub_key,
            example_weighted=example_weighted,
        )
        # Called as binary_confusion_matrices calls it for AUC, so the computation's key is AUC's.
        histogram = calibration_histogram.calibration_histogram(
            eval_config=eval_config,
            model_name=model_name,
            output_name=output_name,
            sub_key=sub_key,
            aggregation_type=aggregation_type,
            class_weights=class_weights,
            example_weighted=example_weighted,
        )
        histogram_key = histogram[-1].keys[-1]

        def result(metrics: dict[metric_types.MetricKey, Any]) -> dict[metric_types.MetricKey, float]:
            buckets = metrics[histogram_key]
            total = sum(getattr(b, field) for b in buckets)
            weight = sum(b.weighted_examples for b in buckets)
            return {key: total / weight if weight else float("nan")}

        return [*histogram, metric_types.DerivedMetricComputation(keys=[key], result=result)]

    return computations


class HistogramMeanLabel(metric_types.Metric):
    """TFMA's mean_label, from AUC's histogram."""

    def __init__(self, name: str = MEAN_LABEL):
        super().__init__(
            metric_util.merge_per_key_computations(_mean_from_histogram("weighted_labels")), name=name
        )


class HistogramMeanPrediction(metric_types.Metric):
    """TFMA's mean_prediction, from AUC's histogram."""

    def __init__(self, name: str = MEAN_PREDICTION):
        super().__init__(
            metric_util.merge_per_key_computations(_mean_from_histogram("weighted_predictions")), name=name
        )
