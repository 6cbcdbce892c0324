"""A night side by side, in one run, on the same generated data and epochs: our pipeline, the plain-TFX peer
(what a user builds from the TFX templates; run, never tuned) and a plain Keras script (the floor without
TFX). Each runs as a child process; memory is its whole process tree's resident set, sampled."""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import click

from bench.harness import (
    REPO,
    Measured,
    bench_config,
    generate_day,
    make_run_log,
    pipeline_run,
    run_measured,
)
from pipeline import nodes

PEER = REPO.parent / "shared" / "peers" / "plain-tfx-ncf" / "run_peer.py"
EPOCHS = 5  # configs/local.yaml's, given to the peer and the plain script too
MAKE_RUN_EVENTS = 70_000  # a day of make run's click log (bench.harness.make_run_log)
# events -> (users, items) of a generated day; None: make run's own log.
SIZES = {MAKE_RUN_EVENTS: None, 1_000_000: (20_000, 5_000)}
STAGES = (nodes.EXAMPLE_GEN, nodes.STATISTICS_GEN, nodes.TRANSFORM, nodes.TRAINER, nodes.EVALUATOR)
_PEER_NODE = re.compile(r"^\s+(\S+)\s+([\d.]+)s$")
_OWN_CLOCK = re.compile(r"recpipe run \((\d+)s\)")


@dataclass
class Contender:
    name: str
    measured: Measured
    peak_mb: float
    stages: dict[str, float] = field(default_factory=dict)
    own_clock_s: float | None = None
    auc: float | None = None


def _peak(samples: list) -> float:
    return max((mb for _, mb in samples), default=0.0)


def ours(work: Path, data: Path, events: int) -> Contender:
    config, path = bench_config("configs/local.yaml", work, data, f"ours-{events}")
    samples: list = []
    m = pipeline_run(f"recpipe {events:,}", config, path, work, samples)
    clock = _OWN_CLOCK.findall(m.log.read_text())
    gates = {g.metric.split("@")[0]: g.value for g in m.summary.gates}
    return Contender(
        "recpipe (`configs/local.yaml` as shipped)",
        m,
        _peak(samples),
        {n: m.summary.node_seconds.get(n, 0.0) for n in STAGES},
        float(clock[-1]) if clock else None,
        gates.get("AUC"),
    )


def peer(work: Path, data: Path, events: int) -> Contender:
    if not PEER.exists():
        raise click.ClickException(f"the plain-TFX peer is not at {PEER}; it is the cost reference here")
    samples: list = []
    log = work / f"peer-{events}.log"
    args = [sys.executable, str(PEER), "--data", str(data), "--work", str(work / f"peer-{events}")]
    m = run_measured(f"peer {events:,}", [*args, "--epochs", str(EPOCHS)], log, samples)
    m.command = f"python {PEER.relative_to(REPO.parent)} --epochs {EPOCHS}"
    seconds: dict[str, float] = {}
    for line in log.read_text().splitlines():
        if found := _PEER_NODE.match(line):
            seconds[found[1]] = seconds.get(found[1], 0.0) + float(found[2])
    return Contender("plain-TFX peer", m, _peak(samples), {n: seconds.get(n, 0.0) for n in STAGES})


def plain(work: Path, data: Path, events: int) -> Contender:
    samples: list = []
    log = work / f"plain-{events}.log"
    m = run_measured(
        f"plain {events:,}", [sys.executable, "-m", "bench.plain_keras", "--data", str(data)], log, samples
    )
    m.command = "python -m bench.plain_keras"
    r = json.loads(log.read_text().strip().splitlines()[-1])
    stages = {nodes.EXAMPLE_GEN: r["read_s"], nodes.TRANSFORM: r["prepare_s"], nodes.TRAINER: r["fit_s"]}
    return Contender("plain Keras script (floor)", m, _peak(samples), stages, r["seconds"], r["auc"])


def night_speed_scenario(work: Path) -> dict[int, list[Contender]]:
    results = {}
    for events, population in SIZES.items():
        data = work / f"clicklog-{events}"
        if population is None:  # make run's log: 3 days, the newest span is the night
            make_run_log(work, data, f"generate-{events}.log")
        else:
            generate_day(f"generate {events}", work, data, events, *population, seed=7)
        results[events] = [ours(work, data, events), peer(work, data, events), plain(work, data, events)]
    return results


def _cell(value: float | None) -> str:
    return "" if value is None else f"{value:,.1f}"


def render_night_speed(results: dict[int, list[Contender]], notes: str) -> str:
    lines = [
        "## A night side by side: recpipe, the plain-TFX peer, a plain Keras script (issue 18)",
        "",
        f"One run, one after the other on the same data, {EPOCHS} epochs each. Data: `make run`'s click log "
        f"(3 days x {MAKE_RUN_EVENTS:,} events, seed 7; the newest span is the night) and one day of 1,000,000 events "
        "(20,000 users, 5,000 items, seed 7). Ours: `recpipe run --config configs/local.yaml`, a fresh run "
        "root (the first night: it also ingests the previous span for the drift check when there is one). "
        f"The peer: `{PEER.relative_to(REPO.parent)}` with our .venv, unchanged (train steps = epochs x "
        "train examples / 256). The floor: `python -m bench.plain_keras` (tf.data + NumPy vocabularies + the "
        "same NeuMF; no validation, gates, artifacts or push). Wall: the whole child process. Peak RSS: its "
        "process tree, sampled every 0.25 s. Stage seconds: MLMD execution times (ours, the peer); the "
        "script's own read / prepare / fit timers.",
        "",
        "| events | contender | wall s | own clock s | vs peer | peak RSS MB | ExampleGen | StatisticsGen | "
        "Transform | Trainer | Evaluator | eval AUC |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for events, contenders in results.items():
        peer_s = next(c.measured.seconds for c in contenders if c.name == "plain-TFX peer")
        for c in contenders:
            stages = " | ".join(_cell(c.stages.get(n)) for n in STAGES)
            lines.append(
                f"| {events:,} | {c.name} | {c.measured.seconds:,.1f} | {_cell(c.own_clock_s)} | "
                f"{c.measured.seconds / peer_s:.2f}x | {c.peak_mb:,.0f} | {stages} | "
                f"{'' if c.auc is None else f'{c.auc:.4f}'} |"
            )
    return "\n".join(lines) + "\n\n" + notes.strip() + "\n"
