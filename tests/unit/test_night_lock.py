"""One night at a time per run root and serving root: two real processes, on SQLite (file lock) and on
MySQL MLMD (named locks on a real MariaDB)."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pymysql
import pytest
import yaml
from conftest import make_config

from pipeline.night_lock import NightLocked, _lock_names, night_lock

REPO = Path(__file__).resolve().parents[2]


def _hold_in_another_process(config, tmp_path: Path, env: dict) -> subprocess.Popen:
    """A second process that takes the night lock and holds it until killed; returns once it holds it."""
    config_file = tmp_path / "config.yaml"
    config_file.write_text(yaml.safe_dump(config.model_dump()))
    ready = tmp_path / "holding"
    script = textwrap.dedent(
        f"""
        import time, yaml
        from pipeline.config import RecpipeConfig
        from pipeline.night_lock import night_lock
        config = RecpipeConfig.model_validate(yaml.safe_load(open({str(config_file)!r})))
        with night_lock(config):
            open({str(ready)!r}, "w").close()
            time.sleep(600)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=REPO, env={**os.environ, **env})
    deadline = time.time() + 60
    while not ready.exists():
        assert proc.poll() is None and time.time() < deadline, "the holder did not take the lock"
        time.sleep(0.1)
    return proc


def _second_night_is_refused_naming_the_first(config, tmp_path, env=None):
    holder = _hold_in_another_process(config, tmp_path, env or {})
    try:
        with pytest.raises(NightLocked, match=rf"in use by the night started .* by pid {holder.pid} on"):
            with night_lock(config):
                pass
        waiting = config.with_overrides(night_lock_wait_s=2)
        t0 = time.time()
        with pytest.raises(NightLocked):
            with night_lock(waiting):
                pass
        assert time.time() - t0 >= 1.5, "night_lock_wait_s waits before giving up"
    finally:
        holder.kill()
        holder.wait()
    # A dead holder's lock is released with its process: at once for a file lock, and for a MySQL named
    # lock as soon as the server sees the connection close, which on a loaded machine can take a moment
    # (CI once saw the lock still held right after kill). A night that waits a little then gets it.
    with night_lock(config.with_overrides(night_lock_wait_s=30)):
        pass


def test_a_second_night_on_a_local_run_root_is_refused_naming_the_running_one(tmp_path):
    config = make_config(tmp_path, tmp_path / "data")
    _second_night_is_refused_naming_the_first(config, tmp_path)


def _on_mysql(tmp_path, mysql_server, monkeypatch, **overrides):
    """A config whose MLMD is a fresh database on the test's MariaDB; (config, (database, user, password))."""
    database, user, password = mysql_server.new_database()
    monkeypatch.setenv("MLMD_MYSQL_PASSWORD", password)
    config = make_config(tmp_path, tmp_path / "data").with_overrides(
        **{
            "metadata.kind": "mysql",
            "metadata.host": "127.0.0.1",
            "metadata.port": mysql_server.port,
            "metadata.database": database,
            "metadata.user": user,
            **overrides,
        }
    )
    return config, (database, user, password)


def test_a_second_night_on_mysql_mlmd_is_refused_naming_the_running_one(tmp_path, mysql_server, monkeypatch):
    config, _ = _on_mysql(tmp_path, mysql_server, monkeypatch)
    _second_night_is_refused_naming_the_first(config, tmp_path)


def test_a_mysql_night_lock_outlives_its_lease_while_held_and_frees_when_its_holder_freezes(
    tmp_path, mysql_server, monkeypatch
):
    """A node that vanishes never closes its connection; a frozen holder (SIGSTOP) behaves the same. The
    server drops the silent lease after night_lock_lease_s, while a live holder's pings keep it."""
    config, (database, user, password) = _on_mysql(tmp_path, mysql_server, monkeypatch, night_lock_lease_s=3)
    holder = _hold_in_another_process(config, tmp_path, {})
    try:
        time.sleep(7)  # two leases: only the pings keep the connection
        with pytest.raises(NightLocked, match=rf"by pid {holder.pid} on"):
            with night_lock(config):
                pass
        # The server drops the holder's connection (a restart, a network blip): it takes the locks again.
        admin = pymysql.connect(
            host="127.0.0.1", port=mysql_server.port, user=user, password=password, database=database
        )
        with admin.cursor() as cursor:
            cursor.execute("SELECT IS_USED_LOCK(%s)", (_lock_names(config)[0][0],))
            (dropped,) = cursor.fetchone()
            cursor.execute("KILL %s", (dropped,))
            time.sleep(3)
            cursor.execute("SELECT IS_USED_LOCK(%s)", (_lock_names(config)[0][0],))
            (taken_again_by,) = cursor.fetchone()
        admin.close()
        assert taken_again_by not in (None, dropped), "the holder did not take its locks again"
        with pytest.raises(NightLocked, match=rf"by pid {holder.pid} on"):
            with night_lock(config):
                pass
        holder.send_signal(signal.SIGSTOP)
        t0 = time.time()
        with night_lock(config.with_overrides(night_lock_wait_s=30)):
            waited = time.time() - t0
        assert waited < 15, f"a silent holder's lease was dropped only after {waited:.0f} s"
    finally:
        holder.kill()
        holder.wait()
