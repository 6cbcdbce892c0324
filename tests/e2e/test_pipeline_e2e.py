"""The whole pipeline on a few thousand synthetic events, on the local and the Beam runner.

One MLMD store and one serving path across the tests, in order, as a user's nights would be:
night 1 through the CLI, night 2 on the Beam runner against night 1's model as baseline, then reruns
whose thresholds force each gate to say no, then a night with broken data. Transform and Trainer are
cached in the reruns, so only the Evaluator and the Pusher run again.
"""

import hashlib
import json
import shutil
import time
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from conftest import make_config

from components.model import features as F
from pipeline.cli import main as cli
from pipeline.data.clicklog import SpanWriter, read_examples, span_files, to_example
from pipeline.data.synthetic import SyntheticSpec, generate
from pipeline.records.history import read_history
from pipeline.records.summary import summarize
from pipeline.runners import RunFailed, run_pipeline
from pipeline.serving_client import latest_version_dir, list_versions, predict_rest

DAY1, DAY2 = 20240101, 20240102


def _tree_digest(path: str) -> str:
    path = Path(path)
    digest = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(str(f.relative_to(path)).encode())
        digest.update(f.read_bytes())
    return digest.hexdigest()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("e2e")
    data = tmp / "clicklog"
    generate(data, SyntheticSpec(days=2, events_per_day=4000, seed=3, users=300, items=150))
    return tmp, data


@pytest.fixture(scope="module")
def night1(world):
    """Night 1 exactly as a user runs it: `recpipe run --config ... --span 20240101`."""
    tmp, data = world
    config = make_config(tmp, data)
    config_file = tmp / "night.yaml"
    config_file.write_text(yaml.safe_dump(config.model_dump()))
    started = int(time.time() * 1000)
    result = CliRunner().invoke(cli, ["run", "--config", str(config_file), "--span", str(DAY1)])
    assert result.exit_code == 0, result.output
    return config, summarize(config, started), result.output


@pytest.fixture(scope="module")
def night2(night1):
    config, _, _ = night1
    return config, run_pipeline(config, runner="beam")  # span: latest = DAY2


def test_night1_runs_every_component_blesses_and_pushes(night1):
    config, summary, output = night1
    assert summary.span == DAY1
    assert set(summary.node_states) >= {
        "ImportExampleGen",
        "StatisticsGen",
        "ImportSchemaGen",
        "ExampleValidator",
        "AnomalyGate",
        "Transform",
        "Trainer",
        "Evaluator",
        "FeedQualityGate",
        "Pusher",
    }
    assert set(summary.node_states.values()) == {"COMPLETE"}
    assert (
        sum(summary.split_counts.values()) == 4000
        and summary.split_counts["train"] > summary.split_counts["eval"]
    )
    assert summary.anomalies == []
    assert not summary.has_baseline and summary.blessed is True and summary.pushed
    assert list_versions(config.serving_model_dir) == [int(Path(summary.pushed_path).name)]
    # The feed (the candidate's own top-10 over the catalogue) was scored against the most-popular list
    # and cleared the bar; no baseline yet.
    feed = summary.feed
    assert summary.feed_gate.startswith("passed") and set(feed) == {"k", "users", "model", "popularity"}
    bar = 1 + config.feed.min_lift_over_popularity
    assert feed["model"]["ndcg"] >= bar * feed["popularity"]["ndcg"] > 0 and feed["users"] > 20
    assert 0 < feed["model"]["coverage"] <= 1
    record = read_history(config)[-1]
    assert (
        record.feed_ndcg == feed["model"]["ndcg"]
        and record.feed_ndcg_popularity == feed["popularity"]["ndcg"]
    )
    # What the user reads at the end of `recpipe run`:
    for words in ("anomalies", "none", "AUC", "NDCG@10", "BLESSED", "feed quality", summary.pushed_path):
        assert words in output


