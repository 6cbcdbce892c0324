"""What each Kubeflow phase runs inside its pod: a partial run of the pipeline `recpipe run` builds.

Every phase builds the same TFX pipeline from the same config and runs a sub-graph of it with
LocalDagRunner (`RunOptions(from_nodes=..., to_nodes=...)`) against one shared MLMD and pipeline root.
Resolvers, spans, caching and the blessed baseline therefore behave exactly as they do locally, while
each phase is its own box in the KFP UI with its own resources and retries. Open-source KFP v2 cannot
run TFX's own Kubeflow V2 output (resolver executors, ExampleGen's lifecycle hook, the TFX entrypoint),
which is why the phases are plain KFP components around this module.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from typing import Any

import yaml

from components import storage
from pipeline.config import RecpipeConfig
from pipeline.data.clicklog import list_spans
from pipeline.errors import InputError
from pipeline.kubeflow.params import RUN_PARAMETERS
from pipeline.night import NightState, RunFailed, run_night
from pipeline.night_lock import NightLocked
from pipeline.nodes import PHASES
from pipeline.records.history import (
    EXIT_BAD_INPUT,
    EXIT_CODES,
    EXIT_LOCKED,
    EXIT_OK,
    new_run_id,
    read_history,
    status_of,
)


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


def run_phase(config: RecpipeConfig, phase: str, previous: str = "") -> dict[str, Any]:
    """Run one phase's slice of the night; `previous` is the JSON the phase before it returned."""
    nodes = PHASES.get(phase)
    if nodes is None:
        raise ValueError(
            f"phase {phase!r} runs no TFX nodes; phases with nodes: {[p for p, n in PHASES.items() if n]}"
        )
    state = NightState.from_json(json.loads(previous)["state"]) if previous else None
    if state is None and not nodes.starts_night:
        raise ValueError(f"phase {phase!r} continues a night: pass the JSON of the phase before it")

    summary, state = run_night(config, nodes, state)
    return {
        "phase": phase,
        "span": config.data.span,
        "nodes": summary.node_states,
        "status": status_of(summary, None) if nodes.ends_night else None,
        "state": state.to_json(),
    }


def run_phase_json(config_yaml: str, span: int, phase: str, previous: str = "", **run_parameters: Any) -> str:
    """What a phase component does: the frozen config + this run's span and parameters -> phase -> JSON.

    A night that ends refused, on bad input, locked out or failed ends the pod with its exit code
    (pipeline/records/history.py: EXIT_CODES), so KFP shows the task failed and why, and no later phase runs.
    """

    config = config_from_yaml(config_yaml, span, **run_parameters)
    try:
        result = run_phase(config, phase, previous)
    except InputError as err:
        _end_phase(phase, "bad input", err, EXIT_BAD_INPUT)
    except NightLocked as err:
        _end_phase(phase, "another night is running", err, EXIT_LOCKED)
    except RunFailed as err:
        status = status_of(err.summary, err.__cause__)
        _end_phase(phase, status, err, EXIT_CODES[status])
    if PHASES[phase].ends_night:
        status = result["status"]
        if EXIT_CODES[status] != EXIT_OK:
            _end_phase(
                phase,
                status,
                "the night's record and report are in the run root's history",
                EXIT_CODES[status],
            )
    return to_json(result)


def _end_phase(phase: str, status: str, err: BaseException | str, code: int) -> None:
    import sys

    print(f"recpipe {phase}: the night ended {status} (exit {code}): {err}", file=sys.stderr, flush=True)
    storage.set_exit_code(code)
    raise SystemExit(code)


def report(config: RecpipeConfig, previous: str) -> dict[str, Any]:
    """The night's record, as the slice that ended it wrote it to the run root's history."""

    state = NightState.from_json(json.loads(previous)["state"])
    run_id = new_run_id(state.started_at)  # the id the record of a night started then carries
    records = [r for r in read_history(config) if r.run_id == run_id]
    if not records:
        raise LookupError(
            f"no history record of the night started {state.started} under {config.history_dir}"
        )
    return {**dataclasses.asdict(records[-1]), "report": state.report_path}


def to_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)
