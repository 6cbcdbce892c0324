"""The benchmark report's bookkeeping: sections rerun alone keep the rest, memory is attributed by time."""

from __future__ import annotations

import os

from bench.benchmarks import ScaleRun, merge_sections, render_throughput
from bench.harness import Measured, tree_rss_mb
from pipeline.records.summary import RunSummary


def test_rerunning_one_section_keeps_the_others_and_their_order():
    first = merge_sections("", {"pipeline": "## Pipeline\nold runs", "workers": "## Workers\n1 worker"})
    second = merge_sections(first, {"scale": "## Scale\n1M", "pipeline": "## Pipeline\nnew runs"})
    assert "new runs" in second and "old runs" not in second
    assert "1 worker" in second and "1M" in second
    assert second.index("## Pipeline") < second.index("## Workers") < second.index("## Scale")
    assert merge_sections(second, {}) == second


def test_memory_is_attributed_to_the_component_running_at_the_time():
    summary = RunSummary(node_windows={"Transform": (10.0, 20.0), "Trainer": (20.0, 30.0)})
    samples = [(9.0, 100.0), (12.0, 900.0), (19.0, 800.0), (25.0, 400.0), (31.0, 50.0)]
    run = ScaleRun(1000, 10, 10, Measured("run", "recpipe run", 30.0, 950.0, summary), samples)
    assert run.peak_mb("Transform") == 900.0
    assert run.peak_mb("Trainer") == 400.0
    assert run.peak_mb("Evaluator") is None


def test_process_tree_memory_counts_this_process():
    assert 10 < tree_rss_mb(os.getpid()) < 64_000


def test_throughput_verdict_follows_the_ratio():
    figures = {
        "examples": 1000,
        "epochs": 3,
        "batch_size": 100,
        "ours_epoch_seconds": [5.0, 1.0, 1.0],
        "ours_no_strategy_epoch_seconds": [2.0, 0.5, 0.5],
        "steps_per_execution": 16,
        "ours_streaming_epoch_seconds": [2.0, 2.0, 2.0],
        "ours_disk_cache_epoch_seconds": [2.0, 0.8, 0.8],
        "in_memory_epoch_seconds": [2.0, 0.8, 0.8],
        "in_memory_keras_defaults_epoch_seconds": [2.0, 1.6, 1.6],
        "ours_examples_per_s": 1000.0,
        "ours_no_strategy_examples_per_s": 2000.0,
        "ours_streaming_examples_per_s": 500.0,
        "ours_disk_cache_examples_per_s": 1250.0,
        "in_memory_examples_per_s": 1250.0,
        "in_memory_keras_defaults_examples_per_s": 625.0,
    }
    text = render_throughput(figures, "test")
    assert "**0.80x** in-memory (goal >= 1.0x: NOT met)" in text
    assert "above the cache limit **1.00x** (met)" in text
    assert "1.60x" in text  # the input path alone, without the strategy
    assert "| 0.40x |" in text and "| 0.50x |" in text  # files every epoch; Keras at its defaults


