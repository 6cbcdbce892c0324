"""The feed users see on `make run`'s click log: the candidate's own top-10 over the whole catalogue against
the most-popular list, as the feed-quality gate scores it, for the ways the trainer can rank."""

from __future__ import annotations

from pathlib import Path

from bench.harness import REPO, Measured, bench_config, make_run_log, pipeline_run
from pipeline.records.history import EXIT_OK, EXIT_REFUSED

NOTES = REPO / "docs" / "bench" / "feed-notes.md"  # the prose lives in docs/

# What each row changes from configs/local.yaml (the shipped default is the last row).
VARIANTS = {
    "CTR model, feed by click probability (before)": {"trainer.recommend_by": "click_probability"},
    "+ 4 sampled negatives per click, BPR, feed by click probability": {
        "trainer.recommend_by": "click_probability",
        "trainer.negatives": 4,
        "trainer.loss": "bpr",
    },
    "CTR model, feed by expected clicks (shipped)": {"trainer.recommend_by": "expected_clicks"},
}


def feed_scenario(work: Path) -> list[tuple[str, Measured]]:
    data = work / "clicklog"
    make_run_log(work, data)
    runs = []
    for n, (label, overrides) in enumerate(VARIANTS.items()):
        config, path = bench_config("configs/local.yaml", work, data, f"feed-{n}", **overrides)
        refused_or_pushed = (EXIT_OK, EXIT_REFUSED)  # a refused feed is a result here, not a failure
        runs.append((label, pipeline_run(f"feed {n}", config, path, work, exit_codes=refused_or_pushed)))
    return runs


def render_feed(runs: list[tuple[str, Measured]]) -> str:
    lines = [
        "## The feed users see (issue 16)",
        "",
        "`make run`'s click log (3 days x 70,000 synthetic events, seed 7; the newest span hash-split 80/20), "
        "`configs/local.yaml` with one change per row, each a fresh run root. AUC and NDCG@10 are the "
        "Evaluator's, over each user's logged impressions; the feed columns are the feed-quality gate's: each "
        "clicking user of the eval split gets the model's own `recommend` top-10 over the whole catalogue "
        "(minus what they clicked in training), scored against their clicks, beside the most-popular list.",
        "",
        "| model | AUC | NDCG@10 | feed NDCG@10 | feed Recall@10 | coverage | most popular NDCG@10 | lift | "
        "gate | Trainer s | run s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|",
    ]
    for label, run in runs:
        s = run.summary
        gates = {g.metric.split("@")[0]: g.value for g in s.gates}
        feed = s.feed.get("model", {})
        popular = s.feed.get("popularity", {}).get("ndcg")
        lift = feed.get("ndcg", 0) / popular if popular else float("nan")
        verdict = "pass" if (s.feed_gate or "").startswith("passed") else "refused"
        lines.append(
            f"| {label} | {gates.get('AUC', float('nan')):.4f} | {gates.get('NDCG', float('nan')):.4f} | "
            f"{feed.get('ndcg', float('nan')):.4f} | {feed.get('recall', float('nan')):.4f} | "
            f"{feed.get('coverage', float('nan')):.1%} | {popular or float('nan'):.4f} | {lift:.2f}x | {verdict} | "
            f"{s.node_seconds.get('Trainer', 0):.0f} | {run.seconds:.0f} |"
        )
    lines += ["", NOTES.read_text().strip(), ""]
    return "\n".join(lines)
