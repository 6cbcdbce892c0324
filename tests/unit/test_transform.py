"""preprocessing_fn: vocabularies with OOV, z-scored price, quantile buckets, missing ages."""

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
from helpers import columns, spy_batched_reads, transform_in_memory

from components.model import features as F
from components.model.training import dataset, transforming
from pipeline.data.clicklog import to_example


def _row(user, item, *, device="mobile", age=30, position=0, hour=12, price=10.0, clicked=0):
    return {
        "user_id": user,
        "item_id": item,
        "event_ts": 1704067200 + hour * 3600,
        "clicked": clicked,
        "position": position,
        "device": device,
        "item_category": "cat01",
        "item_price": price,
        "user_age": age,
        "dwell_ms": 0.0,
    }


def test_preprocessing_fn_outputs():
    train = [
        _row(
            f"u{i % 5}",
            f"i{i % 7}",
            age=(None if i % 10 == 0 else 18 + i % 50),
            position=i % 20,
            hour=i % 24,
            price=1.0 + i,
            clicked=i % 2,
        )
        for i in range(200)
    ]
    unseen = [_row("new-user", "new-item", device="tv", age=None)]
    train_t, unseen_t = transform_in_memory(train, unseen, {"quantile_buckets": 4, "id_oov_buckets": 3})
    cols = columns(train_t)
    assert set(cols) == {
        F.T_USER,
        F.T_ITEM,
        F.T_DEVICE,
        F.T_CATEGORY,
        F.T_PRICE,
        F.T_AGE,
        F.T_POSITION,
        F.T_HOUR,
        F.T_LABEL,
    }
    assert sorted(set(cols[F.T_USER])) == list(range(5)), "5 users -> indices 0..4"
    assert sorted(set(cols[F.T_ITEM])) == list(range(7))
    # log-price z-score: mean 0, std 1 over the analysed data
    assert abs(cols[F.T_PRICE].mean()) < 1e-4 and abs(cols[F.T_PRICE].std() - 1) < 1e-2
    # 4 quantile buckets for position and hour, roughly balanced
    assert set(cols[F.T_POSITION]) == {0, 1, 2, 3} and set(cols[F.T_HOUR]) == {0, 1, 2, 3}
    assert np.bincount(cols[F.T_POSITION]).min() >= 30
    # missing age -> its own bucket 4; known ages -> 0..3
    missing = np.array([r["user_age"] is None for r in train])
    assert (cols[F.T_AGE][missing] == 4).all() and (cols[F.T_AGE][~missing] < 4).all()
    assert list(cols[F.T_LABEL][:4]) == [0, 1, 0, 1]
    # unseen ids and an unseen device fall into OOV buckets, not errors
    u = unseen_t[0]
    assert 5 <= u[F.T_USER] < 5 + 3 and 7 <= u[F.T_ITEM] < 7 + 3
    assert u[F.T_DEVICE] == 1, "device vocab has 1 entry (mobile), so 'tv' is OOV index 1"
    assert u[F.T_AGE] == 4


def test_the_trainer_feeds_the_model_exactly_what_transform_computes(tmp_path):
    """Transform writes no transformed copies of the examples (materialize=False): the Trainer puts the raw
    examples through Transform's graph itself. Its batches must hold what TFT's own Beam transform gives,
    value for value, missing ages and sparse features included."""
    rows = [
        _row(
            f"u{i % 9}",
            f"i{i % 13}",
            age=(None if i % 7 == 0 else 20 + i % 40),
            position=i % 10,
            hour=i % 24,
            price=0.5 * i,
            clicked=int(i % 3 == 0),
        )
        for i in range(300)
    ]
    graph = str(tmp_path / "transform_graph")
    want, _ = transform_in_memory(rows, transform_dir=graph)
    want = columns(want)
    shard = str(tmp_path / "data-00000-of-00001.gz")
    with tf.io.TFRecordWriter(shard, options="GZIP") as writer:
        for row in rows:
            writer.write(to_example(row).SerializeToString())

    decode = transforming(tft.TFTransformOutput(graph))
    batches = list(dataset([shard], decode, 64, False, {"shuffle_buffer": 1, "seed": 0}))
    got = {name: np.concatenate([f[name].numpy() for f, _ in batches]) for name in batches[0][0]}
    labels = np.concatenate([label.numpy() for _, label in batches])

    assert set(got) | {F.T_LABEL} == set(want)
    for name, values in got.items():
        np.testing.assert_allclose(values, want[name].reshape(-1), rtol=1e-6, err_msg=name)
    np.testing.assert_array_equal(labels, want[F.T_LABEL].reshape(-1))


