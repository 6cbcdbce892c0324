"""The recpipe command line. Commands parse arguments, call one library function and print; no pipeline
logic lives here. Failures exit non-zero with a one-line reason (the details follow on stderr)."""

from __future__ import annotations

import datetime as dt
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TF C++ start-up noise; Python errors still show

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from pipeline.config import ConfigError, load_config, resolve_paths
from pipeline.synthetic import DRIFTS, SyntheticSpec

console = Console(soft_wrap=True)  # never break a path or an error across lines
err_console = Console(stderr=True, soft_wrap=True)


def _fail(message: str, code: int = 1) -> None:
    err_console.print(f"[bold red]error:[/] {escape(message)}")  # "[train] feature ..." is not markup
    sys.exit(code)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """recpipe: a nightly TFX pipeline from click logs to a gated NeuMF recommender on TF Serving."""


@main.command()
@click.option(
    "--out", required=True, type=click.Path(file_okay=False), help="Folder to write span-YYYYMMDD/ into."
)
@click.option(
    "--days",
    default=SyntheticSpec.days,
    show_default=True,
    type=click.IntRange(1),
    help="Number of daily spans.",
)
@click.option(
    "--events-per-day", default=SyntheticSpec.events_per_day, show_default=True, type=click.IntRange(1)
)
@click.option("--seed", default=SyntheticSpec.seed, show_default=True, type=int, help="Same seed, same log.")
@click.option("--users", default=SyntheticSpec.users, show_default=True, type=click.IntRange(1))
@click.option("--items", default=SyntheticSpec.items, show_default=True, type=click.IntRange(1))
@click.option("--start", default="2024-01-01", show_default=True, help="Date of the first span (YYYY-MM-DD).")
@click.option(
    "--exposure-zipf",
    default=SyntheticSpec.exposure_zipf,
    show_default=True,
    type=click.FloatRange(0),
    help="Zipf exponent of how often items are shown; 0 shows every item equally often.",
)
@click.option(
    "--drift",
    "drift",
    multiple=True,
    type=click.Choice(sorted(DRIFTS)),
    help="Shift this feature on the drift day(s), to test the drift gate: "
    + "; ".join(f"{k}: {v}" for k, v in DRIFTS.items()),
)
@click.option(
    "--drift-day",
    "drift_days",
    multiple=True,
    help="Date (YYYY-MM-DD) of a drifted day; default with --drift: the last day generated.",
)
def generate(
    out: str,
    days: int,
    events_per_day: int,
    seed: int,
    users: int,
    items: int,
    start: str,
    exposure_zipf: float,
    drift: tuple[str, ...],
    drift_days: tuple[str, ...],
) -> None:
    """Write a synthetic click log with learnable structure (gzip TFRecord, one folder per day)."""
    from rich.progress import Progress

    from pipeline.synthetic import generate as write_log

    try:
        start_day = dt.date.fromisoformat(start)
        drift_dates = [dt.date.fromisoformat(d) for d in drift_days]
    except ValueError as err:
        _fail(f"--start / --drift-day must be dates YYYY-MM-DD ({err})")
    if drift_dates and not drift:
        _fail("--drift-day needs --drift FEATURE (which feature to shift)")
    drift_index = tuple((d - start_day).days for d in drift_dates) or ((days - 1,) if drift else ())
    outside = [d for d, i in zip(drift_dates, drift_index, strict=False) if not 0 <= i < days]
    if outside:
        _fail(f"--drift-day {outside[0]} is outside the generated days {start_day} .. (+{days - 1} days)")
    spec = SyntheticSpec(
        drift=drift,
        drift_days=drift_index,
        days=days,
        events_per_day=events_per_day,
        seed=seed,
        users=users,
        items=items,
        start=start_day,
        exposure_zipf=exposure_zipf,
    )
    t0 = time.time()
    with Progress(console=err_console, transient=True) as progress:
        task = progress.add_task("generating click log", total=days * events_per_day)
        try:
            written = write_log(out, spec, progress=lambda n: progress.advance(task, n))
        except FileExistsError as err:
            _fail(str(err))
    console.print(
        f"wrote {sum(written.values()):,} events in {len(written)} spans to {out} ({time.time() - t0:.1f}s)"
    )
    for i in drift_index:
        console.print(
            f"drifted span {start_day + dt.timedelta(days=i):%Y%m%d}: " + "; ".join(DRIFTS[f] for f in drift)
        )


