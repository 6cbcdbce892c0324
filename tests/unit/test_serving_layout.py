"""The TF Serving folder: atomic versions, no duplicate push, pruning, models.config, rollback, on a local
disk and on an S3 server (the same code through components/storage.py)."""

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from components import storage
from components.serving_layout import list_versions, push_model, push_record, rollback, served_version


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


def test_push_creates_a_numbered_version_with_its_record(tmp_path, any_root):
    result = push_model(_fake_model(tmp_path, "m1"), any_root, "rec", 5, {"model_uri": "/mlmd/m1"})
    base = storage.join(any_root, "rec")
    assert result.pushed and list_versions(base) == [result.version]
    pushed = storage.read_bytes(storage.join(result.path, "saved_model.pb"))
    assert pushed == (tmp_path / "m1" / "saved_model.pb").read_bytes()
    assert push_record(result.path)["model_uri"] == "/mlmd/m1"
    assert not [n for n in storage.listdir(base) if n.startswith(".")]
    assert served_version(any_root, "rec") == result.version, "models.config names the new version"


def test_a_push_killed_midway_on_either_store_leaves_nothing_tf_serving_would_load(tmp_path, any_root):
    """A real process, killed (os._exit) after copying part of the version: models.config still names the
    old version, the partial version has no saved_model.pb and does not count; the next push removes it."""
    first = push_model(_fake_model(tmp_path, "m1"), any_root, "rec", 5, {"model_uri": "/mlmd/m1"})
    model = _fake_model(tmp_path, "m2")
    (model / "assets").mkdir()
    (model / "assets" / "vocab.txt").write_text("a\nb\n")
    config_before = storage.read_text(storage.join(any_root, "models.config"))
    script = textwrap.dedent(
        f"""
        import os
        from components import serving_layout, storage
        real_copy = storage.copy_file
        copied = []
        def copy_then_die(src, dst):
            real_copy(src, dst)
            copied.append(dst)
            if len(copied) == 2:
                os._exit(9)  # SIGKILL-like: no cleanup code runs
        storage.copy_file = copy_then_die
        serving_layout.push_model({str(model)!r}, {any_root!r}, "rec", 5, {{"model_uri": "/mlmd/m2"}})
        """
    )
    killed = subprocess.run([sys.executable, "-c", script], cwd=Path(__file__).parents[2], env=os.environ)
    assert killed.returncode == 9
    base = storage.join(any_root, "rec")
    assert list_versions(base) == [first.version]
    assert storage.read_text(storage.join(any_root, "models.config")) == config_before
    partial = [n for n in storage.listdir(base) if n != str(first.version)]
    assert partial, "the killed push left something behind"
    for name in partial:  # a staging name TF Serving ignores, or a number without saved_model.pb
        assert not name.isdigit() or not storage.exists(storage.join(base, name, "saved_model.pb"))
    again = push_model(model, any_root, "rec", 5, {"model_uri": "/mlmd/m2"})
    assert again.pushed and list_versions(base) == [first.version, again.version]
    assert storage.listdir(base) == sorted([str(first.version), str(again.version)]), "leftovers removed"


def test_the_same_model_is_not_pushed_twice_and_versions_increase(tmp_path):
    first = _push(tmp_path, "m1")
    again = push_model(tmp_path / "m1", tmp_path / "serving", "rec", 5, {"model_uri": "/mlmd/m1"})
    assert not again.pushed and "already" in again.reason
    second = _push(tmp_path, "m2")
    assert second.pushed and second.version > first.version


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
    assert list(entries["rec"].model_version_policy.specific.versions) == list_versions(
        tmp_path / "serving" / "rec"
    )


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
    written = (tmp_path / "serving" / "models.config").read_text().strip()
    assert re.sub(r"versions: \d+", "versions: N", written) == re.sub(
        r"versions: \d+", "versions: N", shipped
    )


def test_rollback_and_pruning_change_the_served_version_on_either_store(tmp_path, any_root):
    pushed = [
        push_model(_fake_model(tmp_path, f"m{i}"), any_root, "rec", 2, {"model_uri": f"/mlmd/m{i}"}).version
        for i in range(3)
    ]
    base = storage.join(any_root, "rec")
    assert list_versions(base) == pushed[1:], "keep_versions=2 pruned the oldest"
    assert served_version(any_root, "rec") == pushed[2]
    assert rollback(any_root, "rec") == (pushed[1], [pushed[2]])
    assert served_version(any_root, "rec") == pushed[1] and list_versions(base) == [pushed[1]]
    assert list_versions(storage.join(any_root, ".retired", "rec")) == [pushed[2]]


def test_a_model_served_in_any_kept_version_is_not_pushed_again(tmp_path):
    first = _push(tmp_path, "m1")
    _push(tmp_path, "m2")
    again = push_model(tmp_path / "m1", tmp_path / "serving", "rec", 5, {"model_uri": "/mlmd/m1"})
    assert not again.pushed and again.version == first.version
    assert f"already served as version {first.version}" in again.reason
