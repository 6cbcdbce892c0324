"""`python -m pipeline.cli` is `recpipe`."""

from pipeline.cli import entry_point

entry_point()
