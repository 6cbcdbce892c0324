"""The Evaluator's metrics: AUC, calibration and the example count share one lean histogram and equal TFMA's
own metrics."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow_model_analysis as tfma
from tensorflow_model_analysis.evaluators import metrics_plots_and_validations_evaluator as mpv
from tensorflow_model_analysis.metrics import calibration_histogram, metric_specs, metric_types

from components.evaluation import build_eval_config
from components.histogram_metrics import LeanAUC, LeanHistogramCombiner
from components.model.signatures import OUTPUT_KEY
from components.user_ndcg import UserNDCG


def _eval_config() -> tfma.EvalConfig:
    return build_eval_config(
        auc_lower_bound=0.5,
        ndcg_lower_bound=0.5,
        ndcg_top_k=10,
        max_auc_drop=0.01,
        max_ndcg_drop=0.01,
        slice_features=["device"],
    )


def _histogram_metrics(config: tfma.EvalConfig) -> list[tfma.MetricConfig]:
    """The gate's metrics but NDCG, which needs each example's user and gain (tested on its own below)."""
    return [m for m in config.metrics_specs[0].metrics if m.class_name != UserNDCG.__name__]


def _ndcg_metric(config: tfma.EvalConfig) -> list[tfma.MetricConfig]:
    return [m for m in config.metrics_specs[0].metrics if m.class_name == UserNDCG.__name__]


def _computations(metrics: list[tfma.MetricConfig], config: tfma.EvalConfig):
    # As TFMA fills it in from the model specs: one model unnamed, or each by name.
    names = [m.name for m in config.model_specs] if len(config.model_specs) > 1 else []
    specs = [tfma.MetricsSpec(metrics=metrics, model_names=names)]
    return mpv._filter_and_separate_computations(metric_specs.to_computations(specs, config))


def _results(metrics: list[tfma.MetricConfig], config: tfma.EvalConfig, inputs) -> dict:
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
    return results


def _run(metrics: list[tfma.MetricConfig], config: tfma.EvalConfig, inputs) -> dict[str, float]:
    results = _results(metrics, config, inputs)
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


def test_calibration_and_count_add_no_per_example_combiner_to_auc():
    config = _eval_config()
    ours = _histogram_metrics(config)
    auc_only = [m for m in ours if m.class_name == LeanAUC.__name__]
    assert len(ours) == 4  # example count, AUC, mean label, mean prediction
    with_calibration = _computations(ours, config)[0]
    assert len(with_calibration) == len(_computations(auc_only, config)[0]) == 1


def test_calibration_matches_tfma_mean_label_and_prediction():
    config = _eval_config()
    inputs = _inputs()
    ours = _run(_histogram_metrics(config), config, inputs)
    tfma_own = _run(
        [tfma.MetricConfig(class_name="MeanLabel"), tfma.MetricConfig(class_name="MeanPrediction")],
        config,
        inputs,
    )
    assert ours["mean_label"] == pytest.approx(tfma_own["mean_label"], rel=1e-9)
    assert ours["mean_prediction"] == pytest.approx(tfma_own["mean_prediction"], rel=1e-6)
    assert ours["mean_label"] == pytest.approx(np.mean([float(i.label) for i in inputs]))


def _two_model_config() -> tfma.EvalConfig:
    """The config as TFX's Evaluator hands it to TFMA with a baseline: two named model specs."""
    config = _eval_config()
    candidate = config.model_specs[0]
    candidate.name = "candidate"
    baseline = config.model_specs.add()
    baseline.CopyFrom(candidate)
    baseline.name, baseline.is_baseline = "baseline", True
    return config


def _two_model_inputs(labels: np.ndarray, seed: int = 5) -> list[metric_types.StandardMetricInputs]:
    """Both models' predictions per example, each a dict of the signature's outputs, and the label keyed by
    model, as TFMA's extractors hand them over with a baseline."""
    rng = np.random.default_rng(seed)
    scores = {
        m: np.clip(0.2 + 0.4 * labels + rng.normal(0.0, 0.2, labels.size), 0, 1)
        for m in ("candidate", "baseline")
    }
    return [
        metric_types.StandardMetricInputs(
            labels={m: np.array([label], labels.dtype) for m in scores},
            predictions={m: {OUTPUT_KEY: np.array([s[i]], np.float32)} for m, s in scores.items()},
            example_weights=np.array([1.0], np.float32),
        )
        for i, label in enumerate(labels)
    ]


