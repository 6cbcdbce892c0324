"""Thin local runners: one night is the whole pipeline as one slice of pipeline/night.py; a backfill is the
nights of a span range run one after the other, as the schedule would have run them."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator

from pipeline.config import RecpipeConfig
from pipeline.data.clicklog import list_spans
from pipeline.errors import InputError
from pipeline.night import RunFailed, Runner, run_night
from pipeline.records.history import read_history
from pipeline.records.summary import RunSummary

__all__ = ["NightOutcome", "RunFailed", "Runner", "backfill", "backfill_spans", "run_pipeline"]


def run_pipeline(config: RecpipeConfig, runner: Runner = "local") -> RunSummary:
    """Run one night (raises InputError, NightLocked or RunFailed); every outcome gets a history record."""
    summary, _ = run_night(config, runner=runner)
    return summary


@dataclasses.dataclass(frozen=True)
class NightOutcome:
    span: int
    status: str  # the night's history status (pipeline/records/history.py: STATUSES)
    detail: str  # what the run decided, or the first line of why it stopped
    seconds: float


def backfill_spans(config: RecpipeConfig, first: int, last: int) -> list[int]:
    """The span folders from `first` to `last`, oldest first; InputError when there are none."""
    spans = [s for s in list_spans(config.data.root) if first <= s <= last]
    if not spans:
        raise InputError(f"no span folders between {first} and {last} under {config.data.root}")
    return spans


def backfill(config: RecpipeConfig, spans: list[int], runner: Runner = "local") -> Iterator[NightOutcome]:
    """Run each span's night in order. A night stopped by its data or a failure does not stop the backfill
    (the schedule would go on the next night too); NightLocked does, raised to the caller."""
    for span in spans:
        started = time.time()
        try:
            summary = run_pipeline(config.with_overrides(**{"data.span": span}), runner)
            detail = "pushed" if summary.pushed else ("blessed" if summary.blessed else "not blessed")
        except (InputError, RunFailed) as err:
            detail = f"stopped: {str(err).splitlines()[0][:160]}"
        yield NightOutcome(span, read_history(config)[-1].status, detail, time.time() - started)
