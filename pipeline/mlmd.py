"""The one MLMD connection of a run, from config: every pipeline, partial run, resolver and reader uses it.

SQLite under run_root is the embedded default for a local run; MySQL (the database Kubeflow already runs,
or your own) serves the Kubeflow phases, which are separate pods that must see one store.
"""

from __future__ import annotations

import logging
import os

from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2

from components import storage
from pipeline.config import RecpipeConfig


class MetadataConfigError(RuntimeError):
    """MLMD cannot be reached as configured; the message names the setting to fix."""


def metadata_connection(config: RecpipeConfig) -> metadata_store_pb2.ConnectionConfig:
    """SQLite under run_root, or MySQL (password from the env var the pod's secret fills)."""
    meta = config.metadata
    if meta.kind == "sqlite":
        if storage.is_remote(config.run_root):
            raise MetadataConfigError(
                f"metadata.kind is sqlite but run_root is {config.run_root}: SQLite needs a local file. "
                "Set metadata.kind: mysql for an object-store run_root (see configs/kubeflow.yaml)"
            )
        connection = metadata_store_pb2.ConnectionConfig()
        connection.sqlite.filename_uri = config.metadata_path
        connection.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READWRITE_OPENCREATE
        return connection
    password = os.environ.get(meta.password_env)
    if password is None:
        raise MetadataConfigError(
            f"MLMD is MySQL but env var {meta.password_env} is not set "
            f"(mount secret {meta.secret_name!r} key {meta.secret_key!r} into it)"
        )
    redact_from_logs(password)
    connection = metadata_store_pb2.ConnectionConfig()
    connection.mysql.host = meta.host
    connection.mysql.port = meta.port
    connection.mysql.database = meta.database
    connection.mysql.user = meta.user
    connection.mysql.password = password
    return connection


def redact_from_logs(secret: str) -> None:
    """Replace `secret` in every log record of this process. TFX's LocalDagRunner logs the whole MLMD
    connection config, MySQL password included, and a pod's log is readable by anyone who can see the run."""
    if not secret or secret in _REDACTED:
        return
    _REDACTED.add(secret)
    make_record = logging.getLogRecordFactory()

    def redacting(*args, **kwargs):
        record = make_record(*args, **kwargs)
        message = record.getMessage()
        if secret in message:
            record.msg, record.args = message.replace(secret, "***"), None
        return record

    logging.setLogRecordFactory(redacting)


_REDACTED: set[str] = set()


def open_store(config: RecpipeConfig) -> metadata_store.MetadataStore | None:
    """The run's MLMD, or None before any run made the local SQLite file (opening it would create it)."""
    if config.metadata.kind == "sqlite" and not os.path.exists(config.metadata_path):
        return None
    return metadata_store.MetadataStore(metadata_connection(config))
