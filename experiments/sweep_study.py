#!/usr/bin/env python
"""The JTCSE sensitivity study (docs/sweep.md, "The sensitivity study"): ``jtcse sweep`` over the method's own
hyperparameters and four SimCSE ones on MiniLM towers, then the best and the published settings retrained
with three seeds and scored on the 7 STS test sets; the report is copied to ``experiments/results/sweep/``.

    python experiments/sweep_study.py                      # 40 trials, 2 workers: about 2 h on 2 CPU cores
    python experiments/sweep_study.py --collect-only       # copy the report of a finished run again

The runs (one model per trial) stay in ``--runs-dir`` (git-ignored); rerunning continues the study.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from jtcse.pipeline.sweep.run import threads_per_worker

REPO_ROOT = Path(__file__).resolve().parents[1]
SPACE = REPO_ROOT / "experiments" / "sweep_space.toml"
COPIED = ("sweep.md", "sweep.json", "best.toml", "confirm.md", "confirm.json", "figures")


def sweep_argv(args: argparse.Namespace) -> list[str]:
    """The study's ``jtcse sweep`` command: 30 steps a trial, STS-B dev every 10 (the pruner's readings)."""
    sets = {
        "model.tower_a": "minilm",
        "model.tower_b": "minilm",
        "data.data_dir": args.data_dir,
        "data.max_sentences": "6400",
        "data.max_len": "32",
        "train.max_steps": "30",
        "eval.every": "10",
    }
    argv = ["jtcse", "sweep", "jtcse-minilm", "--space", str(SPACE.relative_to(REPO_ROOT))]
    argv += ["--trials", str(args.trials), "--workers", str(args.workers), "--seed", "0"]
    argv += ["--objective", "stsb-dev", "--sampler", "tpe", "--pruner", "median"]
    for key, value in sets.items():
        argv += ["--set", f"{key}={value}"]
    return [*argv, "--output-dir", str(args.runs_dir), "--confirm-seeds", "1,2,3"]


def budget(out: Path, workers: int, cores: int) -> list[str]:
    """Trials by state and the CPU hours spent: trial durations x their threads, confirmation runs x cores."""
    trials = json.loads((out / "sweep.json").read_text(encoding="utf-8"))["trials"]
    states = {s: sum(t["state"] == s for t in trials) for s in ("complete", "pruned", "fail")}
    threads = threads_per_worker(workers)  # what --workers gave each worker
    trial_h = sum(t["duration_s"] or 0.0 for t in trials) * threads / 3600
    confirm = json.loads((out / "confirm.json").read_text(encoding="utf-8"))
    runs = [s for name in ("best", "base") for s in confirm[name]["seconds"]]
    confirm_h = sum((r["train"] or 0.0) + r["eval"] for r in runs) * cores / 3600
    return [
        f"- trials: {len(trials)} ({states['complete']} complete, {states['pruned']} pruned, "
        f"{states['fail']} failed), {workers} workers of {threads} thread(s) on {cores} cores",
        f"- CPU hours (core-hours): {trial_h:.2f} in trials, {confirm_h:.2f} in the {len(runs)} confirmation "
        f"runs (training and the 7 STS test sets), {trial_h + confirm_h:.2f} in all",
    ]


def collect(args: argparse.Namespace) -> None:
    out, results = args.runs_dir, args.results_dir
    results.mkdir(parents=True, exist_ok=True)
    for name in COPIED:
        source = out / name
        if source.is_dir():
            shutil.copytree(source, results / name, dirs_exist_ok=True)
        elif source.is_file():
            shutil.copy2(source, results / name)
        else:
            raise SystemExit(f"{source}: missing; has the study (and its --confirm-seeds) finished?")
    from jtcse.tools.cpu import describe_cpu

    cores = len(os.sched_getaffinity(0))
    lines = ["# JTCSE sensitivity study: the run", "", "Reproduce (from the repository root):", "", "```"]
    lines += [shlex.join(sweep_argv(args)), "```", "", describe_cpu(), ""]
    lines += [*budget(out, args.workers, cores), "", "What it shows and what it cannot: docs/sweep.md.", ""]
    (results / "run.md").write_text("\n".join(lines), encoding="utf-8")
    print(f"report copied to {results}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default="../shared/data")
    parser.add_argument("--runs-dir", type=Path, default=Path("runs/sweep_jtcse_minilm"))
    parser.add_argument("--results-dir", type=Path, default=REPO_ROOT / "experiments/results/sweep")
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--collect-only", action="store_true", help="copy the finished run's report only")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if not args.collect_only:
        print("$", shlex.join(sweep_argv(args)), file=sys.stderr)
        subprocess.run(sweep_argv(args), check=True)
    collect(args)


if __name__ == "__main__":
    main()
