"""A synthetic click log with structure a recommender can learn, and a popularity model cannot fully.

Clicks come from a logistic model over: user x item latent factors (what NeuMF should learn), item
quality and a Zipf-like exposure (what popularity captures), each user's favourite category, position
bias, device and hour-of-day effects, and a price sensitivity that grows with age. The world (users,
items) is drawn once from the seed; events are drawn in fixed-size chunks with a per-(day, chunk)
seed, so output is deterministic per seed and memory does not grow with the number of events.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from components.model.features import DEVICES
from pipeline.data.layout import span_number

_CHUNK = 8192  # events drawn per RNG call; part of the determinism contract, do not tie it to shard size


@dataclass(frozen=True)
class SyntheticSpec:
    days: int = 3
    events_per_day: int = 10_000
    seed: int = 0
    users: int = 2000
    items: int = 1000
    categories: int = 12
    latent_dim: int = 4
    start: dt.date = dt.date(2024, 1, 1)
    shard_size: int = 100_000
    positions: int = 20
    base_logit: float = -2.9
    factor_weight: float = 2.5
    age_missing_fraction: float = 0.1
    exposure_zipf: float = 1.0  # 0 = every item shown equally often (to cover a large catalogue)
    drift: tuple[str, ...] = ()  # features to shift (DRIFTS) on the days in drift_days
    drift_days: tuple[int, ...] = ()  # 0-based day indexes

    def day(self, index: int) -> dt.date:
        return self.start + dt.timedelta(days=index)

    def with_drift_on(self, drift: tuple[str, ...], dates: list[dt.date]) -> SyntheticSpec:
        """This spec with `drift` shifted on `dates` (default: the last day); ValueError names a date
        outside the generated days or dates without a feature to shift."""
        if dates and not drift:
            raise ValueError("--drift-day needs --drift FEATURE (which feature to shift)")
        days = tuple((d - self.start).days for d in dates) or ((self.days - 1,) if drift else ())
        outside = [d for d, i in zip(dates, days, strict=False) if not 0 <= i < self.days]
        if outside:
            raise ValueError(
                f"--drift-day {outside[0]} is outside the generated days {self.start} .. (+{self.days - 1} days)"
            )
        return dataclasses.replace(self, drift=drift, drift_days=days)


# What `recpipe generate --drift FEATURE` does to a day: shifts big enough that a human would call the
# day broken (a logging change, a mispriced feed), which the schema's drift comparators must catch.
DRIFTS = {
    "device": "60% of impressions logged as device 'tv'",
    "item_category": "70% of impressions from the two first categories",
    "item_price": "prices four times higher",
    "dwell_ms": "dwell times six times longer",
}


@dataclass
class _World:
    user_f: np.ndarray
    user_activity: np.ndarray
    user_device: np.ndarray
    user_fav_cat: np.ndarray
    user_age: np.ndarray  # -1 = unknown
    item_f: np.ndarray
    item_exposure: np.ndarray
    item_quality: np.ndarray
    item_cat: np.ndarray
    item_price: np.ndarray
    device_effect: np.ndarray = field(default_factory=lambda: np.array([0.0, 0.25, 0.1, -0.3, 0.0]))


def _zipf_weights(n: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    w = 1.0 / np.arange(1, n + 1) ** exponent
    rng.shuffle(w)
    return w / w.sum()


def build_world(spec: SyntheticSpec) -> _World:
    rng = np.random.default_rng([spec.seed, 0xC11C])
    d = spec.latent_dim
    age = rng.integers(16, 75, spec.users)
    age[rng.random(spec.users) < spec.age_missing_fraction] = -1
    return _World(
        user_f=rng.normal(0, 1 / np.sqrt(d), (spec.users, d)),
        user_activity=_zipf_weights(spec.users, 0.7, rng),
        user_device=rng.choice(4, spec.users, p=[0.55, 0.3, 0.1, 0.05]),
        user_fav_cat=rng.integers(0, spec.categories, spec.users),
        user_age=age,
        item_f=rng.normal(0, 1 / np.sqrt(d), (spec.items, d)),
        item_exposure=_zipf_weights(spec.items, spec.exposure_zipf, rng),
        item_quality=rng.normal(0, 0.5, spec.items),
        item_cat=rng.integers(0, spec.categories, spec.items),
        item_price=np.round(rng.lognormal(3.0, 0.8, spec.items), 2),
    )


def draw_events(
    world: _World, spec: SyntheticSpec, day_index: int, chunk_index: int, n: int
) -> dict[str, np.ndarray]:
    """Draw n events of one chunk as column arrays (vectorised; the slow part is proto building)."""
    rng = np.random.default_rng([spec.seed, day_index, chunk_index])
    drift = set(spec.drift) if day_index in spec.drift_days else set()
    users = rng.choice(len(world.user_activity), n, p=world.user_activity)
    items = rng.choice(len(world.item_exposure), n, p=world.item_exposure)
    if "item_category" in drift:
        narrow = np.flatnonzero(world.item_cat < 2)
        swap = rng.random(n) < 0.7
        items[swap] = rng.choice(narrow, int(swap.sum()))
    position = rng.integers(0, spec.positions, n)
    own_device = rng.random(n) < 0.85
    device = np.where(own_device, world.user_device[users], rng.integers(0, 4, n))
    if "device" in drift:
        device = np.where(rng.random(n) < 0.6, DEVICES.index("tv"), device)
    day_start = dt.datetime.combine(spec.day(day_index), dt.time(), dt.timezone.utc)
    # Diurnal traffic: more impressions in the evening.
    hour = rng.choice(24, n, p=_HOUR_TRAFFIC)
    ts = int(day_start.timestamp()) + hour * 3600 + rng.integers(0, 3600, n)
    age = world.user_age[users]
    price = world.item_price[items] * (4.0 if "item_price" in drift else 1.0)
    price_sensitivity = np.where(age < 0, 0.3, 0.15 + (70 - np.clip(age, 16, 70)) / 100)
    logit = (
        spec.base_logit
        + spec.factor_weight
        * np.einsum("ij,ij->i", world.user_f[users], world.item_f[items])
        * np.sqrt(spec.latent_dim)
        + world.item_quality[items]
        + 0.9 * (world.item_cat[items] == world.user_fav_cat[users])
        - 0.6 * np.log1p(position)
        + world.device_effect[device]
        + 0.3 * ((hour >= 18) & (hour <= 23))
        - price_sensitivity * (np.log(price) - 3.0)
    )
    clicked = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    dwell = np.where(clicked == 1, np.round(rng.lognormal(np.log(30_000), 0.7, n), 1), 0.0)
    if "dwell_ms" in drift:
        dwell = dwell * 6.0
    return {
        "user": users,
        "item": items,
        "ts": ts,
        "clicked": clicked,
        "position": position,
        "device": device,
        "category": world.item_cat[items],
        "price": price,
        "age": age,
        "dwell": dwell,
    }


_HOUR_TRAFFIC = np.array(
    [
        1,
        0.6,
        0.4,
        0.3,
        0.3,
        0.4,
        0.8,
        1.2,
        1.4,
        1.3,
        1.2,
        1.3,
        1.5,
        1.4,
        1.3,
        1.3,
        1.5,
        1.8,
        2.3,
        2.6,
        2.7,
        2.5,
        2.0,
        1.4,
    ]
)
_HOUR_TRAFFIC = _HOUR_TRAFFIC / _HOUR_TRAFFIC.sum()


def generate(out: str | Path, spec: SyntheticSpec, progress=None) -> dict[int, int]:
    """Write spec.days spans under out; returns {span_number: events}. `progress(n)` is called per chunk."""
    from pipeline.data.clicklog import (  # lazy: keeps TensorFlow out of `recpipe --help`
        SpanWriter,
        to_example,
    )

    world = build_world(spec)
    written: dict[int, int] = {}
    for day_index in range(spec.days):
        day = spec.day(day_index)
        with SpanWriter(out, day, spec.shard_size) as writer:
            remaining, chunk = spec.events_per_day, 0
            while remaining > 0:
                n = min(_CHUNK, remaining)
                cols = draw_events(world, spec, day_index, chunk, n)
                for i in range(n):
                    age = int(cols["age"][i])
                    writer.write(
                        to_example(
                            {
                                "user_id": f"u{cols['user'][i]}",
                                "item_id": f"i{cols['item'][i]}",
                                "event_ts": cols["ts"][i],
                                "clicked": cols["clicked"][i],
                                "position": cols["position"][i],
                                "device": DEVICES[cols["device"][i]],
                                "item_category": f"cat{cols['category'][i]:02d}",
                                "item_price": cols["price"][i],
                                "user_age": age if age >= 0 else None,
                                "dwell_ms": cols["dwell"][i],
                            }
                        )
                    )
                remaining -= n
                chunk += 1
                if progress:
                    progress(n)
        written[span_number(day)] = writer.count
    return written
