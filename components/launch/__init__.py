"""How training runs: run_fn's dispatch (trainer.py), worker processes on this machine (local.py), a
Kubeflow TFJob (tfjob.py).

Launch settings (trainer.workers, launcher, max_restarts, tfjob and the image) decide where the model
trains, never what it learns, so they stay out of the Trainer's custom_config, which TFX hashes into the
Trainer's cache key: changing them retrains nothing. The night hands them to run_fn through the
environment of the process that runs the Trainer (`launching`); without them run_fn trains in its own
process (unit tests, notebooks).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

LAUNCH_ENV = "RECPIPE_TRAINER_LAUNCH"


def current_launch() -> dict[str, Any]:
    """The launch settings of the night running in this process ({} = train in this process)."""
    return json.loads(os.environ.get(LAUNCH_ENV) or "{}")


@contextmanager
def launching(settings: dict[str, Any]) -> Iterator[None]:
    """Make `settings` the launch settings of every Trainer run inside the block."""
    before = os.environ.get(LAUNCH_ENV)
    os.environ[LAUNCH_ENV] = json.dumps(settings, sort_keys=True)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(LAUNCH_ENV, None)
        else:
            os.environ[LAUNCH_ENV] = before