def _run_transform(executor, examples, repo, tmp_path, name: str) -> tft.TFTransformOutput:
    """One Transform executor run as the pipeline configures it (materialize off, no statistics)."""
    from tfx.types import standard_artifacts

    from pipeline.config import load_config
    from pipeline.dag import create_pipeline
    from pipeline.plan import Night

    config = load_config(repo / "configs" / "local.yaml")
    node = next(c for c in create_pipeline(config, Night(span=20240101)).components if c.id == "Transform")
    schema = standard_artifacts.Schema()
    schema.uri = str(repo / "schema")
    graph = standard_artifacts.TransformGraph()
    graph.uri = str(tmp_path / name)
    properties = {k: v for k, v in node.exec_properties.items() if v is not None}
    executor().Do({"examples": [examples], "schema": [schema]}, {"transform_graph": [graph]}, properties)
    return tft.TFTransformOutput(graph.uri)


def test_batched_transform_analyses_the_splits_as_tfx_does(tmp_path, repo, monkeypatch):
    """Reading each file in batches instead of record by record: the vocabularies, buckets and scaling TFX's
    own Transform executor computes, from the same examples, read by the batched reader (not TFX's)."""
    from tfx.components.transform import executor as tfx_transform_executor
    from tfx.types import artifact_utils, standard_artifacts

    from components import transform as batched

    rows = [
        _row(
            f"u{(i * 7) % 23}",
            f"i{(i * 5) % 31}",
            device=("mobile", "tv", "desktop")[i % 3],
            age=(None if i % 9 == 0 else 18 + i % 47),
            position=i % 12,
            hour=i % 24,
            price=0.25 * (i % 97),
            clicked=int(i % 4 == 0),
        )
        for i in range(1500)
    ]
    examples = standard_artifacts.Examples()
    examples.uri = str(tmp_path / "examples")
    examples.split_names = artifact_utils.encode_split_names(["train", "eval"])
    for split, part in (("train", rows[:1200]), ("eval", rows[1200:])):
        folder = artifact_utils.get_split_uri([examples], split)
        tf.io.gfile.makedirs(folder)
        for shard, start in enumerate(range(0, len(part), 500)):  # several files per split
            with tf.io.TFRecordWriter(f"{folder}/data_tfrecord-{shard:05d}-of-00003.gz", "GZIP") as writer:
                for row in part[start : start + 500]:
                    writer.write(to_example(row).SerializeToString())

    reads = spy_batched_reads(monkeypatch)
    ours = _run_transform(batched.BatchedExecutor, examples, repo, tmp_path, "ours")
    assert reads, "the batched reader read the examples"
    assert tfx_transform_executor.TransformProcessor is not batched._BatchedProcessor, "TFX's is back"
    theirs = _run_transform(tfx_transform_executor.Executor, examples, repo, tmp_path, "tfx")

    for name in F.VOCAB_FILES.values():
        assert ours.vocabulary_by_name(name) == theirs.vocabulary_by_name(name), name
    batch = tf.constant([to_example(r).SerializeToString() for r in rows[::7]])
    want, got = transforming(theirs)(batch), transforming(ours)(batch)
    assert set(got) == set(want)
    for name in want:
        np.testing.assert_allclose(got[name].numpy(), want[name].numpy(), rtol=1e-5, err_msg=name)
