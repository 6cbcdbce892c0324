"""Warm start across vocabularies that change between nights: rows follow ids, not indices."""

import numpy as np
import pytest
from helpers import model_params

from components.model import features as F
from components.model.model import ModelShape, build_neumf
from components.model.training import architecture
from components.model.warm_start import (
    IncompatibleBaseModel,
    apply_warm_start,
    check_architecture,
    layer_weights,
    load_bundle,
    read_architecture,
    save_bundle,
)

OOV = 2
CFG = {"gmf_dim": 4, "mlp_dim": 4, "side_dim": 2, "mlp_layers": [8, 4], "quantile_buckets": 4}


def _model(users: list[str], items: list[str], cfg: dict = CFG, seed: int = 0):
    import tf_keras as keras

    keras.utils.set_random_seed(seed)
    shape = ModelShape(
        users=len(users) + OOV,
        items=len(items) + OOV,
        devices=3 + 1,
        categories=2 + 1,
        age_buckets=cfg["quantile_buckets"] + 1,
        position_buckets=cfg["quantile_buckets"],
        hour_buckets=cfg["quantile_buckets"],
    )
    params = model_params(
        gmf_dim=cfg["gmf_dim"], mlp_dim=cfg["mlp_dim"], side_dim=cfg["side_dim"], mlp_layers=cfg["mlp_layers"]
    )
    return build_neumf(shape, params)


def _vocabs(users, items):
    return {
        F.USER_ID: [u.encode() for u in users],
        F.ITEM_ID: [i.encode() for i in items],
        F.DEVICE: [b"mobile", b"desktop", b"tv"],
        F.ITEM_CATEGORY: [b"cat00", b"cat01"],
    }


@pytest.fixture()
def yesterday(tmp_path):
    users, items = ["u1", "u2", "u3"], ["i1", "i2", "i3", "i4"]
    model = _model(users, items, seed=1)
    export = tmp_path / "yesterday"
    save_bundle(layer_weights(model), str(export), _vocabs(users, items), architecture(CFG))
    return model, str(export)


def _row(model, layer: str, index: int) -> np.ndarray:
    return model.get_layer(layer).get_weights()[0][index]


def test_known_id_keeps_its_row_when_its_index_moves_and_new_ids_get_fresh_rows(yesterday):
    old_model, export = yesterday
    # u1 moves from index 0 to 2, u3 from 2 to 0, u9 is new, u2 is gone; i4 moves 3 -> 0, i7 is new.
    users, items = ["u3", "u9", "u1"], ["i4", "i1", "i7"]
    model = _model(users, items, seed=2)
    fresh = {name: [w.copy() for w in ws] for name, ws in layer_weights(model).items()}

    stats = apply_warm_start(model, load_bundle(export), _vocabs(users, items))

    for layer in ("gmf_user_embedding", "mlp_user_embedding"):
        np.testing.assert_array_equal(_row(model, layer, 2), _row(old_model, layer, 0))  # u1
        np.testing.assert_array_equal(_row(model, layer, 0), _row(old_model, layer, 2))  # u3
        np.testing.assert_array_equal(_row(model, layer, 1), fresh[layer][0][1])  # u9: fresh row
        # OOV buckets (same count) keep their rows too: a hashed unknown id means the same thing.
        np.testing.assert_array_equal(
            model.get_layer(layer).get_weights()[0][3:], old_model.get_layer(layer).get_weights()[0][3:]
        )
    for layer in ("gmf_item_embedding", "mlp_item_embedding"):
        np.testing.assert_array_equal(_row(model, layer, 0), _row(old_model, layer, 3))  # i4
        np.testing.assert_array_equal(_row(model, layer, 2), fresh[layer][0][2])  # i7
    # Towers carry over as they were.
    for layer in ("mlp_0", "mlp_1", "click_probability"):
        for new, old in zip(
            model.get_layer(layer).get_weights(), old_model.get_layer(layer).get_weights(), strict=False
        ):
            np.testing.assert_array_equal(new, old)
    assert stats.kept[F.USER_ID] == 2 and stats.new[F.USER_ID] == 1 and stats.dropped[F.USER_ID] == 1
    assert stats.kept[F.ITEM_ID] == 2 and stats.new[F.ITEM_ID] == 1 and stats.dropped[F.ITEM_ID] == 2
    assert stats.as_metrics()["warm_start_new_user_id"] == 1


def test_warm_started_model_predicts_like_the_old_one_for_known_ids(yesterday):
    old_model, export = yesterday
    users, items = ["u2", "u1", "u3"], ["i3", "i2", "i1", "i4"]  # same ids, shuffled indices
    model = _model(users, items, seed=3)
    apply_warm_start(model, load_bundle(export), _vocabs(users, items))

    def batch(user_idx, item_idx):
        n = len(user_idx)
        return {
            F.T_USER: np.array(user_idx),
            F.T_ITEM: np.array(item_idx),
            F.T_DEVICE: np.zeros(n, np.int64),
            F.T_CATEGORY: np.zeros(n, np.int64),
            F.T_PRICE: np.zeros(n, np.float32),
            F.T_AGE: np.zeros(n, np.int64),
            F.T_POSITION: np.zeros(n, np.int64),
            F.T_HOUR: np.zeros(n, np.int64),
        }

    # (u1, i1) is (0, 0) yesterday and (1, 2) today.
    before = old_model.predict(batch([0, 2], [0, 3]), verbose=0)
    after = model.predict(batch([1, 2], [2, 3]), verbose=0)
    np.testing.assert_allclose(after, before, rtol=1e-6)


