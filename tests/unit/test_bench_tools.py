"""The bench's own tools: a tuning variant is a valid config that differs by its one change, and the plain
Keras floor maps ids the way Transform does (unseen ids to one OOV index)."""

import numpy as np
import pandas as pd
import yaml

from bench.plain_keras import _index
from bench.quality import load_quality_config, protocol_split
from bench.tuning import NEUMF, QUALITY_CONFIG, _neumf_settings, validation_splits
from pipeline.config import load_config


def test_each_tuning_variant_is_a_valid_config_differing_by_its_change(repo, tmp_path):
    base = load_quality_config(repo / QUALITY_CONFIG)
    shipped = load_config(repo / base.pipeline_config)
    for name, overrides in NEUMF.items():
        settings = _neumf_settings(base, tmp_path, name, overrides)
        variant = load_config(settings.pipeline_config)
        assert variant == shipped.with_overrides(**overrides), name
        assert yaml.safe_load(open(settings.pipeline_config))["pipeline_name"] == shipped.pipeline_name


def test_the_floor_indexes_known_ids_and_sends_unseen_ones_to_one_oov_index():
    train = np.array([b"b", b"a", b"c", b"a"])
    index, size = _index(train, np.array([b"a", b"c", b"zz", b"0"]))
    assert size == 4 and index.tolist() == [0, 2, 3, 3]


def test_validation_splits_never_hold_a_rating_of_either_protocols_test_set(repo):
    """Tuning on a split that saw test ratings would flatter every setting it picks."""
    rng = np.random.default_rng(0)
    rows = [
        (f"u{u}", f"i{i}", 4.0, int(rng.integers(0, 10**6)))
        for u in range(40)
        for i in rng.choice(300, 25, replace=False)
    ]
    ratings = pd.DataFrame(rows, columns=["user", "item", "rating", "ts"])
    base = load_quality_config(repo / QUALITY_CONFIG)
    splits = validation_splits(ratings, base)
    key = ["user", "item", "ts"]
    for protocol, split in splits.items():
        test = protocol_split(ratings, protocol, base, base.seed).test
        seen = pd.concat([split.train, split.test])[key]
        assert seen.merge(test[key]).empty, protocol
        assert len(split.test) > 0 and split.protocol == protocol