def test_pushed_model_answers_a_tf_serving_rest_request(night1):
    config, summary, _ = night1
    version_dir = Path(latest_version_dir(config.serving_model_dir))  # a local serving root here
    assert (version_dir / "saved_model.pb").is_file() and (version_dir / "variables").is_dir()
    events = list(read_examples(span_files(config.data.root, DAY1)))[:5]
    instances = [{name: e.get(name, -1) for name in F.SERVING_FEATURES} for e in events]
    instances[0][F.USER_ID] = "a-user-never-seen"  # new users are scored through the OOV buckets
    body = json.dumps({"signature_name": "serving_default", "instances": instances})

    response = predict_rest(version_dir, body)

    probabilities = response["predictions"]
    assert len(probabilities) == 5 and all(0.0 <= p <= 1.0 for p in probabilities)
    # The tf.Example signature (gRPC clients, TFMA) gives the same scores for the same impressions.
    import tensorflow as tf

    model = tf.saved_model.load(str(version_dir))
    serialized = [
        to_example({**e, F.USER_ID: i[F.USER_ID]}).SerializeToString()
        for e, i in zip(events, instances, strict=False)
    ]
    by_example = model.signatures["serving_tf_example"](examples=tf.constant(serialized))["click_probability"]
    assert by_example.numpy().tolist() == pytest.approx(probabilities, abs=1e-5)
    transformed = model.signatures["transform_features"](examples=tf.constant(serialized))
    assert {F.T_USER, F.T_ITEM, F.T_PRICE} <= set(transformed)


def test_recommend_ranks_the_whole_catalogue_in_graph_consistently_with_serving_default(night1):
    """Top-k from the precomputed `recommend` path must equal scoring each item with the full model."""
    import tensorflow as tf

    config, summary, _ = night1
    assert summary.serving_check.startswith("passed"), summary.serving_check
    version_dir = Path(latest_version_dir(config.serving_model_dir))  # a local serving root here
    assert (version_dir / "assets.extra" / "tf_serving_warmup_requests").is_file()
    model = tf.saved_model.load(str(version_dir))
    events = list(read_examples(span_files(config.data.root, DAY1)))
    item_meta = {e[F.ITEM_ID]: (e[F.ITEM_CATEGORY], e[F.ITEM_PRICE]) for e in events}
    user, ts = events[0][F.USER_ID], events[0][F.EVENT_TS]

    def recommend(user_id, k, exclude=()):
        out = model.signatures["recommend"](
            user_id=tf.constant([user_id]),
            device=tf.constant(["mobile"]),
            event_ts=tf.constant([ts], tf.int64),
            k=tf.constant(k),
            exclude_item_ids=tf.constant(list(exclude), tf.string),
        )
        return [i.decode() for i in out["item_ids"].numpy()[0]], out["scores"].numpy()[0]

    items, scores = recommend(user, 10)
    assert len(items) == 10 and len(set(items)) == 10 and all(scores[:-1] >= scores[1:])
    full = model.signatures["serving_default"](
        user_id=tf.constant([user] * 10),
        item_id=tf.constant(items),
        event_ts=tf.constant([ts] * 10, tf.int64),
        position=tf.zeros([10], tf.int64),
        device=tf.constant(["mobile"] * 10),
        item_category=tf.constant([item_meta[i][0] for i in items]),
        item_price=tf.constant([item_meta[i][1] for i in items], tf.float32),
        user_age=tf.constant([-1] * 10, tf.int64),
    )["click_probability"].numpy()
    # The feed ranks by expected clicks (trainer.recommend_by): the served click probability times the
    # item's share of the logged impressions, the same share for every user.
    catalogue_ids = [i.decode() for i in model.recommender.item_ids.numpy()]
    share = dict(zip(catalogue_ids, model.recommender.item_share.numpy().tolist(), strict=True))
    assert 0 < min(share.values()) and sum(share.values()) == pytest.approx(1.0, abs=1e-4)
    assert (full * [share[i] for i in items]).tolist() == pytest.approx(scores.tolist(), rel=1e-3)

    without_best, _ = recommend(user, 10, exclude=items[:2])
    assert items[0] not in without_best and items[1] not in without_best and without_best[:8] == items[2:]
    stranger, stranger_scores = recommend("someone-never-seen", 5)
    assert len(stranger) == 5 and all(0 <= p <= 1 for p in stranger_scores)

    # Exclusions that leave fewer than k items: padding, never an excluded item.
    catalogue = sorted(item_meta)
    nothing_left, pad_scores = recommend(user, 10, exclude=catalogue)
    assert set(nothing_left) == {""} and set(pad_scores.tolist()) == {-1.0}
    three_left, _ = recommend(user, 6, exclude=[i for i in catalogue if i not in items[:3]])
    assert sorted(three_left[:3]) == sorted(items[:3]) and three_left[3:] == ["", "", ""]

    # ... and every client drops the padding: the REST mapping's answer through the CLI's recommend().
    from pipeline.serving_client import recommend as ask

    class OverRest:
        def predict(self, body):
            return json.loads(json.dumps(predict_rest(version_dir, body)))  # as it travels over HTTP

    assert ask(OverRest(), user, 10, "mobile", catalogue, ts) == []
    assert sorted(
        i for i, _ in ask(OverRest(), user, 6, "mobile", [i for i in catalogue if i not in items[:3]], ts)
    ) == sorted(items[:3])


