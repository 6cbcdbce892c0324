"""Which span a Kubeflow run processes, and the phase table. The phases themselves run for real, on MySQL
and object storage, in tests/e2e/test_kubeflow_real.py."""

import pytest
from conftest import make_config

from pipeline.data.synthetic import SyntheticSpec, generate
from pipeline.kubeflow.phases import NightError, resolve_night


@pytest.fixture(scope="module")
def night_config(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("kfp-phases")
    generate(tmp / "clicklog", SyntheticSpec(days=2, events_per_day=3000, seed=5, users=300, items=150))
    # max_examples below the day's 3,000 events: train-evaluate also runs EvalSample, as a large night would.
    return make_config(tmp, tmp / "clicklog", **{"window.spans": 1, "evaluation.max_examples": 2000}), tmp


def test_night_resolution(night_config):
    config, _ = night_config
    assert resolve_night(config, "", "2024-01-03T02:00:00Z") == 20240102, "02:00 run processes yesterday"
    assert resolve_night(config, "2024-01-01", "2024-01-03T02:00:00Z") == 20240101, "the parameter wins"
    assert resolve_night(config, "", "") == 20240102, "a one-off run without a night takes the newest span"
    with pytest.raises(NightError, match="maps to span 20240110, which does not exist.*newest: 20240102"):
        resolve_night(config, "", "2024-01-11T02:00:00Z")
    with pytest.raises(NightError, match="not a date"):
        resolve_night(config, "yesterday", "")


def test_every_phase_with_nodes_is_a_slice_of_the_one_night():
    from pipeline.nodes import PHASES

    slices = [nodes for nodes in PHASES.values() if nodes]
    assert slices[0].starts_night and not any(n.starts_night for n in slices[1:]), "one slice plans the night"
    assert slices[-1].ends_night and not any(n.ends_night for n in slices[:-1]), "one slice records it"
    assert list(PHASES)[0] == "resolve-night" and list(PHASES)[-1] == "report"