@main.command("import-movielens")
@click.argument("path", type=click.Path(exists=True))
@click.option("--out", required=True, type=click.Path(file_okay=False))
@click.option(
    "--granularity",
    type=click.Choice(["day", "week", "month", "year", "all"]),
    default="day",
    show_default=True,
    help="Span size by rating timestamp ('all': one span).",
)
@click.option(
    "--label",
    type=click.Choice(["threshold", "all"]),
    default="threshold",
    show_default=True,
    help="'threshold': clicked = rating >= --click-threshold; 'all': every rating is a click.",
)
@click.option("--click-threshold", default=4.0, show_default=True, type=float)
@click.option(
    "--negatives",
    default=0,
    show_default=True,
    type=click.IntRange(0),
    help="Unrated movies sampled per rating as extra non-click impressions.",
)
@click.option("--seed", default=0, show_default=True, type=int)
def import_movielens_cmd(
    path: str, out: str, granularity: str, label: str, click_threshold: float, negatives: int, seed: int
) -> None:
    """Convert MovieLens ratings (ratings.csv, ratings.dat or u.data; a file or its folder) into the click log."""
    from pipeline.movielens import ImportOptions, import_movielens

    options = ImportOptions(
        granularity=granularity,
        label=label,
        click_threshold=click_threshold,
        negatives_per_rating=negatives,
        seed=seed,
    )
    try:
        summary = import_movielens(path, out, options)
    except (FileNotFoundError, FileExistsError, ValueError) as err:
        _fail(str(err))
    events = sum(s["events"] for s in summary.values())
    clicks = sum(s["clicks"] for s in summary.values())
    console.print(
        f"wrote {events:,} impressions ({clicks:,} clicks) in {len(summary)} spans to {out}; "
        f"newest span {max(summary)}"
    )


@main.command()
@click.option("--config", "config_path", default="configs/local.yaml", show_default=True, type=click.Path())
@click.option("--runner", type=click.Choice(["local", "beam"]), default="local", show_default=True)
@click.option("--span", default=None, help="Run on this span (YYYYMMDD) instead of the config's.")
@click.option("--data", "data_root", default=None, type=click.Path(), help="Override data.root.")
def run(config_path: str, runner: str, span: str | None, data_root: str | None) -> None:
    """Run the whole pipeline locally (ExampleGen .. Pusher) and print what it decided."""
    from pipeline.history import EXIT_BAD_INPUT, EXIT_CODES, EXIT_LOCKED, status_of
    from pipeline.night import Interrupted, raise_on_sigterm
    from pipeline.night_lock import NightLocked
    from pipeline.preflight import InputError
    from pipeline.runners import RunFailed, run_pipeline

    raise_on_sigterm()
    overrides = {}
    if span is not None:
        overrides["data.span"] = int(span) if span.isdigit() else span
    if data_root is not None:
        overrides["data.root"] = data_root
    config = _local_config(config_path, **overrides)
    console.print(
        f"running pipeline [bold]{config.pipeline_name}[/] on {runner} runner "
        f"(data {config.data.root}, span {config.data.span})"
    )
    t0 = time.time()
    try:
        summary = run_pipeline(config, runner)
    except InputError as err:
        _fail(str(err), EXIT_BAD_INPUT)
    except NightLocked as err:
        _fail(str(err), EXIT_LOCKED)
    except RunFailed as err:
        print_summary(err.summary, config, time.time() - t0)
        if isinstance(err.__cause__, Interrupted):
            running = [n for n, s in err.summary.node_states.items() if s not in ("COMPLETE", "CACHED")]
            _fail(
                f"interrupted by SIGTERM while running {', '.join(running) or 'the pipeline'}; nothing was "
                "pushed. Run the same command again: components that finished are reused from the cache",
                128 + 15,
            )
        _fail(f"the run stopped: {err}", EXIT_CODES[status_of(err.summary, err.__cause__)])
    print_summary(summary, config, time.time() - t0)
    sys.exit(EXIT_CODES[status_of(summary, None)])


