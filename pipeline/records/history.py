"""One record per night under <run_root>/history/: what the night read, decided and shipped.

MLMD holds every artifact but answers "what happened on each night this month" only after a lot of
joins; a nightly job's owner wants that as one table. The runner writes one JSON record per run (whether
it pushed, was not blessed, or stopped on bad or drifted data) next to its HTML report; `recpipe
history` and the report's metric plots read them back. The planner reads them too: a span whose latest
night stopped for drift or schema anomalies is left out of later windows and is never the drift baseline.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from typing import Any

from components import storage
from components.serving_layout import ALREADY_SERVED
from pipeline import nodes
from pipeline.config import RecpipeConfig
from pipeline.errors import IngestError, InputError

# status -> meaning, in the order a night can end
STATUSES = {
    "pushed": "blessed, passed the serving check and pushed",
    "already served": "blessed, and this very model is already a served version (a rerun): nothing to push",
    "not blessed": "the Evaluator did not bless the model (a gate failed)",
    "not pushed": "blessed, but the feed-quality gate, the serving check or the push refused it",
    "drift": "stopped before training: the newest span drifted from the previous one",
    "anomalies": "stopped before training: the data broke the schema",
    "bad input": "stopped before any component ran (pre-flight check)",
    "failed": "a component failed",
}


@dataclasses.dataclass
class NightRecord:
    span: int | None
    run_id: str
    started: str
    seconds: float
    status: str
    plan: str = ""
    train_spans: list[int] = dataclasses.field(default_factory=list)
    warm_start_from: str | None = None
    epochs: int | None = None
    events: int | None = None
    clicks: int | None = None
    users: int | None = None
    items: int | None = None
    new_users: int | None = None  # ids the model had no row for in the model it started from
    new_items: int | None = None
    eval_examples: int | None = None  # examples of the newest span the Evaluator scored
    auc: float | None = None
    ndcg: float | None = None
    auc_baseline: float | None = None
    ndcg_baseline: float | None = None
    auc_bar: float | None = None
    ndcg_bar: float | None = None
    blessed: bool | None = None
    feed_k: int | None = None  # the feed-quality gate: NDCG@K and Recall@K of the candidate's feed, ...
    feed_ndcg: float | None = None
    feed_recall: float | None = None
    feed_coverage: float | None = None
    feed_ndcg_popularity: float | None = None  # ... of the most-popular list
    feed_ndcg_baseline: float | None = None  # ... and of the baseline model's feed
    feed_gate: str | None = None
    serving_check: str | None = None
    pushed_version: int | None = None
    pushed_path: str | None = None
    anomalies: list[str] = dataclasses.field(default_factory=list)
    drift: list[str] = dataclasses.field(default_factory=list)
    drift_not_compared: str | None = None  # features the drift gate left out tonight, and why
    failure: str | None = None
    node_seconds: dict[str, float] = dataclasses.field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.span or 'unknown'}-{self.run_id}"

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=1, sort_keys=True, default=str)


def new_run_id(now: dt.datetime | None = None) -> str:
    return (now or dt.datetime.now(dt.timezone.utc)).strftime("%Y%m%dT%H%M%S%f")[:-3]


def status_of(summary, failure: BaseException | None) -> str:
    """The night's outcome from the run summary (node states) and the error that stopped it, if any."""
    if isinstance(failure, InputError):
        return "bad input"
    if isinstance(failure, IngestError):  # an earlier span's data, not tonight's: tonight is not blocked
        return "failed"
    states = summary.node_states if summary else {}
    if states.get(nodes.ANOMALY_GATE) == "FAILED":
        return "anomalies"
    if states.get(nodes.DRIFT_GATE) == "FAILED":
        return "drift"
    if failure is not None:
        return "failed"
    if summary.pushed:
        return "pushed"
    if summary.blessed and summary.push_reason and summary.push_reason.startswith(ALREADY_SERVED):
        return "already served"
    return "not pushed" if summary.blessed else "not blessed"


# The exit status of `recpipe run`, `recpipe backfill` (its worst night) and each Kubeflow phase, so a
# scheduler tells a refused night from a shipped one and from a broken one (README, "Exit codes").
EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_REFUSED, EXIT_LOCKED = 0, 1, 3, 4, 5
EXIT_INTERRUPTED = 128 + 15  # SIGTERM, as a shell reports a process it killed
EXIT_CODES = {
    "pushed": EXIT_OK,
    "already served": EXIT_OK,
    "not blessed": EXIT_REFUSED,
    "not pushed": EXIT_REFUSED,
    "drift": EXIT_REFUSED,
    "anomalies": EXIT_REFUSED,
    "bad input": EXIT_BAD_INPUT,
    "failed": EXIT_FAILED,
}
# Worst first, for a backfill's exit status.
SEVERITY = [EXIT_FAILED, EXIT_LOCKED, EXIT_BAD_INPUT, EXIT_REFUSED, EXIT_OK]


