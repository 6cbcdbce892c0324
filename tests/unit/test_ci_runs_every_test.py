"""CI must run every test: a tool that `.ci/run` stopped installing shows up as a failure, not a skip."""

import os
import subprocess
import sys

from conftest import FAIL_ON_SKIP, REPO

PROBE = """
import pytest

def test_needs_a_missing_tool():
    pytest.skip("needs a tool this machine lacks")

def test_runs():
    pass
"""


def _pytest(tmp_path, env: dict[str, str]) -> subprocess.CompletedProcess:
    probe = tmp_path / "test_probe.py"
    probe.write_text(PROBE)
    # Our conftest as a plugin, so the probe runs under the same hooks as the suite.
    args = [
        "-p",
        "conftest",
        "-c",
        str(REPO / "pyproject.toml"),
        "--rootdir",
        str(tmp_path),
        "-q",
        str(probe),
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO / "tests"), **env}
    return subprocess.run(
        [sys.executable, "-m", "pytest", *args], env=env, cwd=REPO, capture_output=True, text=True
    )


def test_a_skipped_test_fails_the_run_under_ci(tmp_path):
    run = _pytest(tmp_path, {FAIL_ON_SKIP: "1"})
    assert run.returncode == 1, run.stdout + run.stderr
    assert "test_needs_a_missing_tool: Skipped: needs a tool this machine lacks" in run.stdout


def test_a_skipped_test_is_only_reported_outside_ci(tmp_path, monkeypatch):
    monkeypatch.delenv(FAIL_ON_SKIP, raising=False)
    run = _pytest(tmp_path, {})
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 passed, 1 skipped" in run.stdout
