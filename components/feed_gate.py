"""The feed-quality gate: does the candidate's "guess you like" feed beat the most-popular list?

The Evaluator scores logged impressions (AUC, NDCG over what each user was shown). A user's feed is
something else: `recommend` ranks the whole catalogue. A model can pass the Evaluator and still give a
feed no better than popularity, so after the Evaluator this gate asks the candidate's own `recommend`
signature, as TF Serving would, for the top-K of every user who clicked in the evaluated span (a fixed,
hash-chosen subset of at most max_users), excluding what that user clicked in the training data, and
scores their clicks against it: Recall@K, NDCG@K, and the share of the catalogue that appears in anyone's
feed. The most-popular list of the training data and the baseline (last blessed) model get the same
treatment. The Pusher requires this gate's blessing, as it requires the serving check's.
"""

import hashlib
import json
import os
from collections import Counter, defaultdict

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
from tfx import types
from tfx.dsl.components.base import base_component, base_executor, executor_spec
from tfx.types import artifact_utils, standard_artifacts
from tfx.types.component_spec import ChannelParameter, ExecutionParameter
from tfx.utils import path_utils

from components import storage
from components.model import features as F
from components.ranking_metrics import ranking_metrics

FEED_FILE = "feed_quality.json"
USERS_PER_CALL = 64
# Who clicked what: the raw columns both the evaluated span and the training window are read for.
CLICKS = {
    F.USER_ID: tf.io.FixedLenFeature([], tf.string),
    F.ITEM_ID: tf.io.FixedLenFeature([], tf.string),
    F.LABEL: tf.io.FixedLenFeature([], tf.int64),
}


def _records(examples, split: str, spec: dict) -> dict[str, np.ndarray]:
    """Every record of one split of an Examples artifact, parsed by `spec`, as columns."""
    folder = artifact_utils.get_split_uri([examples], split)
    files = [storage.join(folder, name) for name in storage.files(folder)]
    columns: dict[str, list] = defaultdict(list)
    for batch in tf.data.TFRecordDataset(files, compression_type="GZIP").batch(8192):
        for name, values in tf.io.parse_example(batch, spec).items():
            columns[name].append(values.numpy())
    return {name: np.concatenate(parts) for name, parts in columns.items()}


def evaluated_clicks(examples, splits: list[str], max_users: int) -> dict[bytes, dict]:
    """{user: {"clicked": set of item ids, "device": ..., "event_ts": ...}} of the users who clicked, the
    request context being their first click's; at most max_users, chosen by a hash of the id so every
    night and every model scores the same users."""
    spec = {
        **CLICKS,
        F.DEVICE: tf.io.FixedLenFeature([], tf.string),
        F.EVENT_TS: tf.io.FixedLenFeature([], tf.int64),
    }
    users: dict[bytes, dict] = {}
    for split in splits:
        rows = _records(examples, split, spec)
        if not rows:
            continue
        for i in np.argsort(rows[F.EVENT_TS], kind="stable"):
            if rows[F.LABEL][i] <= 0:
                continue
            user = users.setdefault(
                rows[F.USER_ID][i],
                {"clicked": set(), "device": rows[F.DEVICE][i], "event_ts": int(rows[F.EVENT_TS][i])},
            )
            user["clicked"].add(rows[F.ITEM_ID][i])
    chosen = sorted(users, key=lambda u: hashlib.sha256(u).digest())[:max_users]
    return {u: users[u] for u in sorted(chosen)}


def training_clicks(training: list, transform_graph) -> tuple[dict[bytes, set[bytes]], list[bytes], int]:
    """({user: items clicked in training}, items by training clicks, most first, catalogue size), read
    from the Trainer's own input: the train split of the window's examples (one artifact per span), ids
    the vocabularies left out (rarer than `transform.id_vocab_min_frequency`) dropped as the model drops them."""
    output = tft.TFTransformOutput(transform_graph.uri)
    users = set(output.vocabulary_by_name(F.VOCAB_FILES[F.USER_ID]))
    items = output.vocabulary_by_name(F.VOCAB_FILES[F.ITEM_ID])
    known_items = set(items)
    parts = [_records(artifact, "train", CLICKS) for artifact in training]
    seen: dict[bytes, set[bytes]] = defaultdict(set)
    counts: Counter = Counter()
    for rows in parts:
        if not rows:
            continue
        clicked = rows[F.LABEL] > 0
        for user, item in zip(rows[F.USER_ID][clicked], rows[F.ITEM_ID][clicked], strict=True):
            if item not in known_items:
                continue
            counts[item] += 1
            if user in users:
                seen[user].add(item)
    popular = [item for item, _ in counts.most_common()]
    popular += [item for item in items if item not in counts]
    return dict(seen), popular, len(items)