def test_rerunning_a_night_that_pushed_does_not_push_the_same_model_again(night1):
    """Also with other launch settings: where the Trainer runs (workers, image) is not what it learns, so
    TFX's cache still holds (3 worker processes would otherwise start here)."""
    config, _, _ = night1
    versions = list_versions(config.serving_model_dir)
    launch = {
        "trainer.workers": 3,
        "trainer.max_restarts": 0,
        "kubeflow.image": "registry.example/recpipe:other",
    }
    summary = run_pipeline(config.with_overrides(**{"data.span": DAY1, **launch}))
    assert summary.node_states["Transform"] == "CACHED"
    assert summary.node_states["Trainer"] == "CACHED"
    assert not summary.pushed and "already served as version" in summary.push_reason
    assert list_versions(config.serving_model_dir) == versions


def test_recommend_cli_over_rest_against_a_tf_serving_stand_in(night1):
    """The CLI's REST client against a local server that checks each request and answers as TF Serving."""
    from helpers import JsonHandler, serve_in_thread

    config, _, _ = night1
    version_dir = Path(latest_version_dir(config.serving_model_dir))  # a local serving root here
    seen = []

    class TFServing(JsonHandler):
        def do_POST(self):  # noqa: N802 - http.server's name
            body = self.read_json()
            seen.append((self.path, self.headers["Content-Type"], body))
            if self.path != "/v1/models/recommender:predict":
                return self.send_json(404, {"error": f"Servable not found for request: {self.path}"})
            try:
                return self.send_json(200, predict_rest(version_dir, body))
            except Exception as err:  # noqa: BLE001 - TF Serving answers bad requests with 400
                return self.send_json(400, {"error": str(err)})

    server, endpoint = serve_in_thread(TFServing)
    try:
        user = next(read_examples(span_files(config.data.root, DAY1)))[F.USER_ID]
        movies = Path(config.run_root) / "movies.csv"  # a MovieLens-style catalogue for the synthetic ids
        movies.write_text(
            "movieId,title,genres\n" + "".join(f"i{n},Film number {n} (2024),Drama\n" for n in range(150))
        )
        rest_args = ["--endpoint", endpoint, "--model-name", "recommender", "--movies", str(movies)]
        over_rest = CliRunner().invoke(
            cli, ["recommend", *rest_args, "--user", user, "-k", "3", "--device", "mobile"]
        )
        in_process = CliRunner().invoke(
            cli,
            ["recommend", "--model-dir", str(version_dir), "--user", user, "-k", "3", "--device", "mobile"],
        )
        assert over_rest.exit_code == 0, over_rest.output
        path, content_type, body = seen[-1]
        assert path == "/v1/models/recommender:predict" and content_type == "application/json"
        assert (
            body["signature_name"] == "recommend"
            and body["inputs"]["user_id"] == [user]
            and body["inputs"]["k"] == 3
        )
        rest_rows = [line.split("│") for line in over_rest.output.splitlines() if line.startswith("│ ")]
        rest_items = [row[2].strip() for row in rest_rows]
        assert len(rest_items) == 3
        assert [row[3].strip() for row in rest_rows] == [f"Film number {i[1:]} (2024)" for i in rest_items]
        assert rest_items == [
            line.split()[3] for line in in_process.output.splitlines() if line.startswith("│ ")
        ]

        scored = CliRunner().invoke(
            cli,
            [
                "predict",
                "--endpoint",
                endpoint,
                "--model-name",
                "recommender",
                "--user",
                user,
                "--items",
                f"{rest_items[0]},not-an-item",
            ],
        )
        assert scored.exit_code == 0, scored.output
        assert "not-an-item\tunknown item" in scored.output and seen[-1][2]["signature_name"] == "score_items"

        wrong = CliRunner().invoke(
            cli, ["recommend", "--endpoint", endpoint, "--model-name", "nope", "--user", user]
        )
        assert wrong.exit_code == 1 and "HTTP 404" in wrong.output
    finally:
        server.shutdown()


