"""The trainer's input path: every example exactly once per epoch, reshuffled between epochs, cached or not."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras
from helpers import model_params

from components.model import features as F
from components.model.model import INPUT_FEATURES, ModelShape, build_neumf
from components.model.training import count_records, dataset

ROWS = 1000


@pytest.fixture(scope="module")
def transformed(tmp_path_factory):
    """Examples holding model inputs: gzipped TFRecords, in time order (user = row number)."""
    folder = tmp_path_factory.mktemp("transformed")
    spec = {name: tf.io.FixedLenFeature([], tf.int64) for name in INPUT_FEATURES if name != F.T_PRICE}
    spec[F.T_PRICE] = tf.io.FixedLenFeature([], tf.float32)
    spec[F.T_LABEL] = tf.io.FixedLenFeature([], tf.int64)
    for shard in range(2):
        path = folder / f"part-{shard}.gz"
        with tf.io.TFRecordWriter(str(path), options="GZIP") as writer:
            for row in range(shard * ROWS // 2, (shard + 1) * ROWS // 2):
                feats = {n: tf.train.Feature(int64_list=tf.train.Int64List(value=[row])) for n in spec}
                feats[F.T_PRICE] = tf.train.Feature(float_list=tf.train.FloatList(value=[0.5]))
                feats[F.T_LABEL] = tf.train.Feature(int64_list=tf.train.Int64List(value=[row % 2]))
                writer.write(tf.train.Example(features=tf.train.Features(feature=feats)).SerializeToString())
    # Model inputs already, so decoding is parsing (the Trainer's decode also applies Transform's graph).
    return [str(folder / "part-*.gz")], lambda serialized: tf.io.parse_example(serialized, spec)


def _epochs(ds, n):
    return [np.concatenate([f[F.T_USER].numpy() for f, _ in ds]) for _ in range(n)]


@pytest.mark.parametrize("cache", [True, False])
def test_each_epoch_sees_every_example_once_in_a_new_order(transformed, cache):
    files, decode = transformed
    cfg = {"shuffle_buffer": 100, "seed": 1, "cache_examples": cache}
    epochs = _epochs(dataset(files, decode, 64, True, cfg), 3)
    for seen in epochs:
        assert sorted(seen.tolist()) == list(range(ROWS))
    assert not np.array_equal(epochs[1], epochs[2])
    assert not np.array_equal(epochs[0], np.arange(ROWS))


def test_the_cached_path_shuffles_across_the_whole_split(transformed):
    """A time-ordered log must not reach the model in time order. A 50-example shuffle buffer alone gives
    its first 200 examples from the first 250 rows; the cached path draws them from the whole split."""
    files, decode = transformed
    cfg = {"shuffle_buffer": 50, "seed": 3, "cache_examples": True}
    second = _epochs(dataset(files, decode, 50, True, cfg), 2)[1]
    assert second[:200].max() >= 250


def test_evaluation_batches_keep_file_order_and_labels(transformed):
    files, decode = transformed
    ds = dataset(files, decode, 128, False, {"shuffle_buffer": 10, "seed": 0, "cache_examples": True})
    users, labels = zip(*[(f[F.T_USER].numpy(), y.numpy()) for f, y in ds], strict=True)
    assert np.concatenate(users).tolist() == list(range(ROWS))
    assert (np.concatenate(labels) == np.arange(ROWS) % 2).all()


def test_count_records_reads_gzipped_shards(transformed):
    assert count_records(transformed[0]) == ROWS


def test_a_split_over_the_cache_limit_streams_from_files(transformed):
    files, decode = transformed
    cfg = {"shuffle_buffer": 100, "seed": 1, "cache_examples": True, "cache_max_examples": ROWS - 1}
    ds = dataset(files, decode, 64, True, cfg)
    graph = ds._as_serialized_graph().numpy().decode("latin-1")
    assert "CacheDataset" not in graph
    cached = dataset(files, decode, 64, True, {**cfg, "cache_max_examples": ROWS})
    assert "CacheDataset" in cached._as_serialized_graph().numpy().decode("latin-1")
    for seen in _epochs(ds, 2):
        assert sorted(seen.tolist()) == list(range(ROWS))


def _tiny_neumf(steps_per_execution: int):
    shape = ModelShape(
        users=ROWS,
        items=ROWS,
        devices=ROWS,
        categories=ROWS,
        age_buckets=ROWS,
        position_buckets=ROWS,
        hour_buckets=ROWS,
    )
    params = model_params(gmf_dim=4, mlp_dim=4, mlp_layers=[8], steps_per_execution=steps_per_execution)
    return build_neumf(shape, params)


def test_several_steps_per_call_train_the_same_model_over_the_same_batches(transformed):
    """trainer.steps_per_execution is a speed setting: every batch of every epoch is still a step (an
    epoch that is not a multiple of the setting included), and the weights come out the same."""
    files, decode = transformed
    trained = {}
    for steps in (1, 7):
        keras.utils.set_random_seed(5)
        cfg = {"shuffle_buffer": 100, "seed": 1, "cache_examples": True, "steps_per_execution": steps}
        model = _tiny_neumf(steps)
        model.fit(dataset(files, decode, 64, True, cfg), epochs=2, verbose=0)
        assert int(model.optimizer.iterations) == 2 * -(-ROWS // 64)
        trained[steps] = model.get_weights()
    for one, several in zip(trained[1], trained[7], strict=True):
        np.testing.assert_allclose(one, several, rtol=1e-5, atol=1e-6)


def test_a_split_over_the_cache_limit_is_cached_on_disk_and_kept_across_epochs(transformed, tmp_path):
    """Above cache_max_examples the parsed batches go to a file, not memory; every epoch still sees every
    example once; and after training the file is finished (its index written), so later epochs read it."""
    files, decode = transformed
    cfg = {"shuffle_buffer": 256, "seed": 1, "cache_examples": True, "cache_max_examples": ROWS - 1}
    ds = dataset(files, decode, 64, True, cfg, disk_cache=str(tmp_path / "train"))
    for seen in _epochs(ds, 2):
        assert sorted(seen.tolist()) == list(range(ROWS))
    for leftover in tmp_path.iterdir():
        leftover.unlink()
    model = _tiny_neumf(4)
    model.fit(dataset(files, decode, 64, True, cfg, disk_cache=str(tmp_path / "fit")), epochs=2, verbose=0)
    assert (tmp_path / "fit.index").exists(), sorted(p.name for p in tmp_path.iterdir())
