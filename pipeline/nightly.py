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

from pipeline.config import RecpipeConfig
from pipeline.nodes import INGEST
from pipeline.preflight import InputError


@dataclasses.dataclass(frozen=True)
class Night:
    span: int  # the newest span: evaluated on (and the drift check's current span)
    train_spans: tuple[int, ...] = ()  # oldest first; () = the newest span alone, hash-split
    previous_span: int | None = None  # drift baseline
    warm_start_from: str | None = None
    epochs: int = 1
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
        return f"{data}; {start}, {self.epochs} epochs" + (f" ({self.reason})" if self.reason else "")


def trainer_settings(config: RecpipeConfig) -> dict:
    """The Trainer's custom_config keys that decide the architecture (one place for factory and planner)."""
    return {**config.trainer.model_dump(), **config.transform.model_dump()}


def base_model_dir(config: RecpipeConfig) -> str | None:
    """The SavedModel a warm start reads: the newest served version, or the newest blessed model."""
    from components.serving_layout import list_versions
    from components.warm_start import has_bundle

    if config.warm_start.source == "serving":
        for version in reversed(list_versions(config.serving_model_dir)):
            path = os.path.join(config.serving_model_dir, str(version))
            if has_bundle(path):
                return path
        return None
    from tfx.utils import path_utils

    from pipeline.run_summary import latest_blessed_model_uri

    uri = latest_blessed_model_uri(config)
    return path_utils.serving_model_dir(uri) if uri else None


def _warm_start_source(config: RecpipeConfig) -> tuple[str | None, str]:
    """(base model or None, why) after checking its architecture against this config."""
    from components.training import architecture
    from components.warm_start import IncompatibleBaseModel, check_architecture, read_architecture

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
    if base is not None:
        depth, epochs = config.warm_start.spans, config.warm_start.epochs
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
        reason=reason,
    )


def plan_tonight(config: RecpipeConfig) -> Night:
    """The plan from the span folders, MLMD and the history (spans blocked by drift or anomalies left out)."""
    from pipeline.clicklog import list_spans
    from pipeline.history import blocked_spans

    return plan_night(config, list_spans(config.data.root), blocked_spans(config))


class IngestError(RuntimeError):
    """An earlier span tonight's window needs could not be ingested (broken data); names the span."""


def ingest(config: RecpipeConfig, night: Night) -> list[int]:
    """Run ExampleGen..AnomalyGate for every span tonight needs from earlier nights and MLMD lacks."""
    from tfx import v1 as tfx
    from tfx.orchestration import pipeline as tfx_pipeline

    from pipeline.factory import create_pipeline
    from pipeline.preflight import check_span
    from pipeline.run_summary import validated_spans

    needed = set(night.train_spans) - {night.span}
    if night.previous_span is not None:
        needed.add(night.previous_span)
    # Only schema-clean spans count: one whose ingestion stopped at the anomaly gate is ingested (and
    # stops) again, never trained on.
    missing = sorted(needed - validated_spans(config))
    for span in missing:
        check_span(config, span)
        span_config = config.with_overrides(**{"data.span": span})
        options = tfx_pipeline.RunOptions(from_nodes=list(INGEST.from_nodes), to_nodes=list(INGEST.to_nodes))
        try:
            tfx.orchestration.LocalDagRunner().run(
                create_pipeline(span_config, Night(span=span)), run_options=options
            )
        except Exception as err:
            raise IngestError(
                f"span {span}, needed by tonight's window ({night.describe()}), could not be ingested: {err}"
            ) from err
    return missing
