"""The HTML report of one night: what it read, what stopped it or what it shipped, and the nights before.

One self-contained file (plots embedded as PNG data URIs) so it can be mailed, attached to a ticket or
served from a bucket without the images going missing. Rendered from the night's history record and the
records before it, so `recpipe report RUN` can re-render any past night.
"""

from __future__ import annotations

import base64
import html
import io

from components import storage
from pipeline.config import RecpipeConfig
from pipeline.records.history import STATUSES, NightRecord, latest_per_span, read_history

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:60rem;
color:#1d2430;line-height:1.45;padding:0 1rem}
h1{font-size:1.6rem;margin-bottom:.2rem} h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #dde;
padding-bottom:.2rem} table{border-collapse:collapse;margin:.5rem 0} td,th{padding:.25rem .7rem;
border-bottom:1px solid #e5e7ef;text-align:left} th{background:#f4f6fa} td.num{text-align:right;
font-variant-numeric:tabular-nums} .badge{display:inline-block;padding:.15rem .6rem;border-radius:1rem;
font-weight:600;color:#fff} .pushed{background:#1a7f37} .warn{background:#b35900} .stop{background:#c62828}
.muted{color:#667} pre{background:#f6f7f9;padding:.7rem;white-space:pre-wrap;font-size:.85rem}
img{max-width:100%}
"""


def _badge(status: str) -> str:
    kind = "pushed" if status == "pushed" else ("warn" if status in ("not blessed", "not pushed") else "stop")
    return f'<span class="badge {kind}">{html.escape(status)}</span>'


def _fmt(value, digits: int = 4) -> str:
    if value is None:
        return '<span class="muted">-</span>'
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return html.escape(str(value))


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{h}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def history_plot(records: list[NightRecord]) -> str | None:
    """AUC and NDCG of every evaluated night (with their bars and baselines), and the feed's NDCG beside
    the most-popular list's, as a PNG data URI."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = [r for _, r in sorted(latest_per_span(records).items())]
    if not points:
        return None
    labels = [str(r.span) for r in points]
    fig, axes = plt.subplots(1, 3, figsize=(15, 3.6), sharex=True)
    for ax, metric, title in ((axes[0], "auc", "AUC"), (axes[1], "ndcg", "NDCG@k")):
        values = [getattr(r, metric) for r in points]
        xs = list(range(len(points)))
        ax.plot(xs, [v if v is not None else float("nan") for v in values], "o-", label="candidate")
        baselines = [getattr(r, f"{metric}_baseline") for r in points]
        ax.plot(
            xs, [b if b is not None else float("nan") for b in baselines], "s--", alpha=0.7, label="baseline"
        )
        bars = [getattr(r, f"{metric}_bar") for r in points]
        ax.step(
            xs,
            [b if b is not None else float("nan") for b in bars],
            where="mid",
            color="grey",
            lw=1,
            label="bar",
        )
        pushed = [(x, getattr(r, metric)) for x, r in zip(xs, points, strict=True) if r.status == "pushed"]
        if pushed:
            ax.plot(*zip(*pushed, strict=True), "*", color="#1a7f37", markersize=13, label="pushed")
        for x, r in zip(xs, points, strict=True):
            if getattr(r, metric) is None:
                ax.axvspan(x - 0.4, x + 0.4, color="#c62828", alpha=0.12)
                ax.annotate(
                    r.status,
                    (x, 0.5),
                    xycoords=("data", "axes fraction"),
                    ha="center",
                    fontsize=8,
                    rotation=90,
                    color="#c62828",
                )
        ax.set_title(title)
        ax.set_xticks(xs, labels, rotation=45, ha="right", fontsize=8)
        ax.grid(alpha=0.3)
    feed = axes[2]
    for attribute, style, label in (
        ("feed_ndcg", "o-", "candidate"),
        ("feed_ndcg_baseline", "s--", "baseline"),
        ("feed_ndcg_popularity", "^:", "most popular"),
    ):
        values = [getattr(r, attribute) for r in points]
        feed.plot(xs, [v if v is not None else float("nan") for v in values], style, label=label)
    k = next((r.feed_k for r in points if r.feed_k), None)
    feed.set_title(f"feed NDCG@{k or 'K'} (whole catalogue)")
    feed.set_xticks(xs, labels, rotation=45, ha="right", fontsize=8)
    feed.grid(alpha=0.3)
    feed.legend(fontsize=8, loc="lower left")
    axes[0].legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=96)
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def render(record: NightRecord, earlier: list[NightRecord]) -> str:
    gates = []
    for name, value, bar, baseline in (
        ("AUC", record.auc, record.auc_bar, record.auc_baseline),
        ("NDCG@k", record.ndcg, record.ndcg_bar, record.ndcg_baseline),
    ):
        if value is None:
            continue
        delta = f"{value - baseline:+.4f}" if baseline is not None else "-"
        gates.append([name, _fmt(value), _fmt(bar), _fmt(baseline), delta])
    if record.feed_ndcg is not None:
        base = record.feed_ndcg_baseline
        delta = f"{record.feed_ndcg - base:+.4f}" if base is not None else "-"
        bar = f"most popular {_fmt(record.feed_ndcg_popularity)}"
        gates.append([f"feed NDCG@{record.feed_k}", _fmt(record.feed_ndcg), bar, _fmt(base), delta])
    sections = [
        f"<h1>recpipe night {record.span} {_badge(record.status)}</h1>",
        f'<p class="muted">run {html.escape(record.run_id)}, started {html.escape(record.started)} UTC, '
        f"{record.seconds:.0f} s. {html.escape(STATUSES.get(record.status, ''))}.</p>",
        "<h2>Plan</h2>",
        f"<p>{html.escape(record.plan or '-')}</p>",
        "<h2>Data (newest span)</h2>",
        _table(
            ["events", "clicks", "users", "items", "new users", "new items"],
            [
                [
                    _fmt(v)
                    for v in (
                        record.events,
                        record.clicks,
                        record.users,
                        record.items,
                        record.new_users,
                        record.new_items,
                    )
                ]
            ],
        ),
        "<h2>Anomalies and drift</h2>",
    ]
    findings = record.anomalies + record.drift
    sections.append(
        "<ul>" + "".join(f"<li>{html.escape(a)}</li>" for a in findings) + "</ul>"
        if findings
        else "<p>None: the span matches the schema and did not drift from the previous one.</p>"
    )
    if record.drift_not_compared:
        sections.append(f"<p>Drift gate: {html.escape(record.drift_not_compared)}.</p>")
    sections.append("<h2>Gates</h2>")
    if gates:
        sections.append(_table(["metric", "candidate", "bar", "baseline", "vs baseline"], gates))
        decision = "blessed" if record.blessed else "not blessed"
        sections.append(
            f"<p>Evaluator: <b>{decision}</b>. Feed quality: {_fmt(record.feed_gate)}. "
            f"Serving check: {_fmt(record.serving_check)}.</p>"
        )
    else:
        sections.append("<p>No model was evaluated tonight.</p>")
    sections.append("<h2>Pushed</h2>")
    sections.append(
        f"<p>version <b>{record.pushed_version}</b> at <code>{html.escape(record.pushed_path or '')}</code></p>"
        if record.pushed_version
        else "<p>Nothing was pushed; the model being served is unchanged.</p>"
    )
    if record.failure:
        sections += ["<h2>What stopped the night</h2>", f"<pre>{html.escape(record.failure)}</pre>"]
    plot = history_plot(earlier + [record])
    if plot:
        sections += ["<h2>Metric history</h2>", f'<img alt="AUC and NDCG per night" src="{plot}">']
    if record.node_seconds:
        rows = [
            [html.escape(n), f"{s:.1f}"]
            for n, s in sorted(record.node_seconds.items(), key=lambda kv: -kv[1])
        ]
        sections += ["<h2>Seconds per component</h2>", _table(["component", "s"], rows)]
    body = "\n".join(sections)
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>recpipe {record.span} '
        f"{html.escape(record.status)}</title><style>{_STYLE}</style></head><body>{body}</body></html>"
    )


def write_report(config: RecpipeConfig, record: NightRecord) -> str:
    """Render the record's report next to it (with the history up to it) and return the path."""
    earlier = [r for r in read_history(config) if r.run_id < record.run_id]
    path = storage.join(config.history_dir, f"{record.name}.html")
    storage.write_text_atomic(path, render(record, earlier))
    return path
