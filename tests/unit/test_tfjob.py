"""The TFJob launcher against a local server playing the Kubernetes API: the TFJob body, polling,
success, failure with the job's own reason, a retried step finding its job, refused credentials."""

import pytest
from helpers import JsonHandler, serve_in_thread

from components.launch.tfjob import TFJobFailed, launch_tfjob, tfjob_name
from components.model.training import TrainJob

TOKEN = "k8s-token-for-tests"


class FakeKubernetes:
    def __init__(
        self,
        outcome=("Succeeded", "TFJobSucceeded", "TFJob recpipe successfully completed."),
        create_code=201,
        running_polls=2,
    ):
        self.outcome, self.create_code, self.running_polls = outcome, create_code, running_polls
        self.created: list[dict] = []
        self.gets = 0
        fake = self

        class Handler(JsonHandler):
            def do_POST(self):  # noqa: N802
                if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    return self.send_json(401, {"kind": "Status", "message": "Unauthorized"})
                body = self.read_json()
                assert self.path == f"/apis/kubeflow.org/v1/namespaces/{body['metadata']['namespace']}/tfjobs"
                fake.created.append(body)
                self.send_json(fake.create_code, body)

            def do_GET(self):  # noqa: N802
                fake.gets += 1
                conditions = [{"type": "Created", "status": "True"}, {"type": "Running", "status": "True"}]
                if fake.gets > fake.running_polls:
                    kind, reason, message = fake.outcome
                    conditions.append({"type": kind, "status": "True", "reason": reason, "message": message})
                self.send_json(200, {"kind": "TFJob", "status": {"conditions": conditions}})

        self.server, self.host = serve_in_thread(Handler)


@pytest.fixture
def job(tmp_path):
    return TrainJob(
        train_files=["/data/train/*"],
        eval_files=["/data/eval/*"],
        transform_output="/tg",
        serving_model_dir=str(tmp_path / "model"),
        model_run_dir=str(tmp_path / "run"),
        custom_config={},
    )


def _cfg(host, **tfjob):
    return {
        "max_restarts": 3,
        "image": "registry/recpipe:1",
        "tfjob": {
            "api_host": host,
            "token_env": "K8S_TOKEN",
            "namespace": "team-a",
            "image": None,
            "cpu": "4",
            "memory": "16G",
            "poll_s": 0.01,
            "timeout_s": 30.0,
            **tfjob,
        },
    }


def test_creates_the_tfjob_and_waits_for_success(job, monkeypatch):
    monkeypatch.setenv("K8S_TOKEN", TOKEN)
    k8s = FakeKubernetes()
    launch_tfjob(job, 3, _cfg(k8s.host))
    (body,) = k8s.created
    assert body["apiVersion"] == "kubeflow.org/v1" and body["kind"] == "TFJob"
    assert body["metadata"] == {
        "name": tfjob_name(job),
        "namespace": "team-a",
        "labels": {"app.kubernetes.io/part-of": "recpipe"},
    }
    assert body["spec"]["runPolicy"]["backoffLimit"] == 3
    worker = body["spec"]["tfReplicaSpecs"]["Worker"]
    assert worker["replicas"] == 3 and worker["restartPolicy"] == "OnFailure"
    (container,) = worker["template"]["spec"]["containers"]
    assert container["name"] == "tensorflow" and container["image"] == "registry/recpipe:1"
    job_uri = f"{job.model_run_dir}/tfjob/job.json"
    assert container["command"] == ["python", "-m", "components.launch.local", "--job", job_uri]
    assert container["resources"]["limits"] == {"cpu": "4", "memory": "16G"}
    assert TrainJob.from_json(open(job_uri).read()) == job, "the workers read exactly this job"
    assert k8s.gets == 3, "polled until the Succeeded condition"


def test_a_failed_job_fails_the_step_with_its_reason(job, monkeypatch):
    monkeypatch.setenv("K8S_TOKEN", TOKEN)
    k8s = FakeKubernetes(outcome=("Failed", "BackoffLimitExceeded", "worker-1 exited with code 137"))
    with pytest.raises(TFJobFailed, match="failed: BackoffLimitExceeded: worker-1 exited with code 137"):
        launch_tfjob(job, 2, _cfg(k8s.host))


def test_a_retried_step_finds_its_existing_job(job, monkeypatch):
    monkeypatch.setenv("K8S_TOKEN", TOKEN)
    k8s = FakeKubernetes(create_code=409)
    launch_tfjob(job, 2, _cfg(k8s.host))
    assert k8s.gets == 3


def test_refused_credentials_and_timeouts_are_named(job, monkeypatch):
    monkeypatch.setenv("K8S_TOKEN", "wrong")
    with pytest.raises(TFJobFailed, match=r"refused to create TFJob .*\(HTTP 401\)"):
        launch_tfjob(job, 2, _cfg(FakeKubernetes().host))
    monkeypatch.setenv("K8S_TOKEN", TOKEN)
    with pytest.raises(TFJobFailed, match="did not finish within"):
        launch_tfjob(job, 2, _cfg(FakeKubernetes(running_polls=10**6).host, timeout_s=0.2))
    with pytest.raises(TFJobFailed, match="cannot reach the Kubernetes API"):
        launch_tfjob(job, 2, _cfg("http://127.0.0.1:9"))


def test_the_kubernetes_token_goes_only_into_the_authorization_header(job, monkeypatch, caplog):
    import json
    import logging
    from pathlib import Path

    monkeypatch.setenv("K8S_TOKEN", TOKEN)
    caplog.set_level(logging.DEBUG)
    k8s = FakeKubernetes()
    launch_tfjob(job, 2, _cfg(k8s.host))
    assert TOKEN not in json.dumps(k8s.created), "not in the TFJob the cluster stores"
    assert TOKEN not in (Path(job.model_run_dir) / "tfjob" / "job.json").read_text(), (
        "not in the workers' job"
    )
    assert TOKEN not in caplog.text, "not in the logs"
