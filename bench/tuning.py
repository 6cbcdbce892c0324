"""The settings behind configs/movielens-implicit.yaml and configs/bench-quality.yaml, searched on a validation
split so the protocols' test sets are never looked at: the NCF leave-one-out split's training part is split
again the same way (each user's latest training rating held out among 99 unrated items). Every model gets a
fixed budget: a handful of settings, one fit each, the same split and metric code as `bench-quality`.

usage: python -m bench.benchmarks --only tuning --movielens ML_PATH
"""

from __future__ import annotations

import json
from pathlib import Path

import click
import yaml

from bench.harness import REPO
from bench.quality import (
    Bpr,
    Ease,
    PipelineModel,
    QualityConfig,
    Result,
    evaluate,
    leave_one_out,
    load_quality_config,
)
from pipeline.config import load_config
from pipeline.data.movielens import read_genres, read_ratings

QUALITY_CONFIG = "configs/bench-quality.yaml"
# One change each from configs/movielens-implicit.yaml (the first row is the file as it is). The file's
# settings came from a joint search (larger embeddings with a higher learning rate and less L2); the rows
# around it show that no single step away from it is better.
NEUMF = {
    "as shipped": {},
    "32/32 dims, layers [64, 32, 16]": {
        "trainer.gmf_dim": 32,
        "trainer.mlp_dim": 32,
        "trainer.mlp_layers": [64, 32, 16],
    },
    "128/128 dims, layers [256, 128, 64]": {
        "trainer.gmf_dim": 128,
        "trainer.mlp_dim": 128,
        "trainer.mlp_layers": [256, 128, 64],
    },
    "learning_rate 0.001": {"trainer.learning_rate": 0.001},
    "learning_rate 0.004": {"trainer.learning_rate": 0.004},
    "l2 1e-4": {"trainer.l2": 1e-4},
    "l2 0": {"trainer.l2": 0.0},
    "epochs 20": {"trainer.epochs": 20},
    "loss softmax, 20 negatives": {"trainer.loss": "softmax", "trainer.negatives": 20},
}
EASE_LAMBDAS = (50.0, 100.0, 250.0, 500.0, 1000.0)
BPR = {
    "as shipped": {},
    "factors 64 (before)": {"factors": 64},
    "factors 256": {"factors": 256},
    "learning_rate 0.1": {"learning_rate": 0.1},
    "reg 0.001": {"reg": 0.001},
}


def _neumf_settings(base: QualityConfig, work: Path, name: str, overrides: dict) -> QualityConfig:
    """The quality settings with a pipeline config that differs from the shipped one by `overrides`."""
    config = load_config(REPO / base.pipeline_config).with_overrides(**overrides)
    path = work / f"neumf-{name.replace(' ', '_').replace('/', '-').replace(',', '')}.yaml"
    path.write_text(yaml.safe_dump(config.model_dump()))
    return base.model_copy(update={"pipeline_config": str(path)})


def tune(ratings, genres, work: Path, base: QualityConfig, echo=click.echo) -> list[tuple[str, str, Result]]:
    outer = leave_one_out(ratings, base.ncf_negatives, base.seed)
    validation = leave_one_out(outer.train, base.ncf_negatives, base.seed + 1)
    rows = []

    def record(family: str, setting: str, model) -> None:
        result = evaluate(validation, model, base.k)
        rows.append((family, setting, result))
        echo(json.dumps({"model": family, "setting": setting, **result.metrics, "fit_s": result.fit_seconds}))

    for lam in EASE_LAMBDAS:
        record("EASE", f"lambda {lam:g}", Ease(lam))
    for name, change in BPR.items():
        record("BPR-MF", name, Bpr(base.bpr.model_copy(update=change), base.seed))
    for n, (name, overrides) in enumerate(NEUMF.items()):
        settings = _neumf_settings(base, work, name, overrides)
        record("recpipe NeuMF", name, PipelineModel(work / f"neumf-{n}", settings, genres, REPO))
    return rows


def render_tuning(rows: list[tuple[str, str, Result]], users: int) -> str:
    lines = [
        "## Tuning on a validation split (issue 16)",
        "",
        "The NCF leave-one-out split's training part split again the same way: each of its "
        f"{users:,} users' latest training rating ranked among 99 items they never rated; the test sets of "
        "`bench-quality` are not used. One fit per setting, each a single change from the shipped file; "
        "fit s for NeuMF is the whole pipeline run.",
        "",
        "| model | setting | HR@10 | NDCG@10 | fit s |",
        "|---|---|---:|---:|---:|",
    ]
    for family, setting, r in rows:
        lines.append(
            f"| {family} | {setting} | {r.metrics['hr']:.4f} | {r.metrics['ndcg']:.4f} | "
            f"{r.fit_seconds:.0f} |"
        )
    return "\n".join(lines) + "\n"


def tuning_section(work: Path, movielens: Path) -> str:
    ratings = read_ratings(str(movielens))
    genres = read_genres(movielens if movielens.is_dir() else movielens.parent)
    rows = tune(ratings, genres, work, load_quality_config(REPO / QUALITY_CONFIG))
    return render_tuning(rows, rows[0][2].users)
