"""The Kubeflow run parameters a user may set per run (KFP UI, `recpipe submit --param`): their one list,
with the config key each sets; their types are the config's. No KFP or TensorFlow here: the CLI reads it."""

from __future__ import annotations

from typing import Any

from pipeline.config import RecpipeConfig

NIGHT = "night"  # the span to run, YYYYMMDD; empty: the schedule's day before

RUN_PARAMETERS = {
    "auc_lower_bound": "evaluation.auc_lower_bound",
    "ndcg_lower_bound": "evaluation.ndcg_lower_bound",
    "epochs": "trainer.epochs",
}


def _config_type(key: str) -> type:
    model: Any = RecpipeConfig
    for part in key.split("."):
        annotation = model.model_fields[part].annotation
        model = annotation
    return annotation


PIPELINE_PARAMETERS: dict[str, type] = {NIGHT: str, **{n: _config_type(k) for n, k in RUN_PARAMETERS.items()}}


def defaults(config: RecpipeConfig) -> dict[str, Any]:
    """Each run parameter's value in `config` (the compiled pipeline's defaults)."""
    values = {}
    for name, key in RUN_PARAMETERS.items():
        value: Any = config
        for part in key.split("."):
            value = getattr(value, part)
        values[name] = value
    return values
