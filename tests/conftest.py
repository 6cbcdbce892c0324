"""Shared fixtures. `components` is imported first: it sets TF_USE_LEGACY_KERAS before TensorFlow loads."""

import os

import components  # noqa: F401, I001  (before anything imports TensorFlow)

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


def make_config(tmp: Path, data_root: Path, **overrides):
    """configs/test.yaml with every path under tmp (and the repo's curated schema)."""
    from pipeline.config import load_config

    config = load_config(REPO / "configs" / "test.yaml").with_overrides(
        run_root=str(tmp / "run"),
        schema_dir=str(REPO / "schema"),
        **{"data.root": str(data_root), "serving.root": str(tmp / "serving")},
    )
    return config.with_overrides(**overrides) if overrides else config


@pytest.fixture(scope="session")
def mysql_server():
    """A private MariaDB for the session (tests/services.py)."""
    from services import start_mariadb

    yield from start_mariadb()


@pytest.fixture(scope="session")
def s3_endpoint():
    """A private S3 server for the session, bucket `mlpipeline` (tests/services.py)."""
    from services import start_s3

    yield from start_s3()


@pytest.fixture
def s3_root(s3_endpoint, request):
    """A fresh s3:// prefix for one test."""
    import secrets

    return f"s3://mlpipeline/tests/{request.node.name[:40]}-{secrets.token_hex(3)}"


@pytest.fixture(params=["local", "s3"])
def any_root(request, tmp_path):
    """The same test on a local folder and on the S3 server: code on a root never assumes a local path."""
    if request.param == "local":
        return str(tmp_path / "root")
    return request.getfixturevalue("s3_root")


FAIL_ON_SKIP = "RECPIPE_FAIL_ON_SKIP"  # .ci/run sets it: in CI a missing tool fails the run, it never skips
_skipped: list[str] = []


def pytest_runtest_logreport(report):
    if report.skipped and not hasattr(report, "wasxfail"):
        _skipped.append(
            f"{report.nodeid}: {report.longrepr[-1] if isinstance(report.longrepr, tuple) else ''}"
        )


def pytest_sessionfinish(session, exitstatus):
    """A process that loaded TensorFlow's S3 plugin ends through os._exit (components/storage.py):
    it must end with pytest's own status. Under FAIL_ON_SKIP a skipped test turns that status into a
    failure, so CI cannot pass with a test it never ran."""
    from components import storage

    if os.environ.get(FAIL_ON_SKIP) and _skipped and exitstatus == 0:
        print(f"\n{FAIL_ON_SKIP} is set and {len(_skipped)} test(s) skipped; install what they need:")
        print("\n".join(_skipped))
        exitstatus = session.exitstatus = pytest.ExitCode.TESTS_FAILED
    storage.set_exit_code(int(exitstatus))


E2E = Path(__file__).resolve().parent / "e2e"


def pytest_collection_modifyitems(items):
    """A test's folder is its tier: everything under tests/e2e/ runs the pipeline and is marked e2e."""
    for item in items:
        if E2E in Path(item.fspath).parents:
            item.add_marker(pytest.mark.e2e)
