"""Runs a TrainJob as a Kubeflow TFJob (Training Operator, kubeflow.org/v1) and waits for it.

The Trainer step of the Kubeflow phase does not train itself: it writes the job next to the model run
(shared storage), creates a TFJob whose N worker pods run `python -m components.launch.local --job ...`
in our image (the operator sets each pod's TF_CONFIG), polls the job's conditions, and fails the step
with the job's own reason if the job fails. Restarts of failed workers are the operator's
(restartPolicy OnFailure, backoffLimit = trainer.max_restarts); BackupAndRestore makes them resume.
"""

from __future__ import annotations

import hashlib
import json
import os
import ssl
import time
import urllib.error
import urllib.request
from typing import Any

from components.model.training import TrainJob

SERVICE_ACCOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"


class TFJobFailed(RuntimeError):
    """The TFJob failed, timed out, or could not be created; the message says which and why."""


def tfjob_name(job: TrainJob) -> str:
    # Stable per model run: a retried Trainer step finds its own job instead of starting a second one.
    return "recpipe-train-" + hashlib.sha1(job.model_run_dir.encode()).hexdigest()[:12]


def tfjob_body(
    name: str,
    namespace: str,
    image: str,
    workers: int,
    job_uri: str,
    cpu: str,
    memory: str,
    max_restarts: int,
) -> dict[str, Any]:
    container = {
        "name": "tensorflow",  # the container name the Training Operator expects
        "image": image,
        "command": ["python", "-m", "components.launch.local", "--job", job_uri],
        "env": [{"name": "PYTHONUNBUFFERED", "value": "1"}],
        "resources": {"requests": {"cpu": cpu, "memory": memory}, "limits": {"cpu": cpu, "memory": memory}},
    }
    return {
        "apiVersion": "kubeflow.org/v1",
        "kind": "TFJob",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/part-of": "recpipe"},
        },
        "spec": {
            "runPolicy": {"backoffLimit": max_restarts, "cleanPodPolicy": "Running"},
            "tfReplicaSpecs": {
                "Worker": {
                    "replicas": workers,
                    "restartPolicy": "OnFailure",
                    "template": {"spec": {"containers": [container]}},
                }
            },
        },
    }


class _KubeApi:
    def __init__(self, host: str, token: str | None):
        self.host = host.rstrip("/")
        self.token = token
        ca = os.path.join(SERVICE_ACCOUNT, "ca.crt")
        self.context = ssl.create_default_context(cafile=ca) if os.path.exists(ca) else None

    def call(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        request = urllib.request.Request(
            f"{self.host}{path}",
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=30, context=self.context) as response:
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as err:
            try:
                payload = json.loads(err.read() or b"{}")
            except ValueError:
                payload = {}
            return err.code, payload
        except (urllib.error.URLError, OSError) as err:
            raise TFJobFailed(
                f"cannot reach the Kubernetes API at {self.host}: {getattr(err, 'reason', err)}"
            ) from None


def _token(token_env: str) -> str | None:
    if os.environ.get(token_env):
        return os.environ[token_env]
    path = os.path.join(SERVICE_ACCOUNT, "token")
    return open(path).read().strip() if os.path.exists(path) else None


def _condition(status: dict) -> tuple[str | None, str]:
    """('Succeeded' | 'Failed' | None, reason) from a TFJob's status conditions."""
    for condition in reversed(status.get("conditions") or []):
        if condition.get("status") == "True" and condition.get("type") in ("Succeeded", "Failed"):
            return condition["type"], f"{condition.get('reason', '')}: {condition.get('message', '')}".strip(
                ": "
            )
    return None, ""


def launch_tfjob(job: TrainJob, workers: int, cfg: dict[str, Any]) -> dict:
    """Create the TFJob (or find the one this model run already created) and wait for its outcome."""
    import tensorflow as tf

    settings = cfg["tfjob"]
    image = settings.get("image") or cfg.get("image")
    if not image:
        raise TFJobFailed("no image for the TFJob workers: set trainer.tfjob.image or kubeflow.image")
    job_uri = os.path.join(job.model_run_dir, "tfjob", "job.json")
    tf.io.gfile.makedirs(os.path.dirname(job_uri))
    with tf.io.gfile.GFile(job_uri, "w") as f:
        f.write(job.to_json())

    api = _KubeApi(settings["api_host"], _token(settings["token_env"]))
    name, namespace = tfjob_name(job), settings["namespace"]
    collection = f"/apis/kubeflow.org/v1/namespaces/{namespace}/tfjobs"
    body = tfjob_body(
        name,
        namespace,
        image,
        workers,
        job_uri,
        settings["cpu"],
        settings["memory"],
        int(cfg["max_restarts"]),
    )
    code, answer = api.call("POST", collection, body)
    if code in (401, 403):
        raise TFJobFailed(
            f"the Kubernetes API refused to create TFJob {name} (HTTP {code}): "
            f"give the pod's service account 'create' on tfjobs.kubeflow.org in {namespace}"
        )
    if code == 404:
        raise TFJobFailed(
            f"no TFJob resource at {api.host}{collection} (HTTP 404): is the Kubeflow Training "
            "Operator installed?"
        )
    if code not in (200, 201, 409):  # 409: this model run's job exists already (the step was retried)
        raise TFJobFailed(f"creating TFJob {name} failed: HTTP {code} {answer.get('message', answer)}")

    deadline = time.time() + float(settings["timeout_s"])
    while time.time() < deadline:
        code, current = api.call("GET", f"{collection}/{name}")
        if code != 200:
            raise TFJobFailed(f"reading TFJob {name} failed: HTTP {code} {current.get('message', current)}")
        outcome, reason = _condition(current.get("status") or {})
        if outcome == "Succeeded":
            return current
        if outcome == "Failed":
            raise TFJobFailed(
                f"TFJob {namespace}/{name} failed: {reason} "
                f"(kubectl -n {namespace} logs -l training.kubeflow.org/job-name={name})"
            )
        time.sleep(float(settings["poll_s"]))
    raise TFJobFailed(f"TFJob {namespace}/{name} did not finish within {settings['timeout_s']:.0f}s")