def test_rest_request_missing_an_input_is_refused_with_its_name(night1):
    config, _, _ = night1
    with pytest.raises(ValueError, match="item_price"):
        predict_rest(
            latest_version_dir(config.serving_model_dir), {"instances": [{"user_id": "u1", "item_id": "i1"}]}
        )


def test_night2_on_beam_runner_compares_with_the_blessed_baseline(night2):
    config, summary = night2
    assert summary.span == DAY2
    assert summary.node_states["Trainer"] == "COMPLETE", "new span -> new model"
    assert summary.has_baseline, "night 1's blessed model must be the baseline"
    assert all(g.baseline is not None and g.value is not None for g in summary.gates)
    assert summary.blessed is not None
    if summary.blessed:
        assert summary.pushed and len(list_versions(config.serving_model_dir)) == 2


@pytest.mark.parametrize(
    "overrides, failing, passing",
    [
        ({"evaluation.auc_lower_bound": 0.99}, "auc", "ndcg"),
        ({"evaluation.ndcg_lower_bound": 0.999}, "ndcg", "auc"),
    ],
)
def test_each_gate_alone_can_refuse_and_then_nothing_is_pushed(night2, overrides, failing, passing):
    import tensorflow_model_analysis as tfma

    config, _ = night2
    # Generous drops so only the forced absolute bar can fail.
    config = config.with_overrides(
        **overrides, **{"evaluation.max_auc_drop": 1.0, "evaluation.max_ndcg_drop": 1.0}
    )
    versions = list_versions(config.serving_model_dir)
    served = _tree_digest(latest_version_dir(config.serving_model_dir))

    summary = run_pipeline(config)

    assert summary.node_states["Trainer"] == "CACHED" and summary.node_states["Evaluator"] == "COMPLETE"
    assert summary.blessed is False and not summary.pushed
    failed = {
        f.metric_key.name
        for f in tfma.load_validation_result(summary.evaluation_uri).metric_validations_per_slice[0].failures
    }
    assert failed == {failing}, f"TFMA should refuse on {failing} alone, refused on {failed}"
    gates = {g.metric.split("@")[0].lower(): g.passed for g in summary.gates}
    assert gates == {failing: False, passing: True}
    assert list_versions(config.serving_model_dir) == versions
    assert _tree_digest(latest_version_dir(config.serving_model_dir)) == served

    # `recpipe run` tells a scheduler the night was refused (exit 4), not that it shipped (0) or broke (1).
    config_file = Path(config.run_root).parent / f"refused-{failing}.yaml"
    config_file.write_text(yaml.safe_dump(config.model_dump()))
    result = CliRunner().invoke(cli, ["run", "--config", str(config_file)])
    assert result.exit_code == 4, result.output


def test_the_feed_gate_alone_can_refuse_and_then_nothing_is_pushed(night2):
    """A bar no feed can clear (100x the most-popular list's NDCG): the Evaluator blesses, the feed-quality
    gate refuses, the serving check does not run the candidate, nothing is pushed, exit 4."""
    config, _ = night2
    config = config.with_overrides(
        **{
            "feed.min_lift_over_popularity": 100.0,
            "evaluation.max_auc_drop": 1.0,
            "evaluation.max_ndcg_drop": 1.0,
        }
    )
    versions = list_versions(config.serving_model_dir)
    served = _tree_digest(latest_version_dir(config.serving_model_dir))

    summary = run_pipeline(config)

    assert summary.node_states["Trainer"] == "CACHED" and summary.blessed is True
    assert summary.feed_gate.startswith("FAILED") and "feed.min_lift_over_popularity" in summary.feed_gate
    assert summary.serving_check.startswith("FAILED: skipped") and not summary.pushed
    assert "feed-quality gate refused it" in summary.push_reason
    assert list_versions(config.serving_model_dir) == versions
    assert _tree_digest(latest_version_dir(config.serving_model_dir)) == served
    assert read_history(config)[-1].status == "not pushed"
    config_file = Path(config.run_root).parent / "refused-feed.yaml"
    config_file.write_text(yaml.safe_dump(config.model_dump()))
    assert CliRunner().invoke(cli, ["run", "--config", str(config_file)]).exit_code == 4


