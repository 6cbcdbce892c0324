"""Click-log tools: generate a synthetic log, import MovieLens, bootstrap a schema."""

from __future__ import annotations

import datetime as dt
import time

import click

from pipeline.cli.options import config_option, console, err_console, fail, span_option
from pipeline.data.layout import SHARD_PATTERN
from pipeline.data.synthetic import DRIFTS, SyntheticSpec


@click.command()
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
@click.option(
    "--start",
    default=SyntheticSpec.start.isoformat(),
    show_default=True,
    help="Date of the first span (YYYY-MM-DD).",
)
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

    from pipeline.data.synthetic import generate as write_log  # lazy: TensorFlow writes the shards

    try:
        spec = SyntheticSpec(
            days=days,
            events_per_day=events_per_day,
            seed=seed,
            users=users,
            items=items,
            start=dt.date.fromisoformat(start),
            exposure_zipf=exposure_zipf,
        ).with_drift_on(drift, [dt.date.fromisoformat(d) for d in drift_days])
    except ValueError as err:
        fail(f"{err} (--start and --drift-day are dates YYYY-MM-DD)")
    started = time.time()
    with Progress(console=err_console, transient=True) as progress:
        task = progress.add_task("generating click log", total=days * events_per_day)
        try:
            written = write_log(out, spec, progress=lambda n: progress.advance(task, n))
        except FileExistsError as err:
            fail(str(err))
    console.print(
        f"wrote {sum(written.values()):,} events in {len(written)} spans to {out} ({time.time() - started:.1f}s)"
    )
    for i in spec.drift_days:
        console.print(f"drifted span {spec.day(i):%Y%m%d}: " + "; ".join(DRIFTS[f] for f in drift))


@click.command("import-movielens")
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
def import_movielens(
    path: str, out: str, granularity: str, label: str, click_threshold: float, negatives: int, seed: int
) -> None:
    """Convert MovieLens ratings (ratings.csv, ratings.dat or u.data; a file or its folder) into the click log."""
    from pipeline.data.movielens import ImportOptions, import_movielens  # lazy: TensorFlow writes the shards

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
        fail(str(err))
    events = sum(s["events"] for s in summary.values())
    clicks = sum(s["clicks"] for s in summary.values())
    console.print(
        f"wrote {events:,} impressions ({clicks:,} clicks) in {len(summary)} spans to {out}; "
        f"newest span {max(summary)}"
    )


@click.group()
def schema() -> None:
    """Schema helpers."""


@schema.command("infer")
@config_option(required=False)
@click.option(
    "--data", "data_root", default=None, type=click.Path(), help="Click-log root (default: data.root)."
)
@span_option("--span", help="Span YYYYMMDD (default: newest).")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Where to write schema.pbtxt.")
def schema_infer(config, data_root: str | None, span: int | None, out: str) -> None:
    """Bootstrap a schema from one span with TFDV; curate domains and ranges by hand afterwards."""
    from pipeline.data.clicklog import infer_schema  # lazy: TFDV and TensorFlow

    if config is None and data_root is None:
        fail("give --data (the click-log root) or a --config whose data.root to read")
    root = data_root or config.data.root
    pattern = config.data.file_pattern if config else SHARD_PATTERN
    try:
        target = infer_schema(root, span, out, pattern)
    except ValueError as err:
        fail(str(err))
    console.print(f"wrote {out} from span {target}; review presence, domains and ranges before using it")


COMMANDS = (generate, import_movielens, schema)
