"""Runs a TrainJob on N local worker processes under MultiWorkerMirroredStrategy.

TFX's Trainer runs run_fn in one process and never starts other workers; a strategy object alone does
not make training distributed. This launcher starts N copies of this module, each with its own TF_CONFIG
on free localhost ports, and waits. If any worker dies, the others would block forever in a collective,
so they are stopped and the whole group restarts (up to max_restarts); BackupAndRestore makes the new
group resume from the last finished epoch. The step fails with the failing worker's own error.

Worker entry point: `python -m components.launch.local --job JOB.json` (TF_CONFIG in the environment).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from components.model.training import TrainJob, train

POLL_S = 0.5


class WorkerFailed(RuntimeError):
    """A worker kept failing; the message holds its exit code and the end of its log."""


def free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("localhost", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def tf_config(ports: list[int], index: int) -> str:
    return json.dumps(
        {"cluster": {"worker": [f"localhost:{p}" for p in ports]}, "task": {"type": "worker", "index": index}}
    )


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return "".join(path.read_text(errors="replace").splitlines(keepends=True)[-lines:])
    except OSError:
        return "(no log)"


def _stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
    for p in procs:
        p.wait()


def launch_local(job: TrainJob, workers: int, max_restarts: int, timeout_s: float | None = None) -> Path:
    """Run the job on `workers` processes; returns the folder of worker logs. Raises WorkerFailed."""
    run_dir = Path(job.model_run_dir) / "workers"
    run_dir.mkdir(parents=True, exist_ok=True)
    job_file = run_dir / "job.json"
    job_file.write_text(job.to_json())
    failure = ""
    for attempt in range(max_restarts + 1):
        attempt_dir = run_dir / f"attempt-{attempt}"
        attempt_dir.mkdir(exist_ok=True)
        ports = free_ports(workers)
        procs, logs = [], []
        for index in range(workers):
            log = attempt_dir / f"worker-{index}.log"
            env = {**os.environ, "TF_CONFIG": tf_config(ports, index)}
            with open(log, "w") as out:
                procs.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "components.launch.local", "--job", str(job_file)],
                        env=env,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                    )
                )
            (attempt_dir / f"worker-{index}.pid").write_text(str(procs[-1].pid))
            logs.append(log)
        started = time.time()
        failed = None
        while failed is None and any(p.poll() is None for p in procs):
            time.sleep(POLL_S)
            failed = next((i for i, p in enumerate(procs) if p.poll() not in (None, 0)), None)
            if timeout_s and time.time() - started > timeout_s:
                _stop(procs)
                raise WorkerFailed(
                    f"training did not finish within {timeout_s:.0f}s; worker logs in {attempt_dir}"
                )
        if failed is None:
            return run_dir
        code = procs[failed].returncode
        _stop(procs)  # the others would wait forever for the dead worker in a collective
        how = f"killed by signal {-code}" if code < 0 else f"exit code {code}"
        failure = (
            f"worker {failed} failed ({how}) on attempt {attempt + 1}; its log ends:\n{_tail(logs[failed])}"
        )
        print(
            f"recpipe: {failure.splitlines()[0]}; restarting all {workers} workers from the last backup"
            if attempt < max_restarts
            else f"recpipe: {failure.splitlines()[0]}",
            file=sys.stderr,
        )
    raise WorkerFailed(f"distributed training failed after {max_restarts + 1} attempts: {failure}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--job", required=True, help="TrainJob JSON (local path or any tf.io.gfile URI)")
    args = parser.parse_args(argv)
    import tensorflow as tf
    from absl import logging

    logging.set_verbosity(logging.INFO)
    with tf.io.gfile.GFile(args.job) as f:
        job = TrainJob.from_json(f.read())
    metrics = train(job)
    logging.info("recpipe: worker finished, eval metrics %s", metrics)


if __name__ == "__main__":
    main()