def test_other_embedding_size_is_refused_with_the_setting_that_changed(yesterday):
    _, export = yesterday
    wider = {**CFG, "gmf_dim": 8}
    with pytest.raises(IncompatibleBaseModel, match="gmf_dim: base model 4, this config 8"):
        check_architecture(read_architecture(export), architecture(wider), export)
    model = _model(["u1"], ["i1"], cfg=wider)
    with pytest.raises(IncompatibleBaseModel, match=r"gmf_user_embedding.*4 columns.*8.*trainer.gmf_dim"):
        apply_warm_start(model, load_bundle(export), _vocabs(["u1"], ["i1"]))


def test_other_architecture_is_refused_and_leaves_the_model_untouched(yesterday):
    _, export = yesterday
    deeper = {**CFG, "mlp_layers": [8, 4, 2]}
    model = _model(["u1"], ["i1"], cfg=deeper)
    before = layer_weights(model)
    with pytest.raises(IncompatibleBaseModel, match="mlp_2"):
        apply_warm_start(model, load_bundle(export), _vocabs(["u1"], ["i1"]))
    changed = {**CFG, "mlp_layers": [16, 4]}
    model = _model(["u1"], ["i1"], cfg=changed)
    before = layer_weights(model)
    with pytest.raises(IncompatibleBaseModel, match=r"layer mlp_0.*shapes"):
        apply_warm_start(model, load_bundle(export), _vocabs(["u1"], ["i1"]))
    for name, weights in layer_weights(model).items():  # never half-seeded
        for new, old in zip(weights, before[name], strict=False):
            np.testing.assert_array_equal(new, old)


def test_a_model_without_a_bundle_is_refused_clearly(tmp_path):
    with pytest.raises(IncompatibleBaseModel, match="no warm-start bundle"):
        read_architecture(str(tmp_path))


def test_trainer_falls_back_to_scratch_only_when_config_allows(yesterday):
    from components.model.training import warm_start

    _, export = yesterday
    wider = {**CFG, "gmf_dim": 8, "warm_start_from": export}
    model = _model(["u1"], ["i1"], cfg=wider)
    before = layer_weights(model)
    seeded = warm_start(model, {**wider, "warm_start_on_incompatible": "scratch"}, _vocabs(["u1"], ["i1"]))
    assert seeded == {"warm_started": 0}
    for name, weights in layer_weights(model).items():
        for new, old in zip(weights, before[name], strict=True):
            np.testing.assert_array_equal(new, old)
    with pytest.raises(IncompatibleBaseModel, match="gmf_dim"):
        warm_start(model, {**wider, "warm_start_on_incompatible": "fail"}, _vocabs(["u1"], ["i1"]))
    same = {**CFG, "warm_start_from": export}
    model = _model(["u2", "u1"], ["i1"], cfg=same)
    assert warm_start(model, same, _vocabs(["u2", "u1"], ["i1"]))["warm_start_kept_user_id"] == 2


@pytest.mark.parametrize("damage", ["truncate-weights", "drop-vocabularies", "garble-manifest"])
def test_a_damaged_base_model_is_refused_by_name_and_the_trainer_falls_back(yesterday, damage):
    """Bad input 13: a corrupt previous model for warm start."""
    from pathlib import Path

    from components.model.training import warm_start
    from components.model.warm_start import BUNDLE_DIR, MANIFEST_FILE, VOCAB_FILE, WEIGHTS_FILE

    _, export = yesterday
    folder = Path(export) / BUNDLE_DIR
    if damage == "truncate-weights":
        data = (folder / WEIGHTS_FILE).read_bytes()
        (folder / WEIGHTS_FILE).write_bytes(data[: len(data) // 2])
    elif damage == "drop-vocabularies":
        (folder / VOCAB_FILE).unlink()
    else:
        (folder / MANIFEST_FILE).write_text("{not json")
    with pytest.raises(IncompatibleBaseModel, match=r"(unreadable|damaged)") as err:
        load_bundle(export)
    assert str(folder) in str(err.value)
    cfg = {**CFG, "warm_start_from": export}
    model = _model(["u1"], ["i1"])
    assert warm_start(model, {**cfg, "warm_start_on_incompatible": "scratch"}, _vocabs(["u1"], ["i1"])) == {
        "warm_started": 0
    }
    with pytest.raises(IncompatibleBaseModel):
        warm_start(model, {**cfg, "warm_start_on_incompatible": "fail"}, _vocabs(["u1"], ["i1"]))
