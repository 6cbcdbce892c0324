"""Trainer throughput: our input path (ExampleGen's TFRecords through Transform's graph in training.dataset, under
MultiWorkerMirroredStrategy, fitted as the Trainer fits them) against the same NeuMF fed from NumPy arrays
already in memory, in one process, side by side.

The in-memory run is the ceiling a hand-written Keras script reaches on the same model and batch: if ours is
slower, reading and parsing examples (not the model) is the bottleneck. The first epoch of each is left out
of the rate (it traces the graph). Run by `make bench`; prints one JSON object.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import click

from bench.harness import newest_training_input, split_files
from components.model.model import build_neumf
from components.model.training import dataset, model_params, model_shape, transforming
from pipeline.config import load_config
from pipeline.plan import trainer_settings


def timed_fit(model, *args, **kwargs) -> list[float]:
    """model.fit(...), returning each epoch's wall seconds."""
    import tf_keras as keras

    class EpochTimer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seconds: list[float] = []

        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(time.perf_counter() - self.started)

    timer = EpochTimer()
    model.fit(*args, callbacks=[timer], verbose=0, **kwargs)
    return timer.seconds


def measure(pipeline_root: str, config_path: str, epochs: int) -> dict:
    import numpy as np
    import tensorflow as tf
    import tensorflow_transform as tft

    # The strategy must exist before any other TensorFlow op runs, as in the trainer.
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    config = load_config(config_path)
    cfg = trainer_settings(config)
    graph, examples = newest_training_input(pipeline_root)
    train_files = split_files(examples, "train")
    tf_transform_output = tft.TFTransformOutput(graph)
    decode = transforming(tf_transform_output)
    shape = model_shape(tf_transform_output, cfg)
    params = model_params(cfg)
    batch = config.trainer.batch_size
    with strategy.scope():
        ours = build_neumf(shape, params)
    ours_seconds = timed_fit(ours, dataset(train_files, decode, batch, True, cfg), epochs=epochs)

    # A split above trainer.cache_max_examples: its parsed batches cached on local disk (the Trainer's
    # default), and, with trainer.disk_cache off, decompressed and parsed from the files every epoch.
    over_limit = {**cfg, "cache_max_examples": 0}
    with tempfile.TemporaryDirectory(prefix="recpipe-bench-batches-") as spill:
        with strategy.scope():
            spilled = build_neumf(shape, params)
        on_disk = dataset(
            train_files, decode, batch, True, over_limit, disk_cache=os.path.join(spill, "train")
        )
        disk_seconds = timed_fit(spilled, on_disk, epochs=epochs)
    with strategy.scope():
        streamed = build_neumf(shape, params)
    streaming = dataset(train_files, decode, batch, True, over_limit)
    streaming_seconds = timed_fit(streamed, streaming, epochs=epochs)

    # The same input path without the strategy: separates reading from MultiWorkerMirroredStrategy's cost.
    plain = build_neumf(shape, params)
    plain_seconds = timed_fit(plain, dataset(train_files, decode, batch, True, cfg), epochs=epochs)

    # Everything into memory first (not timed): what a hand-written script would start from. Compiled
    # as ours (trainer.steps_per_execution), and as a script left at Keras's defaults would be.
    columns: dict[str, list] = {}
    labels = []
    for features, label in dataset(train_files, decode, 8192, False, cfg):
        for name in ours.input_names:
            columns.setdefault(name, []).append(features[name].numpy())
        labels.append(label.numpy())
    x = {name: np.concatenate(parts) for name, parts in columns.items()}
    y = np.concatenate(labels).astype("float32")
    baseline = build_neumf(shape, params)
    in_memory_seconds = timed_fit(baseline, x, y, batch_size=batch, epochs=epochs, shuffle=True)
    defaults = build_neumf(shape, dataclasses.replace(params, steps_per_execution=1))
    defaults_seconds = timed_fit(defaults, x, y, batch_size=batch, epochs=epochs, shuffle=True)
    rows = len(y)

    def rate(seconds: list[float]) -> float:
        steady = seconds[1:] or seconds
        return rows * len(steady) / sum(steady)

    return {
        "examples": rows,
        "epochs": epochs,
        "batch_size": batch,
        "ours_epoch_seconds": ours_seconds,
        "in_memory_epoch_seconds": in_memory_seconds,
        "ours_no_strategy_epoch_seconds": plain_seconds,
        "steps_per_execution": params.steps_per_execution,
        "ours_streaming_epoch_seconds": streaming_seconds,
        "ours_disk_cache_epoch_seconds": disk_seconds,
        "ours_disk_cache_examples_per_s": rate(disk_seconds),
        "in_memory_keras_defaults_epoch_seconds": defaults_seconds,
        "in_memory_keras_defaults_examples_per_s": rate(defaults_seconds),
        "ours_streaming_examples_per_s": rate(streaming_seconds),
        "ours_no_strategy_examples_per_s": rate(plain_seconds),
        "ours_examples_per_s": rate(ours_seconds),
        "in_memory_examples_per_s": rate(in_memory_seconds),
    }


@click.command()
@click.option(
    "--pipeline-root", required=True, type=click.Path(exists=True, file_okay=False), help="A finished run's."
)
@click.option("--config", "config_path", default="configs/local.yaml", show_default=True)
@click.option("--epochs", default=4, show_default=True, type=click.IntRange(2))
def main(pipeline_root: str, config_path: str, epochs: int) -> None:
    """Print our trainer's and an in-memory Keras NeuMF's examples/s on one run's training input."""
    click.echo(json.dumps(measure(pipeline_root, config_path, epochs)))


if __name__ == "__main__":
    main()
