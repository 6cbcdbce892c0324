"""Benchmarks of continuous retraining (docs/BENCHMARKS.md, section `continuous`).

Two scenarios on synthetic days, both through the real CLI as subprocesses:
- warm start vs full retrain: after a full night on days 1-7 (evaluated on day 8), day 9 is run twice,
  caches off so both nights run every component: warm-started from the served model on day 8 alone,
  and from scratch on the 7-day window. Same evaluation span, same code.
- a 7-night backfill with one drifted day: `recpipe backfill` as the schedule would have run it; the
  history table is what `recpipe history` prints.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bench.harness import RECPIPE, REPO, Measured, bench_config, pipeline_run, run_measured
from components.drift_gate import drift_anomalies, statistics_options
from pipeline import nodes
from pipeline.config import load_config
from pipeline.records.history import (
    EXIT_OK,
    EXIT_REFUSED,
    STATUSES,
    NightRecord,
    latest_per_span,
    read_history,
)

CONFIG = "configs/nightly.yaml"


@dataclass(frozen=True)
class WarmSettings:
    days: int = 9
    events_per_day: int = 60_000
    users: int = 5000
    items: int = 2000
    seed: int = 11
    # Times the warm night and the full retrain are each run. Beyond one, the pair runs again in mirrored
    # order (full retrain, then warm night) and the ratio is over all of them: on this shared machine the
    # same 7-day retrain took 388 s in one run of the section and 311 s run by hand, which moves a single
    # pair's ratio between 0.30 and 0.39.
    timed_pairs: int = 1


# The same nights at five times the events a day (`--with-large-days`): what warm start saves grows with the
# window's data, while the Evaluator (capped at evaluation.max_examples), imports and checks stay fixed.
LARGE_DAYS = WarmSettings(events_per_day=300_000, users=20_000, items=5_000)
LARGE_DAYS_TITLE = "### The same nights at 300,000 events a day"
# And at a production day's volume (`--only warm-volume`, about 40 minutes here, two timed pairs): the
# 7-day full retrain reads 7,000,000 events, the warm night one day of them; the Evaluator (capped), imports
# and checks stay as they were at 300,000 and only StatisticsGen, over the newest day, grows with it in both
# nights.
MILLION_DAYS = WarmSettings(events_per_day=1_000_000, users=20_000, items=5_000, timed_pairs=2)
MILLION_DAYS_TITLE = "## Warm start vs full retrain at 1,000,000 events a day (issue 18)"


WARM, FULL = "warm", "full"  # Night.timed: which side of the warm / full ratio a night's wall time counts on


@dataclass
class Night:
    label: str
    run: Measured
    record: NightRecord
    timed: str = ""  # WARM, FULL, or "" for a night that sets the scenario up


def _generate(work: Path, days: int, events: int, users: int, items: int, seed: int, extra=()) -> Path:
    work.mkdir(parents=True, exist_ok=True)
    data = work / "clicklog"
    args = ["generate", "--out", str(data), "--days", str(days), "--events-per-day", str(events)]
    args += ["--users", str(users), "--items", str(items), "--seed", str(seed), *extra]
    run_measured("generate", [*RECPIPE, *args], work / "generate.log")
    return data


def _night(label: str, work: Path, data: Path, span: int, timed: str = "", **overrides) -> Night:
    name = label.replace(" ", "-")
    # One run root and serving path for every night of a scenario: the nights share MLMD and the model.
    config, path = bench_config(
        CONFIG,
        work,
        data,
        name,
        **{
            "data.span": span,
            "run_root": str(work / "runs"),
            "serving.root": str(work / "serving"),
            **overrides,
        },
    )
    run = pipeline_run(label, config, path, work)
    return Night(label, run, read_history(config)[-1], timed)


def warm_start_scenario(work: Path, s: WarmSettings = WarmSettings()) -> list[Night]:
    data = _generate(work, s.days, s.events_per_day, s.users, s.items, s.seed)
    base_span, tonight = 20240100 + s.days - 1, 20240100 + s.days
    bars = {"evaluation.auc_lower_bound": 0.5, "evaluation.ndcg_lower_bound": 0.0}
    seed_night = _night(
        "full night on days 1-7", work, data, base_span, **{"warm_start.enabled": False, **bars}
    )
    loose = {**bars, "evaluation.max_auc_drop": 1.0, "evaluation.max_ndcg_drop": 1.0, "enable_cache": False}
    scratch = {"warm_start.enabled": False, **loose}
    nights = [
        seed_night,
        _night("warm start on day 8", work, data, tonight, WARM, **loose),
        _night("full retrain on days 2-8", work, data, tonight, FULL, **scratch),
    ]
    for again in range(2, s.timed_pairs + 1):
        # Mirrored: a full retrain first, then a warm night, which starts from the newest blessed model
        # (that retrain's). Only the first pair's models are compared for quality.
        nights.append(_night(f"full retrain on days 2-8, run {again}", work, data, tonight, FULL, **scratch))
        nights.append(_night(f"warm start on day 8, run {again}", work, data, tonight, WARM, **loose))
    return nights


def _fmt(value, digits: int = 4) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else f"{value:,}"


def render_warm_start(
    nights: list[Night],
    s: WarmSettings = WarmSettings(),
    title: str = "## Warm start vs full retrain (issue 4)",
) -> str:
    warms = [n for n in nights if n.timed == WARM]
    fulls = [n for n in nights if n.timed == FULL]
    warm, full = warms[0], fulls[0]  # the first pair: the warm night starts from the first night's model
    ratio = sum(n.run.seconds for n in warms) / sum(n.run.seconds for n in fulls)
    learn = (nodes.TRANSFORM, nodes.TRAINER)
    warm_learn = sum(n.record.node_seconds.get(k, 0) for n in warms for k in learn)
    full_learn = sum(n.record.node_seconds.get(k, 0) for n in fulls for k in learn)
    pairs = again = ""
    if len(warms) > 1:
        each = ", ".join(f"{w.run.seconds / f.run.seconds:.2f}" for w, f in zip(warms, fulls, strict=True))
        pairs = f" over {len(warms)} runs of each (pair by pair: {each})"
        again = (
            f"; then {len(warms) - 1} more time(s) from scratch and warm-started, in that order, "
            "for the timing"
        )
    rows = [
        "| night | trained on | epochs | wall s | Transform+Trainer s | Evaluator s | AUC | NDCG@10 |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for n in nights:
        r = n.record
        spans = f"{r.train_spans[0]}..{r.train_spans[-1]} ({len(r.train_spans)})"
        learned = sum(r.node_seconds.get(k, 0) for k in learn)
        rows.append(
            f"| {n.label} | {spans} | {r.epochs} | {n.run.seconds:.0f} | {learned:.0f} | "
            f"{r.node_seconds.get('Evaluator', 0):.0f} | {_fmt(r.auc)} | {_fmt(r.ndcg)} |"
        )
    d_auc = (warm.record.auc - full.record.auc) / full.record.auc
    d_ndcg = (warm.record.ndcg - full.record.ndcg) / full.record.ndcg
    verdict = "met" if ratio <= 0.3 else "missed"
    if abs(d_auc) <= 0.01 and abs(d_ndcg) <= 0.01:
        quality = "met"
    elif min(d_auc, d_ndcg) >= -0.01:  # the goal guards against losing quality for speed
        quality = "met, the warm-started model above the full retrain"
    else:
        quality = "missed"
    return "\n".join(
        [
            title,
            "",
            f"{s.days} synthetic days x {s.events_per_day:,} events ({s.users:,} users, {s.items:,} items, seed "
            f"{s.seed}), `{CONFIG}`. Day {s.days} is run with caches off (every component runs): "
            f"warm-started from the model the first night served, and from scratch on the 7-day "
            f"window{again}. Wall = the "
            "`recpipe run` process, start to exit.",
            "",
            *rows,
            "",
            f"- Wall-time ratio warm / full{pairs}: **{ratio:.2f}** (goal <= 0.3: {verdict}); "
            f"Transform+Trainer only: {warm_learn / full_learn:.2f}.",
            f"- Quality of the warm-started model relative to the full retrain: AUC {d_auc:+.2%}, NDCG@10 "
            f"{d_ndcg:+.2%} (goal within 1%: {quality}).",
            "- What does not shrink with warm start: the Evaluator scores the newest span (at most "
            "evaluation.max_examples of it) with the candidate and the baseline in both nights, and process "
            "start, ExampleGen and the serving check cost the same.",
        ]
    )


@dataclass(frozen=True)
class BackfillSettings:
    days: int = 8
    events_per_day: int = 20_000
    users: int = 3000
    items: int = 1500
    seed: int = 21
    drift_day: str = "2024-01-06"
    drift: tuple[str, ...] = ("device", "item_price")


def backfill_scenario(
    work: Path, s: BackfillSettings = BackfillSettings()
) -> tuple[Measured, list[NightRecord]]:
    extra = [a for f in s.drift for a in ("--drift", f)] + ["--drift-day", s.drift_day]
    data = _generate(work, s.days, s.events_per_day, s.users, s.items, s.seed, extra)
    config, path = bench_config(
        CONFIG,
        work,
        data,
        "backfill",
        **{"run_root": str(work / "runs"), "serving.root": str(work / "serving")},
    )
    first, last = "20240102", f"202401{s.days:02d}"
    run = run_measured(
        "backfill",
        [*RECPIPE, "backfill", "--config", str(path), "--from", first, "--to", last],
        work / "backfill.log",
        exit_codes=(EXIT_OK, EXIT_REFUSED),  # the drifted night is refused: the scenario's point
    )
    run.command = f"recpipe backfill --config {path.name} --from {first} --to {last}"
    return run, [r for _, r in sorted(latest_per_span(read_history(config)).items())]


def render_backfill(
    run: Measured, records: list[NightRecord], s: BackfillSettings = BackfillSettings()
) -> str:
    rows = [
        "| night | status | start | trained on | events | users | items | new users/items | AUC | base AUC "
        "| NDCG@10 | base NDCG | feed NDCG@10 | most popular | pushed | s |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    versions = sorted(r.pushed_version for r in records if r.pushed_version)
    for r in records:
        start = "warm" if r.warm_start_from else "scratch"
        spans = ",".join(str(x)[-2:] for x in r.train_spans)
        new = "-" if r.new_users is None else f"{r.new_users}/{r.new_items}"
        pushed = f"v{versions.index(r.pushed_version) + 1}" if r.pushed_version else "-"
        rows.append(
            f"| {r.span} | {r.status} | {start} | {spans} | {_fmt(r.events)} | {_fmt(r.users)} | {_fmt(r.items)} "
            f"| {new} | {_fmt(r.auc)} | {_fmt(r.auc_baseline)} | {_fmt(r.ndcg)} | {_fmt(r.ndcg_baseline)} "
            f"| {_fmt(r.feed_ndcg)} | {_fmt(r.feed_ndcg_popularity)} | {pushed} | {r.seconds:.0f} |"
        )
    drift = next((r for r in records if r.status == "drift"), None)
    lines = [
        "## A week of nights with one drifted day (issue 4)",
        "",
        f"{s.days} synthetic days x {s.events_per_day:,} events, day {s.drift_day} drifted "
        f"(`recpipe generate --drift {' --drift '.join(s.drift)} --drift-day {s.drift_day}`), then "
        f"`{run.command}` ({run.seconds / 60:.1f} min). The table is `recpipe history`; trained-on lists the "
        "days of January; pushed versions are numbered in push order (the real ones are epoch seconds). New "
        "users/items: ids the model had no row for in the model it warm-started from. Feed NDCG@10: the "
        "feed-quality gate's figure for the candidate's own top-10, beside the most-popular list's.",
        "",
        *rows,
        "",
        *[f"- **{status}**: {STATUSES[status]}" for status in dict.fromkeys(r.status for r in records)],
    ]
    if drift:
        lines += ["", f"What stopped night {drift.span}:", "", *[f"- `{line}`" for line in drift.drift]]
    return "\n".join(lines)


def drift_calibration(work: Path, events: tuple[int, ...] = (2_000, 5_000, 70_000, 300_000)) -> str:
    """Distances between consecutive normal days and into a drifted day, next to the schema's thresholds."""
    import tensorflow_data_validation as tfdv

    schema_file = str(REPO / "schema" / "schema.pbtxt")
    buckets = load_config(REPO / CONFIG).data.statistics_quantile_buckets
    schema, probe = tfdv.load_schema_text(schema_file), tfdv.load_schema_text(schema_file)
    columns = []  # (feature, comparator kind, threshold)
    for feature in probe.feature:  # a near-zero threshold makes TFDV report every distance
        for kind in ("infinity_norm", "jensen_shannon_divergence"):
            if feature.drift_comparator.HasField(kind):
                columns.append((feature.name, kind, getattr(feature.drift_comparator, kind).threshold))
                getattr(feature.drift_comparator, kind).threshold = 1e-12
    label = {"infinity_norm": "Linfty distance", "jensen_shannon_divergence": "Jensen-Shannon divergence"}
    drifted = sorted({f for f, _, _ in columns})
    rows = []
    for n in events:
        data = _generate(
            work / f"drift-{n}", 4, n, 3000, 1500, 31, [a for f in drifted for a in ("--drift", f)]
        )
        # StatisticsGen's own options (the quantile histograms the comparators read), plus the schema.
        options = statistics_options(buckets)
        options.schema = schema
        stats = [
            tfdv.generate_statistics_from_tfrecord(str(p / "part-*"), stats_options=options)
            for p in sorted(data.glob("span-*"))
        ]
        for days, (a, b) in (("1 -> 2", stats[:2]), ("2 -> 3", stats[1:3]), ("3 -> drifted 4", stats[2:4])):
            found = drift_anomalies(b, a, probe)
            cells = []
            for feature, kind, _ in columns:
                reasons = found.anomaly_info[feature].reason if feature in found.anomaly_info else []
                text = next((r.description for r in reasons if label[kind] in r.description), "")
                value = text.split(" is ", 1)[1].split(" ", 1)[0] if " is " in text else "0"
                cells.append(f"{float(value):.4f}")
            rows.append(f"| {n:,} | {days} | " + " | ".join(cells) + " |")
    short = {"infinity_norm": "L-inf", "jensen_shannon_divergence": "JSD"}
    header = " | ".join(f"{f} {short[k]} (threshold {t:g})" for f, k, t in columns)
    return "\n".join(
        [
            "## Drift thresholds (issue 4)",
            "",
            "Distances TFDV reports between consecutive synthetic days (seed 31; 3,000 users, 1,500 items) and "
            f"into a day generated with `--drift {' --drift '.join(drifted)}`; the thresholds of "
            "`schema/schema.pbtxt` sit between the two. item_category carries both comparators: L-infinity "
            "sees one category jump, JSD also sees mass spread over many new values. The numeric JSDs compare "
            "StatisticsGen's quantile histograms (`source { type: QUANTILES }`, "
            f"data.statistics_quantile_buckets {buckets}): on TFDV's default equal-width ones, two "
            "normal days of 300,000 events differed in dwell_ms by 0.37, past the 0.35 the schema then had, "
            "because one day's longest dwell moves every bucket boundary.",
            "",
            f"| events/day | days | {header} |",
            "|---:|---|" + "---:|" * len(columns),
            *rows,
        ]
    )
