"""The folder TF Serving watches: `<root>/<model>/<version>/`, plus `<root>/models.config`.

TF Serving loads any numbered folder that appears, so a version must appear whole: it is copied under a
hidden temporary name and renamed into place (a rename within one filesystem is atomic). Rolled-back
versions move to `<root>/.retired/<model>/` where TF Serving does not look, so the newest remaining
version is the one served, with TF Serving's default "latest" policy.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

PUSH_RECORD = "recpipe_push.json"  # in assets.extra/: which model artifact a version came from
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


def list_versions(model_base: str | Path) -> list[int]:
    """Numbered version folders TF Serving would load, oldest first (it ignores anything not a number)."""
    base = Path(model_base)
    if not base.is_dir():
        return []
    return sorted(int(p.name) for p in base.iterdir() if p.is_dir() and p.name.isdigit())


def push_record(version_dir: str | Path) -> dict:
    path = Path(version_dir) / "assets.extra" / PUSH_RECORD
    return json.loads(path.read_text()) if path.is_file() else {}


def _next_version(model_base: Path) -> int:
    # Unix seconds like TFX's Pusher, but never equal to or below an existing version.
    existing = list_versions(model_base) + list_versions(model_base.parent / RETIRED / model_base.name)
    return max([int(time.time()), *[v + 1 for v in existing]])


def check_writable(serving_root: str | Path) -> None:
    """Raise PermissionError naming the folder if a version could not be written there."""
    root = Path(serving_root)
    probe_dir = root if root.exists() else next((p for p in root.parents if p.exists()), Path("/"))
    if not probe_dir.is_dir() or not os.access(probe_dir, os.W_OK | os.X_OK):
        raise PermissionError(
            f"serving path {root} is not writable (checked {probe_dir}); fix its permissions "
            "or set serving.root in the config"
        )


def push_model(
    model_dir: str | Path,
    serving_root: str | Path,
    model_name: str,
    keep_versions: int,
    source: dict,
    base_path_prefix: str | None = None,
) -> PushResult:
    """Copy an exported SavedModel into a new version, atomically; skip if that model is already served.

    `source` (e.g. the model artifact's URI and the span) is recorded in the version, so a rerun of a
    night that already pushed its model does not push the same model twice.
    """
    base = Path(serving_root) / model_name
    check_writable(serving_root)
    versions = list_versions(base)
    if versions and push_record(base / str(versions[-1])).get("model_uri") == source.get("model_uri"):
        return PushResult(
            False, versions[-1], str(base / str(versions[-1])), "this model is already the served version"
        )
    base.mkdir(parents=True, exist_ok=True)
    remove_leftovers(base)
    version = _next_version(base)
    staging = base / f"{STAGING_PREFIX}{version}-{os.getpid()}"
    try:
        shutil.copytree(model_dir, staging)
        (staging / "assets.extra").mkdir(exist_ok=True)
        (staging / "assets.extra" / PUSH_RECORD).write_text(
            json.dumps({**source, "version": version}, indent=1)
        )
        os.rename(staging, base / str(version))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    prune_versions(serving_root, model_name, keep_versions)
    write_models_config(serving_root, base_path_prefix)
    return PushResult(True, version, str(base / str(version)), "pushed")


def remove_leftovers(base: Path) -> list[str]:
    """Delete what a push or prune killed mid-way left behind: staging copies of processes that no longer
    run, and versions renamed away for deletion. TF Serving never loads either (not numbered folders)."""
    removed = []
    for entry in base.iterdir():
        parts = entry.name.split("-")
        stale_staging = (
            entry.name.startswith(STAGING_PREFIX) and len(parts) == 3 and not _alive(int(parts[2]))
        )
        if stale_staging or entry.name.startswith(TRASH_PREFIX):
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry.name)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def prune_versions(serving_root: str | Path, model_name: str, keep_versions: int) -> list[int]:
    """Delete all but the newest `keep_versions` versions; returns what was deleted."""
    base = Path(serving_root) / model_name
    doomed = list_versions(base)[:-keep_versions] if keep_versions > 0 else []
    for v in doomed:
        # Rename first so TF Serving never sees a half-deleted version.
        trash = base / f"{TRASH_PREFIX}{v}"
        os.rename(base / str(v), trash)
        shutil.rmtree(trash)
    return doomed


def models_config_text(serving_root: str | Path, base_path_prefix: str | None = None) -> str:
    """A TF Serving --model_config_file listing every model under serving_root."""
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    root = Path(serving_root)
    config = model_server_config_pb2.ModelServerConfig()
    for model_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if not list_versions(model_dir):
            continue
        entry = config.model_config_list.config.add()
        entry.name = model_dir.name
        entry.base_path = (
            f"{base_path_prefix.rstrip('/')}/{model_dir.name}"
            if base_path_prefix
            else str(model_dir.resolve())
        )
        entry.model_platform = "tensorflow"
        entry.model_version_policy.latest.num_versions = 1
    return text_format.MessageToString(config)


def write_models_config(serving_root: str | Path, base_path_prefix: str | None = None) -> Path:
    path = Path(serving_root) / "models.config"
    tmp = path.with_suffix(".config.tmp")
    tmp.write_text(models_config_text(serving_root, base_path_prefix))
    os.replace(tmp, path)
    return path


def rollback(
    serving_root: str | Path,
    model_name: str,
    to_version: int | None = None,
    base_path_prefix: str | None = None,
) -> tuple[int, list[int]]:
    """Make `to_version` (default: the one before the newest) the served version.

    Newer versions move to `<root>/.retired/<model>/`; returns (served version, retired versions).
    """
    base = Path(serving_root) / model_name
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
    retired_dir = Path(serving_root) / RETIRED / model_name
    retired_dir.mkdir(parents=True, exist_ok=True)
    newer = [v for v in versions if v > to_version]
    for v in reversed(newer):
        os.rename(base / str(v), retired_dir / str(v))
    write_models_config(serving_root, base_path_prefix)
    return to_version, newer
