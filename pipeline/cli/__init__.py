"""The recpipe command line, one module per command group. Commands parse arguments, call one library
function and print; no pipeline logic lives here. Failures exit non-zero with a one-line reason.

Each command imports what it runs inside its own body, so `recpipe --help` and the light commands never
load TensorFlow.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TF C++ start-up noise; Python errors still show

import click

from components import storage
from pipeline.cli import bench, data, kubeflow, records, run, serving


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """recpipe: a nightly TFX pipeline from click logs to a gated NeuMF recommender on TF Serving."""


for group in (data, run, records, serving, kubeflow, bench):
    for command in group.COMMANDS:
        main.add_command(command)


def entry_point() -> None:
    """`recpipe`: the click group, ending with its own exit code even when the S3 plugin took over the
    process's exit (components/storage.py)."""
    try:
        main()
    except SystemExit as done:
        storage.set_exit_code(done.code)
        raise
