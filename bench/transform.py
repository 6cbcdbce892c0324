"""Transform alone, rerun on a finished run's inputs with and without its in-component statistics.

The measurement behind `transform.statistics`' default (docs/BENCHMARKS.md, load section): on a 10M-event
run Transform peaked at 7.5 GB, the only component far over the memory goal, and rerunning it alone tells
which part of it grows with the span without another hour-long run of the whole pipeline.

    python -m bench.transform build/bench/load/scale-10000000.yaml --no-statistics
"""

from __future__ import annotations

import resource
import time

import click

from pipeline import nodes
from pipeline.config import load_config
from pipeline.dag import create_pipeline
from pipeline.plan import plan_tonight


@click.command()
@click.argument("run_config", type=click.Path(exists=True, dir_okay=False))
@click.option("--statistics/--no-statistics", default=False, help="Transform's own TFDV statistics.")
def main(run_config: str, statistics: bool) -> None:
    """Rerun Transform (partial run, no cache) of the run that RUN_CONFIG describes; print its peak RSS."""
    from tfx import v1 as tfx
    from tfx.orchestration import pipeline as tfx_pipeline

    config = load_config(run_config).with_overrides(
        enable_cache=False, **{"transform.statistics": statistics}
    )
    started = time.monotonic()
    tfx.orchestration.LocalDagRunner().run(
        create_pipeline(config, plan_tonight(config)),
        run_options=tfx_pipeline.RunOptions(from_nodes=[nodes.TRANSFORM], to_nodes=[nodes.TRANSFORM]),
    )
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kilobytes
    click.echo(
        f"Transform alone, statistics {'on' if statistics else 'off'}: {time.monotonic() - started:.0f} s, "
        f"peak RSS of the process {peak_mb:,.0f} MB"
    )


if __name__ == "__main__":
    main()
