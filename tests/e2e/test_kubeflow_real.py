"""The Kubeflow night for real, on this machine: configs/kubeflow.yaml as shipped, MLMD on a MariaDB server,
click logs, pipeline root, serving folder and history on an S3 server, each phase its own process through
kfp.local's SubprocessRunner. Three nights: the first is blessed and pushed; the second warm-starts from
the version the first served and is compared against it as baseline; the third has drifted and stops in
validate-data, recorded. What cannot run here: the KFP API server, Argo, TFJob pods, TF Serving, a real
bucket (README, "What was proven on this machine")."""

import json

import pytest
import yaml
from conftest import REPO

from components import storage
from components.serving_layout import list_versions, push_record, served_version
from pipeline.data.synthetic import SyntheticSpec, generate

SPANS = (20240101, 20240102, 20240103, 20240104)  # 20240104 drifted (device)
# What this machine changes in the shipped config, and why: no Kubernetes for a TFJob; a few thousand
# events instead of a day of traffic (fewer epochs, gates for a tiny model); Beam in one process (on 2
# cores its worker processes only add start-up time to each of the ~20 Beam jobs of three nights).
HERE = {
    "trainer.launcher": "local",
    "trainer.workers": 1,
    "trainer.epochs": 3,
    "trainer.batch_size": 128,
    "trainer.learning_rate": 0.01,
    "evaluation.max_auc_drop": 0.1,
    "evaluation.max_ndcg_drop": 0.1,
    # The feed-quality gate's bars for a 3,000-event day, as configs/test.yaml sets them.
    "feed.min_lift_over_popularity": -0.5,
    "feed.max_drop": 0.2,
    "beam.direct_running_mode": "in_memory",
    "beam.direct_num_workers": 1,
}


@pytest.fixture(scope="module")
def cluster(mysql_server, s3_endpoint, tmp_path_factory):
    """Environment of a pod: the database and the store's endpoint and keys (never the config file)."""
    import secrets

    database, user, password = mysql_server.new_database()
    store = f"s3://mlpipeline/kfp-{secrets.token_hex(3)}"
    env = {
        "RECPIPE_STORE": store,
        "RECPIPE_SCHEMA_DIR": str(REPO / "schema"),
        "MLMD_MYSQL_HOST": "127.0.0.1",
        "MLMD_MYSQL_PORT": str(mysql_server.port),
        "MLMD_MYSQL_DATABASE": database,
        "MLMD_MYSQL_USER": user,
        "MLMD_MYSQL_PASSWORD": password,
    }
    mp = pytest.MonkeyPatch()
    for key, value in env.items():
        mp.setenv(key, value)
    from pipeline.config import load_config

    config = load_config(REPO / "configs" / "kubeflow.yaml").with_overrides(**HERE)
    generate(
        config.data.root,
        SyntheticSpec(
            days=4, events_per_day=3000, seed=5, users=300, items=150, drift=("device",), drift_days=(3,)
        ),
    )
    yield config, password, tmp_path_factory.mktemp("kfp-local")
    mp.undo()


def _night(config, phases, night: str):
    """The five phases of one night, each a subprocess, chained as the compiled pipeline chains them."""
    frozen = yaml.safe_dump(config.model_dump())
    knobs = dict(auc_lower_bound=0.0, ndcg_lower_bound=0.0, epochs=config.trainer.epochs)
    span = phases["resolve-night"](config_yaml=frozen, night=night, schedule_time="").output
    validated = phases["validate-data"](config_yaml=frozen, span=span).output
    trained = phases["train-evaluate"](config_yaml=frozen, span=span, previous=validated, **knobs).output
    pushed = phases["check-and-push"](config_yaml=frozen, span=span, previous=trained, **knobs).output
    return json.loads(phases["report"](config_yaml=frozen, span=span, previous=pushed).output)


def test_three_nights_on_mysql_and_object_storage(cluster, capfd):
    from kfp import local
    from pipeline.kubeflow.dsl import _phase_components, compile_pipeline
    from pipeline.records.history import read_history

    config, password, tmp = cluster
    assert config.metadata.kind == "mysql" and config.data.root.startswith("s3://")
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp / "outputs"))
    phases = _phase_components("python:3.10")
    base = config.serving_model_dir

    first = _night(config, phases, "20240102")
    assert first["status"] == "pushed", first
    assert first["train_spans"] == [20240101] and first["warm_start_from"] is None
    [v1] = list_versions(base)
    assert served_version(config.serving.root, config.serving.model_name) == v1

    second = _night(config, phases, "20240103")
    assert second["warm_start_from"] == storage.join(base, str(v1)), "warm start from the served version"
    assert second["auc_baseline"] is not None and second["ndcg_baseline"] is not None, (
        "night 1 is the baseline"
    )
    assert second["status"] == "pushed", second
    v1_again, v2 = list_versions(base)
    assert v1_again == v1 and v2 > v1
    assert served_version(config.serving.root, config.serving.model_name) == v2
    assert (
        push_record(storage.join(base, str(v2)))["model_uri"]
        != push_record(storage.join(base, str(v1)))["model_uri"]
    )

    with pytest.raises(RuntimeError):
        _night(config, phases, "20240104")  # validate-data fails: KFP marks the run failed there
    assert list_versions(base) == [v1, v2], "a drifted night pushes nothing"
    assert served_version(config.serving.root, config.serving.model_name) == v2

    nights = read_history(config)
    assert [(n.span, n.status) for n in nights] == [
        (20240102, "pushed"),
        (20240103, "pushed"),
        (20240104, "drift"),
    ]
    assert nights[2].plan and "warm start" in nights[2].plan, "the drifted night's record holds its plan"
    assert all(storage.exists(storage.join(config.history_dir, f"{n.name}.html")) for n in nights)

    from click.testing import CliRunner

    from pipeline.cli import main as cli

    table = CliRunner().invoke(cli, ["history", "--config", str(REPO / "configs" / "kubeflow.yaml")])
    assert table.exit_code == 0, table.output
    assert all(str(s) in table.output for s in SPANS[1:]) and "drift" in table.output

    # The password is in no spec, log, record or report.
    spec = compile_pipeline(config, tmp / "pipeline.yaml").read_text()
    out, err = capfd.readouterr()
    texts = [spec, out, err, table.output] + [
        storage.read_text(storage.join(config.history_dir, name))
        for name in storage.files(config.history_dir)
    ]
    assert not [t for t in texts if password in t]
    assert "recpipe validate-data: the night ended drift (exit 4)" in out + err, "KFP sees a refused night"
