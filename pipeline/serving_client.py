"""The TF Serving side of the contract, in-process: find the served version, answer a REST predict body.

TF Serving cannot run on this machine, so `predict_rest` applies TF Serving's documented REST mapping
(row format `instances`, columnar `inputs`, `signature_name`; tensors typed by the signature; a single
output flattens to a list of values) to the pushed SavedModel itself. Tests send it the exact JSON a
REST client would send to `/v1/models/<name>:predict`.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from components import storage
from components.model.recommend import PAD_ITEM_ID
from components.serving_layout import list_versions  # noqa: F401 - re-exported for CLI and tests


def latest_version_dir(model_base: str) -> str:
    versions = list_versions(model_base)
    if not versions:
        raise FileNotFoundError(f"no model versions under {model_base} (has a model been pushed?)")
    return storage.join(str(model_base), str(versions[-1]))


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
    values = {k: _jsonable(v.numpy()) for k, v in outputs.items()}
    if "inputs" in body:  # columnar request -> columnar response, as TF Serving answers
        return {"outputs": next(iter(values.values())) if len(values) == 1 else values}
    if len(values) == 1:
        return {"predictions": next(iter(values.values()))}
    n = len(next(iter(values.values())))
    return {"predictions": [{k: v[i] for k, v in values.items()} for i in range(n)]}


def _jsonable(array):
    """TF Serving returns strings as text in JSON."""
    if array.dtype == object:
        return np.vectorize(lambda b: b.decode("utf-8", "replace"), otypes=[object])(array).tolist()
    return array.tolist()


class InProcessModel:
    """The newest pushed version (or a given SavedModel folder), answered in this process."""

    def __init__(self, model_dir: str):
        path = str(model_dir)
        self.model_dir = (
            path if storage.exists(storage.join(path, "saved_model.pb")) else latest_version_dir(path)
        )
        self._loaded = tf.saved_model.load(self.model_dir)

    def predict(self, body: dict[str, Any]) -> dict[str, Any]:
        return predict_rest(self.model_dir, body, loaded=self._loaded)


class RestModel:
    """A TF Serving model over its REST API: POST /v1/models/<name>:predict."""

    def __init__(self, endpoint: str, model_name: str, timeout_s: float = 10.0):
        if not endpoint.startswith(("http://", "https://")):
            raise ValueError(f"endpoint {endpoint!r} must start with http:// or https://")
        self.url = f"{endpoint.rstrip('/')}/v1/models/{model_name}:predict"
        self.timeout_s = timeout_s

    def predict(self, body: dict[str, Any]) -> dict[str, Any]:
        import urllib.error
        import urllib.request

        request = urllib.request.Request(
            self.url,
            data=json.dumps(body).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                body = response.read()
            return json.loads(body)
        except json.JSONDecodeError:
            shown = body[:200].decode(errors="replace")
            raise RuntimeError(
                f"TF Serving at {self.url} answered with a body that is not JSON ({shown!r}); is the endpoint "
                "a TF Serving REST port?"
            ) from None
        except TimeoutError:
            raise RuntimeError(
                f"TF Serving at {self.url} did not answer within {self.timeout_s:g} s; check the endpoint and "
                "that the server is up"
            ) from None
        except urllib.error.HTTPError as err:
            detail = err.read().decode(errors="replace")[:500]
            raise RuntimeError(f"TF Serving at {self.url} answered HTTP {err.code}: {detail}") from None
        except urllib.error.URLError as err:
            raise RuntimeError(f"cannot reach TF Serving at {self.url}: {err.reason}") from None
        except OSError as err:  # reset or refused mid-request
            raise RuntimeError(f"TF Serving at {self.url} dropped the request: {err}") from None


def _user_request(model, signature: str, user_id: str, device: str, event_ts: int | None, **extra) -> dict:
    """Ask one user's question in TF Serving's columnar format; returns the response's outputs."""
    inputs = {"user_id": [user_id], "device": [device], "event_ts": [int(event_ts or time.time())], **extra}
    return model.predict({"signature_name": signature, "inputs": inputs})["outputs"]


def recommend(
    model,
    user_id: str,
    k: int = 10,
    device: str = "unknown",
    exclude: list[str] | None = None,
    event_ts: int | None = None,
) -> list[tuple[str, float]]:
    """Top-k (item_id, score) for one user through the `recommend` signature."""

    out = _user_request(
        model, "recommend", user_id, device, event_ts, k=k, exclude_item_ids=list(exclude or [])
    )
    pairs = zip(out["item_ids"][0], out["scores"][0], strict=True)
    return [(item, score) for item, score in pairs if item != PAD_ITEM_ID]  # padding: fewer items left


def score_items(
    model, user_id: str, item_ids: list[str], device: str = "unknown", event_ts: int | None = None
) -> list[tuple[str, float | None]]:
    """(item_id, click probability) for given catalogue items; None for ids the model does not know."""
    out = _user_request(model, "score_items", user_id, device, event_ts, item_ids=item_ids)
    return [
        (i, s if known else None)
        for i, s, known in zip(item_ids, out["scores"][0], out["known"], strict=True)
    ]
