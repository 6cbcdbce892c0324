"""What a run did, read back from MLMD: data counts, anomalies, metrics against the bars, blessing, push.

The runners only know whether the DAG finished; what a user needs at 7 am (did a model ship, and if not,
which gate said no) lives in the artifacts, so the summary is read from the metadata store itself.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import tensorflow_model_analysis as tfma
from ml_metadata.proto import metadata_store_pb2
from tfx.types import artifact_utils

from components import storage
from components.anomaly_gate import describe, read_anomalies
from components.drift_gate import NOT_COMPARED_PROPERTY, STATS_FILE
from components.feed_gate import read_feed_quality
from components.model.training import METRICS_FILE
from components.span_window import input_examples_span
from pipeline import nodes
from pipeline.config import RecpipeConfig
from pipeline.mlmd import open_store


@dataclass
class GateResult:
    """One Evaluator gate as TFMA judged it: `passed` is TFMA's verdict (its validation result), never
    recomputed here; the bar and the baseline are carried for display."""

    metric: str
    value: float | None
    lower_bound: float
    baseline: float | None = None
    max_drop: float | None = None
    passed: bool = False


@dataclass
class RunSummary:
    node_states: dict[str, str] = field(default_factory=dict)
    node_seconds: dict[str, float] = field(default_factory=dict)
    node_windows: dict[str, tuple[float, float]] = field(default_factory=dict)  # epoch s: start, end
    span: int | None = None
    split_counts: dict[str, int] = field(default_factory=dict)
    anomalies: list[str] = field(default_factory=list)
    # Features the drift gate left out tonight (statistics of another resolution than the baseline's).
    drift_not_compared: str | None = None
    gates: list[GateResult] = field(default_factory=list)
    slice_auc: dict[str, tuple[float, int]] = field(default_factory=dict)  # slice -> (AUC, examples)
    blessed: bool | None = None
    serving_check: str | None = None  # the serving check's verdict and reason
    feed_gate: str | None = None  # the feed-quality gate's verdict and reason
    feed: dict = field(default_factory=dict)  # its figures (components/feed_gate.py: FEED_FILE)
    pushed: bool = False
    pushed_path: str | None = None
    push_reason: str | None = None
    evaluation_uri: str | None = None
    model_uri: str | None = None
    train_metrics: dict[str, float] = field(default_factory=dict)  # the Trainer's metrics.json
    eval_examples: int | None = None  # examples the Evaluator scored (overall slice)
    plan: str | None = None  # what the night trained on and started from (pipeline/plan.py)
    report_path: str | None = None  # the night's HTML report (pipeline/records/report.py)

    @property
    def has_baseline(self) -> bool:
        return any(g.baseline is not None for g in self.gates)


_STATES = {v: k for k, v in metadata_store_pb2.Execution.State.items()}


def _latest_outputs(store, config: RecpipeConfig, since_ms: int):
    """Per node: state, duration and output artifacts of its newest execution since `since_ms`."""
    states: dict[str, str] = {}
    windows: dict[str, tuple[float, float]] = {}
    outputs: dict[str, list] = {}
    prefix = f"{config.pipeline_name}."
    for ctx in store.get_contexts_by_type("node"):
        if not ctx.name.startswith(prefix):
            continue
        node = ctx.name[len(prefix) :]
        executions = [
            e for e in store.get_executions_by_context(ctx.id) if e.create_time_since_epoch >= since_ms
        ]
        if not executions:
            continue
        newest = max(executions, key=lambda e: e.id)
        states[node] = _STATES.get(newest.last_known_state, "UNKNOWN")
        windows[node] = (newest.create_time_since_epoch / 1000, newest.last_update_time_since_epoch / 1000)
        out_ids = [
            ev.artifact_id
            for ev in store.get_events_by_execution_ids([newest.id])
            if ev.type == metadata_store_pb2.Event.OUTPUT
        ]
        outputs[node] = store.get_artifacts_by_id(out_ids) if out_ids else []
    return states, windows, outputs


def _typed(types: dict[int, str], artifacts: list, type_name: str):
    matching = [a for a in artifacts if types.get(a.type_id) == type_name]
    return max(matching, key=lambda a: a.id) if matching else None


def _prop(artifact, name: str):
    value = artifact.custom_properties.get(name) or artifact.properties.get(name)
    if value is None:
        return None
    return value.int_value if value.HasField("int_value") else value.string_value


def _split_counts(stats) -> dict[str, int]:
    import tensorflow_data_validation as tfdv

    artifact = _as_tfx_artifact(stats, "ExampleStatistics")
    counts = {}
    for split in artifact_utils.decode_split_names(artifact.split_names):
        path = storage.join(artifact_utils.get_split_uri([artifact], split), STATS_FILE)
        if storage.exists(path):
            counts[split] = int(tfdv.load_stats_binary(path).datasets[0].num_examples)
    return counts


def _train_metrics(model_run_uri: str) -> dict[str, float]:
    import json

    path = os.path.join(model_run_uri, METRICS_FILE)
    if not storage.exists(path):
        return {}
    return json.loads(storage.read_text(path))


def _metrics(evaluation_uri: str) -> tuple[dict[tuple[str, str], float], dict[str, tuple[float, int]]]:
    """{(metric, model): value} on the overall slice, and {slice: (candidate AUC, examples)} for the others."""
    overall: dict[tuple[str, str], float] = {}
    slices: dict[str, tuple[float, int]] = {}
    for metrics in tfma.load_metrics(evaluation_uri):
        found: dict[str, float] = {}
        slice_name = ",".join(
            f"{c.column}={c.bytes_value.decode() or c.int64_value}"
            for c in metrics.slice_key.single_slice_keys
        )
        for kv in metrics.metric_keys_and_values:
            key = kv.key
            if key.is_diff or not kv.value.HasField("double_value"):
                continue
            model = key.model_name or "candidate"
            value = kv.value.double_value.value
            if not slice_name:
                overall[(key.name, model)] = value
            elif model == "candidate":
                found[key.name] = value
        if slice_name and "auc" in found:
            slices[slice_name] = (found["auc"], int(found.get("example_count", 0)))
    return overall, slices


def _failed_metrics(evaluation_uri: str) -> set[str]:
    """Names of the metrics whose thresholds TFMA found violated on the overall slice."""
    result = tfma.load_validation_result(evaluation_uri)
    return {
        failure.metric_key.name
        for per_slice in result.metric_validations_per_slice
        if not per_slice.slice_key.single_slice_keys
        for failure in per_slice.failures
    }


def _node_artifacts(config: RecpipeConfig, node: str, type_name: str) -> list[tuple[int, Any]]:
    """(span, MLMD artifact) of every live artifact of `type_name` a node ever output, oldest first; the
    span from the artifact or, where TFX left it unset, from the Examples it was derived from."""

    store = open_store(config)
    if store is None:
        return []
    context = store.get_context_by_type_and_name("node", f"{config.pipeline_name}.{node}")
    if context is None:
        return []
    types = {t.id: t.name for t in store.get_artifact_types()}
    found = []
    for artifact in sorted(store.get_artifacts_by_context(context.id), key=lambda a: a.id):
        if types.get(artifact.type_id) == type_name and artifact.state == metadata_store_pb2.Artifact.LIVE:
            span = _prop(artifact, "span") or input_examples_span(store, artifact.id)
            if span:
                found.append((int(span), artifact))
    return found


def validated_spans(config: RecpipeConfig) -> set[int]:
    """Spans whose newest schema validation (ExampleValidator) found nothing: only these may be trained on.
    A span whose ingestion stopped at the anomaly gate has statistics but is not in this set."""

    found: dict[int, bool] = {}
    for span, artifact in _node_artifacts(config, nodes.EXAMPLE_VALIDATOR, "ExampleAnomalies"):
        found[span] = not describe(read_anomalies(_as_tfx_artifact(artifact, "ExampleAnomalies")))
    return {span for span, clean in found.items() if clean}


def latest_blessed_model_uri(config: RecpipeConfig) -> str | None:
    """The model the latest-blessed resolver will hand the Evaluator as baseline (newest blessed Model)."""
    store = open_store(config)
    if store is None:
        return None
    context = store.get_context_by_type_and_name("pipeline", config.pipeline_name)
    if context is None:
        return None
    artifacts = store.get_artifacts_by_context(context.id)
    types = {t.id: t.name for t in store.get_artifact_types()}
    blessed_ids = [
        a.custom_properties["current_model_id"].int_value
        for a in artifacts
        if types.get(a.type_id) == "ModelBlessing" and a.custom_properties["blessed"].int_value == 1
    ]
    if not blessed_ids:
        return None
    return store.get_artifacts_by_id([max(blessed_ids)])[0].uri


def summarize(config: RecpipeConfig, since_ms: int) -> RunSummary:
    summary = RunSummary()
    store = open_store(config)
    if store is None:
        return summary
    summary.node_states, summary.node_windows, outputs = _latest_outputs(store, config, since_ms)
    summary.node_seconds = {node: end - start for node, (start, end) in summary.node_windows.items()}
    types = {t.id: t.name for t in store.get_artifact_types()}

    if examples := _typed(types, outputs.get(nodes.EXAMPLE_GEN, []), "Examples"):
        summary.span = _prop(examples, "span")
    if stats := _typed(types, outputs.get(nodes.STATISTICS_GEN, []), "ExampleStatistics"):
        summary.split_counts = _split_counts(stats)
    if anomalies := _typed(types, outputs.get(nodes.EXAMPLE_VALIDATOR, []), "ExampleAnomalies"):
        summary.anomalies = describe(read_anomalies(_as_tfx_artifact(anomalies, "ExampleAnomalies")))
    if drift := _typed(types, outputs.get(nodes.DRIFT_GATE, []), "ExampleAnomalies"):
        summary.drift_not_compared = _prop(drift, NOT_COMPARED_PROPERTY) or None
    if model := _typed(types, outputs.get(nodes.TRAINER, []), "Model"):
        summary.model_uri = model.uri
    if model_run := _typed(types, outputs.get(nodes.TRAINER, []), "ModelRun"):
        summary.train_metrics = _train_metrics(model_run.uri)
    if evaluation := _typed(types, outputs.get(nodes.EVALUATOR, []), "ModelEvaluation"):
        summary.evaluation_uri = evaluation.uri
        overall, summary.slice_auc = _metrics(evaluation.uri)
        if ("example_count", "candidate") in overall:
            summary.eval_examples = int(overall[("example_count", "candidate")])
        ev = config.evaluation
        failed = _failed_metrics(evaluation.uri)
        summary.gates = [
            GateResult(
                "AUC",
                overall.get(("auc", "candidate")),
                ev.auc_lower_bound,
                overall.get(("auc", "baseline")),
                ev.max_auc_drop,
                ("auc", "candidate") in overall and "auc" not in failed,
            ),
            GateResult(
                f"NDCG@{ev.ndcg_top_k}",
                overall.get(("ndcg", "candidate")),
                ev.ndcg_lower_bound,
                overall.get(("ndcg", "baseline")),
                ev.max_ndcg_drop,
                ("ndcg", "candidate") in overall and "ndcg" not in failed,
            ),
        ]
    if blessing := _typed(types, outputs.get(nodes.EVALUATOR, []), "ModelBlessing"):
        summary.blessed = bool(_prop(blessing, "blessed"))
    if feed := _typed(types, outputs.get(nodes.FEED_GATE, []), "ModelBlessing"):
        summary.feed_gate = ("passed: " if _prop(feed, "blessed") else "FAILED: ") + (
            _prop(feed, "reason") or ""
        )
        summary.feed = read_feed_quality(feed.uri)
    if infra := _typed(types, outputs.get(nodes.SERVING_CHECK, []), "InfraBlessing"):
        summary.serving_check = ("passed: " if _prop(infra, "blessed") else "FAILED: ") + (
            _prop(infra, "reason") or ""
        )
    if pushed := _typed(types, outputs.get(nodes.PUSHER, []), "PushedModel"):
        summary.pushed = bool(_prop(pushed, "pushed"))
        summary.pushed_path = _prop(pushed, "pushed_destination") or None
        summary.push_reason = _prop(pushed, "reason") or None
    return summary


def _as_tfx_artifact(mlmd_artifact, type_name: str):
    from tfx.types import standard_artifacts

    artifact = getattr(standard_artifacts, type_name)()
    artifact.set_mlmd_artifact(mlmd_artifact)
    return artifact
