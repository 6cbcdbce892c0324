"""Thin runners: a local night is the whole pipeline as one slice of pipeline/night.py."""

from __future__ import annotations

from pipeline.config import RecpipeConfig
from pipeline.night import RunFailed, Runner, run_night
from pipeline.run_summary import RunSummary

__all__ = ["RunFailed", "Runner", "run_pipeline"]


def run_pipeline(config: RecpipeConfig, runner: Runner = "local") -> RunSummary:
    """Run one night (raises InputError, NightLocked or RunFailed); every outcome gets a history record."""
    summary, _ = run_night(config, runner=runner)
    return summary