def recommend_signature(model_dir: str):
    """The SavedModel's `recommend` signature, or None for a model from before it existed."""
    return tf.saved_model.load(model_dir).signatures.get("recommend")


def model_feed(
    recommend, users: dict[bytes, dict], seen: dict[bytes, set[bytes]], k: int
) -> list[list[bytes]]:
    """Each user's top-k from a model's `recommend` signature, without what the user already clicked."""
    ids = list(users)
    feeds = []
    for start in range(0, len(ids), USERS_PER_CALL):
        batch = ids[start : start + USERS_PER_CALL]
        extra = max(len(seen.get(u, ())) for u in batch)  # asked for more, so k remain after exclusion
        answer = recommend(
            user_id=tf.constant(batch),
            device=tf.constant([users[u]["device"] for u in batch]),
            event_ts=tf.constant([users[u]["event_ts"] for u in batch], tf.int64),
            k=tf.constant(k + extra, tf.int32),
            exclude_item_ids=tf.constant([], tf.string),
        )["item_ids"].numpy()
        for user, row in zip(batch, answer, strict=True):
            feeds.append([item for item in row if item and item not in seen.get(user, ())][:k])
    return feeds


def popular_feed(popular: list[bytes], users: dict[bytes, dict], seen: dict[bytes, set[bytes]], k: int):
    feeds = []
    for user in users:
        mine = seen.get(user, set())
        feeds.append([item for item in popular[: k + len(mine)] if item not in mine][:k])
    return feeds


def feed_metrics(
    feeds: list[list[bytes]], users: dict[bytes, dict], k: int, catalogue: int
) -> dict[str, float]:
    scored = ranking_metrics(
        [np.array(feed, dtype=object) for feed in feeds], [users[u]["clicked"] for u in users], k
    )
    shown = {item for feed in feeds for item in feed}
    return {"recall": scored["recall"], "ndcg": scored["ndcg"], "coverage": len(shown) / max(catalogue, 1)}


def verdict(result: dict, min_lift: float, max_drop: float) -> tuple[bool, str]:
    """Blessed when NDCG@K beats popularity's by the lift and is within max_drop of the baseline's."""
    k, model, popularity = result["k"], result["model"]["ndcg"], result["popularity"]["ndcg"]
    problems = []
    if model <= 0:
        problems.append(f"the feed holds none of the users' clicks in its top {k}")
    elif model < popularity * (1 + min_lift):
        problems.append(
            f"NDCG@{k} {model:.4f} does not beat the most-popular list's {popularity:.4f} by "
            f"{min_lift:.0%} (feed.min_lift_over_popularity)"
        )
    baseline = result.get("baseline")
    if baseline is not None and model < baseline["ndcg"] - max_drop:
        problems.append(
            f"NDCG@{k} {model:.4f} is more than {max_drop} below the baseline model's {baseline['ndcg']:.4f} "
            "(feed.max_drop)"
        )
    summary = (
        f"feed NDCG@{k} {model:.4f} (popularity {popularity:.4f}"
        + (f", baseline {baseline['ndcg']:.4f}" if baseline else "")
        + f"), Recall@{k} {result['model']['recall']:.4f}, coverage {result['model']['coverage']:.1%} "
        f"over {result['users']} users"
    )
    return (False, "; ".join(problems) + f" [{summary}]") if problems else (True, summary)


