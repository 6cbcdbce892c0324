"""Distributed training for real: the Trainer launching worker processes under
MultiWorkerMirroredStrategy, 1 vs 2 workers reaching the same AUC, and a SIGKILLed worker survived."""

import glob
import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest
from conftest import make_config

from bench.harness import newest_training_input
from components.launch.local import WorkerFailed, launch_local
from components.model.training import METRICS_FILE, TrainJob
from pipeline.dag import code_fingerprint
from pipeline.data.synthetic import SyntheticSpec, generate
from pipeline.runners import run_pipeline
from pipeline.serving_client import InProcessModel, recommend


@pytest.fixture(scope="module")
def two_worker_night(tmp_path_factory):
    """A whole pipeline run whose Trainer trains on two worker processes."""
    tmp = tmp_path_factory.mktemp("distributed")
    generate(tmp / "clicklog", SyntheticSpec(days=1, events_per_day=4000, seed=9, users=300, items=150))
    config = make_config(tmp, tmp / "clicklog", **{"trainer.workers": 2})
    return config, tmp, run_pipeline(config)


def _job(config, tmp: Path, name: str, **overrides) -> TrainJob:
    """A TrainJob on what the module's pipeline run trained on: its examples and Transform's graph."""
    graph, examples = newest_training_input(config.pipeline_root)
    cfg = {
        **config.trainer.model_dump(),
        **config.transform.model_dump(),
        "model_name": "m",
        "code": code_fingerprint(),
        **overrides,
    }
    return TrainJob(
        train_files=[f"{examples}/Split-train/*"],
        eval_files=[f"{examples}/Split-eval/*"],
        transform_output=graph,
        serving_model_dir=str(tmp / name / "model"),
        model_run_dir=str(tmp / name / "run"),
        custom_config=cfg,
    )


def _trained_auc(job: TrainJob, workers: int) -> float:
    """Train `job` on `workers` local processes, no restarts; its final eval AUC."""
    launch_local(job, workers, max_restarts=0)
    return json.loads((Path(job.model_run_dir) / METRICS_FILE).read_text())["auc"]


def test_the_trainer_runs_two_workers_and_the_pipeline_ships_their_model(two_worker_night):
    config, _, summary = two_worker_night
    assert summary.node_states["Trainer"] == "COMPLETE" and summary.blessed is not None
    logs = sorted(
        glob.glob(
            str(
                Path(config.pipeline_root) / "Trainer" / "model_run" / "*" / "workers" / "attempt-0" / "*.log"
            )
        )
    )
    assert [Path(p).name for p in logs] == ["worker-0.log", "worker-1.log"]
    for log in logs:
        text = Path(log).read_text()
        assert "eval metrics" in text, f"{log} did not finish training"
    if summary.pushed:
        assert len(recommend(InProcessModel(config.serving_model_dir), "u1", k=3, device="mobile")) == 3


def test_one_and_two_workers_reach_the_same_auc(two_worker_night):
    config, tmp, _ = two_worker_night
    aucs = {workers: _trained_auc(_job(config, tmp, f"parity-{workers}"), workers) for workers in (1, 2)}
    print(f"AUC 1 worker {aucs[1]:.4f}, 2 workers {aucs[2]:.4f}")
    assert abs(aucs[1] - aucs[2]) <= 0.01


def test_sampled_negatives_under_a_softmax_train_as_well_on_two_workers_as_on_one(two_worker_night):
    """Each worker draws its own shard's negatives (by popularity, so the softmax's logQ correction is not a
    constant) inside the strategy's input pipeline; the two reach the AUC one worker reaches."""
    config, tmp, _ = two_worker_night
    ranking = {"negatives": 8, "loss": "softmax", "negative_sampling": "popularity"}
    aucs = {}
    for workers in (1, 2):
        job = _job(config, tmp, f"negatives-{workers}", **ranking)
        aucs[workers] = _trained_auc(job, workers)
        model = InProcessModel(job.serving_model_dir)
        assert len(recommend(model, "u1", k=3, device="mobile")) == 3
    print(f"sampled negatives: AUC 1 worker {aucs[1]:.4f}, 2 workers {aucs[2]:.4f}")
    assert min(aucs.values()) > 0.6 and abs(aucs[1] - aucs[2]) <= 0.01


def test_a_killed_worker_is_restarted_and_training_resumes_from_backup(two_worker_night, capfd):
    config, tmp, _ = two_worker_night
    job = _job(config, tmp, "sigkill", epochs=40)
    workers_dir = Path(job.model_run_dir) / "workers" / "attempt-0"
    killed = {}

    def kill_worker_1_mid_training():
        deadline = time.time() + 300
        while time.time() < deadline:
            log = workers_dir / "worker-1.log"
            if log.exists() and "epoch 4 of 40 begins" in log.read_text(errors="replace"):
                pid = int((workers_dir / "worker-1.pid").read_text())
                os.kill(pid, signal.SIGKILL)
                killed["pid"] = pid
                return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_worker_1_mid_training)
    killer.start()
    launch_local(job, workers=2, max_restarts=2)
    killer.join()

    assert killed, "worker 1 was never seen training"
    assert "worker 1 failed (killed by signal 9) on attempt 1" in capfd.readouterr().err
    resumed = (Path(job.model_run_dir) / "workers" / "attempt-1" / "worker-0.log").read_text(errors="replace")
    assert "resumed from backup: continuing at epoch" in resumed
    epoch = int(resumed.split("resumed from backup: continuing at epoch ")[1].split()[0])
    assert 2 <= epoch <= 40, "training resumed from a saved epoch, not from scratch"
    assert json.loads((Path(job.model_run_dir) / METRICS_FILE).read_text())["auc"] > 0.5
    assert len(recommend(InProcessModel(job.serving_model_dir), "u1", k=3, device="mobile")) == 3


def test_a_worker_that_keeps_failing_fails_the_step_with_its_error(two_worker_night):
    config, tmp, _ = two_worker_night
    job = _job(config, tmp, "broken")
    job = TrainJob(**{**job.__dict__, "transform_output": str(tmp / "no-such-transform-graph")})
    with pytest.raises(WorkerFailed) as failure:
        launch_local(job, workers=2, max_restarts=1)
    message = str(failure.value)
    assert "failed after 2 attempts" in message and "no-such-transform-graph" in message
