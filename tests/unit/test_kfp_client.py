"""submit / schedule / runs through the kfp 2.5 client against a local server playing the KFP v2beta1
REST API: the request bodies, the schedule's idempotency, and a clear message for each failure."""

import json
import uuid
from urllib.parse import parse_qs, urlparse

import pytest
from click.testing import CliRunner
from helpers import JsonHandler, serve_in_thread

from pipeline.cli import main as cli

TOKEN = "tok-" + uuid.uuid4().hex


class FakeKfp:
    """Just enough of KFP's v2beta1 API for the kfp client's calls; records every request."""

    def __init__(self, require_token: str | None = TOKEN):
        self.require_token = require_token
        self.requests: list[tuple[str, str, dict, dict]] = []
        self.experiments: dict[str, dict] = {}
        self.runs: list[dict] = []
        self.recurring: dict[str, dict] = {}
        fake = self

        class Handler(JsonHandler):
            def _handle(self, method):
                url = urlparse(self.path)
                body = self.read_json()
                fake.requests.append(
                    (method, url.path, {k: v[0] for k, v in parse_qs(url.query).items()}, body)
                )
                if fake.require_token and self.headers.get("Authorization") != f"Bearer {fake.require_token}":
                    return self.send_json(401, {"error": "Unauthenticated", "code": 16})
                code, payload = fake.route(method, url.path, parse_qs(url.query), body)
                self.send_json(code, payload)

            def do_GET(self):  # noqa: N802
                self._handle("GET")

            def do_POST(self):  # noqa: N802
                self._handle("POST")

            def do_DELETE(self):  # noqa: N802
                self._handle("DELETE")

        self.handler = Handler

    def route(self, method, path, query, body):
        api = "/apis/v2beta1"
        if (method, path) == ("GET", f"{api}/healthz"):
            return 200, {"multi_user": False}
        if (method, path) == ("GET", f"{api}/experiments"):
            wanted = json.loads(query["filter"][0])["predicates"][0]["stringValue"]
            found = [e for e in self.experiments.values() if e["display_name"] == wanted]
            return 200, {"experiments": found, "total_size": len(found)} if found else {}
        if (method, path) == ("POST", f"{api}/experiments"):
            experiment = {**body, "experiment_id": f"exp-{len(self.experiments) + 1}"}
            self.experiments[experiment["experiment_id"]] = experiment
            return 200, experiment
        if (method, path) == ("POST", f"{api}/runs"):
            run = {
                **body,
                "run_id": f"run-{len(self.runs) + 1}",
                "state": "PENDING",
                "created_at": "2026-11-22T02:00:00Z",
            }
            self.runs.append(run)
            return 200, {k: v for k, v in run.items() if k != "pipeline_spec"}
        if (method, path) == ("GET", f"{api}/runs"):
            runs = [
                {k: v for k, v in r.items() if k != "pipeline_spec"}
                for r in self.runs
                if r["experiment_id"] == query["experiment_id"][0]
            ]
            return 200, {"runs": runs[::-1], "total_size": len(runs)}
        if (method, path) == ("POST", f"{api}/recurringruns"):
            recurring = {**body, "recurring_run_id": f"rr-{uuid.uuid4().hex[:8]}"}
            self.recurring[recurring["recurring_run_id"]] = recurring
            return 200, {k: v for k, v in recurring.items() if k != "pipeline_spec"}
        if (method, path) == ("GET", f"{api}/recurringruns"):
            found = [
                {k: v for k, v in r.items() if k != "pipeline_spec"}
                for r in self.recurring.values()
                if r["experiment_id"] == query["experiment_id"][0]
            ]
            return 200, {"recurringRuns": found, "total_size": len(found)}
        if method == "DELETE" and path.startswith(f"{api}/recurringruns/"):
            self.recurring.pop(path.rsplit("/", 1)[1])
            return 200, {}
        return 404, {"error": f"no route {method} {path}"}

    def __enter__(self):
        self.server, self.host = serve_in_thread(self.handler)
        return self

    def __exit__(self, *exc):
        self.server.shutdown()


@pytest.fixture
def kfp_server():
    with FakeKfp() as server:
        yield server


@pytest.fixture
def package(tmp_path_factory, repo):
    from pipeline.config import load_config
    from pipeline.kubeflow.dsl import compile_pipeline

    return str(
        compile_pipeline(
            load_config(repo / "configs" / "kubeflow.yaml"), tmp_path_factory.mktemp("p") / "p.yaml"
        )
    )


def _cli(*args, token=TOKEN):
    env = {"KFP_TOKEN": token} if token else {"KFP_TOKEN": ""}
    return CliRunner(mix_stderr=False).invoke(cli, [str(a) for a in args], env=env)


