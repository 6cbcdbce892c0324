"""Ask the served model (`recommend`, `predict`) and change which version is served (`rollback`)."""

from __future__ import annotations

import functools

import click
from rich.table import Table

from components import storage
from components.serving_layout import RETIRED
from components.serving_layout import rollback as roll_back
from pipeline.cli.options import config_option, console, fail
from pipeline.config import ServingConfig


def _model_options(fn):
    """The options that say which model to ask; the command gets the opened `model`, the request's
    `device` and the item `titles` (empty without --movies)."""

    @functools.wraps(fn)
    def command(device, config, model_dir, endpoint, model_name, movies, **arguments):
        model = _open_model(config, model_dir, endpoint, model_name)
        return fn(model=model, device=device, titles=_titles(movies), **arguments)

    for option in reversed(
        (
            click.option("--device", default="unknown", show_default=True, help="Request context: device."),
            config_option(required=False),
            click.option(
                "--model-dir",
                type=click.Path(exists=True, file_okay=False),
                default=None,
                help="A pushed model base path or a SavedModel folder (default: the config's serving path).",
            ),
            click.option("--endpoint", default=None, help="TF Serving REST endpoint, e.g. http://host:8501."),
            click.option(
                "--model-name", default=None, help="TF Serving model name (default: serving.model_name)."
            ),
            click.option(
                "--movies",
                type=click.Path(exists=True, dir_okay=False),
                default=None,
                help="MovieLens movies.csv: print titles next to item ids.",
            ),
        )
    ):
        command = option(command)
    return command


def _open_model(config, model_dir: str | None, endpoint: str | None, model_name: str | None):
    """--endpoint: TF Serving over REST; otherwise the newest pushed version, in this process."""
    from pipeline.serving_client import InProcessModel, RestModel  # lazy: TensorFlow

    try:
        if endpoint:
            serving = config.serving if config else ServingConfig()
            return RestModel(endpoint, model_name or serving.model_name)
        if model_dir is None:
            if config is None:
                fail("no config file: give --model-dir (a pushed model) or --config")
            model_dir = config.serving_model_dir
        return InProcessModel(model_dir)
    except (FileNotFoundError, ValueError) as err:
        fail(str(err))


def _ask(question, model, *args):
    """One request to the model; a failed request (HTTP error, unreachable server) exits with its reason."""
    try:
        return question(model, *args)
    except RuntimeError as err:
        fail(str(err))


def _titles(movies: str | None) -> dict[str, str]:
    if not movies:
        return {}
    import pandas as pd  # lazy: only with --movies

    frame = pd.read_csv(movies, dtype={"movieId": str})
    return dict(zip(frame["movieId"], frame["title"], strict=True))


@click.command("recommend")
@click.option("--user", required=True, help="User id, as in the click log.")
@click.option("-k", "k", default=10, show_default=True, type=click.IntRange(1, 1000))
@click.option("--exclude", default="", help="Comma-separated item ids not to recommend (e.g. already seen).")
@_model_options
def recommend(user: str, k: int, exclude: str, model, device: str, titles: dict[str, str]) -> None:
    """Top-k items for a user from the served model ("guess you like")."""
    from pipeline.serving_client import recommend as top_k  # lazy: TensorFlow

    items = _ask(top_k, model, user, k, device, [e for e in exclude.split(",") if e])
    table = Table(title=f"top {len(items)} for user {user}", title_justify="left")
    for column in ("rank", "item_id", *(["title"] if titles else []), "score"):
        table.add_column(column)
    for rank, (item, score) in enumerate(items, 1):
        table.add_row(str(rank), item, *([titles.get(item, "?")] if titles else []), f"{score:.4f}")
    console.print(table)


@click.command("predict")
@click.option("--user", required=True)
@click.option("--items", required=True, help="Comma-separated item ids to score.")
@_model_options
def predict(user: str, items: str, model, device: str, titles: dict[str, str]) -> None:
    """Click probability of given items for a user (the ranking call)."""
    from pipeline.serving_client import score_items  # lazy: TensorFlow

    scored = _ask(score_items, model, user, [i for i in items.split(",") if i], device)
    for item, score in scored:
        shown = f"{score:.4f}" if score is not None else "unknown item (not in the model's catalogue)"
        click.echo(f"{item}\t{titles.get(item, '')}\t{shown}" if titles else f"{item}\t{shown}")


@click.command()
@config_option()
@click.option(
    "--to",
    "to_version",
    type=int,
    default=None,
    help="Version to serve (default: the one before the newest).",
)
def rollback(config, to_version: int | None) -> None:
    """Make an earlier pushed version the served one (newer versions move to <serving root>/.retired/)."""
    serving = config.serving
    try:
        served, retired = roll_back(serving.root, serving.model_name, to_version, serving.base_path_in_server)
    except (FileNotFoundError, ValueError, PermissionError) as err:
        fail(str(err))
    moved = ", ".join(map(str, retired)) or "none"
    console.print(
        f"{serving.model_name}: now serving version {served}; retired {moved} to "
        f"{storage.join(serving.root, RETIRED, serving.model_name)}; models.config rewritten"
    )


COMMANDS = (recommend, predict, rollback)
