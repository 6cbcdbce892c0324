"""Thin runners: check the inputs a user can get wrong, plan the night, run it, record what it did."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Literal

from pipeline.config import RecpipeConfig
from pipeline.factory import create_pipeline
from pipeline.history import build_record, write_record
from pipeline.nightly import Night, ingest, plan_tonight
from pipeline.preflight import check_inputs
from pipeline.report import write_report
from pipeline.run_summary import RunSummary, summarize

Runner = Literal["local", "beam"]


class RunFailed(RuntimeError):
    """A component failed; `summary` holds what the run got done (e.g. the anomalies that stopped it)."""

    def __init__(self, cause: BaseException, summary: RunSummary):
        super().__init__(f"{type(cause).__name__}: {cause}")
        self.summary = summary


def _dag_runner(runner: Runner):
    if runner == "local":
        from tfx import v1 as tfx

        return tfx.orchestration.LocalDagRunner()
    if runner == "beam":
        from tfx.orchestration.beam.beam_dag_runner import BeamDagRunner

        return BeamDagRunner()
    raise ValueError(f"unknown runner {runner!r}; use 'local' or 'beam'")


def run_pipeline(config: RecpipeConfig, runner: Runner = "local") -> RunSummary:
    """Run one night (raises InputError or RunFailed); every outcome gets a history record and report."""
    dag_runner = _dag_runner(runner)
    started, t0 = dt.datetime.now(dt.timezone.utc), time.time()
    started_ms = int(t0 * 1000) - 1
    night: Night | None = None
    scan = summary = None
    try:
        scan = check_inputs(config)
        Path(config.run_root).mkdir(parents=True, exist_ok=True)
        night = plan_tonight(config)
        ingest(config, night)
        dag_runner.run(create_pipeline(config, night))
    except Exception as err:  # noqa: BLE001 - recorded, then re-raised with what the run got done
        if Path(config.run_root).is_dir():
            summary = summarize(config, started_ms) if night else None
            _record(config, night, scan, summary, started, time.time() - t0, err)
        if summary is None:
            raise
        raise RunFailed(err, summary) from err
    summary = summarize(config, started_ms)
    summary.report_path = _record(config, night, scan, summary, started, time.time() - t0, None)
    return summary


def _record(config, night, scan, summary, started, seconds, failure) -> str:
    if summary is not None and night is not None:
        summary.plan = night.describe()
    record = build_record(night, scan, summary, started, seconds, failure)
    write_record(config, record)
    path = str(write_report(config, record))
    if summary is not None:
        summary.report_path = path
    return path
