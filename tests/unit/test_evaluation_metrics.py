"""The Evaluator's metrics: calibration costs no combiner of its own and matches TFMA's own metrics."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow_model_analysis as tfma
from tensorflow_model_analysis.evaluators import metrics_plots_and_validations_evaluator as mpv
from tensorflow_model_analysis.metrics import metric_specs, metric_types

from components.evaluation import build_eval_config


def _eval_config() -> tfma.EvalConfig:
    return build_eval_config(
        auc_lower_bound=0.5,
        ndcg_lower_bound=0.5,
        ndcg_top_k=10,
        max_auc_drop=0.01,
        max_ndcg_drop=0.01,
        slice_features=["device"],
    )


def _computations(metrics: list[tfma.MetricConfig], config: tfma.EvalConfig):
    specs = [tfma.MetricsSpec(metrics=metrics)]
    return mpv._filter_and_separate_computations(metric_specs.to_computations(specs, config))


def _run(metrics: list[tfma.MetricConfig], config: tfma.EvalConfig, inputs) -> dict[str, float]:
    """Runs the combiners over the inputs, then the derived metrics, as TFMA's evaluator does."""
    combiner_computations, derived, *_ = _computations(metrics, config)
    results: dict = {}
    for c in combiner_computations:
        acc = c.combiner.create_accumulator()
        for element in inputs:
            acc = c.combiner.add_input(acc, element)
        results.update(c.combiner.extract_output(c.combiner.merge_accumulators([acc])))
    for d in derived:
        results.update(d.result(results))
    return {key.name: value for key, value in results.items() if isinstance(key, metric_types.MetricKey)}


def _inputs(seed: int = 3, n: int = 500) -> list[metric_types.StandardMetricInputs]:
    rng = np.random.default_rng(seed)
    labels = (rng.random(n) < 0.1).astype(np.float32)
    predictions = np.clip(0.1 + 0.3 * labels + rng.normal(0.0, 0.1, n), 0.0, 1.0).astype(np.float32)
    return [
        metric_types.StandardMetricInputs(
            labels=np.array([label]), predictions=np.array([prediction]), example_weights=np.array([1.0])
        )
        for label, prediction in zip(labels, predictions, strict=False)
    ]


def test_calibration_adds_no_per_example_combiner_to_auc():
    config = _eval_config()
    ours = [m for m in config.metrics_specs[0].metrics if m.class_name != "ExampleCount"]
    auc_only = [m for m in ours if m.class_name == "AUC"]
    assert len(ours) == 3  # AUC, mean label, mean prediction
    with_calibration = _computations(ours, config)[0]
    assert len(with_calibration) == len(_computations(auc_only, config)[0]) == 1


def test_calibration_matches_tfma_mean_label_and_prediction():
    config = _eval_config()
    inputs = _inputs()
    ours = _run(list(config.metrics_specs[0].metrics), config, inputs)
    tfma_own = _run(
        [tfma.MetricConfig(class_name="MeanLabel"), tfma.MetricConfig(class_name="MeanPrediction")],
        config,
        inputs,
    )
    assert ours["mean_label"] == pytest.approx(tfma_own["mean_label"], rel=1e-9)
    assert ours["mean_prediction"] == pytest.approx(tfma_own["mean_prediction"], rel=1e-6)
    assert ours["mean_label"] == pytest.approx(np.mean([float(i.label) for i in inputs]))
