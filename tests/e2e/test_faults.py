"""Issue 7, faults: a night killed mid-run resumes from what finished; a push killed mid-copy leaves nothing
visible, and the next push is clean. Real processes, really SIGKILLed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from conftest import REPO, make_config

from components.serving_layout import list_versions, push_model, push_record
from pipeline.cli import main as cli
from pipeline.data.synthetic import SyntheticSpec, generate
from pipeline.records.summary import summarize


def _wait_for(condition, timeout: float, what: str, proc: subprocess.Popen) -> None:
    deadline = time.time() + timeout
    while not condition():
        if proc.poll() is not None:
            pytest.fail(f"the process ended (rc {proc.returncode}) before {what}")
        if time.time() > deadline:
            proc.kill()
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.2)


def test_a_night_killed_during_transform_resumes_from_what_finished(tmp_path):
    data = tmp_path / "data"
    generate(data, SyntheticSpec(days=1, events_per_day=3000, seed=5, users=200, items=100))
    config = make_config(tmp_path, data)
    path = tmp_path / "night.yaml"
    path.write_text(yaml.safe_dump(config.model_dump()))
    transform_out = Path(config.pipeline_root) / "Transform"
    with open(tmp_path / "killed.log", "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pipeline.cli", "run", "--config", str(path)],
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        _wait_for(transform_out.exists, 300, "Transform started", proc)
        time.sleep(1.0)  # inside Transform's Beam job
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not list_versions(config.serving_model_dir)

    started = int(time.time() * 1000)
    result = CliRunner().invoke(cli, ["run", "--config", str(path)])
    assert result.exit_code == 0, result.output
    states = summarize(config, started).node_states
    for finished in ("ImportExampleGen", "StatisticsGen", "ExampleValidator"):
        assert states[finished] == "CACHED", states
    assert states["Transform"] == "COMPLETE" and states["Pusher"] == "COMPLETE"
    assert len(list_versions(config.serving_model_dir)) == 1


def _fake_model(path: Path, seed: bytes) -> Path:
    (path / "variables").mkdir(parents=True)
    (path / "saved_model.pb").write_bytes(seed * 1000)
    (path / "variables" / "variables.data-00000-of-00001").write_bytes(seed * 200_000)
    (path / "variables" / "variables.index").write_bytes(seed * 10)
    return path


def test_a_push_killed_mid_copy_shows_no_version_and_the_next_push_is_clean(tmp_path):
    serving = tmp_path / "serving"
    old = push_model(_fake_model(tmp_path / "old", b"o"), serving, "rec", 5, {"model_uri": "/mlmd/old"})
    served = {p: p.read_bytes() for p in Path(old.path).rglob("*") if p.is_file()}
    # The child copies the model, says so, then hangs before the rename; it is SIGKILLed there.
    child = textwrap.dedent(
        f"""
        import sys, time
        from components import serving_layout, storage
        real = storage.copy_file
        def copy_then_hang(src, dst):
            real(src, dst)
            if dst.endswith("saved_model.pb"):  # the last file of the staged copy; the rename is next
                print("copied", flush=True)
                time.sleep(600)
        storage.copy_file = copy_then_hang
        serving_layout.push_model({str(_fake_model(tmp_path / "new", b"n"))!r}, {str(serving)!r}, "rec", 5,
                                  {{"model_uri": "/mlmd/new"}})
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", child], cwd=REPO, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "copied"
    proc.send_signal(signal.SIGKILL)
    proc.wait()

    assert list_versions(serving / "rec") == [old.version], "TF Serving must see no new version"
    assert {p: p.read_bytes() for p in Path(old.path).rglob("*") if p.is_file()} == served
    assert [p.name for p in (serving / "rec").iterdir() if p.name.startswith(".tmp-")], (
        "the kill left its copy"
    )

    again = push_model(tmp_path / "new", serving, "rec", 5, {"model_uri": "/mlmd/new"})
    assert again.pushed and again.version > old.version
    assert list_versions(serving / "rec") == [old.version, again.version]
    assert push_record(Path(again.path))["model_uri"] == "/mlmd/new"
    assert not [p for p in (serving / "rec").iterdir() if p.name.startswith(".")], "leftovers cleaned"


def test_sigterm_during_training_says_what_was_interrupted_and_leaves_nothing_running(tmp_path):
    from ml_metadata.proto import metadata_store_pb2

    from pipeline.mlmd import open_store

    data = tmp_path / "data"
    generate(data, SyntheticSpec(days=1, events_per_day=3000, seed=5, users=200, items=100))
    config = make_config(tmp_path, data, **{"trainer.epochs": 200})
    path = tmp_path / "night.yaml"
    path.write_text(yaml.safe_dump(config.model_dump()))
    trainer_out = Path(config.pipeline_root) / "Trainer"
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", "run", "--config", str(path)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    _wait_for(trainer_out.exists, 300, "the Trainer started", proc)
    time.sleep(3.0)  # inside the epochs
    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=120)
    message = " ".join(output.split())
    assert proc.returncode == 143, output[-3000:]
    assert "interrupted by SIGTERM while running Trainer" in message, output[-3000:]
    assert "reused from the cache" in message and not list_versions(config.serving_model_dir)
    store = open_store(config)
    running = [
        e for e in store.get_executions() if e.last_known_state == metadata_store_pb2.Execution.RUNNING
    ]
    assert not running, "no execution is left RUNNING in MLMD"