def _local_config(config_path: str, **overrides):
    try:
        config = load_config(config_path)
        config = config.with_overrides(**overrides) if overrides else config
        return resolve_paths(config, Path.cwd())
    except ConfigError as err:
        _fail(str(err))


def _span_arg(value: str, flag: str) -> int:
    try:
        return int(dt.datetime.strptime(value.replace("-", ""), "%Y%m%d").strftime("%Y%m%d"))
    except ValueError:
        _fail(f"{flag} {value!r} is not a date YYYYMMDD")


@main.command()
@click.option("--config", "config_path", default="configs/local.yaml", show_default=True, type=click.Path())
@click.option("--from", "first", required=True, help="First night's span, YYYYMMDD.")
@click.option("--to", "last", required=True, help="Last night's span, YYYYMMDD.")
@click.option("--runner", type=click.Choice(["local", "beam"]), default="local", show_default=True)
def backfill(config_path: str, first: str, last: str, runner: str) -> None:
    """Run the nights from --from to --to one by one over existing spans, as the schedule would have.

    A night stopped by bad or drifted data does not stop the backfill (the schedule would go on the next
    night too); the exit status is 1 if any night failed for another reason.
    """
    from pipeline.clicklog import list_spans
    from pipeline.history import EXIT_CODES, EXIT_LOCKED, read_history, worst
    from pipeline.night_lock import NightLocked
    from pipeline.preflight import InputError
    from pipeline.runners import RunFailed, run_pipeline

    config = _local_config(config_path)
    lo, hi = _span_arg(first, "--from"), _span_arg(last, "--to")
    nights = [s for s in list_spans(config.data.root) if lo <= s <= hi]
    if not nights:
        _fail(f"no span folders between {lo} and {hi} under {config.data.root}")
    console.print(f"backfilling {len(nights)} nights {nights[0]} .. {nights[-1]} ({config.data.root})")
    broken, codes = [], []
    for span in nights:
        t0 = time.time()
        try:
            summary = run_pipeline(config.with_overrides(**{"data.span": span}), runner)
            outcome = "pushed" if summary.pushed else ("blessed" if summary.blessed else "not blessed")
        except NightLocked as err:
            _fail(str(err), EXIT_LOCKED)
        except (InputError, RunFailed) as err:
            outcome = f"stopped: {str(err).splitlines()[0][:160]}"
        record = read_history(config)[-1]
        codes.append(EXIT_CODES[record.status])
        if record.status == "failed":
            broken.append(span)
        console.print(
            f"night {span}: {escape(record.status)} ({time.time() - t0:.0f}s) {escape(outcome)}",
            highlight=False,
        )
    _print_history(read_history(config))
    if broken:
        _fail(f"nights {broken} failed for a reason other than their data; see their reports")
    sys.exit(worst(codes))


def _print_history(records) -> None:
    from pipeline.history import latest_per_span

    table = Table(title="recpipe nights (latest run of each span)", title_justify="left")
    columns = (
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
        "version",
        "s",
    )
    for name in columns:
        table.add_column(name, justify="left" if name in ("span", "status", "start") else "right")

    def num(v, digits=4):
        return "-" if v is None else (f"{v:.{digits}f}" if isinstance(v, float) else f"{v:,}")

    for span, r in sorted(latest_per_span(records).items()):
        start = "warm" if r.warm_start_from else "scratch"
        new = "-" if r.new_users is None else f"{r.new_users:,}/{r.new_items:,}"
        table.add_row(
            str(span),
            r.status,
            start,
            num(r.events),
            num(r.users),
            num(r.items),
            new,
            num(r.auc),
            num(r.auc_baseline),
            num(r.ndcg),
            num(r.ndcg_baseline),
            str(r.pushed_version or "-"),
            f"{r.seconds:.0f}",
        )
    # A pipe or a log file is not 80 columns: there, print the whole table rather than truncate cells.
    (console if console.is_terminal else Console(width=170)).print(table)


