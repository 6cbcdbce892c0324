"""Shared fixtures. TF_USE_LEGACY_KERAS must be set before anything imports TensorFlow."""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
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
