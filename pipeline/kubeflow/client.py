"""Submit, schedule and list runs on a KFP v2 API server, through the kfp SDK's own client.

Before the kfp client is built, one plain GET of /apis/v2beta1/healthz turns the usual failures into a
one-line reason: an unreachable host, refused credentials. (The kfp client itself retries health checks
with sleeps and then raises a generic error.) The bearer token comes from an env var, is sent only as an
Authorization header, and is never printed, logged or written into a spec.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from pipeline.config import RecpipeConfig, check_kfp_cron
from pipeline.kubeflow.params import PIPELINE_PARAMETERS


class KfpError(RuntimeError):
    """A KFP call that failed; the message says which host and what to do."""


def parse_params(pairs: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """`k=v` strings -> typed run parameters; unknown names and bad values are refused by name."""
    params: dict[str, Any] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise KfpError(f"--param {pair!r} must look like name=value")
        if name not in PIPELINE_PARAMETERS:
            raise KfpError(
                f"unknown run parameter {name!r}; the pipeline takes {sorted(PIPELINE_PARAMETERS)}"
            )
        try:
            params[name] = PIPELINE_PARAMETERS[name](value)
        except ValueError:
            raise KfpError(
                f"run parameter {name}={value!r} is not a {PIPELINE_PARAMETERS[name].__name__}"
            ) from None
    return params


@dataclass
class Kfp:
    client: Any
    host: str
    namespace: str


def connect(config: RecpipeConfig, host: str | None = None, timeout_s: float = 10.0) -> Kfp:
    host = (host or config.kubeflow.host or os.environ.get("KF_PIPELINES_ENDPOINT") or "").rstrip("/")
    if not host:
        raise KfpError(
            "no KFP host: pass --host, set kubeflow.host in the config, or env KF_PIPELINES_ENDPOINT"
        )
    token = os.environ.get(config.kubeflow.token_env) or None
    request = urllib.request.Request(f"{host}/apis/v2beta1/healthz")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        urllib.request.urlopen(request, timeout=timeout_s).close()
    except urllib.error.HTTPError as err:
        if err.code in (401, 403):
            hint = (
                f"set {config.kubeflow.token_env} to a valid token"
                if not token
                else f"the token in {config.kubeflow.token_env} was refused; get a fresh one"
            )
            raise KfpError(f"KFP at {host} refused the request (HTTP {err.code}): {hint}") from None
        raise KfpError(f"KFP at {host} answered its health check with HTTP {err.code}") from None
    except (urllib.error.URLError, OSError) as err:
        raise KfpError(f"cannot reach KFP at {host}: {getattr(err, 'reason', err)}") from None

    import kfp

    client = kfp.Client(host=host, existing_token=token, namespace=config.kubeflow.namespace)
    return Kfp(client, host, config.kubeflow.namespace)


def _experiment(kfp_: Kfp, name: str, create: bool):
    try:
        return kfp_.client.get_experiment(experiment_name=name, namespace=kfp_.namespace)
    except ValueError as err:
        if not str(err).startswith("No experiment is found"):
            raise
    if not create:
        raise KfpError(f"experiment {name!r} not found in namespace {kfp_.namespace} on {kfp_.host}")
    return kfp_.client.create_experiment(name=name, namespace=kfp_.namespace)


def _api_call(kfp_: Kfp, what: str, fn, *args, **kwargs):
    import kfp_server_api

    try:
        return fn(*args, **kwargs)
    except kfp_server_api.ApiException as err:
        raise KfpError(
            f"KFP at {kfp_.host} refused to {what}: HTTP {err.status} {err.reason}: {(err.body or '')[:300]}"
        ) from None


def _job(kfp_: Kfp, config: RecpipeConfig, package: str, params: dict[str, Any], name: str) -> dict[str, Any]:
    """What a run and a schedule share: the experiment (created if missing), the spec, the parameters."""
    experiment = _api_call(
        kfp_, "find or create the experiment", _experiment, kfp_, config.kubeflow.experiment, True
    )
    return dict(
        experiment_id=experiment.experiment_id,
        job_name=name,
        pipeline_package_path=package,
        params=params,
        pipeline_root=config.kubeflow.pipeline_root,
        enable_caching=False,
        service_account=config.kubeflow.service_account,
    )


def submit(kfp_: Kfp, config: RecpipeConfig, package: str, params: dict[str, Any], run_name: str):
    return _api_call(
        kfp_, "create the run", kfp_.client.run_pipeline, **_job(kfp_, config, package, params, run_name)
    )


def schedule(
    kfp_: Kfp, config: RecpipeConfig, package: str, params: dict[str, Any], name: str, cron: str | None = None
) -> tuple[Any, list[str]]:
    """Create the nightly recurring run; an existing schedule of the same name is replaced, not doubled.

    KFP v2 has no update call for recurring runs, so "update" is delete-then-create.
    """
    try:
        cron = check_kfp_cron(cron or config.kubeflow.schedule_cron)
    except ValueError as err:
        raise KfpError(str(err)) from None
    job = _job(kfp_, config, package, params, name)
    existing = (
        _api_call(
            kfp_,
            "list recurring runs",
            kfp_.client.list_recurring_runs,
            experiment_id=job["experiment_id"],
            page_size=100,
        ).recurring_runs
        or []
    )
    replaced = [r.recurring_run_id for r in existing if r.display_name == name]
    for recurring_run_id in replaced:
        _api_call(kfp_, "delete the old schedule", kfp_.client.delete_recurring_run, recurring_run_id)
    created = _api_call(
        kfp_,
        "create the schedule",
        kfp_.client.create_recurring_run,
        cron_expression=cron,
        max_concurrency=1,
        no_catchup=True,
        **job,
    )
    return created, replaced


def recent_runs(kfp_: Kfp, config: RecpipeConfig, limit: int) -> list[Any]:
    experiment = _api_call(kfp_, "find the experiment", _experiment, kfp_, config.kubeflow.experiment, False)
    response = _api_call(
        kfp_,
        "list runs",
        kfp_.client.list_runs,
        experiment_id=experiment.experiment_id,
        page_size=limit,
        sort_by="created_at desc",
    )
    return response.runs or []
