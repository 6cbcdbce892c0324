"""Test helpers: run preprocessing_fn in memory with TFT's Beam implementation, score AUC."""

from __future__ import annotations

import json
import os
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import tensorflow_data_validation as tfdv
import tensorflow_transform.beam as tft_beam
from tensorflow_transform import TFTransformOutput
from tensorflow_transform.tf_metadata import dataset_metadata, metadata_io

from components.model import training
from components.model.features import RAW_FEATURES
from components.model.model import ModelParams
from components.model.transform import preprocessing_fn
from pipeline.config import TrainerConfig, TransformConfig


def model_params(**overrides) -> ModelParams:
    """The config's default model settings, with `overrides`."""
    return training.model_params({**TrainerConfig().model_dump(), **overrides})


SCHEMA = Path(__file__).resolve().parents[1] / "schema" / "schema.pbtxt"


def as_instances(rows: list[dict]) -> list[dict]:
    """Python event dicts -> TFT instance dicts (FixedLen [1] features as 1-lists, absent optional as [])."""
    out = []
    for row in rows:
        inst = {}
        for name, spec in RAW_FEATURES.items():
            v = row.get(name)
            if spec.dtype == "bytes" and v is not None:
                v = v.encode() if isinstance(v, str) else v
            inst[name] = [] if v is None else [v]
        out.append(inst)
    return out


def transform_in_memory(
    train_rows: list[dict],
    other_rows: list[dict] | None = None,
    custom_config=None,
    transform_dir: str | None = None,
):
    """Analyze on train_rows; return (transformed train, transformed other). With `transform_dir`, the
    transform graph is also written there, as Transform's transform_graph artifact holds it."""
    metadata = dataset_metadata.DatasetMetadata(tfdv.load_schema_text(str(SCHEMA)))
    custom_config = {**TransformConfig().model_dump(), **(custom_config or {})}

    def fn(inputs):
        return preprocessing_fn(inputs, custom_config)

    with tft_beam.Context(temp_dir=tempfile.mkdtemp()):
        (train_t, _), transform_fn = (
            as_instances(train_rows),
            metadata,
        ) | tft_beam.AnalyzeAndTransformDataset(fn)
        other_t = None
        if other_rows is not None:
            other_t, _ = ((as_instances(other_rows), metadata), transform_fn) | tft_beam.TransformDataset()
        if transform_dir is not None:
            _ = transform_fn | tft_beam.WriteTransformFn(transform_dir)
    if transform_dir is not None:  # the raw schema beside it, as TFX's Transform writes it
        metadata_io.write_metadata(metadata, os.path.join(transform_dir, TFTransformOutput.RAW_METADATA_DIR))
    return train_t, other_t


def columns(instances: list[dict]) -> dict[str, np.ndarray]:
    return {k: np.array([inst[k] for inst in instances]) for k in instances[0]}


def auc(labels, scores) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(labels, scores))


class JsonHandler(BaseHTTPRequestHandler):
    """Base for the local servers that stand in for TF Serving, KFP and Kubernetes: JSON in, JSON out."""

    def read_json(self) -> dict:
        length = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(length)) if length else {}

    def send_json(self, code: int, payload) -> None:
        data = json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def serve_in_thread(handler_class) -> tuple[ThreadingHTTPServer, str]:
    """Start a loopback server on a free port; returns (server, base URL). Call server.shutdown()."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler_class)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def spy_batched_reads(monkeypatch) -> list[list[str]]:
    """The file patterns components/batched_tfxio.py's reader is asked to read, as they are asked."""
    from components.batched_tfxio import BatchedExampleRecord

    reads = []
    beam_source = BatchedExampleRecord.BeamSource
    monkeypatch.setattr(
        BatchedExampleRecord,
        "BeamSource",
        lambda self, batch_size=None: reads.append(self._file_pattern) or beam_source(self, batch_size),
    )
    return reads
