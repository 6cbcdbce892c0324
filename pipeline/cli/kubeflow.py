"""Kubeflow Pipelines: compile the nightly spec, submit a run, schedule it, list runs."""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path

import click
from rich.table import Table

from pipeline.cli.options import KUBEFLOW_CONFIG, config_option, console, fail
from pipeline.config import check_kfp_cron
from pipeline.kubeflow.params import PIPELINE_PARAMETERS


def _kubeflow_config(fn):
    return config_option(KUBEFLOW_CONFIG, local=False)(fn)


@click.command("compile")
@_kubeflow_config
@click.option(
    "-o", "--output", default="build/pipeline.yaml", show_default=True, type=click.Path(dir_okay=False)
)
def compile_spec(config, output: str) -> None:
    """Compile the nightly Kubeflow (KFP v2) pipeline to a YAML the kfp client and UI accept."""
    from pipeline.kubeflow.dsl import compile_pipeline  # lazy: the KFP SDK

    try:
        path = compile_pipeline(config, output)
    except ValueError as err:
        fail(str(err))
    console.print(f"compiled {config.pipeline_name} ({config.kubeflow.image}) to {path}")


def _kfp_options(fn):
    fn = click.option(
        "--param",
        "params",
        multiple=True,
        help=f"Run parameter name=value ({', '.join(PIPELINE_PARAMETERS)}); repeatable.",
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
    return _kubeflow_config(fn)


def _package(config, package: str | None) -> str:
    if package:
        return package
    from pipeline.kubeflow.dsl import compile_pipeline  # lazy: the KFP SDK

    return str(compile_pipeline(config, Path(tempfile.mkdtemp(prefix="recpipe-kfp-")) / "pipeline.yaml"))


def _with_kfp(config, host: str | None, params: tuple[str, ...], action):
    """Parse --param, connect, run action(kfp, values); any KFP failure exits with its one-line reason."""
    from pipeline.kubeflow.client import KfpError, connect, parse_params  # lazy: the KFP SDK

    try:
        values = parse_params(params)
        kfp_ = connect(config, host)
        return kfp_, action(kfp_, values)
    except KfpError as err:
        fail(str(err))


@click.command()
@_kfp_options
@click.option("--run-name", default=None, help="Default: <pipeline name> <UTC time>.")
def submit(
    config, package: str | None, host: str | None, params: tuple[str, ...], run_name: str | None
) -> None:
    """Start one run of the pipeline now on Kubeflow Pipelines."""
    from pipeline.kubeflow.client import submit as submit_run  # lazy: the KFP SDK

    name = run_name or f"{config.pipeline_name} {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M:%S}"
    kfp_, run = _with_kfp(
        config, host, params, lambda k, values: submit_run(k, config, _package(config, package), values, name)
    )
    console.print(
        f"submitted run {run.run_id} ({name}) to {kfp_.host}, experiment {config.kubeflow.experiment}"
    )


@click.command()
@_kfp_options
@click.option(
    "--cron", default=None, help="KFP cron, 6 fields, seconds first (default: kubeflow.schedule_cron)."
)
@click.option(
    "--name", default=None, help="Schedule name (default: <pipeline name> nightly); reused to update."
)
def schedule(
    config,
    package: str | None,
    host: str | None,
    params: tuple[str, ...],
    cron: str | None,
    name: str | None,
) -> None:
    """Create or update the recurring nightly run (max 1 at a time, no catch-up)."""
    from pipeline.kubeflow.client import schedule as schedule_runs  # lazy: the KFP SDK

    name = name or f"{config.pipeline_name} nightly"
    try:
        cron = check_kfp_cron(cron or config.kubeflow.schedule_cron)  # refused before any request
    except ValueError as err:
        fail(str(err))
    kfp_, (created, replaced) = _with_kfp(
        config,
        host,
        params,
        lambda k, values: schedule_runs(k, config, _package(config, package), values, name, cron),
    )
    verb = f"updated (replaced {', '.join(replaced)})" if replaced else "created"
    console.print(
        f"schedule {name!r} {verb}: {created.recurring_run_id}, cron '{cron}', max_concurrency 1, "
        f"no catch-up, on {kfp_.host}"
    )


@click.command()
@_kubeflow_config
@click.option("--host", default=None)
@click.option("--limit", default=10, show_default=True, type=click.IntRange(1, 100))
def runs(config, host: str | None, limit: int) -> None:
    """Recent runs of the experiment and their state."""
    from pipeline.kubeflow.client import KfpError, connect, recent_runs  # lazy: the KFP SDK

    try:
        rows = recent_runs(connect(config, host), config, limit)
    except KfpError as err:
        fail(str(err))
    table = Table(title=f"runs of {config.kubeflow.experiment}", title_justify="left")
    for column in ("created", "run", "state", "id"):
        table.add_column(column)
    for run in rows:
        table.add_row(str(run.created_at), run.display_name or "", str(run.state), run.run_id)
    console.print(table)


COMMANDS = (compile_spec, submit, schedule, runs)
