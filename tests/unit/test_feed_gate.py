"""The feed-quality gate's parts: which users it scores, the feeds it compares, and its verdict. A model
whose feed is the most-popular list is refused; one that finds each user's clicks passes."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from tfx.types import artifact_utils, standard_artifacts

from components.feed_gate import (
    evaluated_clicks,
    feed_metrics,
    model_feed,
    popular_feed,
    recommend_signature,
    verdict,
)
from components.model import features as F
from components.model.recommend import Recommender

ITEMS = [f"i{n}".encode() for n in range(20)]
POPULAR = [ITEMS[n] for n in (10, 5, 0, 1, 2, 3, 4, *range(6, 10), *range(11, 20))]  # most clicked first


def _examples(tmp_path, rows: list[dict]) -> standard_artifacts.Examples:
    examples = standard_artifacts.Examples()
    examples.uri = str(tmp_path / "examples")
    examples.split_names = artifact_utils.encode_split_names(["eval"])
    folder = tmp_path / "examples" / "Split-eval"
    folder.mkdir(parents=True)
    with tf.io.TFRecordWriter(str(folder / "data.gz"), options="GZIP") as writer:
        for row in rows:
            feature = {
                F.USER_ID: tf.train.Feature(bytes_list=tf.train.BytesList(value=[row["user"]])),
                F.ITEM_ID: tf.train.Feature(bytes_list=tf.train.BytesList(value=[row["item"]])),
                F.LABEL: tf.train.Feature(int64_list=tf.train.Int64List(value=[row["clicked"]])),
                F.DEVICE: tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"mobile"])),
                F.EVENT_TS: tf.train.Feature(int64_list=tf.train.Int64List(value=[row["ts"]])),
            }
            writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
    return examples


@pytest.fixture
def evaluated(tmp_path):
    """Ten users; user u clicks items i(10+u%10) and i(u%10+5) % 20 tonight, and was shown i0 unclicked."""
    rows = []
    for u in range(10):
        user = f"u{u}".encode()
        rows.append({"user": user, "item": b"i0", "clicked": 0, "ts": 100})
        for n, item in enumerate((10 + u % 10, (u % 10 + 5) % 20)):
            rows.append({"user": user, "item": ITEMS[item], "clicked": 1, "ts": 200 + n})
    return evaluated_clicks(_examples(tmp_path, rows), ["eval"], max_users=100)


def _saved_model(tmp_path, answer) -> str:
    """A SavedModel with the served `recommend` signature, answering `answer(user_ids, k)`."""

    class Model(tf.Module):
        @tf.function(input_signature=Recommender.recommend.input_signature)  # the served signature
        def recommend(self, user_id, device, event_ts, k, exclude_item_ids):
            ids = tf.py_function(lambda u, n: answer(u.numpy(), int(n)), [user_id, k], tf.string)
            return {"item_ids": ids, "scores": tf.zeros(tf.shape(ids))}

    model = Model()
    path = str(tmp_path / "model")
    tf.saved_model.save(model, path, signatures={"recommend": model.recommend})
    return path


def test_only_users_who_clicked_are_scored_with_their_first_clicks_context(evaluated):
    assert len(evaluated) == 10
    user = evaluated[b"u3"]
    assert user["clicked"] == {b"i13", b"i8"} and user["event_ts"] == 200 and user["device"] == b"mobile"


def test_a_model_whose_feed_is_the_most_popular_list_is_refused(evaluated, tmp_path):
    seen = {b"u1": {b"i5"}}  # clicked in training: never in u1's feed
    path = _saved_model(tmp_path, lambda users, k: np.array([POPULAR[:k]] * len(users)))
    feeds = model_feed(recommend_signature(path), evaluated, seen, k=5)
    assert feeds == popular_feed(POPULAR, evaluated, seen, k=5)
    assert b"i5" not in feeds[list(evaluated).index(b"u1")]
    model = feed_metrics(feeds, evaluated, 5, len(ITEMS))
    result = {"k": 5, "users": 10, "model": model, "popularity": model}
    ok, reason = verdict(result, min_lift=0.05, max_drop=0.02)
    assert (
        not ok
        and "does not beat the most-popular list" in reason
        and "feed.min_lift_over_popularity" in reason
    )


def test_a_model_that_finds_each_users_clicks_passes(evaluated, tmp_path):
    def clicks_first(users, k):
        rows = []
        for user in users:
            own = [ITEMS[10 + int(user[1:]) % 10], ITEMS[(int(user[1:]) % 10 + 5) % 20]]
            rows.append((own + [item for item in POPULAR if item not in own])[:k])
        return np.array(rows)

    feeds = model_feed(recommend_signature(_saved_model(tmp_path, clicks_first)), evaluated, {}, k=5)
    model = feed_metrics(feeds, evaluated, 5, len(ITEMS))
    popularity = feed_metrics(popular_feed(POPULAR, evaluated, {}, 5), evaluated, 5, len(ITEMS))
    assert model["recall"] == 1.0 and model["ndcg"] == pytest.approx(1.0)
    assert model["coverage"] > popularity["coverage"]
    ok, reason = verdict({"k": 5, "users": 10, "model": model, "popularity": popularity}, 0.05, 0.02)
    assert ok and "feed NDCG@5 1.0000" in reason


def test_falling_behind_the_baseline_model_is_refused():
    figures = {"recall": 0.2, "ndcg": 0.30, "coverage": 0.5}
    result = {"k": 10, "users": 5, "model": figures, "popularity": {**figures, "ndcg": 0.1}}
    assert verdict({**result, "baseline": {**figures, "ndcg": 0.31}}, 0.05, 0.02)[0]
    ok, reason = verdict({**result, "baseline": {**figures, "ndcg": 0.40}}, 0.05, 0.02)
    assert not ok and "below the baseline model's 0.4000 (feed.max_drop)" in reason
