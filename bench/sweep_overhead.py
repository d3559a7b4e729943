"""The overhead of `jtcse sweep` itself: the same trials as a sweep and as plain training runs in a row.

The sweep (one worker, SQLite storage in its folder, heartbeats, the median pruner's checks at every
evaluation but a pruner that never stops a trial, so both sides do the same training) trains ``--trials``
trials; then the very same configurations (the parameters the sweep drew) are trained one after another
with :func:`jtcse.training.trainer.train`, what `jtcse train` runs. Each side runs in its own fresh process,
timed after its imports, and ``--repeats`` rounds alternate which side goes first. The report (sweep.md,
figures) is a one-off cost at the end of a sweep and is timed separately.

The model is a tiny random BERT (the tests' fixture shape) on the first Wiki sentences of the shared data,
so a trial takes seconds: the overhead share measured here is an upper bound of a real sweep's, whose
trials train for minutes. Goal: sweep / plain <= 1.05. Printed: CPU model and flags, threads, the load, and
last the ratio alone: the fastest round of each side (the one least slowed by other work on a shared
machine); the medians and the process CPU time ratio are printed above it. Usage::

    python bench/sweep_overhead.py --data-dir ../shared/data       # 10 trials x 20 steps, 3 rounds
    python bench/sweep_overhead.py --trials 8 --steps 40
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

GOAL = 1.05
SPACE = '["train.lr"]\ntype = "float"\nlow = 1e-5\nhigh = 1e-3\nlog = true\n'


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    # 10: TPE's first 10 trials are random, so no real sweep is shorter; the start weighs 1/N per trial
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--steps", type=int, default=20, help="training steps per trial")
    parser.add_argument("--eval-every", type=int, default=5, help="dev evaluations (pruner reports) every N")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of each trial")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data-dir", help="STS and Wiki data (default: jtcse's usual lookup, $JTCSE_DATA)")
    parser.add_argument("--side", choices=("sweep", "plain"), help=argparse.SUPPRESS)  # one timed side
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="the smallest real run (2 trials x 4 steps, one round): the tests'",
    )
    args = parser.parse_args(argv)
    if args.smoke:
        args.trials, args.steps, args.eval_every, args.repeats = 2, 4, 2, 1
    return args


def _setup(work: Path, args: argparse.Namespace) -> tuple[Path, Path]:
    """A tiny random BERT, 64 Wiki sentences, the STS-B dev set; the base config and the space file."""
    import torch
    import yaml
    from transformers import AutoTokenizer, BertConfig, BertModel

    from jtcse.data.paths import resolve_data_dir, wiki_corpus_path
    from jtcse.model.names import packaged_model_dir

    data = resolve_data_dir(args.data_dir, need="sts", download=False)
    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(packaged_model_dir("minilm"))
    shape = dict(hidden_size=32, num_hidden_layers=4, num_attention_heads=4, intermediate_size=64)
    BertModel(BertConfig(vocab_size=tokenizer.vocab_size, **shape)).save_pretrained(work / "model")
    tokenizer.save_pretrained(work / "model")
    wiki = wiki_corpus_path(data)
    if wiki is None:
        raise SystemExit(f"no Wiki sentences under {data}/unsup")
    with wiki.open(encoding="utf-8") as fh:
        (work / "corpus.txt").write_text("".join(next(fh) for _ in range(64)), encoding="utf-8")
    config = {
        "method": "simcse",
        "model": {"base": str(work / "model")},
        "data": {"corpus": str(work / "corpus.txt"), "data_dir": str(data), "max_len": 32},
        "train": {"max_steps": args.steps, "batch_size": 16, "save_every": 0, "threads": args.threads,
                  "device": "cpu", "progress": False, "log_every": 5},
        "eval": {"every": args.eval_every, "batch_size": 128},
    }  # fmt: skip
    (work / "base.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    (work / "space.toml").write_text(SPACE, encoding="utf-8")
    return work / "base.yaml", work / "space.toml"


def _options(work: Path, args: argparse.Namespace, out: Path):  # -> SweepOptions
    from jtcse.pipeline.sweep.run import SweepOptions

    return SweepOptions(
        work / "base.yaml", work / "space.toml", out, trials=args.trials, sampler="random", seed=0,
        pruner="median", pruner_startup=10**6, threads=args.threads, worker_index=0,
    )  # fmt: skip


def time_side(args: argparse.Namespace) -> dict[str, float]:
    """In this process: the sweep's trials (worker mode: no report) or the same configs as plain runs."""
    import optuna  # imported outside the timing, on both sides

    from jtcse.pipeline.sweep.run import prepare, run_sweep
    from jtcse.training.trainer import train

    work = args.workdir
    if args.side == "sweep":
        from jtcse.pipeline.sweep.storage import open_storage

        out = work / f"sweep-{time.time_ns()}"
        started, cpu = time.perf_counter(), time.process_time()
        # the worker's start, timed on its own: the storage's modules (SQLAlchemy, Alembic), its tables;
        # run_sweep then opens it again (cached modules, existing tables: milliseconds, counted twice)
        open_storage(prepare(_options(work, args, out))[1])
        start_s = time.perf_counter() - started
        run_sweep(_options(work, args, out), say=lambda _line: None)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        from jtcse.pipeline.sweep.report import write_report

        study = optuna.load_study(study_name="base", storage=f"sqlite:///{out / 'sweep.db'}")
        started = time.perf_counter()
        setup, url = prepare(_options(work, args, out))
        write_report(study, setup, url)
        params = [t.params for t in study.get_trials()]
        (work / "params.json").write_text(json.dumps(params), encoding="utf-8")
        report_s = time.perf_counter() - started
        return {"seconds": seconds, "cpu_s": cpu, "start_s": start_s, "report_s": report_s}
    params = json.loads((work / "params.json").read_text(encoding="utf-8"))
    setup, _ = prepare(_options(work, args, work / "plain-setup"))
    started, cpu = time.perf_counter(), time.process_time()
    for i, values in enumerate(params):
        config = setup.config(values, output_dir=work / f"plain-{time.time_ns()}-{i}")
        config.train.progress = False
        train(config)
    return {"seconds": time.perf_counter() - started, "cpu_s": time.process_time() - cpu}


