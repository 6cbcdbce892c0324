"""Real servers for the tests, each private to the test session and stopped at its end.

- MariaDB (the MySQL protocol MLMD speaks on Kubeflow): a `mariadbd` on a temporary data dir, its own
  port and socket, with a database and a user with a password per test that asks.
- An S3 API (what open-source Kubeflow's MinIO speaks): moto's server, reached through real `s3://` URIs
  by TensorFlow's S3 plugin (tensorflow-io) and by Beam's S3 filesystem (boto3).

.ci/run installs mariadb-server; moto is in the lock. A developer machine without mariadbd skips the MySQL
tests with the install command as the reason.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

INSTALL_MARIADB = "apt-get install -y mariadb-server (bash .ci/run does this)"
S3_BUCKET = "mlpipeline"  # the bucket open-source Kubeflow's MinIO holds; configs/kubeflow.yaml uses it


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(ready, what: str, proc: subprocess.Popen, log: Path, timeout: float = 60.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}: {log.read_text()[-2000:]}")
        if ready():
            return
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not start in {timeout:.0f}s: {log.read_text()[-2000:]}")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass(frozen=True)
class MySQL:
    host: str
    port: int
    socket: str
    client: str

    def sql(self, statement: str) -> str:
        out = subprocess.run(
            [self.client, f"--socket={self.socket}", "-uroot", "-N", "-e", statement],
            capture_output=True,
            text=True,
            check=True,
        )
        return out.stdout

    def new_database(self) -> tuple[str, str, str]:
        """(database, user, password): a fresh database and a user that may use only it."""
        suffix = secrets.token_hex(4)
        database, user, password = f"mlmd_{suffix}", f"recpipe_{suffix}", secrets.token_urlsafe(16)
        self.sql(
            f"CREATE DATABASE {database}; CREATE USER '{user}'@'127.0.0.1' IDENTIFIED BY '{password}'; "
            f"GRANT ALL ON {database}.* TO '{user}'@'127.0.0.1'; FLUSH PRIVILEGES;"
        )
        return database, user, password


def _sbin_tool(name: str) -> str | None:
    """A tool on PATH or in /usr/sbin (not on every PATH), found the way .ci/run finds it before installing."""
    return shutil.which(name) or shutil.which(name, path="/usr/sbin")


def start_mariadb():
    """Yields a MySQL server; skips with the install command where mariadbd is missing."""
    mariadbd, install_db, client = (_sbin_tool(t) for t in ("mariadbd", "mariadb-install-db", "mariadb"))
    if not (mariadbd and install_db and client):
        pytest.skip(f"mariadbd is not installed: {INSTALL_MARIADB}")
    home = Path(tempfile.mkdtemp(prefix="recpipe-mariadb-"))
    data, sock, log = home / "data", home / "mysqld.sock", home / "mariadbd.log"
    subprocess.run(
        [install_db, f"--datadir={data}", "--auth-root-authentication-method=normal", "--user=root"],
        capture_output=True,
        check=True,
    )
    port = free_port()
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [
                mariadbd,
                "--no-defaults",
                f"--datadir={data}",
                f"--socket={sock}",
                f"--port={port}",
                "--bind-address=127.0.0.1",
                "--user=root",
                f"--pid-file={home / 'mariadbd.pid'}",
                "--skip-log-bin",
                "--innodb-buffer-pool-size=64M",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait(sock.exists, "mariadbd", proc, log)
        yield MySQL("127.0.0.1", port, str(sock), client)
    finally:
        _stop(proc)
        shutil.rmtree(home, ignore_errors=True)


S3_ENV = {
    "AWS_ACCESS_KEY_ID": "recpipe-test",
    "AWS_SECRET_ACCESS_KEY": "recpipe-test-secret",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def start_s3():
    """Yields the endpoint URL of a private S3 server holding the bucket S3_BUCKET, with the standard AWS
    variables set in this process (and so in every process a test starts)."""
    moto = Path(sys.executable).with_name("moto_server")
    home = Path(tempfile.mkdtemp(prefix="recpipe-s3-"))
    log = home / "moto.log"
    port = free_port()
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [str(moto), "-H", "127.0.0.1", "-p", str(port)], stdout=out, stderr=subprocess.STDOUT
        )
    endpoint = f"http://127.0.0.1:{port}"

    def listening() -> bool:
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0

    saved = {k: os.environ.get(k) for k in [*S3_ENV, "AWS_ENDPOINT_URL_S3", "S3_ENDPOINT"]}
    try:
        _wait(listening, "moto_server", proc, log)
        os.environ.update(S3_ENV, AWS_ENDPOINT_URL_S3=endpoint)
        os.environ.pop("S3_ENDPOINT", None)
        import boto3

        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=S3_BUCKET)
        yield endpoint
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        _stop(proc)
        shutil.rmtree(home, ignore_errors=True)