@main.command()
@click.option("--config", "config_path", default="configs/local.yaml", show_default=True, type=click.Path())
@click.option(
    "--json", "as_json", is_flag=True, help="Every run's full record as JSON (all runs, oldest first)."
)
def history(config_path: str, as_json: bool) -> None:
    """Per night: events, users, items, new ids, AUC, NDCG@k, baselines, blessed or not, pushed version,
    duration. New ids are ids the model had no row for in the model it warm-started from."""
    import dataclasses
    import json

    from pipeline.history import read_history

    records = read_history(_local_config(config_path))
    if as_json:
        click.echo(json.dumps([dataclasses.asdict(r) for r in records], indent=1, default=str))
        return
    if not records:
        _fail("no nights recorded yet; run `recpipe run` or `recpipe backfill` first")
    _print_history(records)


@main.command()
@click.argument("run", required=False)
@click.option("--config", "config_path", default="configs/local.yaml", show_default=True, type=click.Path())
def report(run: str | None, config_path: str) -> None:
    """(Re)render the HTML report of RUN (a span YYYYMMDD, a run name; default: the newest run) and
    print its path."""
    from pipeline.history import find_record
    from pipeline.report import write_report

    config = _local_config(config_path)
    try:
        record = find_record(config, run)
    except LookupError as err:
        _fail(str(err))
    click.echo(str(write_report(config, record)))


