"""The folder TF Serving watches: `<root>/<model>/<version>/`, plus `<root>/models.config`.

A version must never be half-visible. TF Serving tries to load any numbered folder under a base path it
polls, and loads exactly the versions `models.config` names when it runs with `--model_config_file`
(kfp/serving/). The commit point depends on the store:
- **local disk / mounted volume:** the version is copied under a hidden name (`.tmp-...`, not a number,
  so never loaded) and renamed into place; a rename within one filesystem is atomic.
- **object store (gs://, s3://):** there is no folder rename. The version is copied straight to its
  numbered prefix with `saved_model.pb` written last (TF Serving cannot load a SavedModel without it),
  and then `models.config` is rewritten in one PUT (atomic for one object) to name the new version.
  A push killed midway leaves a numbered prefix without `saved_model.pb` that models.config does not
  name: nothing TF Serving would load. The next push deletes it.
Either way, a version counts (list_versions) only once its `saved_model.pb` is there, and models.config
pins the served version (`specific`), so rollback and pruning change what is served by one write too.
Rolled-back versions move to `<root>/.retired/<model>/`, where TF Serving does not look.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass

from components import storage

ALREADY_SERVED = "this model is already served"  # the start of the Pusher's reason for not pushing a rerun
PUSH_RECORD = "recpipe_push.json"  # in assets.extra/: which model artifact a version came from
SAVED_MODEL = "saved_model.pb"
MODELS_CONFIG = "models.config"
RETIRED = ".retired"
# Not numbered, so TF Serving never loads them: a push's copy before its rename, a version being deleted.
STAGING_PREFIX = ".tmp-"
TRASH_PREFIX = ".del-"


@dataclass(frozen=True)
class PushResult:
    pushed: bool
    version: int | None
    path: str | None
    reason: str


def list_versions(model_base: str) -> list[int]:
    """Whole numbered versions (their saved_model.pb is there), oldest first."""
    base = str(model_base)
    return sorted(
        int(n)
        for n in storage.subdirs(base)
        if n.isdigit() and storage.exists(storage.join(base, n, SAVED_MODEL))
    )


def push_record(version_dir: str) -> dict:
    path = storage.join(str(version_dir), "assets.extra", PUSH_RECORD)
    return json.loads(storage.read_text(path)) if storage.exists(path) else {}


def _next_version(model_base: str) -> int:
    # Unix seconds like TFX's Pusher, but never equal to or below an existing (even partial) version.
    existing = [int(n) for n in storage.subdirs(model_base) if n.isdigit()]
    existing += list_versions(storage.join(storage.parent(model_base), RETIRED, storage.name(model_base)))
    return max([int(time.time()), *[v + 1 for v in existing]])


def check_writable(serving_root: str) -> None:
    """Raise PermissionError naming the folder if a version could not be written there."""
    ok, checked = storage.is_writable(str(serving_root))
    if not ok:
        raise PermissionError(
            f"serving path {serving_root} is not writable (checked {checked}); fix its permissions "
            "or set serving.root in the config"
        )


def served_as(model_base: str, model_uri: str | None) -> int | None:
    """The kept version that already holds this model artifact, if any (newest first)."""
    for version in reversed(list_versions(model_base)):
        if model_uri and push_record(storage.join(model_base, str(version))).get("model_uri") == model_uri:
            return version
    return None


def push_model(
    model_dir: str,
    serving_root: str,
    model_name: str,
    keep_versions: int,
    source: dict,
    base_path_prefix: str | None = None,
) -> PushResult:
    """Copy an exported SavedModel into a new version that appears whole; skip a model already served.

    `source` (the model artifact's URI and the span) is recorded in the version, so a rerun of a night
    that already pushed its model does not push the same model again, whichever kept version holds it.
    """
    serving_root = str(serving_root)
    base = storage.join(serving_root, model_name)
    check_writable(serving_root)
    if (version := served_as(base, source.get("model_uri"))) is not None:
        path = storage.join(base, str(version))
        return PushResult(False, version, path, f"{ALREADY_SERVED} as version {version}")
    storage.makedirs(base)
    remove_leftovers(base)
    version = _next_version(base)
    final = storage.join(base, str(version))
    record = json.dumps({**source, "version": version}, indent=1)
    if storage.is_remote(base):
        _copy_version(model_dir, final, record)
    else:
        staging = storage.join(base, f"{STAGING_PREFIX}{version}-{os.getpid()}")
        try:
            _copy_version(model_dir, staging, record)
            storage.rename(staging, final)
        finally:
            storage.rmtree(staging)
    write_models_config(serving_root, base_path_prefix)
    prune_versions(serving_root, model_name, keep_versions)
    return PushResult(True, version, final, "pushed")


def _copy_version(model_dir: str, target: str, record: str | None) -> None:
    """The SavedModel and its push record, saved_model.pb last: a version counts once that is there."""
    storage.copy_tree(model_dir, target, exclude=(SAVED_MODEL,))
    if record is not None:
        storage.write_text_atomic(storage.join(target, "assets.extra", PUSH_RECORD), record)
    storage.copy_file(storage.join(model_dir, SAVED_MODEL), storage.join(target, SAVED_MODEL))


def remove_leftovers(base: str) -> list[str]:
    """Delete what a push or prune killed mid-way left behind: staging copies of processes that no longer
    run, versions renamed away for deletion, and numbered prefixes without saved_model.pb (an object-store
    push that died before its last file). TF Serving never loads any of them."""
    removed = []
    for entry in storage.subdirs(base):
        parts = entry.split("-")
        stale_staging = entry.startswith(STAGING_PREFIX) and len(parts) == 3 and not _alive(int(parts[2]))
        partial = entry.isdigit() and not storage.exists(storage.join(base, entry, SAVED_MODEL))
        if stale_staging or partial or entry.startswith(TRASH_PREFIX):
            storage.rmtree(storage.join(base, entry))
            removed.append(entry)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _delete_version(base: str, version: int) -> None:
    """saved_model.pb goes first, so a version being deleted is never counted or loaded again."""
    folder = storage.join(base, str(version))
    if storage.is_remote(base):
        storage.remove(storage.join(folder, SAVED_MODEL))
        storage.rmtree(folder)
        return
    trash = storage.join(base, f"{TRASH_PREFIX}{version}")
    storage.rename(folder, trash)
    storage.rmtree(trash)


def prune_versions(serving_root: str, model_name: str, keep_versions: int) -> list[int]:
    """Delete all but the newest `keep_versions` versions; returns what was deleted."""
    base = storage.join(str(serving_root), model_name)
    doomed = list_versions(base)[:-keep_versions] if keep_versions > 0 else []
    for v in doomed:
        _delete_version(base, v)
    return doomed


def models_config_text(
    serving_root: str, base_path_prefix: str | None = None, served: dict[str, int] | None = None
) -> str:
    """A TF Serving --model_config_file pinning each model under serving_root to its served version
    (default: its newest whole version)."""
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    root = str(serving_root)
    config = model_server_config_pb2.ModelServerConfig()
    for model in storage.subdirs(root):
        if model.startswith("."):
            continue
        versions = list_versions(storage.join(root, model))
        if not versions:
            continue
        entry = config.model_config_list.config.add()
        entry.name = model
        if base_path_prefix:
            entry.base_path = f"{base_path_prefix.rstrip('/')}/{model}"
        else:
            entry.base_path = storage.join(root, model)
        entry.model_platform = "tensorflow"
        entry.model_version_policy.specific.versions.append((served or {}).get(model, versions[-1]))
    return text_format.MessageToString(config)


def write_models_config(
    serving_root: str, base_path_prefix: str | None = None, served: dict[str, int] | None = None
) -> str:
    """The commit point of a push or rollback: one atomic write of one file."""
    path = storage.join(str(serving_root), MODELS_CONFIG)
    storage.write_text_atomic(path, models_config_text(serving_root, base_path_prefix, served))
    return path


def served_version(serving_root: str, model_name: str) -> int | None:
    """The version models.config pins for the model (what TF Serving with that file serves)."""
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    path = storage.join(str(serving_root), MODELS_CONFIG)
    if not storage.exists(path):
        return None
    config = text_format.Parse(storage.read_text(path), model_server_config_pb2.ModelServerConfig())
    for entry in config.model_config_list.config:
        if entry.name == model_name and entry.model_version_policy.specific.versions:
            return int(entry.model_version_policy.specific.versions[-1])
    return None


def rollback(
    serving_root: str,
    model_name: str,
    to_version: int | None = None,
    base_path_prefix: str | None = None,
) -> tuple[int, list[int]]:
    """Make `to_version` (default: the one before the newest) the served version.

    models.config is rewritten first (the commit point); newer versions then move to
    `<root>/.retired/<model>/`. Returns (served version, retired versions).
    """
    serving_root = str(serving_root)
    base = storage.join(serving_root, model_name)
    versions = list_versions(base)
    if not versions:
        raise FileNotFoundError(f"no versions of {model_name} under {serving_root}")
    if to_version is None:
        if len(versions) < 2:
            raise ValueError(
                f"{model_name} has only version {versions[0]}; there is nothing older to roll back to"
            )
        to_version = versions[-2]
    if to_version not in versions:
        raise ValueError(f"version {to_version} of {model_name} not found; available: {versions}")
    write_models_config(serving_root, base_path_prefix, served={model_name: to_version})
    retired_dir = storage.join(serving_root, RETIRED, model_name)
    storage.makedirs(retired_dir)
    newer = [v for v in versions if v > to_version]
    for v in reversed(newer):
        if storage.is_remote(base):
            _copy_version(storage.join(base, str(v)), storage.join(retired_dir, str(v)), record=None)
            _delete_version(base, v)
        else:
            storage.rename(storage.join(base, str(v)), storage.join(retired_dir, str(v)))
    write_models_config(serving_root, base_path_prefix)
    return to_version, newer
