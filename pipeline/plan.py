"""What tonight trains on, starts from and is evaluated on, decided before any component runs.

TFX ingests one span per ExampleGen execution; the training window is then resolved from MLMD
(components/span_window.py). Spans of the window that no earlier night ingested (the first night, a
new run root, a gap) are ingested here first by a partial run of the same pipeline (ExampleGen through
the anomaly gate), so they are validated like any night's data before they are trained on.

Warm start needs a base model with a compatible architecture; that is checked here from the base
model's manifest, so an incompatible one either stops the night at once or turns it into a full
retrain of the window, as warm_start.on_incompatible says, and the history says which happened.
"""

from __future__ import annotations

import dataclasses
import os

from components.model.training import architecture
from components.model.warm_start import (
    IncompatibleBaseModel,
    check_architecture,
    has_bundle,
    read_architecture,
)
from components.serving_layout import list_versions
from pipeline.config import RecpipeConfig
from pipeline.data.clicklog import list_spans
from pipeline.errors import InputError
from pipeline.records.history import blocked_spans
from pipeline.records.summary import latest_blessed_model_uri


@dataclasses.dataclass(frozen=True)
class Night:
    span: int  # the newest span: evaluated on (and the drift check's current span)
    train_spans: tuple[int, ...] = ()  # oldest first; () = the newest span alone, hash-split
    previous_span: int | None = None  # drift baseline
    warm_start_from: str | None = None
    epochs: int = 1
    learning_rate: float | None = None  # None: trainer.learning_rate
    reason: str = ""

    @property
    def windowed(self) -> bool:
        return bool(self.train_spans)

    @property
    def warm(self) -> bool:
        return self.warm_start_from is not None

    def describe(self) -> str:
        data = (
            f"train on spans {self.train_spans[0]}..{self.train_spans[-1]} ({len(self.train_spans)}), "
            f"evaluate on {self.span}"
            if self.windowed
            else f"span {self.span} hash-split into train and eval"
        )
        start = f"warm start from {self.warm_start_from}" if self.warm else "from scratch"
        rate = f" at learning rate {self.learning_rate:g}" if self.learning_rate else ""
        return f"{data}; {start}, {self.epochs} epochs{rate}" + (f" ({self.reason})" if self.reason else "")


def trainer_settings(config: RecpipeConfig) -> dict:
    """The Trainer's custom_config keys that decide the trained model (one place for the DAG and the
    planner); launch settings are left out, so they never invalidate the Trainer's cache."""
    return {
        **config.trainer.model_dump(exclude=set(config.trainer.LAUNCH_KEYS)),
        **config.transform.model_dump(),
    }


def launch_settings(config: RecpipeConfig) -> dict:
    """Where tonight's Trainer trains (components/launch/): workers, launcher, restarts, TFJob and image."""
    return {
        **config.trainer.model_dump(include=set(config.trainer.LAUNCH_KEYS)),
        "image": config.kubeflow.image,
    }


def base_model_dir(config: RecpipeConfig) -> str | None:
    """The SavedModel a warm start reads: the newest served version, or the newest blessed model."""

    if config.warm_start.source == "serving":
        for version in reversed(list_versions(config.serving_model_dir)):
            path = os.path.join(config.serving_model_dir, str(version))
            if has_bundle(path):
                return path
        return None
    from tfx.utils import path_utils

    uri = latest_blessed_model_uri(config)
    return path_utils.serving_model_dir(uri) if uri else None


def _warm_start_source(config: RecpipeConfig) -> tuple[str | None, str]:
    """(base model or None, why) after checking its architecture against this config."""

    if not config.warm_start.enabled:
        return None, ""
    base = base_model_dir(config)
    if base is None:
        return None, f"no {config.warm_start.source} model to warm-start from yet"
    try:
        check_architecture(read_architecture(base), architecture(trainer_settings(config)), base)
    except IncompatibleBaseModel as err:
        if config.warm_start.on_incompatible == "fail":
            raise InputError(f"{err}; the night stops (warm_start.on_incompatible: fail)") from None
        return None, f"full retrain: {err}"
    return base, ""


def plan_night(config: RecpipeConfig, spans: list[int], excluded: set[int] = frozenset()) -> Night:
    """Tonight's plan from the span folders present (`spans`, oldest first) and the config.

    `excluded` spans (their latest night stopped for drift or anomalies) are neither trained on nor the
    drift baseline.
    """
    span = spans[-1] if config.data.span == "latest" else int(config.data.span)
    earlier = [s for s in spans if s < span and s not in excluded]
    base, reason = _warm_start_source(config)
    rate = config.trainer.learning_rate
    if base is not None:
        depth, epochs = config.warm_start.spans, config.warm_start.epochs
        rate *= config.warm_start.learning_rate_scale
    else:
        depth, epochs = config.window.spans, config.trainer.epochs
    train_spans: tuple[int, ...] = ()
    if config.window.spans > 0:
        train_spans = tuple(earlier[-depth:]) + ((span,) if config.window.train_on_newest else ())
        if not earlier and not config.window.train_on_newest:
            train_spans = ()
            reason = "; ".join(filter(None, [reason, "no earlier span: the newest span is hash-split"]))
    return Night(
        span=span,
        train_spans=train_spans,
        previous_span=earlier[-1] if earlier else None,
        warm_start_from=base,
        epochs=epochs,
        learning_rate=rate,
        reason=reason,
    )


def plan_tonight(config: RecpipeConfig) -> Night:
    """The plan from the span folders, MLMD and the history (spans blocked by drift or anomalies left out)."""

    return plan_night(config, list_spans(config.data.root), blocked_spans(config))