def _by_model(results: dict, name: str) -> dict[str, float]:
    return {
        k.model_name: v
        for k, v in results.items()
        if isinstance(k, metric_types.MetricKey) and k.name == name
    }


@pytest.mark.parametrize("label_kind", ["binary", "fractional"])
def test_auc_and_calibration_equal_tfma_own_for_candidate_and_baseline(label_kind):
    """Bit for bit: the gate compares these figures with a bar, and a baseline's figure with the candidate's.
    Fractional labels take TFMA's own path; 0/1 labels the lean one."""
    rng = np.random.default_rng(11)
    labels = (rng.random(2_000) < 0.15).astype(np.int64)  # as the Evaluator decodes the label
    if label_kind == "fractional":
        labels = np.where(labels > 0, 0.7, 0.0).astype(np.float32)
    config, inputs = _two_model_config(), _two_model_inputs(labels)
    ours = _results(_histogram_metrics(config), config, inputs)
    tfma_own = _results(
        [
            tfma.MetricConfig(class_name="ExampleCount"),
            tfma.MetricConfig(class_name="AUC"),
            tfma.MetricConfig(class_name="MeanLabel"),
            tfma.MetricConfig(class_name="MeanPrediction"),
        ],
        config,
        inputs,
    )
    assert _by_model(ours, "auc") == _by_model(tfma_own, "auc")
    assert _by_model(ours, "example_count") == _by_model(tfma_own, "example_count")
    assert set(_by_model(ours, "example_count").values()) == {len(labels)}
    assert set(_by_model(ours, "auc")) == {"candidate", "baseline"}
    assert _by_model(ours, "auc")["candidate"] != _by_model(ours, "auc")["baseline"]
    for name in ("mean_label", "mean_prediction"):
        for model, value in _by_model(tfma_own, name).items():
            assert _by_model(ours, name)[model] == pytest.approx(value, rel=1e-6)
    histograms = [k for k in ours if isinstance(k, metric_types.PlotKey)]
    assert histograms and all(ours[k] == tfma_own[k] for k in histograms)


def test_binary_examples_skip_tfma_general_per_example_path(monkeypatch):
    """The speed comes from not running TFMA's per-example generator: with it disabled, AUC still computes."""
    config, inputs = _two_model_config(), _two_model_inputs((np.arange(400) % 7 == 0).astype(np.int64))
    expected = _by_model(_results(_histogram_metrics(config), config, inputs), "auc")

    def refuse(*args, **kwargs):
        raise AssertionError("TFMA's general per-example path ran")

    monkeypatch.setattr(calibration_histogram._CalibrationHistogramCombiner, "add_input", refuse)
    combiners = [c.combiner for c in _computations(_histogram_metrics(config), config)[0]]
    assert combiners and all(
        isinstance(c, LeanHistogramCombiner) for c in combiners if "Histogram" in type(c).__name__
    )
    assert _by_model(_results(_histogram_metrics(config), config, inputs), "auc") == expected


def test_a_label_tfma_would_refuse_is_still_refused():
    """Labels outside [0, 1] are an error in TFMA's fractional-label path; the lean path must not hide it."""
    config = _eval_config()
    inputs = [
        metric_types.StandardMetricInputs(
            labels=np.array([2.0]), predictions=np.array([0.4]), example_weights=np.array([1.0])
        )
    ]
    with pytest.raises(Exception, match="[Ll]abel"):
        _run(_histogram_metrics(config), config, inputs)


