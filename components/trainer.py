"""run_fn: trains NeuMF under MultiWorkerMirroredStrategy on 1 or N workers and exports it for serving.

One worker trains in the Trainer's own process (no TF_CONFIG: a single local worker). With
trainer.workers > 1 the same training code runs as N worker processes on this machine
(components/distributed.py) or, with trainer.launcher: tfjob, as a Kubeflow TFJob (components/tfjob.py).
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

from tfx import v1 as tfx

from components.training import TrainJob, train


def run_fn(fn_args: tfx.components.FnArgs) -> None:
    cfg = fn_args.custom_config or {}
    job = TrainJob(
        train_files=list(fn_args.train_files),
        eval_files=list(fn_args.eval_files),
        transform_output=fn_args.transform_output,
        serving_model_dir=fn_args.serving_model_dir,
        model_run_dir=fn_args.model_run_dir,
        custom_config=cfg,
    )
    workers = int(cfg.get("workers", 1))
    if cfg.get("launcher") == "tfjob":
        from components.tfjob import launch_tfjob

        launch_tfjob(job, workers, cfg)
    elif workers > 1:
        from components.distributed import launch_local

        launch_local(job, workers, int(cfg["max_restarts"]))
    else:
        train(job)
