"""Continuous retraining end to end: `recpipe backfill` over five small days, the fourth one drifted.

Night 3 ingests days 1-2 (no night ran them), trains on them from scratch and is evaluated on all of day 3.
Night 4 drifted: it stops before training and serving is untouched. Night 5 leaves the drifted day out:
it warm-starts from night 3's served model on day 3 alone and compares its drift with day 3.
"""

import json

import pytest
import yaml
from click.testing import CliRunner
from conftest import make_config
from ml_metadata.proto import metadata_store_pb2

from pipeline.cli import main as cli
from pipeline.data.synthetic import SyntheticSpec, generate
from pipeline.records.history import latest_per_span, read_history
from pipeline.serving_client import list_versions

EVENTS = 3000


@pytest.fixture(scope="module")
def backfilled(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("continuous")
    data = tmp / "clicklog"
    spec = SyntheticSpec(
        days=5, events_per_day=EVENTS, seed=5, users=300, items=150, drift=("device",), drift_days=(3,)
    )
    generate(data, spec)
    config = make_config(
        tmp,
        data,
        **{"window.spans": 2, "warm_start.enabled": True, "warm_start.spans": 1, "warm_start.epochs": 2},
    )
    config_file = tmp / "nightly.yaml"
    config_file.write_text(yaml.safe_dump(config.model_dump()))
    result = CliRunner().invoke(
        cli, ["backfill", "--config", str(config_file), "--from", "20240103", "--to", "20240105"]
    )
    return config, config_file, result


def _transform_input_spans(config) -> list[list[int]]:
    """Spans of the Examples each Transform execution read, oldest execution first (from MLMD)."""
    from ml_metadata.metadata_store import metadata_store

    from pipeline.mlmd import metadata_connection

    store = metadata_store.MetadataStore(metadata_connection(config))
    context = store.get_context_by_type_and_name("node", f"{config.pipeline_name}.Transform")
    runs = []
    for execution in sorted(store.get_executions_by_context(context.id), key=lambda e: e.id):
        inputs = [
            e.artifact_id
            for e in store.get_events_by_execution_ids([execution.id])
            if e.type == metadata_store_pb2.Event.INPUT
        ]
        spans = [
            a.custom_properties["span"].int_value
            for a in store.get_artifacts_by_id(inputs)
            if "span" in a.custom_properties
        ]
        runs.append(sorted(spans))
    return runs


def test_backfill_runs_every_night_and_goes_on_after_a_drifted_one(backfilled):
    config, _, result = backfilled
    assert result.exit_code == 4, "the worst night was refused by a gate (drift): exit 4"
    nights = latest_per_span(read_history(config))
    assert {s: r.status for s, r in nights.items()} == {
        20240103: "pushed",
        20240104: "drift",
        20240105: "pushed",
    }
    assert "night 20240104: drift" in result.output


def test_window_trains_on_earlier_spans_and_evaluates_on_the_whole_newest(backfilled):
    config, _, _ = backfilled
    night3 = latest_per_span(read_history(config))[20240103]
    assert night3.train_spans == [20240101, 20240102] and night3.warm_start_from is None
    assert night3.events == EVENTS
    # Transform (and so the Trainer) read days 1 and 2 only; day 3 is only evaluated, whole.
    assert _transform_input_spans(config)[0] == [20240101, 20240102]
    assert night3.eval_examples == EVENTS
    from pipeline.records.summary import validated_spans

    # Every span passed the schema check (drift is not a schema anomaly), read back through MLMD lineage.
    assert validated_spans(config) == {20240101, 20240102, 20240103, 20240104, 20240105}


def test_drifted_night_names_feature_and_distance_and_pushes_nothing(backfilled):
    config, _, _ = backfilled
    nights = latest_per_span(read_history(config))
    drifted = nights[20240104]
    assert any("'device'" in line and "Linfty distance" in line for line in drifted.drift), drifted.drift
    assert drifted.auc is None and drifted.pushed_version is None
    assert "span 20240104 drifted from span 20240103" in drifted.failure
    # Exactly two versions were ever pushed: nights 3 and 5.
    assert list_versions(config.serving_model_dir) == sorted(
        [nights[20240103].pushed_version, nights[20240105].pushed_version]
    )


def test_next_night_warm_starts_from_the_served_model_without_the_drifted_day(backfilled):
    config, _, _ = backfilled
    nights = latest_per_span(read_history(config))
    night5 = nights[20240105]
    assert night5.warm_start_from == f"{config.serving_model_dir}/{nights[20240103].pushed_version}"
    assert night5.train_spans == [20240103] and night5.epochs == 2
    assert night5.new_users is not None and night5.auc_baseline is not None  # compared with night 3's model
    assert _transform_input_spans(config)[-1] == [20240103]


def test_history_and_report_commands(backfilled):
    config, config_file, _ = backfilled
    table = CliRunner().invoke(cli, ["history", "--config", str(config_file)])
    assert table.exit_code == 0 and "20240104" in table.output and "drift" in table.output
    as_json = json.loads(CliRunner().invoke(cli, ["history", "--config", str(config_file), "--json"]).output)
    assert [r["span"] for r in as_json] == [20240103, 20240104, 20240105]
    report = CliRunner().invoke(cli, ["report", "20240104", "--config", str(config_file)])
    assert report.exit_code == 0
    page = open(report.output.strip()).read()
    assert "drift" in page and "Linfty distance" in page and "data:image/png;base64," in page


def test_night_after_a_statistics_setting_change_names_what_drift_did_not_compare(backfilled):
    """Day 3's statistics hold 100 quantile buckets; tonight's, after the setting changed, hold 20. The
    gate cannot compare those histograms: it says so in run's table, the history and the report."""
    config, nightly, _ = backfilled
    changed = config.with_overrides(**{"data.statistics_quantile_buckets": 20})
    config_file = nightly.parent / "twenty-buckets.yaml"
    config_file.write_text(yaml.safe_dump(changed.model_dump()))
    result = CliRunner().invoke(cli, ["run", "--config", str(config_file)])
    night = read_history(changed)[-1]
    assert night.span == 20240105 and night.status == "pushed", night.failure
    named = night.drift_not_compared.split(" (")[0]
    assert sorted(named.removeprefix("not compared tonight: ").split(", ")) == ["dwell_ms", "item_price"]
    assert "span 20240103's statistics" in night.drift_not_compared
    assert "not compared tonight:" in result.output
    table = CliRunner().invoke(cli, ["history", "--config", str(config_file)])
    assert "span 20240105: drift gate not compared tonight" in table.output
    report = CliRunner().invoke(cli, ["report", "20240105", "--config", str(config_file)])
    assert named in open(report.output.strip()).read()
