"""Warm-up requests, and the serving check that replays them before every push.

TF Serving replays `assets.extra/tf_serving_warmup_requests` (PredictionLog records) when it loads a
version, so a new version is warm when it goes live. The same file is our serving check: TFX's
InfraValidator needs Docker or Kubernetes, so instead the candidate is loaded with plain TensorFlow,
every warm-up request is replayed through its signature, the outputs' shapes and ranges are checked, and
the p99 latency is compared with a budget. The verdict is an InfraBlessing, which TFX's Pusher contract
(and ours) reads: no blessing, no push.
"""

# No `from __future__ import annotations`: TFX parses this component's annotations at runtime.

import os
import time

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2
from tfx import v1 as tfx
from tfx.utils import path_utils

WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")


def write_warmup(export_dir: str, model_name: str, requests: list[tuple[str, dict[str, tf.Tensor]]]) -> str:
    """Write (signature, inputs) pairs as PredictionLog records where TF Serving looks for them."""
    path = os.path.join(export_dir, WARMUP_FILE)
    tf.io.gfile.makedirs(os.path.dirname(path))
    with tf.io.TFRecordWriter(path) as writer:
        for signature, inputs in requests:
            request = predict_pb2.PredictRequest(
                model_spec=model_pb2.ModelSpec(name=model_name, signature_name=signature)
            )
            for name, value in inputs.items():
                value = tf.convert_to_tensor(value)
                request.inputs[name].CopyFrom(
                    tf.make_tensor_proto(value.numpy(), dtype=value.dtype, shape=value.shape)
                )
            log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
            writer.write(log.SerializeToString())
    return path


def read_warmup(model_dir: str) -> list[tuple[str, dict[str, tf.Tensor]]]:
    path = os.path.join(model_dir, WARMUP_FILE)
    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(f"{path}: the model has no warm-up requests")
    out = []
    for raw in tf.data.TFRecordDataset(path).as_numpy_iterator():
        request = prediction_log_pb2.PredictionLog.FromString(raw).predict_log.request
        inputs = {k: tf.constant(tf.make_ndarray(v)) for k, v in request.inputs.items()}
        out.append((request.model_spec.signature_name or "serving_default", inputs))
    return out


def _check_outputs(signature: str, inputs: dict[str, tf.Tensor], outputs: dict[str, tf.Tensor]) -> list[str]:
    """What a client relies on: one probability per row, or k sorted items per user."""
    problems = []
    if "click_probability" in outputs:
        p = outputs["click_probability"].numpy()
        rows = next(iter(inputs.values())).shape[0]
        if p.shape != (rows,) or not np.all((p >= 0) & (p <= 1)):
            problems.append(
                f"{signature}: click_probability shape {p.shape} (want ({rows},)) or values outside [0, 1]"
            )
    if "item_ids" in outputs:
        ids, scores = outputs["item_ids"].numpy(), outputs["scores"].numpy()
        users, k = inputs["user_id"].shape[0], int(inputs["k"].numpy())
        # k items per user (fewer only if the whole catalogue is smaller than k)
        if ids.shape != scores.shape or ids.shape[0] != users or not 0 < ids.shape[1] <= k:
            problems.append(
                f"{signature}: item_ids/scores shape {ids.shape}/{scores.shape}, want ({users}, {k})"
            )
        elif np.any(np.diff(scores, axis=1) > 0):
            problems.append(f"{signature}: scores are not sorted best first")
    return problems


def time_calls(fn, inputs: dict[str, tf.Tensor], calls: int) -> list[float]:
    """Milliseconds of each of `calls` sequential calls, one request at a time as a server sees them."""
    timings = []
    for _ in range(calls):
        start = time.perf_counter()
        fn(**inputs)
        timings.append((time.perf_counter() - start) * 1000)
    return timings


def check_model(model_dir: str, latency_budget_ms: float, repeats: int) -> tuple[bool, str, dict[str, float]]:
    """Load, replay every warm-up request `repeats` times; return (ok, reason, p99 ms per signature)."""
    try:
        model = tf.saved_model.load(model_dir)
        requests = read_warmup(model_dir)
    except Exception as err:  # noqa: BLE001 - any load failure blocks the push, with its reason
        return False, f"model does not load: {type(err).__name__}: {err}", {}
    p99: dict[str, float] = {}
    problems: list[str] = []
    for signature, inputs in requests:
        if signature not in model.signatures:
            problems.append(f"warm-up request for missing signature {signature!r}")
            continue
        fn = model.signatures[signature]
        try:
            outputs = fn(**inputs)
            problems += _check_outputs(signature, inputs, outputs)
            timings = time_calls(fn, inputs, repeats)
        except Exception as err:  # noqa: BLE001
            problems.append(f"{signature}: request failed: {type(err).__name__}: {err}")
            continue
        p99[signature] = max(p99.get(signature, 0.0), float(np.percentile(timings, 99)))
    slow = {s: ms for s, ms in p99.items() if ms > latency_budget_ms}
    problems += [
        f"{s}: p99 latency {ms:.2f} ms exceeds the budget of {latency_budget_ms} ms" for s, ms in slow.items()
    ]
    if problems:
        return False, "; ".join(problems), p99
    return (
        True,
        "all warm-up requests answered within budget: "
        + ", ".join(f"{s} p99 {ms:.2f} ms" for s, ms in p99.items()),
        p99,
    )


@tfx.dsl.components.component
def ServingCheck(
    model: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Model],
    blessing: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ModelBlessing],
    infra_blessing: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.InfraBlessing],
    latency_budget_ms: tfx.dsl.components.Parameter[float],
    repeats: tfx.dsl.components.Parameter[int] = 50,
) -> None:
    if blessing.get_int_custom_property("blessed") != 1:
        ok, reason = False, "skipped: the Evaluator or the feed-quality gate did not bless this model"
    else:
        ok, reason, _ = check_model(path_utils.serving_model_dir(model.uri), latency_budget_ms, repeats)
    infra_blessing.set_int_custom_property("blessed", int(ok))
    infra_blessing.set_string_custom_property("reason", reason[:2000])
    with tf.io.gfile.GFile(
        os.path.join(infra_blessing.uri, "INFRA_BLESSED" if ok else "INFRA_NOT_BLESSED"), "w"
    ) as f:
        f.write(reason)
