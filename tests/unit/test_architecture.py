"""The layout's promises: no import loops, lazy imports only where they keep TensorFlow out of a fast CLI
path (or ship in a KFP component body), one home for TF_USE_LEGACY_KERAS, and a cache key that changes
with the model code and model settings and nothing else."""

import ast
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, make_config

from pipeline import dag, nodes
from pipeline.plan import Night

PACKAGES = ("pipeline", "components", "bench")
LAZY_REASONS = ("lazy:", "KFP ships the body alone")


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (REPO / package).rglob("*.py"):
            name = ".".join(path.relative_to(REPO).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


def _imports(path: Path, modules: dict[str, Path]):
    """(imported own module, line, inside a function?) for every import statement of `path`."""
    tree = ast.parse(path.read_text())
    in_function = {
        id(node)
        for fn in ast.walk(tree)
        if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef)
        for node in ast.walk(fn)
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        for name in names:
            if name in modules:
                yield name, node.lineno, id(node) in in_function


def test_there_are_no_import_loops():
    modules = _modules()
    graph = {
        m: {n for n, _, _ in _imports(p, modules) if n != m and not m.startswith(n + ".")}
        for m, p in modules.items()
    }
    # Any cycle shows up as a module reachable from itself.
    for start in graph:
        seen, todo = set(), list(graph[start])
        while todo:
            current = todo.pop()
            assert current != start, f"import loop through {start}"
            if current not in seen:
                seen.add(current)
                todo += graph[current]


def test_an_import_inside_a_function_says_why():
    modules = _modules()
    unexplained = []
    for path in modules.values():
        lines = path.read_text().splitlines()
        for _, line, inside in _imports(path, modules):
            said = lines[line - 1] + (lines[line - 2] if line > 1 else "")
            if inside and not any(reason in said for reason in LAZY_REASONS):
                unexplained.append(f"{path.relative_to(REPO)}:{line}")
    assert not unexplained, f"in-function imports without a reason: {unexplained}"


def test_the_cli_help_does_not_load_tensorflow():
    code = "import sys, pipeline.cli; sys.exit('tensorflow' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO).returncode == 0


def test_tf_use_legacy_keras_is_set_in_one_place():
    variable = "TF_USE_LEGACY" + "_KERAS"  # spelled apart, so this file is not a place that sets it
    files = [REPO / "Makefile", *(p for d in (*PACKAGES, "tests", "kfp") for p in (REPO / d).rglob("*"))]
    places = [
        f"{path.relative_to(REPO)}:{n}"
        for path in files
        if path.is_file() and "__pycache__" not in path.parts
        for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1)
        if variable in line and any(way in line for way in ("environ", "export", "ENV", '"value"', "="))
    ]
    assert places == ["components/__init__.py:12"]


def _cache_inputs(config) -> dict[str, dict]:
    """The exec properties TFX hashes into Transform's and the Trainer's cache keys."""
    built = {c.id: c for c in dag.create_pipeline(config, Night(span=20240101)).components}
    return {node: built[node].exec_properties["custom_config"] for node in (nodes.TRANSFORM, nodes.TRAINER)}


def test_launch_settings_do_not_change_the_cache_key(tmp_path, repo):
    config = make_config(tmp_path, tmp_path / "clicklog")
    elsewhere = config.with_overrides(
        **{
            "trainer.workers": 4,
            "trainer.launcher": "tfjob",
            "trainer.max_restarts": 7,
            "trainer.tfjob.namespace": "other-team",
            "kubeflow.image": "registry.example/recpipe:2",
        }
    )
    assert _cache_inputs(elsewhere) == _cache_inputs(config)
    assert (
        _cache_inputs(config.with_overrides(**{"trainer.gmf_dim": 32}))[nodes.TRAINER]
        != _cache_inputs(config)[nodes.TRAINER]
    )


def test_the_trainer_trains_at_the_planned_learning_rate(tmp_path):
    config = make_config(tmp_path, tmp_path / "clicklog")
    warm = Night(span=20240101, warm_start_from="/served/7", learning_rate=0.0004)
    for night, rate in ((warm, 0.0004), (Night(span=20240101), config.trainer.learning_rate)):
        built = {c.id: c for c in dag.create_pipeline(config, night).components}
        custom = built[nodes.TRAINER].exec_properties["custom_config"]
        assert (json.loads(custom) if isinstance(custom, str) else custom)["learning_rate"] == rate


@pytest.fixture
def code_copy(tmp_path, monkeypatch):
    """A copy of components/ whose model folder the fingerprint reads."""
    copy = tmp_path / "components"
    shutil.copytree(REPO / "components", copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(dag, "MODEL_CODE", copy / "model")
    return copy


@pytest.mark.parametrize(
    "edited",
    [
        "launch/local.py",
        "launch/tfjob.py",
        "launch/trainer.py",
        "serving_layout.py",
        "serving_push.py",
        "anomaly_gate.py",
        "storage.py",
    ],
)
def test_editing_code_outside_the_model_retrains_nothing(code_copy, edited, tmp_path):
    config = make_config(tmp_path, tmp_path / "clicklog")
    before = _cache_inputs(config)
    with open(code_copy / edited, "a") as f:
        f.write("\n# an edit\n")
    assert _cache_inputs(config) == before


@pytest.mark.parametrize("edited", ["model/model.py", "model/transform.py", "model/training.py"])
def test_editing_the_model_code_reruns_transform_and_the_trainer(code_copy, edited, tmp_path):
    config = make_config(tmp_path, tmp_path / "clicklog")
    before = _cache_inputs(config)
    with open(code_copy / edited, "a") as f:
        f.write("\n# an edit\n")
    after = _cache_inputs(config)
    assert after[nodes.TRANSFORM] != before[nodes.TRANSFORM] and after[nodes.TRAINER] != before[nodes.TRAINER]
