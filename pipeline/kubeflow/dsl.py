"""The nightly Kubeflow pipeline, authored with the kfp DSL and compiled by kfp's own compiler.

Five phases, each a lightweight component running our package in our image (pipeline/kubeflow/phases.py):
resolve the night -> validate data -> train and evaluate -> serving check and push -> report.
The config is frozen into the spec at compile time; the night and a few knobs are run parameters.
"""

# No `from __future__ import annotations`: kfp reads the component annotations at runtime.

import inspect
from pathlib import Path

import yaml

from components import storage
from kfp import compiler, dsl
from pipeline.config import PhaseResources, RecpipeConfig
from pipeline.kubeflow.params import NIGHT, PIPELINE_PARAMETERS, RUN_PARAMETERS
from pipeline.kubeflow.params import defaults as params_defaults
from pipeline.nodes import PHASES

DEFAULT_RESOURCES = PhaseResources()


def _phase_components(image: str) -> dict:
    """One component per phase. Bodies run in the pod: they may only use their arguments and imports."""
    component = dsl.component(base_image=image, install_kfp_package=False)

    @component
    def resolve_night(config_yaml: str, night: str, schedule_time: str) -> int:
        from pipeline.kubeflow.phases import config_from_yaml, resolve_night  # KFP ships the body alone

        return resolve_night(config_from_yaml(config_yaml), night, schedule_time)

    @component
    def validate_data(config_yaml: str, span: int) -> str:
        from pipeline.kubeflow.phases import run_phase_json  # KFP ships the body alone

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
        from pipeline.kubeflow.phases import run_phase_json  # KFP ships the body alone

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
        from pipeline.kubeflow.phases import run_phase_json  # KFP ships the body alone

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
        from pipeline.kubeflow.phases import config_from_yaml, report, to_json  # KFP ships the body alone

        result = report(config_from_yaml(config_yaml, span), previous)
        print(to_json(result))
        return to_json(result)

    built = {c.name: c for c in (resolve_night, validate_data, train_evaluate, check_and_push, report)}
    if list(built) != list(PHASES):
        raise ValueError(
            f"the phase components {list(built)} are not pipeline/nodes.py's phases {list(PHASES)}"
        )
    return built


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

    def nightly(*values):  # KFP passes the parameters positionally, in the signature's order
        run = dict(zip(PIPELINE_PARAMETERS, values, strict=True))
        knobs = {name: run[name] for name in RUN_PARAMETERS}
        # Phases in pipeline/nodes.py's order; each takes the span, the one before's output and the run
        # parameters, as far as its inputs name them.
        first, *rest = PHASES
        span = _configure(
            phases[first](
                config_yaml=frozen,
                night=run[NIGHT],
                schedule_time=dsl.PIPELINE_JOB_SCHEDULE_TIME_UTC_PLACEHOLDER,
            ),
            config,
            first,
        ).output
        previous = None
        for phase in rest:
            takes = set(phases[phase].component_spec.inputs)
            arguments = {
                "config_yaml": frozen,
                "span": span,
                **{k: v for k, v in knobs.items() if k in takes},
            }
            if "previous" in takes:
                arguments["previous"] = previous
            previous = _configure(phases[phase](**arguments), config, phase).output

    # The signature KFP reads: the run parameters, typed and defaulted from the config (their one list is
    # pipeline/kubeflow/params.py). The phase components above name them too, because KFP ships their
    # source; tests/unit/test_kubeflow_compile.py holds the two lists equal.
    defaults = {NIGHT: "", **params_defaults(config)}
    nightly.__signature__ = inspect.Signature(
        [
            inspect.Parameter(
                name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=defaults[name], annotation=kind
            )
            for name, kind in PIPELINE_PARAMETERS.items()
        ]
    )
    return dsl.pipeline(
        name=config.pipeline_name, description="recpipe nightly: click logs -> gated NeuMF -> TF Serving"
    )(nightly)


def compile_pipeline(config: RecpipeConfig, output: str | Path) -> Path:
    output = Path(output)
    if output.suffix not in (".yaml", ".yml"):
        raise ValueError(f"{output}: the kfp client accepts .yaml/.yml pipeline files; use a .yaml name")
    output.parent.mkdir(parents=True, exist_ok=True)
    compiler.Compiler().compile(build_pipeline(config), str(output))
    return output
