"""One night at a time per run root and per serving root, on every store a night can use.

Two nights on one run root would both push a version for the same span, and one's summary would read the
other's executions. The lock follows MLMD, the store every run of a root shares:
- **MySQL MLMD** (Kubeflow): MySQL named locks (`GET_LOCK`), held by a connection of this process, so a
  pod that dies releases them with its connection; a KFP retry of a phase cannot overlap a running one.
  The connection is a lease (`night_lock_lease_s`): pinged while the night runs, and dropped by the server
  when the pings stop, so a node that vanished without closing it frees the roots within one lease.
- **SQLite MLMD** (a local run root): `flock` on `<run_root>/.night.lock`, released by the kernel when the
  process dies.
The owner (host, pid, start) is written beside the lock so a refused night names the running one.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import socket
import threading
import time
from collections.abc import Iterator

from absl import logging

from components import storage
from pipeline.config import RecpipeConfig

OWNER_FILE = ".night-owner.json"


class NightLocked(RuntimeError):
    """Another night holds the run root or serving root; the message names it."""


def _owner() -> dict:
    return {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "started": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }


def _describe(owner_path: str) -> str:
    try:
        owner = json.loads(storage.read_text(owner_path))
    except Exception:  # noqa: BLE001 - an unreadable owner record still leaves a useful message
        return "another night"
    return f"the night started {owner.get('started')} by pid {owner.get('pid')} on {owner.get('host')}"


def _refusal(what: str, owner_path: str) -> NightLocked:
    return NightLocked(
        f"{what} is in use by {_describe(owner_path)}; one night at a time may run on it. Wait for it to "
        f"finish (or raise night_lock_wait_s in the config to wait up to that long) and run again"
    )


@contextlib.contextmanager
def night_lock(config: RecpipeConfig) -> Iterator[None]:
    """Hold the run root's and the serving root's lock for the block; raise NightLocked if taken."""
    owner_path = storage.join(config.run_root, OWNER_FILE)
    if config.metadata.kind == "mysql":
        lock = _mysql_locks(config, owner_path)
    else:
        lock = _file_locks(config, owner_path)
    with lock:
        storage.write_text_atomic(owner_path, json.dumps(_owner()))
        yield


def _lock_names(config: RecpipeConfig) -> list[tuple[str, str]]:
    """(MySQL lock name, what it guards); names are at most 64 characters."""
    return [
        (
            "recpipe-run-" + hashlib.sha1(config.run_root.encode()).hexdigest()[:40],
            f"run_root {config.run_root}",
        ),
        (
            "recpipe-srv-" + hashlib.sha1(config.serving.root.encode()).hexdigest()[:40],
            f"serving.root {config.serving.root}",
        ),
    ]


@contextlib.contextmanager
def _mysql_locks(config: RecpipeConfig, owner_path: str) -> Iterator[None]:
    import pymysql

    meta = config.metadata
    connection = pymysql.connect(
        host=meta.host,
        port=meta.port,
        user=meta.user,
        password=os.environ.get(meta.password_env, ""),
        database=meta.database,
        autocommit=True,
    )
    stop = threading.Event()
    heartbeat = threading.Thread(
        target=_keep_lease, args=(connection, config, stop), name="night-lock-lease", daemon=True
    )
    try:
        if refused := _take_locks(connection, config, int(config.night_lock_wait_s)):
            raise _refusal(refused, owner_path)
        heartbeat.start()
        yield
    finally:
        stop.set()
        if heartbeat.is_alive():
            heartbeat.join()
        connection.close()  # releases every named lock this connection holds


def _take_locks(connection, config: RecpipeConfig, wait_s: int) -> str | None:
    """Make the connection a lease of `night_lock_lease_s` and take every named lock, waiting up to
    `wait_s` for each; what the first lock that could not be taken guards, or None when all are held."""
    with connection.cursor() as cursor:
        cursor.execute("SET SESSION wait_timeout = %s", (config.night_lock_lease_s,))
        for name, what in _lock_names(config):
            cursor.execute("SELECT GET_LOCK(%s, %s)", (name, wait_s))
            if cursor.fetchone()[0] != 1:
                return what
    return None


def _keep_lease(connection, config: RecpipeConfig, stop: threading.Event) -> None:
    """Ping the lock connection until the night ends. A lost connection has released the locks: say so
    loudly, since another night may now start on the same roots, and take them again if they are free."""
    while not stop.wait(config.night_lock_lease_s / 4):
        try:
            connection.ping(reconnect=False)
            continue
        except Exception as err:  # noqa: BLE001 - any failure means the server may have dropped the lease
            lost = err
        try:
            connection.ping(reconnect=True)
            if taken := _take_locks(connection, config, 0):
                raise NightLocked(f"{taken} was taken by another night")
            logging.warning("night lock: the MySQL connection dropped (%s); its locks are taken again", lost)
        except Exception as err:  # noqa: BLE001 - reported; the night itself goes on
            logging.error(
                "night lock: lost the MySQL named locks on run_root %s (%s) and could not take them again "
                "(%s); another night may run on the same roots until this one ends",
                config.run_root,
                lost,
                err,
            )


def _lock_files(config: RecpipeConfig) -> list[tuple[str, str]]:
    """(lock file, what it guards): in the run root, and beside the serving root (whose bytes TF Serving
    reads are never touched). SQLite MLMD needs a local run root; a remote serving root goes with MySQL."""
    files = [(os.path.join(config.run_root, ".night.lock"), f"run_root {config.run_root}")]
    serving = config.serving.root.rstrip("/")
    if not storage.is_remote(serving):
        beside = os.path.join(os.path.dirname(serving), f".{os.path.basename(serving)}.night.lock")
        files.append((beside, f"serving.root {serving}"))
    return files


@contextlib.contextmanager
def _file_locks(config: RecpipeConfig, owner_path: str) -> Iterator[None]:
    import fcntl

    handles = []
    try:
        for path, what in _lock_files(config):
            try:
                os.makedirs(os.path.dirname(path), exist_ok=True)
                handle = open(path, "a")  # noqa: SIM115 - held for the block
            except OSError:
                continue  # an unwritable serving path: pre-flight names it with the fix
            handles.append(handle)
            deadline = time.time() + config.night_lock_wait_s
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.time() >= deadline:
                        raise _refusal(what, owner_path) from None
                    time.sleep(1.0)
        yield
    finally:
        for handle in handles:
            handle.close()
