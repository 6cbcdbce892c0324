"""Training NeuMF through Transform's graph: the body every worker runs, in the Trainer's process or not.

A TrainJob holds only paths and the config, so it travels as JSON to worker processes (local launcher)
or pods (TFJob). Each worker builds MultiWorkerMirroredStrategy from its TF_CONFIG (a single local worker
without one), reads its share of the data (element-wise sharding), backs up every epoch so a restarted
worker resumes instead of starting over, and joins the collective save; only the chief's export counts.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from typing import Any

import tensorflow as tf
import tensorflow_transform as tft
import tf_keras as keras
from absl import logging

from components.model import features as F
from components.model.model import INPUT_FEATURES, ModelParams, ModelShape, build_neumf
from components.model.negatives import CATALOGUE_FEATURES, read_catalogue, with_negatives
from components.model.ranking import SampledNegativesTrainer
from components.model.recommend import Recommender
from components.model.signatures import make_signatures, warmup_requests
from components.model.tracing import skip_converting_keras
from components.model.warm_start import (
    IncompatibleBaseModel,
    apply_warm_start,
    check_architecture,
    layer_weights,
    load_bundle,
    save_bundle,
)
from components.serving_check import write_warmup

METRICS_FILE = "metrics.json"


@dataclasses.dataclass(frozen=True)
class TrainJob:
    train_files: list[str]
    eval_files: list[str]
    transform_output: str
    serving_model_dir: str
    model_run_dir: str
    custom_config: dict[str, Any]

    @property
    def backup_dir(self) -> str:
        return os.path.join(self.model_run_dir, "backup")

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> TrainJob:
        return cls(**json.loads(text))


def is_chief() -> bool:
    """The chief exports the model: task 'chief' if the cluster has one, else worker 0 (or no TF_CONFIG)."""
    tf_config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    task, cluster = tf_config.get("task", {}), tf_config.get("cluster", {})
    if not task:
        return True
    if "chief" in cluster:
        return task.get("type") == "chief"
    return task.get("type") == "worker" and int(task.get("index", 0)) == 0


def model_shape(tf_transform_output: tft.TFTransformOutput, cfg: dict) -> ModelShape:
    """Embedding table sizes = vocabulary sizes + OOV buckets, read from what Transform computed."""
    vocab = tf_transform_output.vocabulary_size_by_name
    buckets = int(cfg["quantile_buckets"])
    return ModelShape(
        users=vocab(F.VOCAB_FILES[F.USER_ID]) + int(cfg["id_oov_buckets"]),
        items=vocab(F.VOCAB_FILES[F.ITEM_ID]) + int(cfg["id_oov_buckets"]),
        devices=vocab(F.VOCAB_FILES[F.DEVICE]) + int(cfg["category_oov_buckets"]),
        categories=vocab(F.VOCAB_FILES[F.ITEM_CATEGORY]) + int(cfg["category_oov_buckets"]),
        age_buckets=buckets + 1,  # + the "unknown age" bucket
        position_buckets=buckets,
        hour_buckets=buckets,
    )


def model_params(cfg: dict) -> ModelParams:
    return ModelParams(
        gmf_dim=int(cfg["gmf_dim"]),
        mlp_dim=int(cfg["mlp_dim"]),
        side_dim=int(cfg["side_dim"]),
        mlp_layers=tuple(cfg["mlp_layers"]),
        l2=float(cfg["l2"]),
        learning_rate=float(cfg["learning_rate"]),
        steps_per_execution=int(cfg["steps_per_execution"]),
    )


def architecture(cfg: dict) -> dict:
    """What a base model must share with this one to seed it (vocabulary sizes may differ)."""
    return {
        "inputs": list(INPUT_FEATURES),
        "gmf_dim": int(cfg["gmf_dim"]),
        "mlp_dim": int(cfg["mlp_dim"]),
        "side_dim": int(cfg["side_dim"]),
        "mlp_layers": [int(n) for n in cfg["mlp_layers"]],
        "quantile_buckets": int(cfg["quantile_buckets"]),
    }


def vocabularies(tf_transform_output: tft.TFTransformOutput) -> dict[str, list[bytes]]:
    return {name: tf_transform_output.vocabulary_by_name(file) for name, file in F.VOCAB_FILES.items()}


def warm_start(model, cfg: dict, vocabs: dict[str, list[bytes]]) -> dict[str, int]:
    """Seed the model from cfg['warm_start_from'] if set; {} (train from scratch) when it cannot and
    warm_start.on_incompatible allows it. The night planner already checked the architecture, so a
    refusal here means the base model changed between planning and training."""
    source = cfg.get("warm_start_from")
    if not source:
        return {}
    try:
        bundle = load_bundle(source)
        check_architecture(bundle.architecture, architecture(cfg), source)
        stats = apply_warm_start(model, bundle, vocabs)
    except IncompatibleBaseModel as err:
        if cfg.get("warm_start_on_incompatible") == "fail":
            raise
        logging.warning("recpipe: %s; training from scratch instead", err)
        return {"warm_started": 0}
    logging.info("recpipe: warm start from %s: %s", source, stats)
    return {"warm_started": 1, **stats.as_metrics()}


BATCH_READ = 8192  # records per read batch when counting or parsing


def _records(patterns: list[str], interleaved: bool = False) -> tf.data.Dataset:
    """The raw records of every file matching `patterns`, file by file in name order, or with
    `interleaved` one record from each file in turn, so a shuffle buffer draws from every file of a
    time-ordered split at once. The interleave is serial on purpose: tf.data's parallel reads
    (num_parallel_reads=AUTOTUNE) took 17 s for the ten gzipped shards of 800,000 records that one
    reader takes under 1 s. ExampleGen writes gzipped shards; plain TFRecords are read too."""
    files = sorted(f for pattern in patterns for f in tf.io.gfile.glob(pattern))
    if not files:
        raise FileNotFoundError(f"no TFRecord files match {patterns}")
    groups = []
    for group, compression in (
        ([f for f in files if f.endswith(".gz")], "GZIP"),
        ([f for f in files if not f.endswith(".gz")], ""),
    ):
        if not group:
            continue
        if interleaved and len(group) > 1:
            groups.append(
                tf.data.Dataset.from_tensor_slices(group).interleave(
                    lambda f, c=compression: tf.data.TFRecordDataset(f, compression_type=c),
                    cycle_length=len(group),
                    block_length=1,
                )
            )
        else:
            groups.append(tf.data.TFRecordDataset(group, compression_type=compression))
    return groups[0] if len(groups) == 1 else groups[0].concatenate(groups[1])


def count_records(patterns: list[str]) -> int:
    """Records in (gzipped) TFRecord files, counted without parsing them. Counted in batches: a
    reduce step per record cost 18 s for 800,000 records, per batch 1 s."""
    batches = _records(patterns).batch(BATCH_READ)
    return int(batches.reduce(tf.constant(0, tf.int64), lambda n, b: n + tf.shape(b, out_type=tf.int64)[0]))


Decode = Callable[[tf.Tensor], dict[str, tf.Tensor]]  # serialized records -> transformed features + label


def transforming(tf_transform_output: tft.TFTransformOutput) -> Decode:
    """Raw tf.Examples -> model inputs through Transform's graph, the one the served model embeds.

    Transform does not write transformed copies of the examples (`materialize=False`): at 1M events
    encoding and writing them was about 45 of its 64 s, while applying the graph here, a batch at a time,
    costs the first epoch about 1.5 s, and the batches it makes are the ones the cache keeps.
    """
    spec = tf_transform_output.raw_feature_spec()

    def decode(serialized: tf.Tensor) -> dict[str, tf.Tensor]:
        raw = tf.io.parse_example(serialized, spec)
        return tf_transform_output.transform_raw_features(raw, drop_unused_features=True)

    return decode


def dataset(
    files: list[str],
    decode: Decode,
    batch_size: int,
    shuffle: bool,
    cfg: dict,
    features: tuple[str, ...] = (),
    records: int | None = None,
    disk_cache: str | None = None,
) -> tf.data.Dataset:
    """Examples -> (features, label) batches, read straight from the files.

    Records are batched, then decoded (`transforming`: parsed and put through Transform's graph) a batch
    at a time. tfxio's TFExampleRecord dataset, the TFX examples' way, read 800,000 transformed examples
    in 22.7 s; batched parsing reads them in 1.3 s, and the first epoch was mostly reading.

    With `cache_examples`, the first epoch's decoded batches stay in memory and every later epoch
    shuffles all of them: decompressing and parsing every epoch made reading, not the model, the
    trainer's bottleneck, and a click log is ordered by time, which a bounded record shuffle only
    partly undoes (a 20k buffer cost 0.11 HR@10 on MovieLens; docs/BENCHMARKS.md).
    A split above `cache_max_examples` keeps them in a file at `disk_cache` instead (a worker's local
    disk), read back about as fast as memory; later epochs then shuffle batches within a buffer the
    size of the record shuffle's. Without `disk_cache` such a split is parsed from the files every epoch.

    The dataset declares its number of batches when trainer.steps_per_execution runs several steps per
    call: Keras cannot otherwise tell where an epoch ends inside one call.

    `features`: keep only these (and the label). `records`: the files' record count when already
    known, so neither sizing the cache nor declaring the batches decompresses them again.
    """

    def parse(serialized: tf.Tensor) -> tuple[dict[str, tf.Tensor], tf.Tensor]:
        decoded = decode(serialized)
        label = decoded.pop(F.T_LABEL)
        return ({name: decoded[name] for name in features} if features else decoded), label

    ds = _records(files, interleaved=shuffle)
    if shuffle:
        ds = ds.shuffle(int(cfg["shuffle_buffer"]), seed=int(cfg["seed"]), reshuffle_each_iteration=True)
    ds = ds.batch(batch_size).map(parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    caching = bool(cfg.get("cache_examples", False))
    if records is None and (caching or int(cfg.get("steps_per_execution", 1)) > 1):
        records = count_records(files)
    if records is not None:
        ds = ds.apply(tf.data.experimental.assert_cardinality(-(-records // batch_size)))
    if caching:
        batches = -(-records // batch_size)
        if records <= int(cfg.get("cache_max_examples", records)):
            ds = ds.cache()
        elif disk_cache:
            ds = ds.cache(disk_cache)
            # Shuffle's buffer is allocated up front: hold no more than the record shuffle did.
            batches = min(batches, int(cfg["shuffle_buffer"]) // batch_size)
            logging.info("recpipe: %d examples exceed trainer.cache_max_examples; caching on disk", records)
        else:
            batches = 0
            logging.info(
                "recpipe: %d examples exceed trainer.cache_max_examples; reading from files", records
            )
        if shuffle and batches:
            ds = ds.shuffle(batches, seed=int(cfg["seed"]), reshuffle_each_iteration=True)
    options = tf.data.Options()
    # Shard by element: a span may have a single file, which file-based sharding cannot split.
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return ds.with_options(options).prefetch(tf.data.AUTOTUNE)


def build_optimizer_slots(model: keras.Model) -> None:
    """Make the optimizer's slots now, not inside the first step: tf.function traces a step that creates
    variables twice, and each trace of the train step under the strategy costs seconds."""
    model.optimizer.build(model.trainable_variables)


class EpochLog(keras.callbacks.Callback):
    """Says when training resumes from a backup instead of starting over (the log a restart leaves)."""

    def __init__(self, epochs: int):
        super().__init__()
        self.epochs = epochs
        self.first = True

    def on_epoch_begin(self, epoch, logs=None):
        if self.first and epoch > 0:
            logging.warning(
                "recpipe: resumed from backup: continuing at epoch %d of %d", epoch + 1, self.epochs
            )
        self.first = False
        logging.info("recpipe: epoch %d of %d begins", epoch + 1, self.epochs)


def _in(folder: str | None, name: str) -> str | None:
    return os.path.join(folder, name) if folder else None


def train(job: TrainJob) -> dict[str, float]:
    """Train, export (chief) and return the final eval metrics."""
    cfg = job.custom_config
    skip_converting_keras()
    keras.utils.set_random_seed(int(cfg["seed"]))
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    tf_transform_output = tft.TFTransformOutput(job.transform_output)
    decode = transforming(tf_transform_output)
    # The global batch is the configured one whatever the number of workers, so 1 and N workers take
    # the same optimisation steps and reach the same quality.
    batch = int(cfg["batch_size"])
    vocabs = vocabularies(tf_transform_output)
    items, users = vocabs[F.ITEM_ID], vocabs[F.USER_ID]
    # The catalogue (each item's side features, its clicks) serves both the sampled negatives and export.
    one_pass = {**cfg, "cache_examples": False, "steps_per_execution": 1}
    catalogue = read_catalogue(
        dataset(job.train_files, decode, BATCH_READ, False, one_pass, CATALOGUE_FEATURES), len(items)
    )
    # A split above trainer.cache_max_examples spills its decoded batches to this worker's local disk.
    spill = tempfile.mkdtemp(prefix="recpipe-batches-") if cfg.get("disk_cache") else None
    train_ds = dataset(
        job.train_files, decode, batch, True, cfg, records=catalogue.rows, disk_cache=_in(spill, "train")
    )
    eval_ds = dataset(job.eval_files, decode, batch, False, cfg, disk_cache=_in(spill, "eval"))
    negatives = int(cfg.get("negatives", 0))
    if negatives:
        how, alpha = cfg["negative_sampling"], float(cfg["popularity_alpha"])
        train_ds = with_negatives(train_ds, catalogue, negatives, how, alpha, int(cfg["seed"]))
    with strategy.scope():
        model = build_neumf(model_shape(tf_transform_output, cfg), model_params(cfg))
        seeded = warm_start(model, cfg, vocabs)
        fitted = model
        if negatives:
            fitted = SampledNegativesTrainer(
                model,
                cfg["loss"],
                model_params(cfg),
                click_weight=float(cfg["click_weight"]),
                impression_weight=float(cfg["impression_weight"]),
            )
        build_optimizer_slots(fitted)

    epochs = int(cfg["epochs"])
    callbacks = [keras.callbacks.BackupAndRestore(backup_dir=job.backup_dir), EpochLog(epochs)]
    if is_chief():
        callbacks.append(keras.callbacks.TensorBoard(log_dir=job.model_run_dir, update_freq="epoch"))
    started = time.time()
    try:
        fitted.fit(train_ds, validation_data=eval_ds, epochs=epochs, callbacks=callbacks, verbose=2)
        metrics = {k: float(v) for k, v in model.evaluate(eval_ds, return_dict=True, verbose=0).items()}
    finally:
        if spill:
            shutil.rmtree(spill, ignore_errors=True)
    metrics["fit_seconds"] = time.time() - started
    metrics.update(seeded)
    metrics.update({f"vocabulary_{name}": len(v) for name, v in vocabs.items()})
    trained = layer_weights(model)  # before the serving layers are attached to the model

    signatures = make_signatures(model, tf_transform_output)
    exposure = catalogue.impressions if cfg.get("recommend_by") == "expected_clicks" else None
    model.recommender = Recommender(
        model, model.tft_layer, items, catalogue.category, catalogue.price, len(users), exposure
    )
    signatures["recommend"] = model.recommender.recommend.get_concrete_function()
    signatures["score_items"] = model.recommender.score_items.get_concrete_function()

    # Every worker must call save (it is a collective op); only the chief's copy is the model.
    export_dir = job.serving_model_dir if is_chief() else tempfile.mkdtemp(prefix="recpipe-worker-export-")
    model.save(export_dir, save_format="tf", signatures=signatures)
    if is_chief():
        write_warmup(export_dir, cfg["model_name"], warmup_requests(users, items))
        save_bundle(trained, export_dir, vocabs, architecture(cfg))
        with tf.io.gfile.GFile(os.path.join(job.model_run_dir, METRICS_FILE), "w") as f:
            f.write(json.dumps(metrics))
    return metrics
