"""Thin runners: check the inputs a user can get wrong, build the pipeline, run it, read back the summary."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Literal

from pipeline.config import RecpipeConfig
from pipeline.factory import create_pipeline
from pipeline.preflight import check_inputs
from pipeline.run_summary import RunSummary, summarize

Runner = Literal["local", "beam"]


class RunFailed(RuntimeError):
    """A component failed; `summary` holds what the run got done (e.g. the anomalies that stopped it)."""

    def __init__(self, cause: BaseException, summary: RunSummary):
        super().__init__(f"{type(cause).__name__}: {cause}")
        self.summary = summary


def run_pipeline(config: RecpipeConfig, runner: Runner = "local") -> RunSummary:
    """Run the whole pipeline once and return what it did (raises if a component failed)."""
    check_inputs(config)
    Path(config.run_root).mkdir(parents=True, exist_ok=True)
    pipeline = create_pipeline(config)
    if runner == "local":
        from tfx import v1 as tfx

        dag_runner = tfx.orchestration.LocalDagRunner()
    elif runner == "beam":
        from tfx.orchestration.beam.beam_dag_runner import BeamDagRunner

        dag_runner = BeamDagRunner()
    else:
        raise ValueError(f"unknown runner {runner!r}; use 'local' or 'beam'")
    started_ms = int(time.time() * 1000) - 1
    try:
        dag_runner.run(pipeline)
    except Exception as err:  # noqa: BLE001 - re-raised with what the run got done
        raise RunFailed(err, summarize(config, started_ms)) from err
    return summarize(config, started_ms)
