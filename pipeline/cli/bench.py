"""`recpipe bench-quality`: the MovieLens quality harness of bench/, which lives in the source checkout and
is not installed with the package."""

from __future__ import annotations

import dataclasses
import importlib
import json
import shutil
import sys
from pathlib import Path

import click

from pipeline.cli.options import console, fail


def _bench_quality():
    """bench.quality from the source checkout in the working directory; a clear error elsewhere."""
    checkout = Path.cwd()
    if not (checkout / "bench" / "quality.py").is_file():
        fail(
            f"bench-quality runs from a recpipe source checkout (no bench/quality.py under {checkout}); "
            "cd to the repository and run it again"
        )
    if str(checkout) not in sys.path:
        sys.path.insert(0, str(checkout))
    return importlib.import_module("bench.quality"), checkout


@click.command("bench-quality")
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
    from pydantic import ValidationError

    from pipeline.data.movielens import read_genres, read_ratings  # lazy: TensorFlow

    quality, checkout = _bench_quality()
    try:
        settings = quality.load_quality_config(config_path)
        ratings = read_ratings(path)  # a bad file fails here, before minutes of work
    except (FileNotFoundError, ValueError, ValidationError) as err:
        fail(f"{config_path if isinstance(err, ValidationError) else path}: {err}")
    work_dir = Path(work).resolve()
    shutil.rmtree(work_dir, ignore_errors=True)
    genres = read_genres(Path(path) if Path(path).is_dir() else Path(path).parent)
    results = quality.run_quality(
        ratings, genres, work_dir, settings, checkout, tuple(protocols), progress=console.print
    )
    console.print(quality.render_quality(results), markup=False)
    if json_out:
        Path(json_out).write_text(json.dumps([dataclasses.asdict(r) for r in results], indent=1))


COMMANDS = (bench_quality,)
