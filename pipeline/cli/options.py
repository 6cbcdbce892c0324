"""What every command shares: the one --config option (loaded one way), the consoles and a one-line exit."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape

from pipeline.config import ConfigError, RecpipeConfig, load_config, resolve_paths
from pipeline.data.layout import parse_span

LOCAL_CONFIG = "configs/local.yaml"
KUBEFLOW_CONFIG = "configs/kubeflow.yaml"

console = Console(soft_wrap=True)  # never break a path or an error across lines
err_console = Console(stderr=True, soft_wrap=True)


def fail(message: str, code: int = 1) -> None:
    err_console.print(f"[bold red]error:[/] {escape(message)}")  # "[train] feature ..." is not markup
    sys.exit(code)


def load(path: str, local: bool = True, **overrides) -> RecpipeConfig:
    """The config at `path` with `overrides`; `local`: its relative paths made absolute against the working
    directory (a local run), else kept as written (a Kubeflow spec, resolved in its pods). Exits on errors."""
    try:
        config = load_config(path)
        config = config.with_overrides(**overrides) if overrides else config
        return resolve_paths(config, Path.cwd()) if local else config
    except ConfigError as err:
        fail(str(err))


def config_option(default: str = LOCAL_CONFIG, local: bool = True, required: bool = True):
    """--config PATH, passed to the command as `config`, a loaded RecpipeConfig (None when not `required`
    and the default file is absent)."""

    def convert(ctx, param, value: str) -> RecpipeConfig | None:
        if not required and value == default and not Path(value).is_file():
            return None
        return load(value, local)

    return click.option(
        "--config", "config", default=default, show_default=True, type=click.Path(), callback=convert
    )


def override(config: RecpipeConfig, **overrides) -> RecpipeConfig:
    """`config` with command-line overrides (paths among them made absolute). Exits on errors."""
    try:
        return resolve_paths(config.with_overrides(**overrides), Path.cwd()) if overrides else config
    except ConfigError as err:
        fail(str(err))


def span_option(flag: str, required: bool = False, help: str = ""):
    """A span given as YYYYMMDD or YYYY-MM-DD, passed on as its span number."""

    def convert(ctx, param, value: str | None) -> int | None:
        if value is None:
            return None
        try:
            return parse_span(value)
        except ValueError as err:
            raise click.BadParameter(str(err)) from None

    return click.option(flag, required=required, default=None, callback=convert, help=help)
