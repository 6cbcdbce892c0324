"""The one filesystem layer for every root a night touches: local folders, `gs://` and `s3://`.

Production roots are object stores (GCS, or the MinIO that open-source Kubeflow installs), so no code of
ours may use `pathlib` or `open` on a root: it would write a local folder named `gs:` inside the pod.
Everything goes through TFX's `fileio` (which is `tf.io.gfile` underneath) and plain string URIs.

`s3://` is served by the S3 plugin of `tensorflow-io`, which TensorFlow loads only when that package is
imported; `use(uri)` does that once per process. The endpoint, keys and region come from the standard AWS
variables (`AWS_ENDPOINT_URL_S3`, `AWS_ACCESS_KEY_ID`, ...): Beam's S3 filesystem (boto3) reads those,
and `use` copies the endpoint into the `S3_*` variables the TensorFlow plugin reads.

tensorflow-io 0.37.1 (the last release for TF 2.16) aborts at interpreter exit once its S3 plugin has
been used ("pure virtual method called", exit code 134; tensorflow/io#2039, fixed upstream after that
release). A process that loaded it therefore ends through `os._exit` with the exit code it was going to
have, after flushing its output, so a finished night is not reported as a crash.
"""

from __future__ import annotations

import atexit
import builtins
import logging
import os
import posixpath
import sys
from collections.abc import Iterator
from typing import IO

_S3_READY = False
_exit_code = 0


def is_remote(uri: str) -> bool:
    return "://" in str(uri)


def scheme(uri: str) -> str:
    return str(uri).split("://", 1)[0] if is_remote(uri) else ""


def join(base: str, *parts: str) -> str:
    """Join path parts; object-store URIs always use '/'."""
    base = str(base)
    return posixpath.join(base, *parts) if is_remote(base) else os.path.join(base, *parts)


def name(uri: str) -> str:
    return posixpath.basename(str(uri).rstrip("/"))


def parent(uri: str) -> str:
    return posixpath.dirname(str(uri).rstrip("/"))


def absolute(uri: str, base_dir: str) -> str:
    """Local paths made absolute against base_dir (TFX stores absolute URIs); URIs left as they are."""
    return uri if is_remote(uri) else os.path.realpath(os.path.join(base_dir, uri))


def use(uri: str) -> str:
    """Make sure TensorFlow can open `uri` in this process (loads the S3 plugin for s3://); returns it as
    a string (TFX's fileio takes no pathlib paths)."""
    global _S3_READY
    uri = os.fspath(uri)
    if scheme(uri) != "s3" or _S3_READY:
        return uri
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if endpoint and "S3_ENDPOINT" not in os.environ:
        os.environ["S3_ENDPOINT"] = endpoint
        if endpoint.startswith("http://"):
            os.environ.setdefault("S3_USE_HTTPS", "0")
            os.environ.setdefault("S3_VERIFY_SSL", "0")
    if "AWS_REGION" not in os.environ and "AWS_DEFAULT_REGION" in os.environ:
        os.environ["AWS_REGION"] = os.environ["AWS_DEFAULT_REGION"]
    try:
        import tensorflow_io  # noqa: F401 - registers the s3:// filesystem with TensorFlow
    except ImportError as err:
        raise RuntimeError(
            f"{uri}: s3:// needs the tensorflow-io package (in requirements/lock-py310.txt); {err}"
        ) from None
    _S3_READY = True
    _end_through_os_exit()
    return uri


def _end_through_os_exit() -> None:
    """See the module docstring: skip the S3 plugin's crashing static destructors at exit."""
    previous_hook = sys.excepthook

    def note_failure(exc_type, exc, tb):
        set_exit_code(1)
        previous_hook(exc_type, exc, tb)

    def leave():
        logging.shutdown()
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(_exit_code)

    sys.excepthook = note_failure
    atexit.register(leave)


def set_exit_code(code: int | str | None) -> None:
    """The code this process ends with if `use` had to take over its exit (CLI entry points call this)."""
    global _exit_code
    _exit_code = code if isinstance(code, int) else (0 if code is None else 1)


