"""preprocessing_fn: vocabularies with OOV, z-scored price, quantile buckets, missing ages."""

import numpy as np
from helpers import columns, transform_in_memory

from components.model import features as F


def _row(user, item, *, device="mobile", age=30, position=0, hour=12, price=10.0, clicked=0):
    return {
        "user_id": user,
        "item_id": item,
        "event_ts": 1704067200 + hour * 3600,
        "clicked": clicked,
        "position": position,
        "device": device,
        "item_category": "cat01",
        "item_price": price,
        "user_age": age,
        "dwell_ms": 0.0,
    }


def test_preprocessing_fn_outputs():
    train = [
        _row(
            f"u{i % 5}",
            f"i{i % 7}",
            age=(None if i % 10 == 0 else 18 + i % 50),
            position=i % 20,
            hour=i % 24,
            price=1.0 + i,
            clicked=i % 2,
        )
        for i in range(200)
    ]
    unseen = [_row("new-user", "new-item", device="tv", age=None)]
    train_t, unseen_t = transform_in_memory(train, unseen, {"quantile_buckets": 4, "id_oov_buckets": 3})
    cols = columns(train_t)
    assert set(cols) == {
        F.T_USER,
        F.T_ITEM,
        F.T_DEVICE,
        F.T_CATEGORY,
        F.T_PRICE,
        F.T_AGE,
        F.T_POSITION,
        F.T_HOUR,
        F.T_LABEL,
    }
    assert sorted(set(cols[F.T_USER])) == list(range(5)), "5 users -> indices 0..4"
    assert sorted(set(cols[F.T_ITEM])) == list(range(7))
    # log-price z-score: mean 0, std 1 over the analysed data
    assert abs(cols[F.T_PRICE].mean()) < 1e-4 and abs(cols[F.T_PRICE].std() - 1) < 1e-2
    # 4 quantile buckets for position and hour, roughly balanced
    assert set(cols[F.T_POSITION]) == {0, 1, 2, 3} and set(cols[F.T_HOUR]) == {0, 1, 2, 3}
    assert np.bincount(cols[F.T_POSITION]).min() >= 30
    # missing age -> its own bucket 4; known ages -> 0..3
    missing = np.array([r["user_age"] is None for r in train])
    assert (cols[F.T_AGE][missing] == 4).all() and (cols[F.T_AGE][~missing] < 4).all()
    assert list(cols[F.T_LABEL][:4]) == [0, 1, 0, 1]
    # unseen ids and an unseen device fall into OOV buckets, not errors
    u = unseen_t[0]
    assert 5 <= u[F.T_USER] < 5 + 3 and 7 <= u[F.T_ITEM] < 7 + 3
    assert u[F.T_DEVICE] == 1, "device vocab has 1 entry (mobile), so 'tv' is OOV index 1"
    assert u[F.T_AGE] == 4
