"""Warm start across vocabularies that change every night.

Transform rebuilds the id vocabularies from each night's window, so an id's row index moves between
nights, new ids appear and old ones vanish. Loading yesterday's weights positionally would hand every
moved id somebody else's embedding. Each exported model therefore carries a small bundle (its weights by
layer name and the vocabularies they were trained with) under assets.extra/, which TF Serving ignores;
the next night copies every known id's row by id string into the new table, leaves new ids at their
fresh initialisation, drops removed ones, and carries every other layer (GMF, MLP, fusion) over as is.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import zipfile
from collections.abc import Mapping

import numpy as np
import tensorflow as tf

from components.model import features as F

BUNDLE_DIR = os.path.join("assets.extra", "recpipe_warm_start")
BUNDLE_FORMAT = 1
WEIGHTS_FILE = "weights.npz"
VOCAB_FILE = "vocabularies.json"
MANIFEST_FILE = "manifest.json"

# Embedding tables whose rows are indexed by a Transform vocabulary (then OOV buckets after it).
TABLE_VOCABULARY = {
    "gmf_user_embedding": F.USER_ID,
    "mlp_user_embedding": F.USER_ID,
    "gmf_item_embedding": F.ITEM_ID,
    "mlp_item_embedding": F.ITEM_ID,
    "device_embedding": F.DEVICE,
    "category_embedding": F.ITEM_CATEGORY,
}
# Which config key sets a table's width, for the message when widths differ.
_WIDTH_KEY = {"gmf": "trainer.gmf_dim", "mlp": "trainer.mlp_dim"}


class IncompatibleBaseModel(ValueError):
    """The base model cannot seed this one (other embedding size or architecture); says which layer."""


@dataclasses.dataclass(frozen=True)
class Bundle:
    path: str
    weights: dict[str, list[np.ndarray]]
    vocabularies: dict[str, list[str]]
    architecture: dict


@dataclasses.dataclass
class WarmStartStats:
    """Per vocabulary: ids whose rows were copied, ids initialised fresh, ids dropped."""

    kept: dict[str, int] = dataclasses.field(default_factory=dict)
    new: dict[str, int] = dataclasses.field(default_factory=dict)
    dropped: dict[str, int] = dataclasses.field(default_factory=dict)

    def as_metrics(self) -> dict[str, int]:
        out = {}
        for kind, counts in (("kept", self.kept), ("new", self.new), ("dropped", self.dropped)):
            out.update({f"warm_start_{kind}_{name}": n for name, n in counts.items()})
        return out


def _text(values) -> list[str]:
    return [v.decode() if isinstance(v, bytes) else str(v) for v in values]


def layer_weights(model) -> dict[str, list[np.ndarray]]:
    """The model's own layers' weights by layer name (take it before serving layers are attached)."""
    return {layer.name: layer.get_weights() for layer in model.layers if layer.weights}


def save_bundle(
    weights: Mapping[str, list[np.ndarray]],
    export_dir: str,
    vocabularies: Mapping[str, list],
    architecture: dict,
) -> str:
    """Write the bundle into an exported SavedModel; returns its folder."""
    folder = os.path.join(export_dir, BUNDLE_DIR)
    tf.io.gfile.makedirs(folder)
    arrays = {f"{name}:{i}": w for name, ws in weights.items() for i, w in enumerate(ws)}
    buffer = io.BytesIO()  # zip needs a seekable file; GFile (gs://, hdfs://) is not
    np.savez(buffer, **arrays)
    with tf.io.gfile.GFile(os.path.join(folder, WEIGHTS_FILE), "wb") as f:
        f.write(buffer.getvalue())
    with tf.io.gfile.GFile(os.path.join(folder, VOCAB_FILE), "w") as f:
        json.dump({name: _text(v) for name, v in vocabularies.items()}, f)
    with tf.io.gfile.GFile(os.path.join(folder, MANIFEST_FILE), "w") as f:
        json.dump({"format": BUNDLE_FORMAT, "architecture": architecture}, f, indent=1)
    return folder


def has_bundle(model_dir: str) -> bool:
    return tf.io.gfile.exists(os.path.join(model_dir, BUNDLE_DIR, MANIFEST_FILE))


def read_architecture(model_dir: str) -> dict:
    """The manifest's architecture only (cheap: the night planner checks it before any component runs)."""
    path = os.path.join(model_dir, BUNDLE_DIR, MANIFEST_FILE)
    if not tf.io.gfile.exists(path):
        raise IncompatibleBaseModel(
            f"{model_dir} has no warm-start bundle ({BUNDLE_DIR}/); it was exported before warm start "
            "existed or by another tool, so it cannot seed this model"
        )
    try:
        with tf.io.gfile.GFile(path) as f:
            manifest = json.load(f)
    except (ValueError, OSError, tf.errors.OpError) as err:
        raise IncompatibleBaseModel(f"{path} is unreadable ({err}); the base model is damaged") from None
    if not isinstance(manifest, dict) or "architecture" not in manifest:
        raise IncompatibleBaseModel(f"{path} holds no architecture; the base model is damaged")
    if manifest.get("format") != BUNDLE_FORMAT:
        raise IncompatibleBaseModel(
            f"{path}: warm-start bundle format {manifest.get('format')!r}, this code reads {BUNDLE_FORMAT}"
        )
    return manifest["architecture"]


