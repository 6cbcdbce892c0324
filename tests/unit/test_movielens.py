"""MovieLens import: the three ratings formats, labels, spans by timestamp, sampled negatives, genres."""

import datetime as dt

import pytest

from pipeline.data.clicklog import list_spans, read_examples, span_files
from pipeline.data.movielens import ImportOptions, import_movielens, read_ratings

# (user, movie, rating, timestamp): two days in 2018-03, one in 2018-04
RATINGS = [
    (1, 10, 4.0, 1520000000),  # 2018-03-02
    (1, 20, 2.5, 1520000100),
    (2, 10, 5.0, 1520090000),  # 2018-03-03
    (2, 30, 3.0, 1520090500),
    (3, 40, 4.5, 1523000000),  # 2018-04-06
]


def _write_formats(tmp_path):
    csv = tmp_path / "latest"
    csv.mkdir()
    (csv / "ratings.csv").write_text(
        "userId,movieId,rating,timestamp\n" + "".join(f"{u},{m},{r},{t}\n" for u, m, r, t in RATINGS)
    )
    (csv / "movies.csv").write_text(
        'movieId,title,genres\n10,A (1999),Comedy|Drama\n20,"B, The (2001)",Horror\n30,C (2002),(no genres listed)\n'
    )
    m100k = tmp_path / "ml-100k"
    m100k.mkdir()
    (m100k / "u.data").write_text("".join(f"{u}\t{m}\t{int(r)}\t{t}\n" for u, m, r, t in RATINGS))
    m1m = tmp_path / "ml-1m"
    m1m.mkdir()
    (m1m / "ratings.dat").write_text("".join(f"{u}::{m}::{int(r)}::{t}\n" for u, m, r, t in RATINGS))
    return csv, m100k, m1m


def test_reads_all_three_formats_alike(tmp_path):
    frames = [read_ratings(p) for p in _write_formats(tmp_path)]
    for df in frames:
        assert list(df["user"]) == ["1", "1", "2", "2", "3"]
        assert list(df["item"]) == ["10", "20", "10", "30", "40"]
        assert list(df["ts"]) == [t for *_, t in RATINGS]


def test_daily_spans_labels_and_genres(tmp_path):
    csv, _, _ = _write_formats(tmp_path)
    summary = import_movielens(csv, tmp_path / "out")
    assert list_spans(tmp_path / "out") == [20180302, 20180303, 20180406]
    assert summary[20180302] == {"events": 2, "clicks": 1}
    rows = list(read_examples(span_files(tmp_path / "out", 20180302)))
    by_item = {r["item_id"]: r for r in rows}
    assert by_item["10"]["clicked"] == 1 and by_item["20"]["clicked"] == 0  # rating >= 4
    assert by_item["10"]["item_category"] == "comedy" and by_item["20"]["item_category"] == "horror"
    assert by_item["10"]["event_ts"] == 1520000000 and by_item["10"]["device"] == "unknown"
    assert "user_age" not in by_item["10"]


def test_monthly_spans_label_all_and_negatives(tmp_path):
    _, m100k, _ = _write_formats(tmp_path)
    options = ImportOptions(granularity="month", label="all", negatives_per_rating=2, seed=1)
    summary = import_movielens(m100k / "u.data", tmp_path / "out", options)
    assert list_spans(tmp_path / "out") == [20180301, 20180401]
    assert summary[20180301] == {"events": 4 * 3, "clicks": 4}
    rows = list(read_examples(span_files(tmp_path / "out", 20180301)))
    rated = {("1", "10"), ("1", "20"), ("2", "10"), ("2", "30")}
    negatives = [r for r in rows if r["clicked"] == 0]
    assert len(negatives) == 8
    assert all((r["user_id"], r["item_id"]) not in rated for r in negatives), (
        "negatives must be unrated items"
    )


def test_year_and_all_granularity(tmp_path):
    _, _, m1m = _write_formats(tmp_path)
    import_movielens(m1m, tmp_path / "y", ImportOptions(granularity="year"))
    assert list_spans(tmp_path / "y") == [20180101]
    import_movielens(m1m, tmp_path / "a", ImportOptions(granularity="all"))
    assert list_spans(tmp_path / "a") == [int(f"{dt.date(2018, 4, 6):%Y%m%d}")]


def test_bad_inputs_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no ratings.csv"):
        read_ratings(tmp_path)
    bad = tmp_path / "ratings.csv"
    bad.write_text("user,item\n1,2\n")
    with pytest.raises(ValueError, match="ratings.csv: expected columns"):
        read_ratings(bad)