def test_submit_creates_the_experiment_and_a_run_with_the_spec_and_parameters(kfp_server, package):
    result = _cli(
        "submit",
        "--host",
        kfp_server.host,
        "--package",
        package,
        "--param",
        "night=20240102",
        "--param",
        "epochs=2",
        "--run-name",
        "manual night",
    )
    assert result.exit_code == 0, result.stderr
    assert "submitted run run-1 (manual night)" in result.stdout
    (experiment,) = kfp_server.experiments.values()
    assert experiment["display_name"] == "recpipe-nightly" and experiment["namespace"] == "kubeflow"
    (run,) = kfp_server.runs
    assert run["display_name"] == "manual night" and run["experiment_id"] == experiment["experiment_id"]
    # With a platform spec (the MLMD secret) the client nests both, as the KFP backend expects.
    assert run["pipeline_spec"]["pipeline_spec"]["pipelineInfo"]["name"] == "recpipe-nightly"
    executors = run["pipeline_spec"]["platform_spec"]["platforms"]["kubernetes"]["deploymentSpec"][
        "executors"
    ]
    secrets = executors["exec-train-evaluate"]["secretAsEnv"]
    assert [s["secretName"] for s in secrets] == ["recpipe-mlmd", "mlpipeline-minio-artifact"]
    assert run["runtime_config"]["parameters"] == {"night": "20240102", "epochs": 2}
    assert run["runtime_config"]["pipeline_root"] == "s3://mlpipeline/recpipe/kfp-root"
    assert TOKEN not in result.stdout + result.stderr


def test_schedule_sends_a_six_field_cron_one_at_a_time_no_catchup_and_is_idempotent(kfp_server, package):
    first = _cli("schedule", "--host", kfp_server.host, "--package", package)
    assert first.exit_code == 0, first.stderr
    assert "created" in first.stdout
    (schedule,) = kfp_server.recurring.values()
    assert schedule["trigger"]["cron_schedule"]["cron"] == "0 0 2 * * *"
    assert (
        int(schedule["max_concurrency"]) == 1
        and schedule["no_catchup"] is True
        and schedule["mode"] == "ENABLE"
    )
    assert schedule["display_name"] == "recpipe-nightly nightly"
    assert schedule["pipeline_spec"]["pipeline_spec"]["root"]["dag"]["tasks"]["resolve-night"]

    again = _cli("schedule", "--host", kfp_server.host, "--package", package, "--cron", "0 30 3 * * *")
    assert again.exit_code == 0, again.stderr
    assert f"updated (replaced {schedule['recurring_run_id']})" in again.stdout
    (updated,) = kfp_server.recurring.values()  # still exactly one schedule
    assert updated["trigger"]["cron_schedule"]["cron"] == "0 30 3 * * *"


def test_a_five_field_cron_is_refused_before_any_request(kfp_server, package):
    result = _cli("schedule", "--host", kfp_server.host, "--package", package, "--cron", "0 2 * * *")
    assert result.exit_code == 1
    assert "6 fields, seconds first" in result.stderr and "every minute" in result.stderr
    assert not kfp_server.recurring


def test_runs_lists_recent_runs_with_state(kfp_server, package):
    _cli("submit", "--host", kfp_server.host, "--package", package, "--run-name", "night A")
    result = _cli("runs", "--host", kfp_server.host)
    assert result.exit_code == 0, result.stderr
    assert "night A" in result.stdout and "PENDING" in result.stdout and "run-1" in result.stdout
    _, path, query, _ = kfp_server.requests[-1]
    assert path == "/apis/v2beta1/runs" and query["sort_by"] == "created_at desc"


def test_unreachable_host_401_unknown_experiment_and_bad_params_fail_clearly(kfp_server, package):
    unreachable = _cli("submit", "--host", "http://127.0.0.1:9", "--package", package)
    assert unreachable.exit_code == 1 and "cannot reach KFP at http://127.0.0.1:9" in unreachable.stderr

    no_token = _cli("submit", "--host", kfp_server.host, "--package", package, token=None)
    assert no_token.exit_code == 1 and "HTTP 401" in no_token.stderr and "set KFP_TOKEN" in no_token.stderr

    wrong_token = _cli("runs", "--host", kfp_server.host, token="not-it")
    assert (
        wrong_token.exit_code == 1
        and "was refused" in wrong_token.stderr
        and "not-it" not in wrong_token.stderr
    )

    unknown = _cli("runs", "--host", kfp_server.host)
    assert unknown.exit_code == 1 and "experiment 'recpipe-nightly' not found" in unknown.stderr

    bad = _cli("submit", "--host", kfp_server.host, "--package", package, "--param", "colour=red")
    assert bad.exit_code == 1 and "unknown run parameter 'colour'" in bad.stderr
    assert not kfp_server.runs


def test_the_kfp_token_never_reaches_output_or_logs(kfp_server, package, caplog):
    import logging

    caplog.set_level(logging.DEBUG)
    results = [
        _cli("submit", "--host", kfp_server.host, "--package", package),
        _cli("schedule", "--host", kfp_server.host, "--package", package),
        _cli("runs", "--host", kfp_server.host),
    ]
    assert all(r.exit_code == 0 for r in results), [r.stderr for r in results]
    assert kfp_server.runs, "the requests did authenticate with the token"
    for result in results:
        assert TOKEN not in result.stdout + result.stderr
    assert TOKEN not in caplog.text
