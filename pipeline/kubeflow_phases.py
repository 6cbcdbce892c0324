"""What each Kubeflow phase runs inside its pod: a partial run of the pipeline `recpipe run` builds.

Every phase builds the same TFX pipeline from the same config and runs a sub-graph of it with
LocalDagRunner (`RunOptions(from_nodes=..., to_nodes=...)`) against one shared MLMD and pipeline root.
Resolvers, spans, caching and the blessed baseline therefore behave exactly as they do locally, while
each phase is its own box in the KFP UI with its own resources and retries. Open-source KFP v2 cannot
run TFX's own Kubeflow V2 output (resolver executors, ExampleGen's lifecycle hook, the TFX entrypoint),
which is why the phases are plain KFP components around this module.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

import yaml

from pipeline.config import RecpipeConfig

# phase name -> (from_nodes, to_nodes) of the partial run; None = no TFX run in this phase.
PHASES: dict[str, tuple[list[str], list[str]] | None] = {
    "resolve-night": None,
    "validate-data": (["ImportExampleGen", "ImportSchemaGen"], ["AnomalyGate", "DriftGate"]),
    "train-evaluate": (
        ["training_window", "Transform", "latest_blessed_model_resolver", "EvalSample"],
        ["Evaluator"],
    ),
    "check-and-push": (["ServingCheck"], ["Pusher"]),
    "report": None,
}

# Run parameters a user may set per run (KFP UI / `recpipe submit --param`), and the config key each sets.
RUN_PARAMETERS = {
    "auc_lower_bound": "evaluation.auc_lower_bound",
    "ndcg_lower_bound": "evaluation.ndcg_lower_bound",
    "epochs": "trainer.epochs",
}


class NightError(ValueError):
    """The night asked for maps to no span; the message lists what exists."""


def config_from_yaml(config_yaml: str, span: int | None = None, **run_parameters: Any) -> RecpipeConfig:
    config = RecpipeConfig.model_validate(yaml.safe_load(config_yaml))
    overrides = {RUN_PARAMETERS[k]: v for k, v in run_parameters.items() if v is not None}
    if span is not None:
        overrides["data.span"] = int(span)
    return config.with_overrides(**overrides) if overrides else config


def _parse_night(value: str) -> dt.date:
    for fmt in ("%Y%m%d", "%Y-%m-%d"):
        try:
            return dt.datetime.strptime(value, fmt).date()
        except ValueError:
            pass
    raise NightError(f"night {value!r} is not a date; use YYYYMMDD or YYYY-MM-DD")


def resolve_night(config: RecpipeConfig, night: str, schedule_time: str) -> int:
    """The span this run processes: the `night` parameter if given, else the schedule time minus
    kubeflow.span_offset_days, else (a one-off run with neither) the newest span. It must exist."""
    from pipeline.clicklog import list_spans

    spans = list_spans(config.data.root)
    if not spans:
        raise NightError(f"no span-YYYYMMDD folders under {config.data.root}")
    if night:
        day = _parse_night(night)
    elif schedule_time and not schedule_time.startswith("1970"):
        scheduled = dt.datetime.fromisoformat(schedule_time.replace("Z", "+00:00"))
        day = scheduled.date() - dt.timedelta(days=config.kubeflow.span_offset_days)
    else:
        return spans[-1]
    span = int(f"{day:%Y%m%d}")
    if span not in spans:
        raise NightError(
            f"the night {day} maps to span {span}, which does not exist under {config.data.root} "
            f"(newest: {spans[-1]}); the run stops here. Pass night=YYYYMMDD to run another night."
        )
    return span


def run_phase(config: RecpipeConfig, phase: str) -> dict[str, Any]:
    """Run one phase's sub-graph; returns a JSON-able account of what its nodes did."""
    from tfx import v1 as tfx
    from tfx.orchestration import pipeline as tfx_pipeline

    from pipeline.factory import create_pipeline
    from pipeline.run_summary import summarize

    if PHASES.get(phase) is None:
        raise ValueError(
            f"phase {phase!r} runs no TFX nodes; phases with nodes: "
            f"{[p for p, nodes in PHASES.items() if nodes]}"
        )
    from pipeline.nightly import ingest, plan_tonight

    if phase == "validate-data":
        from pipeline.preflight import check_inputs

        check_inputs(config)  # the same checks as a local run, before any component starts
    # Planned again in every phase from the same folders and MLMD, so every phase sees the same night.
    night = plan_tonight(config)
    if phase == "validate-data":
        ingest(config, night)  # earlier spans of the window that no night has ingested yet
    from_nodes, to_nodes = PHASES[phase]
    started = int(time.time() * 1000)
    pipeline = create_pipeline(config, night)
    present = {c.id for c in pipeline.components}  # EvalSample is there only with evaluation.max_examples
    options = tfx_pipeline.RunOptions(from_nodes=[n for n in from_nodes if n in present], to_nodes=to_nodes)
    tfx.orchestration.LocalDagRunner().run(pipeline, run_options=options)
    summary = summarize(config, started)
    return {"phase": phase, "span": config.data.span, "nodes": summary.node_states}


def run_phase_json(config_yaml: str, span: int, phase: str, **run_parameters: Any) -> str:
    """What a phase component does: the frozen config + this run's span and parameters -> phase -> JSON."""
    return to_json(run_phase(config_from_yaml(config_yaml, span, **run_parameters), phase))


def report(config: RecpipeConfig) -> dict[str, Any]:
    """The night's decision, read back from MLMD (newest execution of every node); also written to the
    shared run root's history with its HTML report, as a local night does."""
    from pipeline.history import build_record, write_record
    from pipeline.report import write_report
    from pipeline.run_summary import summarize

    s = summarize(config, since_ms=0)
    if s.node_windows:
        first = min(start for start, _ in s.node_windows.values())
        last = max(end for _, end in s.node_windows.values())
        started = dt.datetime.fromtimestamp(first, dt.timezone.utc)
        record = build_record(None, None, s, started, last - first, None)
        write_record(config, record)
        s.report_path = str(write_report(config, record))
    return {
        "report": s.report_path,
        "span": s.span,
        "events": s.split_counts,
        "anomalies": s.anomalies,
        "gates": [
            {
                "metric": g.metric,
                "value": g.value,
                "lower_bound": g.lower_bound,
                "baseline": g.baseline,
                "passed": g.passed,
            }
            for g in s.gates
        ],
        "blessed": s.blessed,
        "serving_check": s.serving_check,
        "pushed": s.pushed,
        "pushed_path": s.pushed_path,
        "push_reason": s.push_reason,
    }


def to_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)