def _user_inputs(
    seed: int = 7, decimals: int | None = 2
) -> tuple[list[metric_types.StandardMetricInputs], list]:
    """Impressions of 300 users (1-40 each, some with no click; scores rounded to `decimals`, so 2 gives
    many ties, None none), per example as TFMA's per-example pass hands them to UserNDCG, and merged per
    user as its query pass hands them to TFMA's NDCG."""
    rng = np.random.default_rng(seed)
    per_example, per_user = [], []
    for u in range(300):
        n = int(rng.integers(1, 41))
        labels = (rng.random(n) < (0.0 if u % 10 == 0 else 0.2)).astype(np.int64)
        logits = {m: 2 * labels - 1 + rng.normal(0, 1.2, n) for m in ("candidate", "baseline")}
        scores = {m: 1 / (1 + np.exp(-x)) for m, x in logits.items()}
        scores = {
            m: (s if decimals is None else np.round(s, decimals)).astype(np.float32)
            for m, s in scores.items()
        }
        user = np.array([f"u{u}".encode()] * n, dtype=object)

        def inputs(rows, labels=labels, scores=scores, user=user):
            return metric_types.StandardMetricInputs(
                labels={m: labels[rows] for m in scores},
                predictions={m: {OUTPUT_KEY: s[rows]} for m, s in scores.items()},
                example_weights=np.array([1.0], np.float32),
                features={"user_id": user[rows], "clicked": labels[rows]},
            )

        per_example += [inputs(slice(i, i + 1)) for i in range(n)]
        per_user.append(inputs(slice(0, n)))
    return per_example, per_user


def test_ndcg_equals_tfma_query_ndcg_for_candidate_and_baseline():
    """The gate's NDCG computed per example by user equals TFMA's NDCG over each user's merged impressions:
    users without a click left out, lists shorter than k, both models (scores without ties)."""
    config = _two_model_config()
    per_example, per_user = _user_inputs(decimals=None)
    scores = [e.prediction["candidate"][OUTPUT_KEY] for e in per_user]
    assert all(len(set(s)) == len(s) for s in scores), "no user has two equal scores"
    ours = _results(_ndcg_metric(config), config, per_example)
    tfma_spec = tfma.MetricsSpec(
        query_key="user_id",
        binarize=tfma.BinarizationOptions(top_k_list={"values": [10]}),
        metrics=[tfma.MetricConfig(class_name="NDCG", config='"gain_key": "clicked"')],
        model_names=["candidate", "baseline"],
    )
    combiners = mpv._filter_and_separate_computations(metric_specs.to_computations([tfma_spec], config))[0]
    tfma_own: dict = {}
    for c in combiners:
        acc = c.combiner.create_accumulator()
        for element in per_user:
            acc = c.combiner.add_input(acc, element)
        tfma_own.update(c.combiner.extract_output(acc))
    ndcg, tfma_ndcg = _by_model(ours, "ndcg"), _by_model(tfma_own, "ndcg")
    assert set(ndcg) == {"candidate", "baseline"} and ndcg["candidate"] != ndcg["baseline"]
    assert set(tfma_ndcg) == set(ndcg)
    for model, value in tfma_ndcg.items():
        assert ndcg[model] == pytest.approx(value, rel=1e-12)


def test_ndcg_shares_tied_scores_whatever_order_the_examples_arrive_in():
    """TFMA ranks tied scores in arrival order, which varies with the reader and Beam's merging. The gate's
    NDCG gives each tie its expected DCG over every order (scikit-learn's tie-aware ndcg_score), and the
    same figure for the examples in another order."""
    from sklearn.metrics import ndcg_score

    config = _two_model_config()
    per_example, per_user = _user_inputs()
    in_order = _by_model(_results(_ndcg_metric(config), config, per_example), "ndcg")
    shuffled = [per_example[i] for i in np.random.default_rng(1).permutation(len(per_example))]
    reordered = _by_model(_results(_ndcg_metric(config), config, shuffled), "ndcg")
    assert reordered == pytest.approx(in_order, rel=1e-12)  # the mean over users, summed in another order
    ties = 0
    for model in ("candidate", "baseline"):
        per_user_ndcg = []
        for user in per_user:
            gains, scores = user.label[model], user.prediction[model][OUTPUT_KEY]
            ties += len(set(scores)) < len(scores)
            if gains.max() > 0:
                k = min(10, len(gains))
                per_user_ndcg.append(ndcg_score([gains], [scores], k=k) if len(gains) > 1 else 1.0)
        assert in_order[model] == pytest.approx(np.mean(per_user_ndcg), rel=1e-12)
    assert ties > 100, "the examples hold ties"


def test_ndcg_names_the_feature_an_example_lacks():
    """An example without its user id cannot be put in anyone's list: the Evaluator stops naming the feature
    instead of scoring NDCG over fewer users than it says."""
    config = _two_model_config()
    (example, *_), _ = _user_inputs()
    del example["features"]["user_id"]
    with pytest.raises(ValueError, match="no 'user_id' feature"):
        _results(_ndcg_metric(config), config, [example])
