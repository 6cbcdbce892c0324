"""Issue 7, security: nothing is deserialized with pickle (or unsafe YAML) from data paths, and the paths a
config names are resolved and checked before a run may write anywhere."""

from __future__ import annotations

import re

import pytest
from conftest import REPO, make_config

from pipeline.errors import InputError
from pipeline.preflight import check_paths

UNSAFE = [
    (r"\bimport pickle\b|\bpickle\.load", "pickle"),
    (r"\bimport dill\b|\bjoblib\.load", "dill/joblib"),
    (r"allow_pickle\s*=\s*True", "numpy allow_pickle"),
    (r"yaml\.load\(|yaml\.unsafe_load|yaml\.full_load", "unsafe YAML"),
    (r"\beval\(|\bexec\(", "eval/exec"),
]


@pytest.mark.parametrize("pattern, what", UNSAFE, ids=[w for _, w in UNSAFE])
def test_no_code_path_deserializes_with_pickle_or_evaluates_text(pattern, what):
    sources = [p for folder in ("pipeline", "components") for p in (REPO / folder).rglob("*.py")]
    assert len(sources) > 20
    offenders = [
        f"{p.relative_to(REPO)}:{n}"
        for p in sources
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if re.search(pattern, line)
    ]
    assert not offenders, f"{what} in {offenders}"


@pytest.mark.parametrize(
    "overrides, words",
    [
        ({"serving.root": "{data}/serving"}, ["data.root", "serving.root", "overlap"]),
        ({"run_root": "{data}"}, ["data.root", "run_root", "overlap"]),
        ({"data.root": "{tmp}/run/pipeline/data"}, ["data.root", "run_root", "overlap"]),
    ],
)
def test_overlapping_data_run_and_serving_folders_are_refused(tmp_path, overrides, words):
    data = tmp_path / "data"
    values = {k: v.format(data=data, tmp=tmp_path) for k, v in overrides.items()}
    config = make_config(tmp_path, data, **values)
    with pytest.raises(InputError) as err:
        check_paths(config)
    assert all(w in str(err.value) for w in words)


def test_separate_folders_pass(tmp_path):
    check_paths(make_config(tmp_path, tmp_path / "data"))
