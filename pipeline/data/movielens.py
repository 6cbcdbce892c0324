"""MovieLens ratings -> the click-log contract.

Rated movies are impressions; `clicked = rating >= click_threshold` (or every rating a click with
label='all', the implicit-feedback protocol of the NCF papers). Spans come from the ratings'
timestamps at a chosen granularity. Optionally, unrated movies are sampled as extra non-click
impressions so a model also sees items a user never touched. The licence of MovieLens forbids
redistribution for commercial use, so the data is never copied into this repository: pass its path.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from pipeline.data.clicklog import SpanWriter, to_example

Granularity = Literal["day", "week", "month", "year", "all"]


@dataclass(frozen=True)
class ImportOptions:
    granularity: Granularity = "day"
    label: Literal["threshold", "all"] = "threshold"
    click_threshold: float = 4.0
    negatives_per_rating: int = 0
    seed: int = 0
    shard_size: int = 100_000


def read_ratings(path: str | Path) -> pd.DataFrame:
    """Read ratings.csv (ml-latest/20m/25m), u.data (100k) or ratings.dat (1m) into user/item/rating/ts."""
    path = Path(path)
    if path.is_dir():
        found = [path / n for n in ("ratings.csv", "ratings.dat", "u.data") if (path / n).is_file()]
        if not found:
            raise FileNotFoundError(f"{path}: no ratings.csv, ratings.dat or u.data in this folder")
        path = found[0]
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such ratings file")
    names = ["user", "item", "rating", "ts"]
    if path.name == "u.data":
        df = pd.read_csv(path, sep="\t", names=names, header=None)
    elif path.suffix == ".dat":
        df = pd.read_csv(path, sep="::", names=names, header=None, engine="python")
    elif path.suffix == ".csv":
        df = pd.read_csv(path)
        expected = {"userId", "movieId", "rating", "timestamp"}
        if not expected <= set(df.columns):
            raise ValueError(f"{path}: expected columns {sorted(expected)}, found {list(df.columns)}")
        df = df.rename(columns={"userId": "user", "movieId": "item", "rating": "rating", "timestamp": "ts"})[
            names
        ]
    else:
        raise ValueError(f"{path}: unknown ratings format; give ratings.csv, ratings.dat or u.data")
    if df[names].isna().any().any():
        bad = df[df[names].isna().any(axis=1)].index[0]
        raise ValueError(
            f"{path}: row {bad + 1} has a missing field; each row needs user, item, rating, timestamp"
        )
    return df.astype({"user": str, "item": str, "rating": float, "ts": np.int64})


def read_genres(folder: Path) -> dict[str, str]:
    """item -> first genre, from movies.csv / movies.dat / u.item when present beside the ratings."""
    if (folder / "movies.csv").is_file():
        m = pd.read_csv(folder / "movies.csv", dtype={"movieId": str})
        return dict(zip(m["movieId"], m["genres"].str.split("|").str[0].str.lower(), strict=True))
    if (folder / "movies.dat").is_file():
        m = pd.read_csv(
            folder / "movies.dat",
            sep="::",
            names=["item", "title", "genres"],
            engine="python",
            encoding="latin-1",
            dtype={"item": str},
        )
        return dict(zip(m["item"], m["genres"].str.split("|").str[0].str.lower(), strict=True))
    if (folder / "u.item").is_file():
        genres = [
            "unknown",
            "action",
            "adventure",
            "animation",
            "children's",
            "comedy",
            "crime",
            "documentary",
            "drama",
            "fantasy",
            "film-noir",
            "horror",
            "musical",
            "mystery",
            "romance",
            "sci-fi",
            "thriller",
            "war",
            "western",
        ]
        m = pd.read_csv(folder / "u.item", sep="|", header=None, encoding="latin-1")
        flags = m.iloc[:, 5:24].to_numpy()
        return {str(i): genres[int(np.argmax(f))] for i, f in zip(m[0], flags, strict=True)}
    return {}


def span_start(ts: pd.Series, granularity: Granularity) -> pd.Series:
    """The first day of each rating's span; 'all' puts everything in the span of the last rating's day."""
    days = pd.to_datetime(ts, unit="s", utc=True).dt.tz_localize(None).dt.normalize()
    if granularity == "day":
        return days
    if granularity == "week":
        return days - pd.to_timedelta(days.dt.weekday, unit="D")
    if granularity == "month":
        return days.dt.to_period("M").dt.to_timestamp()
    if granularity == "year":
        return days.dt.to_period("Y").dt.to_timestamp()
    return pd.Series(days.max(), index=ts.index)


def import_movielens(
    path: str | Path, out: str | Path, options: ImportOptions = ImportOptions()
) -> dict[int, dict]:
    """Write spans under out; returns {span: {'events', 'clicks'}}."""
    path = Path(path)
    genres = read_genres(path if path.is_dir() else path.parent)
    return write_spans(read_ratings(path), genres, out, options)


def write_spans(
    ratings: pd.DataFrame, genres: dict[str, str], out: str | Path, options: ImportOptions = ImportOptions()
) -> dict[int, dict]:
    """Write user/item/rating/ts rows as click-log spans. Unrated negatives are drawn from these rows'
    items and exclude only what these rows rate, so a benchmark can pass its training split alone."""
    ratings = ratings.copy()
    ratings["span"] = span_start(ratings["ts"], options.granularity)
    ratings = ratings.sort_values(["span", "ts", "user", "item"], kind="stable")
    catalogue = np.array(sorted(ratings["item"].unique()))
    rated_by_user = ratings.groupby("user")["item"].agg(set).to_dict()
    rng = np.random.default_rng(options.seed)
    summary: dict[int, dict] = {}
    for span, group in ratings.groupby("span", sort=True):
        day = dt.date(span.year, span.month, span.day)
        clicks = 0
        with SpanWriter(out, day, options.shard_size) as writer:
            for row in group.itertuples(index=False):
                clicked = 1 if options.label == "all" else int(row.rating >= options.click_threshold)
                clicks += clicked
                writer.write(_impression(row.user, row.item, row.ts, clicked, genres))
                for neg in _sample_unrated(
                    rng, catalogue, rated_by_user[row.user], options.negatives_per_rating
                ):
                    writer.write(_impression(row.user, neg, row.ts, 0, genres))
        summary[int(f"{day:%Y%m%d}")] = {"events": writer.count, "clicks": clicks}
    return summary


def _impression(user: str, item: str, ts: int, clicked: int, genres: dict[str, str]):
    # MovieLens has no screen position, device, price, dwell or age: the contract's 'unknown' / 0 values stand in,
    # and age stays absent (the contract allows it).
    return to_example(
        {
            "user_id": user,
            "item_id": item,
            "event_ts": ts,
            "clicked": clicked,
            "position": 0,
            "device": "unknown",
            "item_category": genres.get(item, "unknown"),
            "item_price": 0.0,
            "user_age": None,
            "dwell_ms": 0.0,
        }
    )


def _sample_unrated(rng: np.random.Generator, catalogue: np.ndarray, rated: set[str], k: int) -> list[str]:
    out: list[str] = []
    if k <= 0 or len(rated) >= len(catalogue):
        return out
    while len(out) < k:
        cand = catalogue[rng.integers(0, len(catalogue), k * 2)]
        out.extend(c for c in cand if c not in rated)
    return out[:k]
