"""The Kubeflow phases for real: each phase component run through kfp.local's SubprocessRunner (the
kfp 2.5 way to run one component outside a cluster), one after another, sharing one SQLite MLMD and one
pipeline root, exactly as the pods share MySQL and object storage. The result must be what
`recpipe run` produces: a decided blessing and a pushed model. The config uses the training window, so the
phases also ingest the earlier span, check drift against it, train on it and evaluate on the newest (a user
sample of it, through EvalSample)."""

import json

import pytest
import yaml
from conftest import make_config

from pipeline.kubeflow_phases import NightError, resolve_night
from pipeline.serving import list_versions
from pipeline.synthetic import SyntheticSpec, generate


@pytest.fixture(scope="module")
def night_config(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("kfp-phases")
    generate(tmp / "clicklog", SyntheticSpec(days=2, events_per_day=3000, seed=5, users=300, items=150))
    # max_examples below the day's 3,000 events: train-evaluate also runs EvalSample, as a large night would.
    return make_config(tmp, tmp / "clicklog", **{"window.spans": 1, "evaluation.max_examples": 2000}), tmp


def test_night_resolution(night_config):
    config, _ = night_config
    assert resolve_night(config, "", "2024-01-03T02:00:00Z") == 20240102, "02:00 run processes yesterday"
    assert resolve_night(config, "2024-01-01", "2024-01-03T02:00:00Z") == 20240101, "the parameter wins"
    assert resolve_night(config, "", "") == 20240102, "a one-off run without a night takes the newest span"
    with pytest.raises(NightError, match="maps to span 20240110, which does not exist.*newest: 20240102"):
        resolve_night(config, "", "2024-01-11T02:00:00Z")
    with pytest.raises(NightError, match="not a date"):
        resolve_night(config, "yesterday", "")


@pytest.mark.e2e
def test_phases_through_kfp_local_chain_into_a_pushed_model(night_config, repo):
    from kfp import local
    from pipeline.kubeflow import _phase_components

    config, tmp = night_config
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp / "kfp-local"))
    phases = _phase_components("python:3.10")  # SubprocessRunner runs the body in this interpreter
    frozen = yaml.safe_dump(config.model_dump())
    knobs = dict(auc_lower_bound=0.0, ndcg_lower_bound=0.0, epochs=3)

    span = phases["resolve-night"](config_yaml=frozen, night="", schedule_time="2024-01-03T02:00:00Z").output
    assert span == 20240102
    validated = json.loads(phases["validate-data"](config_yaml=frozen, span=span).output)
    ran = {n for n, state in validated["nodes"].items() if state == "COMPLETE"}
    # The schema was imported by the partial run that ingested span 20240101 first (hence CACHED).
    assert ran == {
        "ImportExampleGen",
        "StatisticsGen",
        "ExampleValidator",
        "AnomalyGate",
        "DriftGate",
        "previous_span_statistics",
    }
    trained = json.loads(phases["train-evaluate"](config_yaml=frozen, span=span, previous="", **knobs).output)
    ran = {n for n, state in trained["nodes"].items() if state == "COMPLETE"}
    assert ran == {
        "training_window",
        "Transform",
        "Trainer",
        "latest_blessed_model_resolver",
        "EvalSample",
        "Evaluator",
    }
    # Upstream nodes are reused from the validate-data phase through MLMD, not run again.
    assert trained["nodes"]["ImportExampleGen"] == "CACHED" and trained["nodes"]["AnomalyGate"] == "CACHED"
    pushed = json.loads(phases["check-and-push"](config_yaml=frozen, span=span, previous="", **knobs).output)
    assert {n for n, state in pushed["nodes"].items() if state == "COMPLETE"} == {"ServingCheck", "Pusher"}
    report = json.loads(phases["report"](config_yaml=frozen, span=span, previous="").output)

    assert report["span"] == 20240102 and report["blessed"] is True and report["pushed"] is True
    from pipeline.history import read_history

    [night] = read_history(config)  # the report phase records the night as a local run does
    assert night.span == 20240102 and night.status == "pushed"
    assert 1400 <= night.eval_examples <= 2600, "the Evaluator scored the user sample of the whole day"
    assert report["report"].endswith(".html")
    assert report["serving_check"].startswith("passed")
    assert list_versions(config.serving_model_dir) == [int(report["pushed_path"].rsplit("/", 1)[1])]
    assert [g["metric"] for g in report["gates"]] == ["AUC", "NDCG@10"] and all(
        g["passed"] for g in report["gates"]
    )
