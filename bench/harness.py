"""What every bench scenario shares: run the real CLI in a child process, read its peak RSS, and read what
the run decided from MLMD."""

from __future__ import annotations

import glob
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import click
import yaml
from tfx.types import artifact_utils, standard_artifacts

from pipeline import nodes
from pipeline.config import RecpipeConfig, load_config, resolve_paths
from pipeline.records.summary import RunSummary, summarize

REPO = Path(__file__).resolve().parents[1]
RECPIPE = [sys.executable, "-m", "pipeline.cli"]
SAMPLE_S = 0.25


def relative(arg: str) -> str:
    return os.path.relpath(arg, REPO) if arg.startswith("/") else arg


@dataclass
class Measured:
    label: str
    command: str
    seconds: float
    peak_rss_mb: float
    summary: RunSummary | None = None
    log: Path | None = None


def tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and all its descendants (the trainer may run workers as children)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        todo += children.get(current, [])
        try:
            total += int(Path(f"/proc/{current}/statm").read_text().split()[1])
        except OSError:
            continue
    return total * os.sysconf("SC_PAGE_SIZE") / 2**20


def run_measured(
    label: str, args: list[str], log: Path, samples: list | None = None, exit_codes: tuple[int, ...] = (0,)
) -> Measured:
    """Run a command to the end, reading its peak RSS from wait4; with `samples`, also append
    (time, process-tree RSS MB) every SAMPLE_S so memory can be attributed to pipeline components."""
    started = time.time()
    with open(log, "w") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, cwd=REPO)
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if samples is not None:
                samples.append((time.time(), tree_rss_mb(proc.pid)))
            time.sleep(SAMPLE_S)
    seconds = time.time() - started
    if os.waitstatus_to_exitcode(status) not in exit_codes:
        tail = "".join(open(log).readlines()[-15:])
        raise click.ClickException(f"{label} failed (log {log}):\n{tail}")
    shown = " ".join(shlex.quote(relative(a)) for a in ["recpipe", *args[len(RECPIPE) :]])
    return Measured(label, shown, seconds, usage.ru_maxrss / 1024, log=log)


def bench_config(base: str, work: Path, data: Path, name: str, **overrides) -> tuple[RecpipeConfig, Path]:
    config = load_config(REPO / base).with_overrides(
        **{
            "run_root": str(work / "runs" / name),
            "data.root": str(data),
            "serving.root": str(work / "serving"),
            **overrides,
        },
    )
    config = resolve_paths(config, REPO)
    path = work / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config.model_dump()))
    return config, path


def pipeline_run(
    label: str,
    config: RecpipeConfig,
    config_path: Path,
    work: Path,
    samples: list | None = None,
    exit_codes: tuple[int, ...] = (0,),
) -> Measured:
    """`recpipe run` as a user runs it; `exit_codes`: the outcomes the scenario expects (4: a gate refused)."""
    since = int(time.time() * 1000)
    m = run_measured(
        label,
        [*RECPIPE, "run", "--config", str(config_path)],
        work / f"{label.replace(' ', '_').replace(',', '')}.log",
        samples,
        exit_codes,
    )
    m.summary = summarize(config, since)
    m.command = f"recpipe run --config {config_path.name}"
    return m


def newest_training_input(pipeline_root: str | Path) -> tuple[str, str]:
    """(transform graph, examples) folders the Trainer of a run's newest night read: Transform's graph and
    ExampleGen's examples, which the Trainer puts through that graph (Transform materializes nothing)."""
    newest = {}
    for node, output in ((nodes.TRANSFORM, "transform_graph"), (nodes.EXAMPLE_GEN, "examples")):
        newest[output] = sorted(glob.glob(os.path.join(str(pipeline_root), node, output, "*")))[-1]
    return newest["transform_graph"], newest["examples"]


def split_files(examples_dir: str, split: str) -> list[str]:
    """The file pattern of one split of an Examples folder (TFX names the split folders)."""
    examples = standard_artifacts.Examples()
    examples.uri = examples_dir
    examples.split_names = artifact_utils.encode_split_names([split])
    return [os.path.join(artifact_utils.get_split_uri([examples], split), "*")]


def generate_day(
    label: str,
    work: Path,
    data: Path,
    events: int,
    users: int,
    items: int,
    seed: int,
    extra: tuple[str, ...] = (),
) -> Measured:
    """One synthetic day of `events` events with the given population, under `data`."""
    args = ["generate", "--out", str(data), "--days", "1", "--events-per-day", str(events)]
    args += ["--users", str(users), "--items", str(items), "--seed", str(seed), *extra]
    return run_measured(label, [*RECPIPE, *args], work / f"{label.replace(' ', '-').replace(',', '')}.log")


def make_run_log(work: Path, data: Path, log_name: str = "generate.log") -> Measured:
    """`make run`'s click log (the Makefile's generate: 3 days x 70,000 events, seed 7) under `data`."""
    args = ["generate", "--out", str(data), "--days", "3", "--events-per-day", "70000", "--seed", "7"]
    return run_measured("generate", [*RECPIPE, *args], work / log_name)
