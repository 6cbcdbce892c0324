"""The click-log layout `<root>/span-YYYYMMDD/part-NNNNN.tfrecord.gz`, named once (no TensorFlow here, so the
config and the CLI can read it cheaply)."""

from __future__ import annotations

import datetime as dt
import re

SPAN_DIR_RE = re.compile(r"^span-(\d{8})$")
SPAN_GLOB = "span-{SPAN}"  # ExampleGen's input pattern for the span folder
SHARD_PATTERN = "part-*.tfrecord.gz"


def span_folder(span: int) -> str:
    return f"span-{span}"


def span_dir_name(day: dt.date) -> str:
    return span_folder(span_number(day))


def span_number(day: dt.date) -> int:
    """TFX span number of a day: the YYYYMMDD digits that `{SPAN}` matches in the folder name."""
    return int(f"{day:%Y%m%d}")


def parse_span(value: str) -> int:
    """A span given by a user as YYYYMMDD or YYYY-MM-DD; ValueError names the value."""
    try:
        return span_number(dt.datetime.strptime(value.replace("-", ""), "%Y%m%d").date())
    except ValueError:
        raise ValueError(f"{value!r} is not a date YYYYMMDD") from None
