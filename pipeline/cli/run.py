"""Run nights locally: one (`run`) or a range of spans (`backfill`)."""

from __future__ import annotations

import sys
import time

import click
from rich.markup import escape
from rich.table import Table

from pipeline.cli.options import config_option, console, fail, override, span_option
from pipeline.cli.records import print_history
from pipeline.errors import InputError
from pipeline.night_lock import NightLocked
from pipeline.records.history import (
    EXIT_BAD_INPUT,
    EXIT_CODES,
    EXIT_INTERRUPTED,
    EXIT_LOCKED,
    read_history,
    status_of,
    worst,
)

RUNNERS = click.Choice(["local", "beam"])


@click.command()
@config_option()
@click.option("--runner", type=RUNNERS, default="local", show_default=True)
@click.option("--span", default=None, help="Run on this span (YYYYMMDD) instead of the config's.")
@click.option("--data", "data_root", default=None, type=click.Path(), help="Override data.root.")
def run(config, runner: str, span: str | None, data_root: str | None) -> None:
    """Run the whole pipeline locally (ExampleGen .. Pusher) and print what it decided."""
    from pipeline.night import Interrupted, raise_on_sigterm  # lazy: TFX and TensorFlow
    from pipeline.runners import RunFailed, run_pipeline  # lazy: TFX and TensorFlow

    raise_on_sigterm()
    overrides = {}
    if span is not None:
        overrides["data.span"] = int(span) if span.isdigit() else span
    if data_root is not None:
        overrides["data.root"] = data_root
    config = override(config, **overrides)
    console.print(
        f"running pipeline [bold]{config.pipeline_name}[/] on {runner} runner "
        f"(data {config.data.root}, span {config.data.span})"
    )
    started = time.time()
    try:
        summary = run_pipeline(config, runner)
    except InputError as err:
        fail(str(err), EXIT_BAD_INPUT)
    except NightLocked as err:
        fail(str(err), EXIT_LOCKED)
    except RunFailed as err:
        print_summary(err.summary, config, time.time() - started)
        if isinstance(err.__cause__, Interrupted):
            running = [n for n, s in err.summary.node_states.items() if s not in ("COMPLETE", "CACHED")]
            fail(
                f"interrupted by SIGTERM while running {', '.join(running) or 'the pipeline'}; nothing was "
                "pushed. Run the same command again: components that finished are reused from the cache",
                EXIT_INTERRUPTED,
            )
        fail(f"the run stopped: {err}", EXIT_CODES[status_of(err.summary, err.__cause__)])
    print_summary(summary, config, time.time() - started)
    sys.exit(EXIT_CODES[status_of(summary, None)])


@click.command()
@config_option()
@span_option("--from", required=True, help="First night's span, YYYYMMDD.")
@span_option("--to", required=True, help="Last night's span, YYYYMMDD.")
@click.option("--runner", type=RUNNERS, default="local", show_default=True)
def backfill(config, runner: str, **span_range: int) -> None:
    """Run the nights from --from to --to one by one over existing spans, as the schedule would have.

    A night stopped by bad or drifted data does not stop the backfill (the schedule would go on the next
    night too). The exit status is the worst night's, as `recpipe run` would give it: 4 if a gate or the
    data stopped a night, 1 if any night failed for another reason.
    """
    from pipeline.runners import backfill as run_backfill  # lazy: TFX and TensorFlow
    from pipeline.runners import backfill_spans  # lazy: TFX and TensorFlow

    try:
        spans = backfill_spans(config, span_range["from"], span_range["to"])
    except InputError as err:
        fail(str(err))
    console.print(f"backfilling {len(spans)} nights {spans[0]} .. {spans[-1]} ({config.data.root})")
    outcomes = []
    try:
        for night in run_backfill(config, spans, runner):
            outcomes.append(night)
            console.print(
                f"night {night.span}: {escape(night.status)} ({night.seconds:.0f}s) {escape(night.detail)}",
                highlight=False,
            )
    except NightLocked as err:
        fail(str(err), EXIT_LOCKED)
    print_history(read_history(config))
    broken = [night.span for night in outcomes if night.status == "failed"]
    if broken:
        fail(f"nights {broken} failed for a reason other than their data; see their reports")
    sys.exit(worst([EXIT_CODES[night.status] for night in outcomes]))


def print_summary(summary, config, seconds: float) -> None:
    table = Table(title=f"recpipe run ({seconds:.0f}s)", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    table.add_row("span", str(summary.span))
    if summary.plan:
        table.add_row("plan", summary.plan)
    table.add_row("events", ", ".join(f"{k}: {v:,}" for k, v in summary.split_counts.items()) or "-")
    table.add_row("anomalies", escape("\n".join(summary.anomalies)) or "none")
    if summary.drift_not_compared:
        table.add_row("drift", f"[yellow]{escape(summary.drift_not_compared)}[/]")
    for gate in summary.gates:
        value = "n/a" if gate.value is None else f"{gate.value:.4f}"
        rule = f">= {gate.lower_bound}"
        if gate.baseline is not None:
            rule += f" and >= baseline {gate.baseline:.4f} - {gate.max_drop}"
        verdict = "[green]pass[/]" if gate.passed else "[red]FAIL[/]"
        table.add_row(gate.metric, f"{value}  (bar: {rule})  {verdict}")
    if summary.slice_auc:
        table.add_row(
            "AUC by slice",
            ", ".join(f"{k}: {auc:.3f} (n={n:,})" for k, (auc, n) in sorted(summary.slice_auc.items())),
        )
    if summary.gates and not summary.has_baseline:
        table.add_row("baseline", "none yet (first blessed model): absolute bars only")
    blessed = {True: "[green]BLESSED[/]", False: "[red]NOT BLESSED[/]", None: "not evaluated"}[
        summary.blessed
    ]
    table.add_row("decision", blessed)
    if summary.feed_gate:
        table.add_row("feed quality", summary.feed_gate)
    if summary.serving_check:
        table.add_row("serving check", summary.serving_check)
    if summary.push_reason and not summary.pushed:
        table.add_row("push", summary.push_reason)
    table.add_row("nodes", ", ".join(f"{k}={v}" for k, v in sorted(summary.node_states.items())))
    console.print(table)
    # Paths on lines of their own, unwrapped, so they can be copied.
    click.echo(f"pushed model: {summary.pushed_path if summary.pushed else 'nothing pushed'}")
    click.echo(f"evaluation report: {summary.evaluation_uri or '-'}")
    click.echo(f"metadata (MLMD): {config.metadata_path}")
    if summary.report_path:
        click.echo(f"night report: {summary.report_path}")


COMMANDS = (run, backfill)
