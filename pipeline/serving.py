"""The TF Serving side of the contract, in-process: find the served version, answer a REST predict body.

TF Serving cannot run on this machine, so `predict_rest` applies TF Serving's documented REST mapping
(row format `instances`, columnar `inputs`, `signature_name`; tensors typed by the signature; a single
output flattens to a list of values) to the pushed SavedModel itself. Tests send it the exact JSON a
REST client would send to `/v1/models/<name>:predict`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import tensorflow as tf


def list_versions(model_base: str | Path) -> list[int]:
    """Numbered version folders TF Serving would load (it ignores anything not a number)."""
    base = Path(model_base)
    if not base.is_dir():
        return []
    return sorted(int(p.name) for p in base.iterdir() if p.is_dir() and p.name.isdigit())


def latest_version_dir(model_base: str | Path) -> Path:
    versions = list_versions(model_base)
    if not versions:
        raise FileNotFoundError(f"no model versions under {model_base} (has a model been pushed?)")
    return Path(model_base) / str(versions[-1])


def _to_columns(body: dict[str, Any], input_specs: dict[str, tf.TensorSpec]) -> dict[str, tf.Tensor]:
    if "instances" in body:
        rows = body["instances"]
        if not isinstance(rows, list) or not rows:
            raise ValueError("'instances' must be a non-empty list")
        missing = [name for name in input_specs if any(name not in row for row in rows)]
        if missing:
            raise ValueError(f"instances lack inputs {missing}; the signature needs {sorted(input_specs)}")
        columns = {name: [row[name] for row in rows] for name in input_specs}
    elif "inputs" in body:
        columns = body["inputs"]
    else:
        raise ValueError("request body needs 'instances' (row format) or 'inputs' (columnar format)")
    return {name: tf.constant(columns[name], dtype=spec.dtype) for name, spec in input_specs.items()}


def predict_rest(model_dir: str | Path, body: dict[str, Any] | str, loaded=None) -> dict[str, Any]:
    """Answer a TF Serving REST predict request body with the SavedModel in model_dir."""
    if isinstance(body, str):
        body = json.loads(body)
    model = loaded if loaded is not None else tf.saved_model.load(str(model_dir))
    signature = model.signatures[body.get("signature_name", "serving_default")]
    _, input_specs = signature.structured_input_signature
    outputs = signature(**_to_columns(body, input_specs))
    values = {k: v.numpy().tolist() for k, v in outputs.items()}
    if len(values) == 1:
        return {"predictions": next(iter(values.values()))}
    n = len(next(iter(values.values())))
    return {"predictions": [{k: v[i] for k, v in values.items()} for i in range(n)]}
