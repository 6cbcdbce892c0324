"""The nightly Kubeflow pipeline, authored with the kfp DSL and compiled by kfp's own compiler.

Five phases, each a lightweight component running our package in our image (pipeline/kubeflow_phases.py):
resolve the night -> validate data -> train and evaluate -> serving check and push -> report.
The config is frozen into the spec at compile time; the night and a few knobs are run parameters.
"""

# No `from __future__ import annotations`: kfp reads the component annotations at runtime.

from pathlib import Path

import yaml

from components import storage
from kfp import compiler, dsl
from pipeline.config import PhaseResources, RecpipeConfig

DEFAULT_RESOURCES = PhaseResources()


def _phase_components(image: str) -> dict:
    """One component per phase. Bodies run in the pod: they may only use their arguments and imports."""
    component = dsl.component(base_image=image, install_kfp_package=False)

    @component
    def resolve_night(config_yaml: str, night: str, schedule_time: str) -> int:
        from pipeline.kubeflow_phases import config_from_yaml, resolve_night

        return resolve_night(config_from_yaml(config_yaml), night, schedule_time)

    @component
    def validate_data(config_yaml: str, span: int) -> str:
        from pipeline.kubeflow_phases import run_phase_json

        return run_phase_json(config_yaml, span, "validate-data")

    @component
    def train_evaluate(
        config_yaml: str,
        span: int,
        previous: str,
        auc_lower_bound: float,
        ndcg_lower_bound: float,
        epochs: int,
    ) -> str:
        from pipeline.kubeflow_phases import run_phase_json

        return run_phase_json(
            config_yaml,
            span,
            "train-evaluate",
            previous,
            auc_lower_bound=auc_lower_bound,
            ndcg_lower_bound=ndcg_lower_bound,
            epochs=epochs,
        )

    @component
    def check_and_push(
        config_yaml: str,
        span: int,
        previous: str,
        auc_lower_bound: float,
        ndcg_lower_bound: float,
        epochs: int,
    ) -> str:
        from pipeline.kubeflow_phases import run_phase_json

        return run_phase_json(
            config_yaml,
            span,
            "check-and-push",
            previous,
            auc_lower_bound=auc_lower_bound,
            ndcg_lower_bound=ndcg_lower_bound,
            epochs=epochs,
        )

    @component
    def report(config_yaml: str, span: int, previous: str) -> str:
        from pipeline.kubeflow_phases import config_from_yaml, report, to_json

        result = report(config_from_yaml(config_yaml, span), previous)
        print(to_json(result))
        return to_json(result)

    return {
        "resolve-night": resolve_night,
        "validate-data": validate_data,
        "train-evaluate": train_evaluate,
        "check-and-push": check_and_push,
        "report": report,
    }


def _configure(task, config: RecpipeConfig, phase: str):
    resources = config.kubeflow.phases.get(phase, DEFAULT_RESOURCES)
    task.set_display_name(phase)
    task.set_cpu_limit(resources.cpu).set_memory_limit(resources.memory)
    task.set_cpu_request(resources.cpu).set_memory_request(resources.memory)
    if resources.retries:
        task.set_retry(num_retries=resources.retries)
    task.set_caching_options(False)  # TFX caches inside the phases, with MLMD; KFP's cache would skip nights
    # What kfp-kubernetes' use_secret_as_env writes: passwords and keys never enter the spec.
    secrets = []
    if config.metadata.kind == "mysql":
        meta = config.metadata
        secrets.append(
            {
                "secretName": meta.secret_name,
                "keyToEnv": [{"secretKey": meta.secret_key, "envVar": meta.password_env}],
            }
        )
    if any(storage.scheme(uri) == "s3" for uri in [*config.roots.values(), config.kubeflow.pipeline_root]):
        s3 = config.storage
        secrets.append(
            {
                "secretName": s3.secret_name,
                "keyToEnv": [
                    {"secretKey": s3.access_key_key, "envVar": "AWS_ACCESS_KEY_ID"},
                    {"secretKey": s3.secret_key_key, "envVar": "AWS_SECRET_ACCESS_KEY"},
                ],
            }
        )
        if s3.s3_endpoint:
            task.set_env_variable("AWS_ENDPOINT_URL_S3", s3.s3_endpoint)
        task.set_env_variable("AWS_REGION", s3.s3_region)
    if secrets:
        task.platform_config["kubernetes"] = {"secretAsEnv": secrets}
    return task


def build_pipeline(config: RecpipeConfig):
    """The @dsl.pipeline function for this config (the config is frozen into the phases' arguments)."""
    phases = _phase_components(config.kubeflow.image)
    frozen = yaml.safe_dump(config.model_dump(), sort_keys=True)

    @dsl.pipeline(
        name=config.pipeline_name, description="recpipe nightly: click logs -> gated NeuMF -> TF Serving"
    )
    def nightly(
        night: str = "",
        auc_lower_bound: float = config.evaluation.auc_lower_bound,
        ndcg_lower_bound: float = config.evaluation.ndcg_lower_bound,
        epochs: int = config.trainer.epochs,
    ):
        knobs = dict(auc_lower_bound=auc_lower_bound, ndcg_lower_bound=ndcg_lower_bound, epochs=epochs)
        resolved = _configure(
            phases["resolve-night"](
                config_yaml=frozen, night=night, schedule_time=dsl.PIPELINE_JOB_SCHEDULE_TIME_UTC_PLACEHOLDER
            ),
            config,
            "resolve-night",
        )
        span = resolved.output
        validated = _configure(
            phases["validate-data"](config_yaml=frozen, span=span), config, "validate-data"
        )
        trained = _configure(
            phases["train-evaluate"](config_yaml=frozen, span=span, previous=validated.output, **knobs),
            config,
            "train-evaluate",
        )
        pushed = _configure(
            phases["check-and-push"](config_yaml=frozen, span=span, previous=trained.output, **knobs),
            config,
            "check-and-push",
        )
        _configure(phases["report"](config_yaml=frozen, span=span, previous=pushed.output), config, "report")

    return nightly


def compile_pipeline(config: RecpipeConfig, output: str | Path) -> Path:
    output = Path(output)
    if output.suffix not in (".yaml", ".yml"):
        raise ValueError(f"{output}: the kfp client accepts .yaml/.yml pipeline files; use a .yaml name")
    output.parent.mkdir(parents=True, exist_ok=True)
    compiler.Compiler().compile(build_pipeline(config), str(output))
    return output
