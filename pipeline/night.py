"""A night, or a slice of one: the one function `recpipe run` and every Kubeflow phase call.

check inputs -> plan -> ingest earlier spans -> run the node range -> summarize -> record.

A local run is one slice holding every node. On Kubeflow each phase is a slice of the same night in its
own pod (pipeline/kubeflow/phases.py lists the node ranges): the first slice checks the inputs, plans and
ingests; every slice runs its nodes against the one MLMD; the slice that ends the night (by failing, or by
being the last) writes the history record and its report. What a slice hands the next (the plan, the
pre-flight scan, when the night started) travels as NightState, so every phase works on the same plan and
the record a Kubeflow night leaves is the record a local night leaves.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import signal
from typing import Literal

from tfx import v1 as tfx
from tfx.orchestration import pipeline as tfx_pipeline

from components.launch import launching
from pipeline.config import RecpipeConfig
from pipeline.dag import create_pipeline
from pipeline.errors import IngestError
from pipeline.night_lock import night_lock
from pipeline.nodes import INGEST, WHOLE_NIGHT, NodeRange
from pipeline.plan import Night, launch_settings, plan_tonight
from pipeline.preflight import SpanScan, check_inputs, check_span
from pipeline.records.history import build_record, write_record
from pipeline.records.report import write_report
from pipeline.records.summary import RunSummary, summarize, validated_spans

Runner = Literal["local", "beam"]


@dataclasses.dataclass
class NightState:
    """What one slice of a night hands the next (JSON between Kubeflow phases)."""

    started: str  # ISO time the night began (its run id derives from it)
    plan: dict | None = None  # Night, as a dict
    scan: dict | None = None  # SpanScan of tonight's span, as a dict
    report_path: str | None = None  # set by the slice that recorded the night

    @classmethod
    def begin(cls) -> NightState:
        return cls(started=dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds"))

    @property
    def started_at(self) -> dt.datetime:
        return dt.datetime.fromisoformat(self.started)

    @property
    def started_ms(self) -> int:
        return int(self.started_at.timestamp() * 1000) - 1

    @property
    def night(self) -> Night | None:
        if self.plan is None:
            return None
        return Night(**{**self.plan, "train_spans": tuple(self.plan["train_spans"])})

    @property
    def span_scan(self) -> SpanScan | None:
        return SpanScan(**self.scan) if self.scan else None

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> NightState:
        return cls(**json.loads(text))


class Interrupted(Exception):  # noqa: N818 - what the user sees: "Interrupted: SIGTERM"
    """The night got SIGTERM (a scheduler's stop, a pod eviction). An Exception, unlike KeyboardInterrupt, so
    TFX's launcher marks the running execution failed instead of leaving it RUNNING in MLMD."""


def raise_on_sigterm() -> None:
    """Turn SIGTERM into Interrupted in the main thread (entry points call this)."""

    def interrupt(signum, frame):
        raise Interrupted(f"{signal.Signals(signum).name} received")

    signal.signal(signal.SIGTERM, interrupt)


class RunFailed(RuntimeError):
    """A component failed; `summary` holds what the run got done (e.g. the anomalies that stopped it)."""

    def __init__(self, cause: BaseException, summary: RunSummary):
        super().__init__(f"{type(cause).__name__}: {cause}")
        self.summary = summary


def _dag_runner(runner: Runner):
    if runner == "local":
        return tfx.orchestration.LocalDagRunner()
    if runner == "beam":
        from tfx.orchestration.beam.beam_dag_runner import BeamDagRunner

        return BeamDagRunner()
    raise ValueError(f"unknown runner {runner!r}; use 'local' or 'beam'")


def _run_nodes(config: RecpipeConfig, night: Night, nodes: NodeRange, runner: Runner) -> None:
    pipeline = create_pipeline(config, night)
    with launching(launch_settings(config)):
        if nodes.whole:
            _dag_runner(runner).run(pipeline)
            return
        present = {c.id for c in pipeline.components}  # EvalSample is there only with evaluation.max_examples
        options = tfx_pipeline.RunOptions(
            from_nodes=[n for n in nodes.from_nodes if n in present], to_nodes=list(nodes.to_nodes)
        )
        tfx.orchestration.LocalDagRunner().run(pipeline, run_options=options)


def run_night(
    config: RecpipeConfig,
    nodes: NodeRange = WHOLE_NIGHT,
    state: NightState | None = None,
    runner: Runner = "local",
) -> tuple[RunSummary, NightState]:
    """Run a night or a slice of it; raises InputError, NightLocked or RunFailed. Whatever ends the night
    (a failure in any slice, or the last slice) leaves a history record and a report."""

    state = state or NightState.begin()
    night: Night | None = state.night
    with night_lock(config):
        try:
            if nodes.starts_night:
                state.scan = dataclasses.asdict(check_inputs(config))
            if night is None:
                night = plan_tonight(config)
                state.plan = dataclasses.asdict(night)
            if nodes.starts_night:
                ingest(config, night)
            _run_nodes(config, night, nodes, runner)
        except Exception as err:  # noqa: BLE001 - recorded, then re-raised with what the run got done
            summary = _summary(config, state)
            _record(config, state, summary, err)
            if summary is None:
                raise
            raise RunFailed(err, summary) from err
        summary = _summary(config, state)
        if nodes.ends_night:
            _record(config, state, summary, None)
    return summary, state


def _summary(config: RecpipeConfig, state: NightState) -> RunSummary | None:
    """What this night's executions did, with its plan; None before the night was planned."""
    night = state.night
    if night is None:
        return None
    summary = summarize(config, state.started_ms)
    summary.plan = night.describe()
    return summary


def _record(config: RecpipeConfig, state: NightState, summary: RunSummary | None, failure) -> None:
    seconds = (dt.datetime.now(dt.timezone.utc) - state.started_at).total_seconds()
    record = build_record(state.night, state.span_scan, summary, state.started_at, seconds, failure)
    write_record(config, record)
    state.report_path = write_report(config, record)
    if summary is not None:
        summary.report_path = state.report_path


def ingest(config: RecpipeConfig, night: Night) -> list[int]:
    """Run ExampleGen..AnomalyGate for every span tonight needs from earlier nights and MLMD lacks."""

    needed = set(night.train_spans) - {night.span}
    if night.previous_span is not None:
        needed.add(night.previous_span)
    # Only schema-clean spans count: one whose ingestion stopped at the anomaly gate is ingested (and
    # stops) again, never trained on.
    missing = sorted(needed - validated_spans(config))
    for span in missing:
        check_span(config, span)
        span_config = config.with_overrides(**{"data.span": span})
        options = tfx_pipeline.RunOptions(from_nodes=list(INGEST.from_nodes), to_nodes=list(INGEST.to_nodes))
        try:
            tfx.orchestration.LocalDagRunner().run(
                create_pipeline(span_config, Night(span=span)), run_options=options
            )
        except Exception as err:
            raise IngestError(
                f"span {span}, needed by tonight's window ({night.describe()}), could not be ingested: {err}"
            ) from err
    return missing
