"""The night plan (window, warm start, drift baseline), the span-window resolver, history and report."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import make_config

from components.model.training import architecture
from components.model.warm_start import BUNDLE_DIR, BUNDLE_FORMAT, MANIFEST_FILE
from components.span_window import SpanWindowStrategy
from pipeline.errors import InputError
from pipeline.plan import plan_night, trainer_settings
from pipeline.records.history import NightRecord, blocked_spans, find_record, read_history, write_record
from pipeline.records.report import render, write_report

SPANS = [20240129, 20240130, 20240131, 20240201, 20240202, 20240203]


def _config(tmp_path, **overrides):
    return make_config(tmp_path, tmp_path / "data", **overrides)


def _served(config, version: int, arch: dict) -> str:
    """A served version carrying only a warm-start manifest (all the planner reads)."""
    path = f"{config.serving_model_dir}/{version}"
    (tmp := __import__("pathlib").Path(path) / BUNDLE_DIR).mkdir(parents=True)
    (tmp / MANIFEST_FILE).write_text(json.dumps({"format": BUNDLE_FORMAT, "architecture": arch}))
    (tmp.parents[1] / "saved_model.pb").write_bytes(b"")  # a whole version has its saved_model.pb
    return path


def test_window_is_the_n_spans_before_the_newest_across_a_month_boundary(tmp_path):
    night = plan_night(_config(tmp_path, **{"window.spans": 3}), SPANS)
    assert night.span == 20240203
    assert night.train_spans == (20240131, 20240201, 20240202)  # no future data: 20240203 only evaluated
    assert night.previous_span == 20240202
    assert not night.warm and night.epochs == 6  # configs/test.yaml's trainer.epochs


def test_train_on_newest_adds_tonight_and_an_explicit_span_plans_that_night(tmp_path):
    night = plan_night(
        _config(tmp_path, **{"window.spans": 2, "window.train_on_newest": True, "data.span": 20240131}), SPANS
    )
    assert night.span == 20240131 and night.train_spans == (20240129, 20240130, 20240131)


def test_first_night_and_single_span_mode_hash_split_the_newest_span(tmp_path):
    first = plan_night(_config(tmp_path, **{"window.spans": 3}), SPANS[:1])
    assert first.train_spans == () and first.previous_span is None and "no earlier span" in first.reason
    single = plan_night(_config(tmp_path), SPANS)
    assert single.train_spans == () and single.previous_span == 20240202  # drift still compared


def test_blocked_spans_are_left_out_of_the_window_and_the_drift_baseline(tmp_path):
    night = plan_night(_config(tmp_path, **{"window.spans": 3}), SPANS, excluded={20240202})
    assert night.train_spans == (20240130, 20240131, 20240201) and night.previous_span == 20240201


def test_warm_start_from_the_newest_served_version_trains_on_fewer_spans(tmp_path):
    config = _config(tmp_path, **{"window.spans": 3, "warm_start.enabled": True, "warm_start.epochs": 2})
    _served(config, 5, architecture(trainer_settings(config)))
    newest = _served(config, 7, architecture(trainer_settings(config)))
    night = plan_night(config, SPANS)
    assert night.warm_start_from == newest
    assert night.train_spans == (20240202,) and night.epochs == 2
    # The served model is fine-tuned at a fraction of the rate a model from scratch learns at.
    scale = config.warm_start.learning_rate_scale
    assert night.learning_rate == pytest.approx(config.trainer.learning_rate * scale) and scale < 1
    assert plan_night(config.with_overrides(**{"warm_start.enabled": False}), SPANS).learning_rate == (
        config.trainer.learning_rate
    )


def test_incompatible_base_model_retrains_from_scratch_or_stops_as_configured(tmp_path):
    config = _config(tmp_path, **{"window.spans": 3, "warm_start.enabled": True})
    _served(config, 5, {**architecture(trainer_settings(config)), "gmf_dim": 99})
    night = plan_night(config, SPANS)
    assert not night.warm and night.train_spans == (20240131, 20240201, 20240202)
    assert "gmf_dim: base model 99" in night.reason
    with pytest.raises(InputError, match="gmf_dim: base model 99.*on_incompatible: fail"):
        plan_night(config.with_overrides(**{"warm_start.on_incompatible": "fail"}), SPANS)


def _examples(span: int, artifact_id: int):
    from tfx.types import standard_artifacts

    artifact = standard_artifacts.Examples()
    artifact.id = artifact_id
    artifact.set_int_custom_property("span", span)
    return artifact


def test_span_window_resolver_keeps_the_newest_artifact_of_each_listed_span():
    artifacts = [
        _examples(20240131, 1),
        _examples(20240201, 2),
        _examples(20240201, 5),
        _examples(20240202, 3),
    ]
    resolved = SpanWindowStrategy(spans=[20240131, 20240201]).resolve_artifacts(None, {"examples": artifacts})
    assert [(a.id, a.get_int_custom_property("span")) for a in resolved["examples"]] == [
        (5, 20240201),
        (1, 20240131),
    ]
    assert SpanWindowStrategy(spans=[]).resolve_artifacts(None, {"examples": artifacts}) == {"examples": []}


def _record(span, status, run_id, **kw):
    return NightRecord(
        span=span, run_id=run_id, started="2024-01-01T00:00:00+00:00", seconds=60.0, status=status, **kw
    )


def test_history_records_round_trip_and_blocked_spans_follow_the_latest_run(tmp_path):
    config = _config(tmp_path)
    write_record(config, _record(20240101, "pushed", "20240102T010000000", auc=0.7, pushed_version=3))
    write_record(config, _record(20240102, "drift", "20240103T010000000", drift=["feature 'device': 0.55"]))
    write_record(config, _record(20240103, "drift", "20240104T010000000"))
    write_record(config, _record(20240103, "pushed", "20240104T020000000"))  # re-run after a threshold change
    write_record(config, _record(20240104, "anomalies", "20240105T010000000"))
    write_record(config, _record(20240105, "not blessed", "20240106T010000000"))  # trained on: not blocked
    assert [r.span for r in read_history(config)] == [
        20240101,
        20240102,
        20240103,
        20240103,
        20240104,
        20240105,
    ]
    assert blocked_spans(config) == {20240102, 20240104}
    assert find_record(config, "20240103").status == "pushed"
    assert find_record(config, None).run_id == "20240106T010000000"
    with pytest.raises(LookupError, match="no run '20991231'"):
        find_record(config, "20991231")


def _nights() -> list[NightRecord]:
    return [
        _record(
            20240103,
            "pushed",
            "1",
            auc=0.70,
            ndcg=0.80,
            auc_bar=0.55,
            ndcg_bar=0.3,
            pushed_version=11,
            blessed=True,
        ),
        _record(
            20240104,
            "drift",
            "2",
            drift=["[train] feature 'device': The Linfty distance between current and previous is 0.55077"],
            failure="DataDriftError: span 20240104 drifted from span 20240103",
        ),
        _record(
            20240105,
            "not blessed",
            "3",
            auc=0.61,
            auc_baseline=0.70,
            ndcg=0.78,
            ndcg_baseline=0.80,
            auc_bar=0.55,
            ndcg_bar=0.3,
            blessed=False,
            events=5000,
            users=1488,
            items=767,
            new_users=12,
            new_items=3,
        ),
    ]


def test_report_shows_decision_drift_gates_and_an_embedded_history_plot():
    nights = _nights()
    page = render(nights[2], nights[:2])
    assert "recpipe night 20240105" in page and "not blessed" in page
    assert "0.6100" in page and "-0.0900" in page  # candidate and its drop from the baseline
    assert "Nothing was pushed" in page
    assert page.count('src="data:image/png;base64,') == 1
    drifted = render(nights[1], nights[:1])
    assert (
        "feature &#x27;device&#x27;" in drifted
        and "0.55077" in drifted
        and "No model was evaluated" in drifted
    )


@pytest.mark.skipif(
    shutil.which("chromium") is None, reason="needs Debian's chromium (apt-get install chromium)"
)
def test_report_renders_in_headless_chromium(tmp_path):
    config = _config(tmp_path)
    nights = _nights()
    for night in nights:
        write_record(config, night)
    page = Path(write_report(config, nights[2]))
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--no-first-run",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    dom = subprocess.run(
        ["chromium", *flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120
    )
    assert "recpipe night 20240105" in dom.stdout and "Metric history" in dom.stdout
    shot = tmp_path / "report.png"
    subprocess.run(
        ["chromium", *flags, "--window-size=1100,1400", f"--screenshot={shot}", page.as_uri()],
        capture_output=True,
        timeout=120,
        check=True,
    )
    assert shot.stat().st_size > 20_000  # a rendered page with a plot, not a blank one
