"""The compiled Kubeflow pipeline: parses as a PipelineSpec, phases in order, config honoured, nothing
open-source KFP cannot run (no resolver executors, no lifecycle hooks), no secrets in the spec."""

import pytest
import yaml
from google.protobuf import json_format

from kfp.pipeline_spec import pipeline_spec_pb2
from pipeline.config import ConfigError, load_config
from pipeline.kubeflow.dsl import compile_pipeline

PHASES = ["resolve-night", "validate-data", "train-evaluate", "check-and-push", "report"]


@pytest.fixture(scope="module")
def compiled(tmp_path_factory, repo):
    import os

    os.environ["KFP_TOKEN"] = "secret-token-that-must-not-leak"
    try:
        config = load_config(repo / "configs" / "kubeflow.yaml")
        path = compile_pipeline(config, tmp_path_factory.mktemp("kfp") / "pipeline.yaml")
    finally:
        del os.environ["KFP_TOKEN"]
    text = path.read_text()
    docs = list(yaml.safe_load_all(text))
    spec = json_format.ParseDict(docs[0], pipeline_spec_pb2.PipelineSpec())
    platform = json_format.ParseDict(docs[1], pipeline_spec_pb2.PlatformSpec())
    return config, path, text, spec, platform


def test_phases_run_in_order(compiled):
    _, _, _, spec, _ = compiled
    tasks = spec.root.dag.tasks
    assert sorted(tasks) == sorted(PHASES)
    for before, after in zip(PHASES, PHASES[1:], strict=False):
        assert before in tasks[after].dependent_tasks, f"{after} must wait for {before}"
    assert all(not tasks[p].caching_options.enable_cache for p in PHASES), (
        "TFX caches; KFP's cache would skip nights"
    )


def test_image_resources_and_retries_come_from_the_config(compiled):
    config, _, _, spec, _ = compiled
    executors = spec.deployment_spec.fields["executors"].struct_value.fields
    for phase in PHASES:
        container = executors[f"exec-{phase}"].struct_value.fields["container"].struct_value.fields
        assert container["image"].string_value == config.kubeflow.image
        assert "pipeline.kubeflow.phases" in container["command"].list_value.values[-1].string_value
    train = executors["exec-train-evaluate"].struct_value.fields["container"].struct_value.fields["resources"]
    assert train.struct_value.fields["cpuLimit"].number_value == 4
    assert train.struct_value.fields["memoryLimit"].number_value == 16
    assert spec.root.dag.tasks["check-and-push"].retry_policy.max_retry_count == 2


def test_run_parameters_and_the_schedule_time_placeholder(compiled):
    config, _, _, spec, _ = compiled
    params = spec.root.input_definitions.parameters
    assert set(params) == {"night", "auc_lower_bound", "ndcg_lower_bound", "epochs"}
    assert params["auc_lower_bound"].default_value.number_value == config.evaluation.auc_lower_bound
    assert params["night"].default_value.string_value == ""
    resolve = spec.root.dag.tasks["resolve-night"].inputs.parameters
    assert (
        resolve["schedule_time"].runtime_value.constant.string_value == "{{$.pipeline_job_schedule_time_utc}}"
    )
    assert resolve["night"].component_input_parameter == "night"
    span = spec.root.dag.tasks["train-evaluate"].inputs.parameters["span"].task_output_parameter
    assert span.producer_task == "resolve-night"


def test_nothing_open_source_kfp_cannot_run(compiled):
    _, _, text, _, _ = compiled
    for forbidden in ("outputArtifactQueries", "resolver", "lifecycle", "preCacheCheck"):
        assert forbidden not in text


def test_mlmd_password_comes_from_a_kubernetes_secret_and_no_token_leaks(compiled):
    config, _, text, _, platform = compiled
    executors = platform.platforms["kubernetes"].deployment_spec.executors
    assert set(executors) == {f"exec-{p}" for p in PHASES}
    secret = executors["exec-train-evaluate"].fields["secretAsEnv"].list_value.values[0].struct_value
    assert secret.fields["secretName"].string_value == config.metadata.secret_name
    assert (
        secret.fields["keyToEnv"].list_value.values[0].struct_value.fields["envVar"].string_value
        == "MLMD_MYSQL_PASSWORD"
    )
    assert "secret-token-that-must-not-leak" not in text


def test_the_kfp_sdk_loads_the_file(compiled):
    from kfp import components

    _, path, _, _, _ = compiled
    assert components.load_component_from_file(str(path)).name == "recpipe-nightly"


def test_a_five_field_cron_is_refused_with_the_reason(tmp_path):
    bad = tmp_path / "k.yaml"
    bad.write_text("kubeflow:\n  schedule_cron: '0 2 * * *'\n")
    with pytest.raises(ConfigError, match="6 fields, seconds first.*5-field cron would run every minute"):
        load_config(bad)


def test_compile_refuses_json_output(tmp_path, repo):
    with pytest.raises(ValueError, match=r"\.yaml"):
        compile_pipeline(load_config(repo / "configs" / "kubeflow.yaml"), tmp_path / "p.json")


def test_phases_that_take_run_parameters_take_every_one(compiled):
    """The phase components list the run parameters by hand (KFP ships their source); they must stay equal
    to pipeline/kubeflow/params.py, which the pipeline's signature is built from."""
    from pipeline.kubeflow.params import PIPELINE_PARAMETERS, RUN_PARAMETERS

    _, _, _, spec, _ = compiled
    assert set(spec.root.input_definitions.parameters) == set(PIPELINE_PARAMETERS)
    for phase in PHASES:
        inputs = set(spec.components[f"comp-{phase}"].input_definitions.parameters)
        knobs = inputs & set(RUN_PARAMETERS)
        assert knobs in (set(), set(RUN_PARAMETERS)), f"{phase} takes only {sorted(knobs)}"
        passed = {
            name
            for name, argument in spec.root.dag.tasks[phase].inputs.parameters.items()
            if argument.component_input_parameter
        }
        assert knobs <= passed, f"{phase}: the run parameters are not passed through"