def _run_side(side: str, args: argparse.Namespace, work: Path) -> dict[str, float]:
    argv = [sys.executable, __file__, "--side", side, "--workdir", str(work), "--trials", str(args.trials),
            "--steps", str(args.steps), "--eval-every", str(args.eval_every),
            "--threads", str(args.threads)]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _rounds(args: argparse.Namespace, work: Path) -> dict[str, list[dict[str, float]]]:
    """Each side once per round, the order alternating; the first sweep (unmeasured) draws the parameters."""
    _run_side("sweep", args, work)
    results: dict[str, list[dict[str, float]]] = {"sweep": [], "plain": []}
    for round_ in range(args.repeats):
        for side in ("sweep", "plain") if round_ % 2 else ("plain", "sweep"):
            results[side].append(_run_side(side, args, work))
    return results


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.side:
        print(json.dumps(time_side(args)))
        return
    from jtcse.tools.cpu import describe_cpu

    with tempfile.TemporaryDirectory(prefix="jtcse-sweep-bench-") as tmp:
        work = Path(tmp)
        _setup(work, args)
        results = _rounds(args, work)
    walls = {side: [r["seconds"] for r in rs] for side, rs in results.items()}
    cpus = {side: [r["cpu_s"] for r in rs] for side, rs in results.items()}
    print(describe_cpu())
    print(f"torch threads per trial: {args.threads}; load average now: {os.getloadavg()[0]:.2f} "
          "(a shared machine: other work in the same seconds slows either side)")  # fmt: skip
    print(f"{args.trials} trials x {args.steps} steps, dev every {args.eval_every}, {args.repeats} rounds")
    for side, label in (
        ("plain", "plain train() one after another"),
        ("sweep", "jtcse sweep, 1 worker, SQLite"),
    ):
        rounds = ", ".join(f"{w:.2f}" for w in walls[side])
        print(f"{label}: wall min {min(walls[side]):.2f} s, median {statistics.median(walls[side]):.2f} s "
              f"(rounds {rounds}); process CPU median {statistics.median(cpus[side]):.2f} s")  # fmt: skip
    start = statistics.median(r["start_s"] for r in results["sweep"])
    per_trial = (statistics.median(walls["sweep"]) - statistics.median(walls["plain"]) - start) / args.trials
    print(f"of the sweep's extra time (medians): worker start (storage modules, tables, study) {start:.2f} s "
          f"once, then {per_trial * 1000:.0f} ms per trial (claim, heartbeat, "
          f"{args.steps // args.eval_every} pruner reports and checks, tell)")  # fmt: skip
    reports = [r["report_s"] for r in results["sweep"]]
    print(
        f"report at the end (sweep.md, figures), once: {statistics.median(reports):.2f} s, not in the ratio"
    )
    cpu_ratio = statistics.median(cpus["sweep"]) / statistics.median(cpus["plain"])
    median_ratio = statistics.median(walls["sweep"]) / statistics.median(walls["plain"])
    print(
        f"sweep / plain: process CPU {cpu_ratio:.3f}, wall median {median_ratio:.3f}; wall min: the last line"
    )
    print(f"goal: sweep / plain <= {GOAL:.2f}")
    print(f"{min(walls['sweep']) / min(walls['plain']):.3f}")


if __name__ == "__main__":
    main()
