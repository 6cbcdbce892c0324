"""The Evaluator's histogram metrics: TFMA's AUC and calibration, with the histogram filled by a lean combiner.

TFMA's AUC, mean label and mean prediction all come from one calibration histogram (10,000 buckets of
weighted labels, predictions and examples per slice and model). TFMA fills it one example at a time
through `to_label_prediction_example_weight`, a general generator (multi-class, top-k, class weights,
fractional labels) that cost a quarter of the Evaluator's whole time with a baseline on a 60,000-event
day. For what this pipeline scores, one binary output and 0/1 labels, the histogram needs one label and
one prediction per example; `LeanHistogramCombiner` reads those two and falls back to TFMA's own code
for anything else. Same buckets, same arithmetic, so the same AUC to the last bit, and TFMA still
computes the confusion matrices, the AUC and the thresholds that bless the model.

Calibration and the example count ask TFMA for that same histogram instead of running a per-example
combiner of their own (TFMA's MeanLabel / MeanPrediction: 38% of the Evaluator's combiner time on make
run's data; ExampleCount 4% of the Evaluator), and add its buckets up. TFMA de-duplicates computations by
combiner name and keys, so every metric here shares one lean histogram per slice and model.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import tensorflow_model_analysis as tfma
from tensorflow_model_analysis.metrics import calibration_histogram, metric_types, metric_util

EXAMPLE_COUNT = "example_count"
MEAN_LABEL = "mean_label"
MEAN_PREDICTION = "mean_prediction"

_TFMA_COMBINER = calibration_histogram._CalibrationHistogramCombiner


class LeanHistogramCombiner(_TFMA_COMBINER):
    """TFMA's calibration histogram combiner, reading a binary example's label and prediction directly."""

    def __init__(self, tfma_combiner: _TFMA_COMBINER):
        self.__dict__.update(tfma_combiner.__dict__)
        key = self._key
        # The only case the lean path takes; every other configuration runs TFMA's own add_input.
        self._lean = (
            self._prediction_based_bucketing
            and self._aggregation_type is None
            and not self._class_weights
            and not self._example_weighted
            and key.sub_key is None
            and not key.output_name
        )
        self._label_key, self._prediction_key = spec_keys(self._eval_config, key.model_name)

    def _label_and_prediction(self, element: metric_types.StandardMetricInputs) -> tuple[float, float] | None:
        """The example's 0/1 label and single prediction, or None where TFMA's general path is needed."""
        # Looked up as TFMA looks them up: with a baseline, labels and predictions are keyed by model name.
        label, model = element.label, self._key.model_name
        if isinstance(label, Mapping) and self._label_key in label:
            label = label[self._label_key]
        if model and isinstance(label, Mapping) and model in label:
            label = label[model]
        prediction = model_prediction(element, model, self._prediction_key)
        if not (isinstance(label, np.ndarray) and isinstance(prediction, np.ndarray)):
            return None
        if (
            label.size != 1
            or prediction.size != 1
            or label.dtype.kind not in "biuf"
            or prediction.dtype.kind != "f"
        ):
            return None
        label_value = float(label.flat[0])
        if label_value not in (0.0, 1.0):  # fractional labels are split in two by TFMA
            return None
        return label_value, float(prediction.flat[0])

    def add_input(self, accumulator: dict, element: metric_types.StandardMetricInputs) -> dict:
        pair = self._label_and_prediction(element) if self._lean else None
        if pair is None:
            return super().add_input(accumulator, element)
        label, prediction = pair
        # TFMA's arithmetic with an example weight of 1.0: label * 1.0, prediction * 1.0, 1.0.
        index = self._bucket_index(prediction)
        bucket = accumulator.get(index)
        if bucket is None:
            accumulator[index] = calibration_histogram.Bucket(index, label, prediction, 1.0)
        else:
            bucket.weighted_labels += label
            bucket.weighted_predictions += prediction
            bucket.weighted_examples += 1.0
        return accumulator


def model_prediction(element: metric_types.StandardMetricInputs, model: str, prediction_key: str) -> Any:
    """The model's prediction as TFMA hands it over: keyed by model name with a baseline, then by output."""
    prediction = element.prediction
    if model and isinstance(prediction, Mapping):
        prediction = prediction.get(model)
    if isinstance(prediction, Mapping):
        prediction = prediction.get(prediction_key)
    return prediction


def spec_keys(eval_config: tfma.EvalConfig | None, model_name: str) -> tuple[str, str]:
    """The ModelSpec's label and prediction keys for `model_name`, as TFMA looks them up."""
    specs = list(eval_config.model_specs) if eval_config else []
    for spec in specs:
        if (spec.name if len(specs) > 1 else "") == model_name:
            return spec.label_key, spec.prediction_key
    return "", ""


def lean(computations: metric_types.MetricComputations) -> metric_types.MetricComputations:
    """`computations` with TFMA's histogram combiners swapped for lean ones; keys unchanged."""
    return [
        metric_types.MetricComputation(
            keys=c.keys, preprocessors=c.preprocessors, combiner=LeanHistogramCombiner(c.combiner)
        )
        if isinstance(c, metric_types.MetricComputation) and type(c.combiner) is _TFMA_COMBINER
        else c
        for c in computations
    ]


class LeanAUC(tfma.metrics.AUC):
    """TFMA's AUC, named "auc" as TFMA names it, its histogram filled by `LeanHistogramCombiner`. Not
    called AUC: TFMA resolves a class name it has registered to its own class whatever the module."""

    def computations(self, *args, **kwargs) -> metric_types.MetricComputations:
        return lean(super().computations(*args, **kwargs))


def _from_histogram(
    reduce: Callable[[list[calibration_histogram.Bucket]], float],
) -> Callable[..., metric_types.MetricComputations]:
    """Computations of `reduce` over the buckets of AUC's histogram."""

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
            return {key: reduce(metrics[histogram_key])}

        return [*lean(histogram), metric_types.DerivedMetricComputation(keys=[key], result=result)]

    return computations


def _mean(field: str) -> Callable[[list[calibration_histogram.Bucket]], float]:
    def mean(buckets: list[calibration_histogram.Bucket]) -> float:
        weight = sum(b.weighted_examples for b in buckets)
        return sum(getattr(b, field) for b in buckets) / weight if weight else float("nan")

    return mean


def _examples(buckets: list[calibration_histogram.Bucket]) -> float:
    """Unweighted, each example adds 1.0 to the histogram, as it adds 1 to TFMA's ExampleCount."""
    return float(sum(b.weighted_examples for b in buckets))


class HistogramExampleCount(metric_types.Metric):
    """TFMA's example_count, from AUC's histogram: TFMA's ExampleCount is one more combiner per slice and
    model, called for every example (4% of the Evaluator with a baseline on a 60,000-event day)."""

    def __init__(self, name: str = EXAMPLE_COUNT):
        super().__init__(metric_util.merge_per_key_computations(_from_histogram(_examples)), name=name)


class HistogramMeanLabel(metric_types.Metric):
    """TFMA's mean_label, from AUC's histogram."""

    def __init__(self, name: str = MEAN_LABEL):
        super().__init__(
            metric_util.merge_per_key_computations(_from_histogram(_mean("weighted_labels"))), name=name
        )


class HistogramMeanPrediction(metric_types.Metric):
    """TFMA's mean_prediction, from AUC's histogram."""

    def __init__(self, name: str = MEAN_PREDICTION):
        super().__init__(
            metric_util.merge_per_key_computations(_from_histogram(_mean("weighted_predictions"))), name=name
        )
