"""run_fn: trains NeuMF under MultiWorkerMirroredStrategy on 1 or N workers and exports it for serving.

One worker trains in the Trainer's own process (no TF_CONFIG: a single local worker). With
trainer.workers > 1 the same training code runs as N worker processes on this machine
(components/launch/local.py) or, with trainer.launcher: tfjob, as a Kubeflow TFJob
(components/launch/tfjob.py). Where it runs comes from the night (components/launch/__init__.py), not
from custom_config, so it never invalidates the Trainer's cache.
"""

from __future__ import annotations

from tfx import v1 as tfx

from components.launch import current_launch
from components.launch.local import launch_local
from components.launch.tfjob import launch_tfjob
from components.model.training import TrainJob, train


def run_fn(fn_args: tfx.components.FnArgs) -> None:
    job = TrainJob(
        train_files=list(fn_args.train_files),
        eval_files=list(fn_args.eval_files),
        transform_output=fn_args.transform_output,
        serving_model_dir=fn_args.serving_model_dir,
        model_run_dir=fn_args.model_run_dir,
        custom_config=fn_args.custom_config or {},
    )
    launch = current_launch()
    workers = int(launch.get("workers", 1))
    if launch.get("launcher") == "tfjob":
        launch_tfjob(job, workers, launch)
    elif workers > 1:
        launch_local(job, workers, int(launch["max_restarts"]))
    else:
        train(job)