def worst(codes) -> int:
    codes = list(codes)
    return min(codes, key=SEVERITY.index) if codes else EXIT_OK


def _gate(summary, prefix: str):
    return next((g for g in summary.gates if g.metric.upper().startswith(prefix)), None)


def build_record(
    night, scan, summary, started: dt.datetime, seconds: float, failure: BaseException | None
) -> NightRecord:
    record = NightRecord(
        span=night.span if night else (scan.span if scan else getattr(summary, "span", None)),
        run_id=new_run_id(started),
        started=started.isoformat(timespec="seconds"),
        seconds=round(seconds, 1),
        status=status_of(summary, failure),
    )
    if night:
        record.plan, record.train_spans = night.describe(), list(night.train_spans or (night.span,))
        record.warm_start_from, record.epochs = night.warm_start_from, night.epochs
    if scan:
        record.events, record.clicks, record.users, record.items = (
            scan.events,
            scan.clicks,
            scan.users,
            scan.items,
        )
    if failure is not None:
        record.failure = str(failure)[:4000]
        if record.status == "drift":
            record.drift = [line.strip() for line in str(failure).splitlines() if "feature '" in line]
    if summary is None:
        return record
    record.anomalies, record.drift_not_compared = summary.anomalies, summary.drift_not_compared
    record.node_seconds = {k: round(v, 1) for k, v in summary.node_seconds.items()}
    metrics = summary.train_metrics
    if metrics.get("warm_started"):
        record.new_users = metrics.get("warm_start_new_user_id")
        record.new_items = metrics.get("warm_start_new_item_id")
    if auc := _gate(summary, "AUC"):
        record.auc, record.auc_baseline, record.auc_bar = auc.value, auc.baseline, auc.lower_bound
    if ndcg := _gate(summary, "NDCG"):
        record.ndcg, record.ndcg_baseline, record.ndcg_bar = ndcg.value, ndcg.baseline, ndcg.lower_bound
    record.eval_examples = summary.eval_examples
    record.blessed, record.serving_check = summary.blessed, summary.serving_check
    record.feed_gate, feed = summary.feed_gate, summary.feed
    if "model" in feed:
        record.feed_k, record.feed_ndcg_popularity = feed["k"], feed["popularity"]["ndcg"]
        record.feed_ndcg, record.feed_recall = feed["model"]["ndcg"], feed["model"]["recall"]
        record.feed_coverage = feed["model"]["coverage"]
        record.feed_ndcg_baseline = feed.get("baseline", {}).get("ndcg")
    if summary.pushed and summary.pushed_path:
        record.pushed_path = summary.pushed_path
        record.pushed_version = int(storage.name(summary.pushed_path))
    return record


def write_record(config: RecpipeConfig, record: NightRecord) -> str:
    path = storage.join(config.history_dir, f"{record.name}.json")
    storage.write_text_atomic(path, record.to_json())  # a reader never sees half a record
    return path


def read_history(config: RecpipeConfig) -> list[NightRecord]:
    """Every record, in the order the nights ran."""
    folder = config.history_dir
    fields = {f.name for f in dataclasses.fields(NightRecord)}
    records = []
    for name in storage.files(folder):
        if not name.endswith(".json"):
            continue
        data: dict[str, Any] = json.loads(storage.read_text(storage.join(folder, name)))
        records.append(NightRecord(**{k: v for k, v in data.items() if k in fields}))
    return sorted(records, key=lambda r: r.run_id)


def latest_per_span(records: list[NightRecord]) -> dict[int, NightRecord]:
    latest: dict[int, NightRecord] = {}
    for record in records:
        if record.span is not None:
            latest[record.span] = record
    return latest


BLOCKED = ("drift", "anomalies")


def blocked_spans(config: RecpipeConfig) -> set[int]:
    """Spans whose latest night stopped for drift or schema anomalies: left out of later windows and never
    the drift baseline, until re-run and passed."""
    return {span for span, r in latest_per_span(read_history(config)).items() if r.status in BLOCKED}


def find_record(config: RecpipeConfig, run: str | None) -> NightRecord:
    """A record by run name, span (its latest run) or None (the newest run)."""
    records = read_history(config)
    if not records:
        raise LookupError(f"no nights recorded under {config.history_dir}; run `recpipe run` first")
    if run is None:
        return records[-1]
    matches = [r for r in records if r.name == run or str(r.span) == run or r.run_id == run]
    if not matches:
        names = ", ".join(r.name for r in records[-5:])
        raise LookupError(f"no run {run!r} in {config.history_dir}; newest: {names}")
    return matches[-1]
