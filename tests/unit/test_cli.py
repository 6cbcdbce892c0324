"""The recpipe CLI: help, data commands, and one-line reasons with a non-zero exit on bad input."""

import pytest
import yaml
from click.testing import CliRunner
from conftest import make_config

from pipeline.cli import main as cli
from pipeline.data.clicklog import list_spans


@pytest.fixture
def run_cli():
    def invoke(*args):
        return CliRunner().invoke(cli, [str(a) for a in args])

    return invoke


def test_help_lists_every_command(run_cli):
    result = run_cli("--help")
    assert result.exit_code == 0
    for command in ("generate", "import-movielens", "run", "schema"):
        assert command in result.output


def test_generate_then_refuse_to_overwrite(run_cli, tmp_path):
    out = tmp_path / "log"
    result = run_cli("generate", "--out", out, "--days", 2, "--events-per-day", 300, "--seed", 4)
    assert result.exit_code == 0, result.output
    assert "wrote 600 events in 2 spans" in result.output
    assert list_spans(out) == [20240101, 20240102]
    again = run_cli("generate", "--out", out, "--days", 1, "--events-per-day", 10)
    assert again.exit_code == 1 and "already holds shards" in again.output


def test_import_movielens_reports_counts(run_cli, tmp_path):
    (tmp_path / "u.data").write_text("1\t10\t5\t1520000000\n2\t10\t1\t1520000100\n")
    result = run_cli("import-movielens", tmp_path / "u.data", "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert "wrote 2 impressions (1 clicks) in 1 spans" in result.output


def test_run_with_a_bad_config_key_names_it(run_cli, tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("trainer:\n  epocs: 3\n")
    result = run_cli("run", "--config", config)
    assert result.exit_code == 1
    assert "trainer.epocs: unknown key" in result.output


def _write_config(tmp_path, data_root):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(make_config(tmp_path, data_root).model_dump()))
    return path


def test_run_without_data_says_how_to_make_some(run_cli, tmp_path):
    (tmp_path / "empty").mkdir()
    result = run_cli("run", "--config", _write_config(tmp_path, tmp_path / "empty"))
    assert result.exit_code == 3, "bad input"
    assert "no click-log spans under" in result.output and "recpipe generate" in result.output


def test_run_on_a_missing_span_lists_what_exists(run_cli, tmp_path):
    run_cli("generate", "--out", tmp_path / "log", "--days", 2, "--events-per-day", 50)
    result = run_cli("run", "--config", _write_config(tmp_path, tmp_path / "log"), "--span", "20991231")
    assert result.exit_code == 3, "bad input"
    assert "span 20991231 not found" in result.output and "20240101 .. 20240102" in result.output


def test_schema_infer_bootstraps_a_schema(run_cli, tmp_path):
    import tensorflow_data_validation as tfdv

    run_cli("generate", "--out", tmp_path / "log", "--days", 1, "--events-per-day", 500)
    result = run_cli("schema", "infer", "--data", tmp_path / "log", "--out", tmp_path / "schema.pbtxt")
    assert result.exit_code == 0, result.output
    schema = tfdv.load_schema_text(str(tmp_path / "schema.pbtxt"))
    assert {f.name for f in schema.feature} >= {"user_id", "item_id", "clicked", "device", "item_price"}


def test_rollback_says_what_it_did(run_cli, tmp_path):
    from components.serving_layout import list_versions

    base = tmp_path / "serving" / "recommender"
    for version in (100, 200):
        (base / str(version)).mkdir(parents=True)
        (base / str(version) / "saved_model.pb").write_bytes(b"x")
    config = _write_config(tmp_path, tmp_path / "data")
    result = run_cli("rollback", "--config", config)
    assert result.exit_code == 0, result.output
    assert "now serving version 100; retired 200" in result.output
    assert list_versions(base) == [100]
    again = run_cli("rollback", "--config", config)
    assert again.exit_code == 1 and "nothing older to roll back to" in again.output


def _silent_server():
    """Accepts connections and never answers."""
    import socket
    import threading

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    held = []
    threading.Thread(target=lambda: held.append(listener.accept()), daemon=True).start()
    return listener, held, f"http://127.0.0.1:{listener.getsockname()[1]}"  # held: the open connection


def test_an_endpoint_that_never_answers_is_one_line_and_exit_1(run_cli, monkeypatch):
    from pipeline import serving_client as serving

    monkeypatch.setattr(
        serving.RestModel.__init__, "__defaults__", (2.0,)
    )  # the wait, shortened for the test
    listener, _held, endpoint = _silent_server()
    try:
        result = run_cli("recommend", "--endpoint", endpoint, "--user", "u1")
    finally:
        listener.close()
    assert result.exit_code == 1
    assert "did not answer within 2 s" in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output


def test_an_endpoint_answering_something_that_is_not_json_is_one_line_and_exit_1(run_cli):
    from http.server import BaseHTTPRequestHandler

    from helpers import serve_in_thread

    class NotTFServing(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's name
            body = b"<html>login required</html>"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server, endpoint = serve_in_thread(NotTFServing)
    try:
        result = run_cli("predict", "--endpoint", endpoint, "--user", "u1", "--items", "i1")
    finally:
        server.shutdown()
    assert result.exit_code == 1, result.output
    assert "not JSON" in result.output and "<html>login required" in result.output
    assert "Traceback" not in result.output