def load_bundle(model_dir: str) -> Bundle:
    """The whole bundle; a damaged one (truncated, missing file) is refused like an incompatible one, so
    the night retrains from scratch or stops as warm_start.on_incompatible says, never half-seeded."""
    architecture = read_architecture(model_dir)
    folder = os.path.join(model_dir, BUNDLE_DIR)
    try:
        with tf.io.gfile.GFile(os.path.join(folder, WEIGHTS_FILE), "rb") as f:
            npz = np.load(io.BytesIO(f.read()), allow_pickle=False)  # weights only, never code
            flat = {key: npz[key] for key in npz.files}
        with tf.io.gfile.GFile(os.path.join(folder, VOCAB_FILE)) as f:
            vocabularies = json.load(f)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, tf.errors.OpError) as err:
        raise IncompatibleBaseModel(
            f"the warm-start bundle in {folder} is unreadable ({type(err).__name__}: {err}); the base model "
            "is damaged"
        ) from None
    weights: dict[str, list[np.ndarray]] = {}
    for key in sorted(flat, key=lambda k: (k.rsplit(":", 1)[0], int(k.rsplit(":", 1)[1]))):
        weights.setdefault(key.rsplit(":", 1)[0], []).append(flat[key])
    return Bundle(model_dir, weights, vocabularies, architecture)


def check_architecture(old: dict, new: dict, where: str) -> None:
    """Refuse a base model whose embedding sizes or layers differ, naming the setting that changed."""
    changed = [
        f"{key}: base model {old.get(key)!r}, this config {new.get(key)!r}"
        for key in new
        if old.get(key) != new[key]
    ]
    if changed:
        raise IncompatibleBaseModel(
            f"the base model {where} has another architecture and cannot seed this one ("
            + "; ".join(changed)
            + "). Keep the settings, or let the night retrain from scratch (warm_start.on_incompatible: scratch)"
        )


def _remap_table(old: np.ndarray, fresh: np.ndarray, old_vocab: list[str], new_vocab: list[str]):
    """Rows of `fresh` for ids also in old_vocab replaced by their old rows; OOV rows carried if same count."""
    table = fresh.copy()
    old_index = {token: i for i, token in enumerate(old_vocab)}
    pairs = [(i, old_index[token]) for i, token in enumerate(new_vocab) if token in old_index]
    if pairs:
        new_rows, old_rows = map(list, zip(*pairs, strict=False))
        table[new_rows] = old[old_rows]
    old_oov, new_oov = old.shape[0] - len(old_vocab), fresh.shape[0] - len(new_vocab)
    if old_oov == new_oov and new_oov > 0:  # hash buckets mean the same thing only with the same count
        table[len(new_vocab) :] = old[len(old_vocab) :]
    return table, len(pairs), len(new_vocab) - len(pairs), len(old_vocab) - len(pairs)


def apply_warm_start(model, bundle: Bundle, vocabularies: Mapping[str, list]) -> WarmStartStats:
    """Seed `model` (freshly built for tonight's vocabularies) from the bundle, before any training step."""
    vocabularies = {name: _text(v) for name, v in vocabularies.items()}
    stats = WarmStartStats()
    layers = {layer.name: layer for layer in model.layers if layer.weights}
    missing = sorted(set(layers) ^ set(bundle.weights))
    if missing:
        raise IncompatibleBaseModel(
            f"the base model {bundle.path} and this model do not have the same layers (differ in: "
            f"{', '.join(missing)}); the architecture changed, so it cannot seed this model"
        )
    updates = {}
    for name, layer in layers.items():
        fresh, old = layer.get_weights(), bundle.weights[name]
        if name in TABLE_VOCABULARY:
            vocab = TABLE_VOCABULARY[name]
            if old[0].shape[1] != fresh[0].shape[1]:
                key = _WIDTH_KEY.get(name.split("_")[0], "trainer.side_dim")
                raise IncompatibleBaseModel(
                    f"embedding {name}: the base model {bundle.path} has {old[0].shape[1]} columns, this "
                    f"model {fresh[0].shape[1]} ({key} changed); it cannot seed this model"
                )
            table, kept, new, dropped = _remap_table(
                old[0], fresh[0], bundle.vocabularies[vocab], vocabularies[vocab]
            )
            stats.kept[vocab], stats.new[vocab], stats.dropped[vocab] = kept, new, dropped
            updates[name] = [table]
            continue
        shapes_old, shapes_new = [w.shape for w in old], [w.shape for w in fresh]
        if shapes_old != shapes_new:
            raise IncompatibleBaseModel(
                f"layer {name}: the base model {bundle.path} has weights of shapes {shapes_old}, this model "
                f"{shapes_new} (the architecture changed: trainer.mlp_layers / transform.quantile_buckets?); "
                "it cannot seed this model"
            )
        updates[name] = old
    for name, weights in updates.items():  # only after every layer passed: never half-seeded
        layers[name].set_weights(weights)
    return stats