def test_serving_check_blocks_a_model_over_its_latency_budget(night2):
    config, _ = night2
    config = config.with_overrides(
        **{
            "serving.latency_budget_ms": 1e-6,
            "evaluation.auc_lower_bound": 0.0,
            "evaluation.ndcg_lower_bound": 0.0,
            "evaluation.max_auc_drop": 1.0,
            "evaluation.max_ndcg_drop": 1.0,
        }
    )
    versions = list_versions(config.serving_model_dir)
    served = _tree_digest(latest_version_dir(config.serving_model_dir))

    summary = run_pipeline(config)

    assert summary.blessed is True, "the Evaluator blessed it; only the serving check may say no"
    assert summary.serving_check.startswith("FAILED") and "exceeds the budget" in summary.serving_check
    assert not summary.pushed and "serving check failed" in summary.push_reason
    assert list_versions(config.serving_model_dir) == versions
    assert _tree_digest(latest_version_dir(config.serving_model_dir)) == served


def test_anomalous_span_stops_before_training_and_serving_is_untouched(night2, tmp_path):
    config, _ = night2
    bad_root = tmp_path / "clicklog"
    shutil.copytree(Path(config.data.root) / f"span-{DAY2}", bad_root / f"span-{DAY2}")
    events = list(read_examples(span_files(config.data.root, DAY2)))[:2000]
    import datetime as dt

    with SpanWriter(bad_root, dt.date(2024, 1, 3)) as writer:
        for i, e in enumerate(events):
            e = {**e, F.EVENT_TS: e[F.EVENT_TS] + 86400}  # day 2's events, moved to the day of this span
            if i % 50 == 0:
                e = {**e, F.DEVICE: "smartwatch", F.ITEM_PRICE: -5.0}
            writer.write(to_example(e))
    versions = list_versions(config.serving_model_dir)
    served = _tree_digest(latest_version_dir(config.serving_model_dir))

    with pytest.raises(RunFailed) as failure:
        run_pipeline(config.with_overrides(**{"data.root": str(bad_root)}))

    message = str(failure.value)
    assert "DataAnomaliesError" in message and "'device'" in message and "'item_price'" in message
    assert "smartwatch" in message and "schema/schema.pbtxt" in message
    states = failure.value.summary.node_states
    assert states["ExampleValidator"] == "COMPLETE" and "Transform" not in states and "Trainer" not in states
    assert any("device" in line for line in failure.value.summary.anomalies)
    assert list_versions(config.serving_model_dir) == versions
    assert _tree_digest(latest_version_dir(config.serving_model_dir)) == served


@pytest.mark.parametrize("damage", ["corrupt", "incompatible"])
def test_a_broken_baseline_model_stops_the_night_and_serving_is_untouched(night2, damage):
    """Issue 7, case 13: the last blessed model (the Evaluator's baseline) cannot be loaded."""
    from pipeline.records.summary import latest_blessed_model_uri

    config, _ = night2
    saved_model = Path(latest_blessed_model_uri(config)) / "Format-Serving" / "saved_model.pb"
    original = saved_model.read_bytes()
    versions = list_versions(config.serving_model_dir)
    served = _tree_digest(latest_version_dir(config.serving_model_dir))
    if damage == "corrupt":
        saved_model.write_bytes(original[: len(original) // 3])
    else:  # a SavedModel without the signature the Evaluator needs (another pipeline's model)
        from tensorflow.core.protobuf import saved_model_pb2

        proto = saved_model_pb2.SavedModel.FromString(original)
        del proto.meta_graphs[0].signature_def["serving_tf_example"]
        saved_model.write_bytes(proto.SerializeToString())
    try:
        result = CliRunner().invoke(
            cli, ["run", "--config", str(Path(config.run_root).parent / "night.yaml")]
        )
    finally:
        saved_model.write_bytes(original)
    message = " ".join(result.output.split())
    assert result.exit_code == 3, "bad input"
    assert "the last blessed model" in message and "baseline every new model must beat" in message
    assert ("cannot be read" if damage == "corrupt" else "no serving_tf_example signature") in message
    assert list_versions(config.serving_model_dir) == versions
    assert _tree_digest(latest_version_dir(config.serving_model_dir)) == served