def judge(
    model, blessing, examples, training: list, transform_graph, baseline_model, params: dict
) -> tuple[bool, str, dict]:
    """(blessed, reason, figures) for one candidate; `params` are the component's execution properties."""
    k = int(params["k"])
    result: dict = {"k": k}
    if blessing.get_int_custom_property("blessed") != 1:
        return False, "skipped: the Evaluator did not bless this model", result
    if not params["enabled"]:
        return True, "feed gate off (feed.enabled: false)", result
    users = evaluated_clicks(examples, params["splits"].split(","), int(params["max_users"]))
    if not users:
        return False, "no user clicked anything in the evaluated span: the feed cannot be measured", result
    seen, popular, catalogue = training_clicks(training, transform_graph)
    result["users"] = len(users)
    candidate = tf.saved_model.load(path_utils.serving_model_dir(model.uri)).signatures["recommend"]
    result["model"] = feed_metrics(model_feed(candidate, users, seen, k), users, k, catalogue)
    result["popularity"] = feed_metrics(popular_feed(popular, users, seen, k), users, k, catalogue)
    # A baseline from before `recommend` existed has none: popularity is then the only bar.
    baseline = (
        recommend_signature(path_utils.serving_model_dir(baseline_model.uri)) if baseline_model else None
    )
    if baseline is not None:
        result["baseline"] = feed_metrics(model_feed(baseline, users, seen, k), users, k, catalogue)
    ok, reason = verdict(result, float(params["min_lift_over_popularity"]), float(params["max_drop"]))
    return ok, reason, result


class FeedQualityGateSpec(types.ComponentSpec):
    PARAMETERS = {
        "splits": ExecutionParameter(type=str),
        "k": ExecutionParameter(type=int),
        "min_lift_over_popularity": ExecutionParameter(type=float),
        "max_drop": ExecutionParameter(type=float),
        "max_users": ExecutionParameter(type=int),
        "enabled": ExecutionParameter(type=int),
    }
    INPUTS = {
        "model": ChannelParameter(type=standard_artifacts.Model),
        "blessing": ChannelParameter(type=standard_artifacts.ModelBlessing),
        "examples": ChannelParameter(type=standard_artifacts.Examples),
        # One artifact per span of the training window, hence a class-based component: a function
        # component takes single artifacts only.
        "training_examples": ChannelParameter(type=standard_artifacts.Examples),
        "transform_graph": ChannelParameter(type=standard_artifacts.TransformGraph),
        "baseline_model": ChannelParameter(type=standard_artifacts.Model, optional=True),
    }
    OUTPUTS = {"feed_blessing": ChannelParameter(type=standard_artifacts.ModelBlessing)}


class FeedQualityGateExecutor(base_executor.BaseExecutor):
    def Do(self, input_dict, output_dict, exec_properties) -> None:
        (feed_blessing,) = output_dict["feed_blessing"]
        ok, reason, result = judge(
            artifact_utils.get_single_instance(input_dict["model"]),
            artifact_utils.get_single_instance(input_dict["blessing"]),
            artifact_utils.get_single_instance(input_dict["examples"]),
            list(input_dict["training_examples"]),
            artifact_utils.get_single_instance(input_dict["transform_graph"]),
            next(iter(input_dict.get("baseline_model") or []), None),
            exec_properties,
        )
        feed_blessing.set_int_custom_property("blessed", int(ok))
        feed_blessing.set_string_custom_property("reason", reason[:2000])
        storage.write_text_atomic(os.path.join(feed_blessing.uri, FEED_FILE), json.dumps(result, indent=1))
        # TFX's own blessing convention: a BLESSED / NOT_BLESSED marker file beside the properties.
        storage.write_text_atomic(os.path.join(feed_blessing.uri, "BLESSED" if ok else "NOT_BLESSED"), reason)


class FeedQualityGate(base_component.BaseComponent):
    SPEC_CLASS = FeedQualityGateSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(FeedQualityGateExecutor)

    def __init__(self, *, baseline_model=None, **spec):
        feed_blessing = types.Channel(type=standard_artifacts.ModelBlessing)
        super().__init__(
            spec=FeedQualityGateSpec(baseline_model=baseline_model, feed_blessing=feed_blessing, **spec)
        )


def read_feed_quality(feed_blessing_uri: str) -> dict:
    path = os.path.join(feed_blessing_uri, FEED_FILE)
    return json.loads(storage.read_text(path)) if storage.exists(path) else {}
