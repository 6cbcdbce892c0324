"""The TF Serving folder: atomic versions, no duplicate push, pruning, models.config, rollback."""

import os
import shutil
from pathlib import Path

import pytest
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from components import serving_layout
from components.serving_layout import list_versions, push_model, push_record, rollback


def _fake_model(tmp_path: Path, name: str) -> Path:
    model = tmp_path / name
    (model / "variables").mkdir(parents=True)
    (model / "saved_model.pb").write_bytes(os.urandom(64))
    (model / "variables" / "variables.index").write_bytes(os.urandom(32))
    return model


def _push(tmp_path, name, keep=5):
    return push_model(
        _fake_model(tmp_path, name), tmp_path / "serving", "rec", keep, {"model_uri": f"/mlmd/{name}"}
    )


def test_push_creates_a_numbered_version_with_its_record(tmp_path):
    result = _push(tmp_path, "m1")
    assert result.pushed and list_versions(tmp_path / "serving" / "rec") == [result.version]
    version_dir = Path(result.path)
    assert (version_dir / "saved_model.pb").read_bytes() == (tmp_path / "m1" / "saved_model.pb").read_bytes()
    assert push_record(version_dir)["model_uri"] == "/mlmd/m1"
    assert not [p for p in (tmp_path / "serving" / "rec").iterdir() if p.name.startswith(".")]


def test_the_same_model_is_not_pushed_twice_and_versions_increase(tmp_path):
    first = _push(tmp_path, "m1")
    again = push_model(tmp_path / "m1", tmp_path / "serving", "rec", 5, {"model_uri": "/mlmd/m1"})
    assert not again.pushed and "already" in again.reason
    second = _push(tmp_path, "m2")
    assert second.pushed and second.version > first.version


def test_a_push_killed_mid_copy_leaves_no_visible_version(tmp_path, monkeypatch):
    _push(tmp_path, "m1")
    before = list_versions(tmp_path / "serving" / "rec")
    real_copytree = shutil.copytree

    def copy_then_die(src, dst, *args, **kwargs):
        real_copytree(src, dst, *args, **kwargs)
        if Path(dst).name.startswith(".tmp-"):  # the top-level copy finished, the rename has not happened
            raise KeyboardInterrupt("killed during push")

    monkeypatch.setattr(serving_layout.shutil, "copytree", copy_then_die)
    with pytest.raises(KeyboardInterrupt):
        _push(tmp_path, "m2")
    assert list_versions(tmp_path / "serving" / "rec") == before
    assert not [p for p in (tmp_path / "serving" / "rec").iterdir() if p.name.startswith(".tmp")]
    monkeypatch.undo()
    assert _push(tmp_path, "m3").pushed, "the next push works normally"


def test_keeps_the_newest_n_versions(tmp_path):
    pushed = [_push(tmp_path, f"m{i}", keep=2).version for i in range(4)]
    assert list_versions(tmp_path / "serving" / "rec") == pushed[-2:]


def test_models_config_lists_every_model_for_tf_serving(tmp_path):
    _push(tmp_path, "m1")
    push_model(
        _fake_model(tmp_path, "x"),
        tmp_path / "serving",
        "other",
        5,
        {"model_uri": "x"},
        base_path_prefix="/models",
    )
    config = text_format.Parse(
        (tmp_path / "serving" / "models.config").read_text(), model_server_config_pb2.ModelServerConfig()
    )
    entries = {c.name: c for c in config.model_config_list.config}
    assert set(entries) == {"rec", "other"}
    assert entries["other"].base_path == "/models/other" and entries["other"].model_platform == "tensorflow"
    assert entries["rec"].model_version_policy.latest.num_versions == 1


def test_rollback_serves_the_previous_version_and_says_what_moved(tmp_path):
    v1, v2, v3 = (_push(tmp_path, f"m{i}").version for i in range(3))
    served, retired = rollback(tmp_path / "serving", "rec")
    assert (served, retired) == (v2, [v3])
    assert list_versions(tmp_path / "serving" / "rec") == [v1, v2]
    assert (tmp_path / "serving" / ".retired" / "rec" / str(v3) / "saved_model.pb").is_file()
    assert rollback(tmp_path / "serving", "rec", to_version=v1) == (v1, [v2])
    with pytest.raises(ValueError, match="nothing older"):
        rollback(tmp_path / "serving", "rec")
    with pytest.raises(ValueError, match="not found"):
        rollback(tmp_path / "serving", "rec", to_version=123)
    assert _push(tmp_path, "m9").version > v3, "a new push is newer than anything retired"


def test_unwritable_serving_path_is_refused_before_copying(tmp_path):
    # A serving root below a regular file cannot be created, whoever runs this (root included).
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    with pytest.raises(PermissionError, match="not-a-folder/serving is not writable"):
        push_model(_fake_model(tmp_path, "m"), blocker / "serving", "rec", 5, {"model_uri": "m"})


def test_the_shipped_models_config_example_is_what_the_pusher_writes(tmp_path, repo):
    push_model(
        _fake_model(tmp_path, "m"),
        tmp_path / "serving",
        "recommender",
        5,
        {"model_uri": "m"},
        base_path_prefix="gs://your-bucket/serving",
    )
    example = (repo / "kfp" / "serving" / "models.config.example").read_text()
    shipped = "\n".join(line for line in example.splitlines() if not line.startswith("#")).strip()
    assert (tmp_path / "serving" / "models.config").read_text().strip() == shipped