def test_the_scale_table_names_what_limits_speed_at_the_largest_size():
    from bench.benchmarks import render_scale

    def run(events, trainer_s, evaluator_s):
        summary = RunSummary(
            node_windows={"Trainer": (0.0, trainer_s), "Evaluator": (trainer_s, trainer_s + evaluator_s)},
            node_seconds={"Trainer": trainer_s, "Evaluator": evaluator_s},
            split_counts={"train": events * 4 // 5, "eval": events // 5},
        )
        samples = [(1.0, 500.0), (trainer_s + 1.0, 900.0)]
        return ScaleRun(
            events,
            10,
            10,
            Measured("r", "recpipe run", trainer_s + evaluator_s + 10, 950.0, summary),
            samples,
        )

    text = render_scale([run(1000, 30.0, 10.0), run(10_000, 50.0, 150.0)])
    assert (
        "What limits speed at 10,000 events: Evaluator, 150 s (71% of the run's wall time), peak RSS 900 MB"
        in text
    )
    assert "| Trainer | 30.0 | 30000 | 500 | 50.0 | 5000 | 500 |" in text


def test_the_load_verdict_compares_the_whole_runs_peak_with_the_goal_and_names_the_heaviest_component():
    from bench.benchmarks import LOAD_GOAL_MB, render_load

    def run(peak_mb: float) -> ScaleRun:
        summary = RunSummary(
            node_windows={"Transform": (0.0, 10.0), "Evaluator": (10.0, 20.0)},
            node_seconds={"Transform": 10.0, "Evaluator": 10.0},
        )
        samples = [(5.0, peak_mb - 500.0), (15.0, peak_mb)]
        return ScaleRun(10_000_000, 10, 10, Measured("r", "recpipe run", 30.0, peak_mb, summary), samples)

    over = render_load([run(LOAD_GOAL_MB + 1.0)])
    assert "(goal <= 4,096 MB: NOT met); the largest component peak is Evaluator, 4,097 MB" in over
    assert "goal <= 4,096 MB: met)" in render_load([run(3000.0)])


def test_the_warm_start_table_judges_wall_time_and_quality_against_the_full_retrain():
    from bench import continuous as bc
    from pipeline.records.history import NightRecord

    def night(
        label: str, seconds: float, spans: list[int], auc: float, learn: float, timed: str = ""
    ) -> bc.Night:
        record = NightRecord(
            span=20240109,
            run_id=label,
            started="",
            seconds=seconds,
            status="pushed",
            train_spans=spans,
            epochs=2,
            auc=auc,
            ndcg=0.76,
            node_seconds={"Transform": learn / 2, "Trainer": learn / 2, "Evaluator": 50.0},
        )
        return bc.Night(label, Measured(label, "recpipe run", seconds, 1000.0), record, timed)

    week = list(range(20240102, 20240109))
    nights = [
        night("full night on days 1-7", 400.0, week, 0.84, 200.0),
        night("warm start on day 8", 110.0, [20240108], 0.85, 40.0, bc.WARM),
        night("full retrain on days 2-8", 400.0, week, 0.849, 200.0, bc.FULL),
    ]
    text = bc.render_warm_start(nights, bc.LARGE_DAYS, bc.LARGE_DAYS_TITLE)
    assert text.startswith(bc.LARGE_DAYS_TITLE)
    assert "300,000 events" in text
    assert "**0.28** (goal <= 0.3: met); Transform+Trainer only: 0.20" in text
    assert "AUC +0.12%" in text and "(goal within 1%: met)" in text
    nights[1] = night("warm start on day 8", 130.0, [20240108], 0.80, 40.0, bc.WARM)
    text = bc.render_warm_start(nights)
    assert text.startswith("## Warm start vs full retrain")
    assert "(goal <= 0.3: missed)" in text and "(goal within 1%: missed)" in text
    # Better than the full retrain by more than 1% loses no quality: the goal guards against a drop.
    nights[1] = night("warm start on day 8", 130.0, [20240108], 0.87, 40.0, bc.WARM)
    text = bc.render_warm_start(nights, bc.MILLION_DAYS, bc.MILLION_DAYS_TITLE)
    assert "1,000,000 events" in text
    assert (
        "AUC +2.47%" in text
        and "(goal within 1%: met, the warm-started model above the full retrain)" in text
    )
    # A second pair, timed in mirrored order: the ratio is over both, so one slow retrain cannot make the
    # goal; quality still compares the first pair's models (the second warm night starts from the retrain).
    nights[1] = night("warm start on day 8", 110.0, [20240108], 0.85, 40.0, bc.WARM)
    nights += [
        night("full retrain on days 2-8, run 2", 300.0, week, 0.5, 200.0, bc.FULL),
        night("warm start on day 8, run 2", 120.0, [20240108], 0.5, 40.0, bc.WARM),
    ]
    text = bc.render_warm_start(nights, bc.MILLION_DAYS, bc.MILLION_DAYS_TITLE)
    assert "over 2 runs of each (pair by pair: 0.28, 0.40): **0.33** (goal <= 0.3: missed)" in text
    assert "Transform+Trainer only: 0.20" in text
    assert "AUC +0.12%" in text and "(goal within 1%: met)" in text
    assert "then 1 more time(s) from scratch and warm-started" in text
    assert "| full retrain on days 2-8, run 2 |" in text
