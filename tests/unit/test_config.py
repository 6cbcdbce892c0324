"""The config schema: defaults, validation errors that name the key, shipped configs load."""

import pytest
import yaml

from pipeline.config import ConfigError, RecpipeConfig, load_config


def test_shipped_configs_load(repo):
    for name in ("local.yaml", "test.yaml"):
        config = load_config(repo / "configs" / name)
        assert config.evaluation.ndcg_top_k == 10
        assert config.data.span == "latest"


def test_defaults_fill_everything_not_given(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("pipeline_name: x\n")
    config = load_config(path)
    assert config.trainer.epochs == RecpipeConfig().trainer.epochs
    assert config.beam.pipeline_args()[0] == "--direct_running_mode=in_memory"


@pytest.mark.parametrize(
    "yaml_text, key, words",
    [
        ("trainer:\n  epoch: 3\n", "trainer.epoch", "unknown key"),
        ("trainer:\n  epochs: many\n", "trainer.epochs", "integer"),
        ("evaluation:\n  auc_lower_bound: 1.5\n", "evaluation.auc_lower_bound", "less than or equal to 1"),
        ("data:\n  span: 123\n", "data.span", "YYYYMMDD"),
        ("evaluation:\n  slice_features: [colour]\n", "slice_features", "unknown features"),
        ("serving:\n  model_name: 'my model'\n", "serving.model_name", "pattern"),
    ],
)
def test_bad_config_names_the_key(tmp_path, yaml_text, key, words):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml_text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert key in str(err.value) and words in str(err.value) and str(path) in str(err.value)


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_config(tmp_path / "list.yaml")


def test_relative_paths_resolve_against_base_dir(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("run_root: runs/x\ndata:\n  root: d\n")
    config = load_config(path, base_dir=tmp_path)
    assert config.run_root == str(tmp_path / "runs" / "x")
    assert config.data.root == str(tmp_path / "d")
    assert config.metadata_path == str(tmp_path / "runs" / "x" / "metadata.sqlite")


def test_a_ranking_loss_without_sampled_negatives_is_refused_with_the_fix(repo):
    from pipeline.config import ConfigError, load_config

    config = load_config(repo / "configs" / "local.yaml")
    with pytest.raises(
        (ConfigError, ValueError), match="trainer.loss bpr ranks each click against sampled negatives"
    ):
        config.with_overrides(**{"trainer.loss": "bpr"})
    assert config.with_overrides(**{"trainer.loss": "bpr", "trainer.negatives": 4}).trainer.negatives == 4


def test_a_log_loss_that_weighs_clicks_zero_is_refused_with_the_fix(repo):
    """Log loss with click_weight 0 would only ever push scores down: nothing teaches what a click is."""
    from pipeline.config import ConfigError, load_config

    config = load_config(repo / "configs" / "local.yaml")
    with pytest.raises((ConfigError, ValueError), match="click_weight 0 leaves trainer.loss logloss"):
        config.with_overrides(**{"trainer.negatives": 4, "trainer.click_weight": 0})
    ranking = {"trainer.loss": "softmax", "trainer.negatives": 4, "trainer.click_weight": 0}
    assert config.with_overrides(**ranking).trainer.click_weight == 0


@pytest.mark.parametrize("setting", ["click_weight", "impression_weight"])
def test_a_loss_weight_that_nothing_would_apply_is_refused_naming_the_file(repo, tmp_path, setting):
    """Without sampled negatives the trainer fits the plain log loss, so a weight set in the file would be
    silently ignored: the user is told which file and setting, and the fix."""
    raw = yaml.safe_load((repo / "configs" / "local.yaml").read_text())
    raw["trainer"] = {**raw.get("trainer", {}), "negatives": 0, setting: 0.5}
    path = tmp_path / "weights.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError) as refused:
        load_config(path)
    message = str(refused.value)
    assert str(path) in message or path.name in message
    assert f"trainer.{setting} 0.5 would be ignored" in message
    assert "Set negatives >= 1, or leave the weights at 1" in message
    raw["trainer"]["negatives"] = 4
    path.write_text(yaml.safe_dump(raw))
    assert getattr(load_config(path).trainer, setting) == 0.5