def _fileio():
    from tfx.dsl.io import fileio

    return fileio


def exists(uri: str) -> bool:
    uri = use(uri)
    return _fileio().exists(uri)


def isdir(uri: str) -> bool:
    uri = use(uri)
    return _fileio().isdir(uri)


def listdir(uri: str) -> list[str]:
    """Entry names (no trailing '/'), sorted; [] when the folder does not exist."""
    uri = use(uri)
    if not _fileio().isdir(uri):
        return []
    return sorted({entry.rstrip("/") for entry in _fileio().listdir(uri)})


def subdirs(uri: str) -> list[str]:
    return [n for n in listdir(uri) if isdir(join(uri, n))]


def files(uri: str) -> list[str]:
    return [n for n in listdir(uri) if not isdir(join(uri, n))]


def size(uri: str) -> int:
    uri = use(uri)
    return _fileio().stat(uri).length


def makedirs(uri: str) -> None:
    uri = use(uri)
    _fileio().makedirs(uri)


def open(uri: str, mode: str = "r") -> IO:  # noqa: A001 - the file object of the store
    uri = use(uri)
    return _fileio().open(uri, mode)


def read_text(uri: str) -> str:
    with open(uri, "r") as f:
        return f.read()


def read_bytes(uri: str) -> bytes:
    with open(uri, "rb") as f:
        return f.read()


def write_text_atomic(uri: str, text: str) -> None:
    """Readers see the old content or the new, never part of it: a rename on a local disk; one PUT of
    one object on an object store, which is atomic there."""
    if is_remote(uri):
        makedirs(parent(uri))
        with open(uri, "w") as f:
            f.write(text)
        return
    os.makedirs(os.path.dirname(uri) or ".", exist_ok=True)
    tmp = f"{uri}.tmp-{os.getpid()}"
    with builtins.open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, uri)


def walk_files(uri: str) -> Iterator[str]:
    """Every file under uri, as paths relative to it."""
    uri = use(uri)
    for folder, _, names in _fileio().walk(uri):
        rel = str(folder)[len(str(uri).rstrip("/")) :].lstrip("/")
        for n in names:
            yield posixpath.join(rel, n) if rel else n


def copy_file(src: str, dst: str) -> None:
    src = use(src)
    dst = use(dst)
    _fileio().makedirs(parent(dst) if is_remote(dst) else os.path.dirname(dst))
    _fileio().copy(src, dst, overwrite=True)


def copy_tree(src: str, dst: str, exclude: tuple[str, ...] = ()) -> None:
    """Copy every file under src to dst, except those whose relative path is in `exclude`."""
    for rel in sorted(walk_files(src)):
        if rel not in exclude:
            copy_file(join(src, rel), join(dst, rel))


def rmtree(uri: str) -> None:
    uri = use(uri)
    if _fileio().exists(uri):
        _fileio().rmtree(uri)


def remove(uri: str) -> None:
    uri = use(uri)
    if _fileio().exists(uri):
        _fileio().remove(uri)


def rename(src: str, dst: str) -> None:
    """Atomic on a local disk (one filesystem); object stores have no folder rename (callers that need a
    commit point use write_text_atomic of one object instead)."""
    if not is_remote(src):
        os.rename(src, dst)
        return
    src = use(src)
    _fileio().rename(src, dst, overwrite=False)


def is_writable(uri: str) -> tuple[bool, str]:
    """Whether a version could be written under uri, and where that was checked."""
    if is_remote(uri):
        probe = join(uri, f".recpipe-write-probe-{os.getpid()}")
        try:
            write_text_atomic(probe, "probe")
            remove(probe)
        except Exception:  # noqa: BLE001 - any failure means: not writable, named by the caller
            return False, probe
        return True, probe
    path = os.path.abspath(uri)
    probe_dir = path
    while not os.path.exists(probe_dir) and os.path.dirname(probe_dir) != probe_dir:
        probe_dir = os.path.dirname(probe_dir)
    return os.path.isdir(probe_dir) and os.access(probe_dir, os.W_OK | os.X_OK), probe_dir