def print_summary(summary, config, seconds: float) -> None:
    table = Table(title=f"recpipe run ({seconds:.0f}s)", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    table.add_row("span", str(summary.span))
    if summary.plan:
        table.add_row("plan", summary.plan)
    table.add_row("events", ", ".join(f"{k}: {v:,}" for k, v in summary.split_counts.items()) or "-")
    table.add_row("anomalies", escape("\n".join(summary.anomalies)) or "none")
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


def _model_options(fn):
    fn = click.option(
        "--movies",
        type=click.Path(exists=True, dir_okay=False),
        default=None,
        help="MovieLens movies.csv: print titles next to item ids.",
    )(fn)
    fn = click.option(
        "--model-name", default=None, help="TF Serving model name (default: serving.model_name)."
    )(fn)
    fn = click.option("--endpoint", default=None, help="TF Serving REST endpoint, e.g. http://host:8501.")(fn)
    fn = click.option(
        "--model-dir",
        type=click.Path(exists=True, file_okay=False),
        default=None,
        help="A pushed model base path or a SavedModel folder (default: the config's serving path).",
    )(fn)
    fn = click.option(
        "--config", "config_path", default="configs/local.yaml", show_default=True, type=click.Path()
    )(fn)
    return click.option("--device", default="unknown", show_default=True, help="Request context: device.")(fn)


def _open_model(config_path: str, model_dir: str | None, endpoint: str | None, model_name: str | None):
    """--endpoint: TF Serving over REST; otherwise the newest pushed version, in this process."""
    from pipeline.serving import InProcessModel, RestModel

    try:
        if endpoint:
            name = model_name or (
                load_config(config_path).serving.model_name if Path(config_path).is_file() else "recommender"
            )
            return RestModel(endpoint, name)
        if model_dir is None:
            model_dir = resolve_paths(load_config(config_path), Path.cwd()).serving_model_dir
        return InProcessModel(model_dir)
    except (ConfigError, FileNotFoundError, ValueError) as err:
        _fail(str(err))


def _ask(question, model, *args):
    """One request to the model; a failed request (HTTP error, unreachable server) exits with its reason."""
    try:
        return question(model, *args)
    except RuntimeError as err:
        _fail(str(err))


def _titles(movies: str | None) -> dict[str, str]:
    if not movies:
        return {}
    import pandas as pd

    frame = pd.read_csv(movies, dtype={"movieId": str})
    return dict(zip(frame["movieId"], frame["title"], strict=True))


@main.command("recommend")
@click.option("--user", required=True, help="User id, as in the click log.")
@click.option("-k", "k", default=10, show_default=True, type=click.IntRange(1, 1000))
@click.option("--exclude", default="", help="Comma-separated item ids not to recommend (e.g. already seen).")
@_model_options
def recommend_cmd(
    user: str,
    k: int,
    exclude: str,
    device: str,
    config_path: str,
    model_dir: str | None,
    endpoint: str | None,
    model_name: str | None,
    movies: str | None,
) -> None:
    """Top-k items for a user from the served model ("guess you like")."""
    from pipeline.serving import recommend

    model = _open_model(config_path, model_dir, endpoint, model_name)
    items = _ask(recommend, model, user, k, device, [e for e in exclude.split(",") if e])
    titles = _titles(movies)
    table = Table(title=f"top {len(items)} for user {user}", title_justify="left")
    for column in ("rank", "item_id", *(["title"] if titles else []), "score"):
        table.add_column(column)
    for rank, (item, score) in enumerate(items, 1):
        table.add_row(str(rank), item, *([titles.get(item, "?")] if titles else []), f"{score:.4f}")
    console.print(table)


@main.command("predict")
@click.option("--user", required=True)
@click.option("--items", required=True, help="Comma-separated item ids to score.")
@_model_options
def predict_cmd(
    user: str,
    items: str,
    device: str,
    config_path: str,
    model_dir: str | None,
    endpoint: str | None,
    model_name: str | None,
    movies: str | None,
) -> None:
    """Click probability of given items for a user (the ranking call)."""
    from pipeline.serving import score_items

    model = _open_model(config_path, model_dir, endpoint, model_name)
    scored = _ask(score_items, model, user, [i for i in items.split(",") if i], device)
    titles = _titles(movies)
    for item, score in scored:
        shown = f"{score:.4f}" if score is not None else "unknown item (not in the model's catalogue)"
        click.echo(f"{item}\t{titles.get(item, '')}\t{shown}" if titles else f"{item}\t{shown}")


@main.command()
@click.option("--config", "config_path", default="configs/local.yaml", show_default=True, type=click.Path())
@click.option(
    "--to",
    "to_version",
    type=int,
    default=None,
    help="Version to serve (default: the one before the newest).",
)
def rollback(config_path: str, to_version: int | None) -> None:
    """Make an earlier pushed version the served one (newer versions move to <serving root>/.retired/)."""
    from components import storage
    from components.serving_layout import RETIRED
    from components.serving_layout import rollback as roll_back

    try:
        config = resolve_paths(load_config(config_path), Path.cwd())
        served, retired = roll_back(
            config.serving.root, config.serving.model_name, to_version, config.serving.base_path_in_server
        )
    except (ConfigError, FileNotFoundError, ValueError, PermissionError) as err:
        _fail(str(err))
    moved = ", ".join(map(str, retired)) or "none"
    console.print(
        f"{config.serving.model_name}: now serving version {served}; retired {moved} to "
        f"{storage.join(config.serving.root, RETIRED, config.serving.model_name)}; models.config rewritten"
    )


def _kubeflow_config(config_path: str):
    try:
        return load_config(config_path)
    except ConfigError as err:
        _fail(str(err))


@main.command("compile")
@click.option(
    "--config", "config_path", default="configs/kubeflow.yaml", show_default=True, type=click.Path()
)
@click.option(
    "-o", "--output", default="build/pipeline.yaml", show_default=True, type=click.Path(dir_okay=False)
)
def compile_cmd(config_path: str, output: str) -> None:
    """Compile the nightly Kubeflow (KFP v2) pipeline to a YAML the kfp client and UI accept."""
    from pipeline.kubeflow import compile_pipeline

    config = _kubeflow_config(config_path)
    try:
        path = compile_pipeline(config, output)
    except ValueError as err:
        _fail(str(err))
    console.print(f"compiled {config.pipeline_name} ({config.kubeflow.image}) to {path}")


def _kfp_options(fn):
    fn = click.option(
        "--param",
        "params",
        multiple=True,
        help="Run parameter name=value (night, auc_lower_bound, ndcg_lower_bound, epochs); repeatable.",
    )(fn)
    fn = click.option(
        "--host", default=None, help="KFP API endpoint (default: kubeflow.host or KF_PIPELINES_ENDPOINT)."
    )(fn)
    fn = click.option(
        "--package",
        default=None,
        type=click.Path(exists=True, dir_okay=False),
        help="A compiled pipeline.yaml (default: compile the config now).",
    )(fn)
    return click.option(
        "--config", "config_path", default="configs/kubeflow.yaml", show_default=True, type=click.Path()
    )(fn)


def _package(config, package: str | None) -> str:
    if package:
        return package
    import tempfile

    from pipeline.kubeflow import compile_pipeline

    return str(compile_pipeline(config, Path(tempfile.mkdtemp(prefix="recpipe-kfp-")) / "pipeline.yaml"))


@main.command()
@_kfp_options
@click.option("--run-name", default=None, help="Default: <pipeline name> <UTC time>.")
def submit(
    config_path: str, package: str | None, host: str | None, params: tuple[str, ...], run_name: str | None
) -> None:
    """Start one run of the pipeline now on Kubeflow Pipelines."""
    from pipeline.kfp_client import submit as submit_run

    config = _kubeflow_config(config_path)
    name = run_name or f"{config.pipeline_name} {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M:%S}"
    kfp_, run = _with_kfp(
        config, host, params, lambda k, values: submit_run(k, config, _package(config, package), values, name)
    )
    console.print(
        f"submitted run {run.run_id} ({name}) to {kfp_.host}, experiment {config.kubeflow.experiment}"
    )


@main.command("schedule")
@_kfp_options
@click.option(
    "--cron", default=None, help="KFP cron, 6 fields, seconds first (default: kubeflow.schedule_cron)."
)
@click.option(
    "--name", default=None, help="Schedule name (default: <pipeline name> nightly); reused to update."
)
def schedule_cmd(
    config_path: str,
    package: str | None,
    host: str | None,
    params: tuple[str, ...],
    cron: str | None,
    name: str | None,
) -> None:
    """Create or update the recurring nightly run (max 1 at a time, no catch-up)."""
    from pipeline.config import check_kfp_cron
    from pipeline.kfp_client import schedule

    config = _kubeflow_config(config_path)
    name = name or f"{config.pipeline_name} nightly"
    try:
        cron = check_kfp_cron(cron or config.kubeflow.schedule_cron)  # refused before any request
    except ValueError as err:
        _fail(str(err))
    kfp_, (created, replaced) = _with_kfp(
        config,
        host,
        params,
        lambda k, values: schedule(k, config, _package(config, package), values, name, cron),
    )
    verb = f"updated (replaced {', '.join(replaced)})" if replaced else "created"
    console.print(
        f"schedule {name!r} {verb}: {created.recurring_run_id}, cron '{cron}', max_concurrency 1, "
        f"no catch-up, on {kfp_.host}"
    )


def _with_kfp(config, host: str | None, params: tuple[str, ...], action):
    """Parse --param, connect, run action(kfp, values); any KFP failure exits with its one-line reason."""
    from pipeline.kfp_client import KfpError, connect, parse_params

    try:
        values = parse_params(params)
        kfp_ = connect(config, host)
        return kfp_, action(kfp_, values)
    except KfpError as err:
        _fail(str(err))


@main.command()
@click.option(
    "--config", "config_path", default="configs/kubeflow.yaml", show_default=True, type=click.Path()
)
@click.option("--host", default=None)
@click.option("--limit", default=10, show_default=True, type=click.IntRange(1, 100))
def runs(config_path: str, host: str | None, limit: int) -> None:
    """Recent runs of the experiment and their state."""
    from pipeline.kfp_client import KfpError, connect, recent_runs

    config = _kubeflow_config(config_path)
    try:
        rows = recent_runs(connect(config, host), config, limit)
    except KfpError as err:
        _fail(str(err))
    table = Table(title=f"runs of {config.kubeflow.experiment}", title_justify="left")
    for column in ("created", "run", "state", "id"):
        table.add_column(column)
    for run in rows:
        table.add_row(str(run.created_at), run.display_name or "", str(run.state), run.run_id)
    console.print(table)


@main.group()
def schema() -> None:
    """Schema helpers."""


@schema.command("infer")
@click.option("--data", "data_root", required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--span", default=None, help="Span YYYYMMDD (default: newest).")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Where to write schema.pbtxt.")
def schema_infer(data_root: str, span: str | None, out: str) -> None:
    """Bootstrap a schema from one span with TFDV; curate domains and ranges by hand afterwards."""
    import tensorflow_data_validation as tfdv

    from components import storage
    from pipeline.clicklog import SHARD_PATTERN, list_spans, span_files

    spans = list_spans(data_root)
    if not spans:
        _fail(f"no span-YYYYMMDD folders under {data_root}")
    target = int(span) if span else spans[-1]
    files = span_files(data_root, target)
    if not files:
        _fail(f"span {target} has no {SHARD_PATTERN} files under {data_root}")
    stats = tfdv.generate_statistics_from_tfrecord(
        data_location=storage.join(storage.parent(files[0]), SHARD_PATTERN)
    )
    tfdv.write_schema_text(tfdv.infer_schema(stats), out)
    console.print(f"wrote {out} from span {target}; review presence, domains and ranges before using it")


@main.command("bench-quality")
@click.argument("path", type=click.Path(exists=True))
@click.option(
    "--config", "config_path", default="configs/bench-quality.yaml", show_default=True, type=click.Path()
)
@click.option(
    "--protocol", "protocols", multiple=True, type=click.Choice(["ncf", "msr"]), default=("ncf", "msr")
)
@click.option("--work", default="build/bench-quality", show_default=True, type=click.Path(file_okay=False))
@click.option(
    "--json", "json_out", default=None, type=click.Path(dir_okay=False), help="Also write results here."
)
def bench_quality(
    path: str, config_path: str, protocols: tuple[str, ...], work: str, json_out: str | None
) -> None:
    """Rank quality on MovieLens (ratings.csv, ratings.dat or u.data) under the NCF and Microsoft
    Recommenders protocols: our pipeline-trained NeuMF against most-popular, BPR-MF and EASE."""
    import dataclasses
    import json
    import shutil

    from pydantic import ValidationError

    from pipeline.movielens import read_genres, read_ratings
    from pipeline.quality import load_quality_config, render_quality, run_quality

    try:
        settings = load_quality_config(config_path)
        ratings = read_ratings(path)  # a bad file fails here, before minutes of work
    except (FileNotFoundError, ValueError, ValidationError) as err:
        _fail(f"{config_path if isinstance(err, ValidationError) else path}: {err}")
    work_dir = Path(work).resolve()
    shutil.rmtree(work_dir, ignore_errors=True)
    repo = Path(__file__).resolve().parents[1]
    genres = read_genres(Path(path) if Path(path).is_dir() else Path(path).parent)
    results = run_quality(ratings, genres, work_dir, settings, repo, tuple(protocols), progress=console.print)
    console.print(render_quality(results), markup=False)
    if json_out:
        Path(json_out).write_text(json.dumps([dataclasses.asdict(r) for r in results], indent=1))


def entry_point() -> None:
    """`recpipe`: the click group, ending with its own exit code even when the S3 plugin took over the
    process's exit (components/storage.py)."""
    from components import storage

    try:
        main()
    except SystemExit as done:
        storage.set_exit_code(done.code)
        raise


if __name__ == "__main__":
    entry_point()
