"""What the nights did: the history table and each night's HTML report."""

from __future__ import annotations

import dataclasses
import json

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from pipeline.cli.options import config_option, console, fail
from pipeline.records.history import find_record, latest_per_span, read_history

HISTORY_COLUMNS = (
    "span",
    "status",
    "start",
    "events",
    "users",
    "items",
    "new u/i",
    "AUC",
    "base AUC",
    "NDCG",
    "base NDCG",
    "feed NDCG",
    "popular",
    "version",
    "s",
)


def _number(v, digits: int = 4) -> str:
    return "-" if v is None else (f"{v:.{digits}f}" if isinstance(v, float) else f"{v:,}")


def print_history(records) -> None:
    table = Table(title="recpipe nights (latest run of each span)", title_justify="left")
    for name in HISTORY_COLUMNS:
        table.add_column(name, justify="left" if name in ("span", "status", "start") else "right")
    for span, r in sorted(latest_per_span(records).items()):
        new = "-" if r.new_users is None else f"{r.new_users:,}/{r.new_items:,}"
        table.add_row(
            str(span),
            r.status,
            "warm" if r.warm_start_from else "scratch",
            _number(r.events),
            _number(r.users),
            _number(r.items),
            new,
            _number(r.auc),
            _number(r.auc_baseline),
            _number(r.ndcg),
            _number(r.ndcg_baseline),
            _number(r.feed_ndcg),
            _number(r.feed_ndcg_popularity),
            str(r.pushed_version or "-"),
            f"{r.seconds:.0f}",
        )
    # A pipe or a log file is not 80 columns: there, print the whole table rather than truncate cells.
    (console if console.is_terminal else Console(width=170)).print(table)
    for span, r in sorted(latest_per_span(records).items()):
        if r.drift_not_compared:
            console.print(f"span {span}: drift gate {escape(r.drift_not_compared)}", highlight=False)


@click.command()
@config_option()
@click.option(
    "--json", "as_json", is_flag=True, help="Every run's full record as JSON (all runs, oldest first)."
)
def history(config, as_json: bool) -> None:
    """Per night: events, users, items, new ids, AUC, NDCG@k, baselines, blessed or not, pushed version,
    duration. New ids are ids the model had no row for in the model it warm-started from."""
    records = read_history(config)
    if as_json:
        click.echo(json.dumps([dataclasses.asdict(r) for r in records], indent=1, default=str))
        return
    if not records:
        fail("no nights recorded yet; run `recpipe run` or `recpipe backfill` first")
    print_history(records)


@click.command()
@click.argument("run", required=False)
@config_option()
def report(run: str | None, config) -> None:
    """(Re)render the HTML report of RUN (a span YYYYMMDD, a run name; default: the newest run) and
    print its path."""
    from pipeline.records.report import write_report  # lazy: matplotlib

    try:
        record = find_record(config, run)
    except LookupError as err:
        fail(str(err))
    click.echo(str(write_report(config, record)))


COMMANDS = (history, report)
