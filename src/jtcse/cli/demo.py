"""`jtcse demo`: the whole pipeline on the embedded default encoder, sized for a 2-core CPU.

1. evaluate the start (all-MiniLM-L6-v2, read with the CLS pooler the trained model will use) on the 7 STS
   tasks;
2. train two short unsupervised-SimCSE runs from it (two seeds: the two towers, stage 1);
3. train a JTCSE twin tower from those two (stage 2: cross-attention + modulus constraint);
4. evaluate the twin tower (sum of the two towers' CLS vectors) on the 7 STS tasks and print both tables.

Steps 2-4 are stages of the pipeline runner (:mod:`jtcse.pipeline.runner`), the one ``jtcse reproduce
jtcse-bert`` runs at paper size: the demo is that pipeline at demo size, from MiniLM.

The default size (a few hundred Wiki sentences per stage) finishes in about 10 minutes on 2 CPU cores; it
shows the pipeline working end to end, not the paper's numbers (those need the full recipe on a GPU).
``--sentences``/``--batch-size``/``--max-len`` make it longer.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from jtcse.benchmark import TASKS, md_table, short_name
from jtcse.cli.options import MAX_COUNT, float_range, int_range, positive_int, tokens_int
from jtcse.errors import JtcseError
from jtcse.fs import atomic_write_text

MARKER = ".jtcse-demo"

batch_of_two = int_range(2, MAX_COUNT, what="a batch size (the negatives come from the batch)")
learning_rate = float_range(0.0, 1.0, low_open=True)
layer_count = int_range(0, 1024, what="a layer count")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="train SimCSE x2 -> JTCSE from the default encoder and compare 7-task STS before/after",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument("--model", default="minilm", help="the starting encoder (default: minilm, offline)")
    parser.add_argument("--output-dir", default="runs/demo", help="where the runs go (default runs/demo)")
    parser.add_argument("--data-dir", default=None, help="data directory (default: the usual lookup order)")
    parser.add_argument(
        "--sentences", type=positive_int, default=320, help="Wiki sentences per stage (default 320)"
    )
    parser.add_argument("--batch-size", type=batch_of_two, default=32, help="sentences per step (default 32)")
    parser.add_argument("--max-len", type=tokens_int, default=32, help="training max tokens (default 32)")
    parser.add_argument(
        "--lr-simcse", type=learning_rate, default=3e-5, help="stage-1 learning rate (default 3e-5)"
    )
    parser.add_argument(
        "--lr-jtcse",
        type=learning_rate,
        default=5e-6,
        help="stage-2 learning rate (default 5e-6; the official 1.3e-6 is tuned for ~15k steps)",
    )
    parser.add_argument(
        "--num-ca-layers", type=layer_count, default=3, help="cross-attention layers (default 3)"
    )
    parser.add_argument(
        "--tasks", nargs="+", default=None, metavar="TASK", help="STS tasks to evaluate (default: all 7)"
    )
    parser.add_argument("--skip-start-eval", action="store_true", help="don't evaluate the start model")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from jtcse.data.paths import resolve_data_dir
    from jtcse.pipeline.runner import evaluate_model, run_stages

    _check_sizes(args)
    data_dir = resolve_data_dir(args.data_dir, need="sts")
    out = _prepare_output_dir(Path(args.output_dir), args.model, data_dir)
    tasks = _resolve_tasks(args.tasks)
    started = time.perf_counter()
    timings: dict[str, float] = {}
    tables: dict[str, Any] = {}

    _say(f"data: {data_dir}  output: {out}")
    if not args.skip_start_eval:
        _say("evaluating the start model on the STS tasks")
        _, scores, timings["eval start"] = evaluate_model(
            args.model,
            data_dir=data_dir,
            tasks=tasks,
            dev=False,
            pooler="cls_before_pooler",
            progress=not args.quiet,
        )
        tables["start"] = {"label": "start", "scores": scores}

    stages = _stages(args, data_dir, out, tasks)
    outcome = run_stages(
        stages, announce=lambda _, stage: _say(stage.name), after=lambda _, r: _done(r, timings)
    )
    if outcome.interrupted:
        raise KeyboardInterrupt
    twin = outcome.results[-1]
    tables["jtcse"] = {"label": "JTCSE twin tower", "scores": twin.test}
    timings["eval jtcse"] = twin.eval_s
    timings["total"] = time.perf_counter() - started

    summary = {
        "tables": tables,
        "seconds": {k: round(v, 1) for k, v in timings.items()},
        "settings": {k: v for k, v in vars(args).items() if k != "func"},
    }
    atomic_write_text(out / "demo_summary.json", json.dumps(summary, indent=2) + "\n")
    print()
    print(_comparison(tables))
    print()
    print("time: " + ", ".join(f"{k} {v:.0f}s" for k, v in timings.items()))
    print(
        f"models: {out / 'jtcse'} (twin tower), {out / 'simcse_a'}, {out / 'simcse_b'}; summary: "
        f"{out / 'demo_summary.json'}"
    )
    return 0


def _check_sizes(args: argparse.Namespace) -> None:
    for name in ("sentences", "batch_size", "max_len"):
        if getattr(args, name) < 1:
            raise JtcseError(f"--{name.replace('_', '-')} must be >= 1")
    if args.sentences < 2 * args.batch_size:
        raise JtcseError(
            f"--sentences {args.sentences}: need at least two batches of --batch-size {args.batch_size}"
        )


def _resolve_tasks(tasks: list[str] | None) -> list[str]:
    from jtcse.evaluation.sts import resolve_tasks

    return resolve_tasks(tasks, "test")


def _stages(args: argparse.Namespace, data_dir: Path, out: Path, tasks: list[str]) -> list[Any]:
    """Stage 1 (two SimCSE towers from the start model) and stage 2 (the JTCSE twin), as pipeline stages."""
    from jtcse.pipeline.runner import Stage
    from jtcse.training.config import load_config

    steps = args.sentences // args.batch_size
    common = {
        "data": {
            "corpus": "wiki",
            "data_dir": str(data_dir),
            "max_sentences": args.sentences,
            "max_len": args.max_len,
        },
        "eval": {"every": max(1, steps // 2)},
    }
    train = {"batch_size": args.batch_size, "epochs": 1, "save_every": 0, "progress": not args.quiet}
    stages = []
    for tower, seed in (("a", 1), ("b", 2)):
        raw = {
            "method": "simcse",
            "seed": seed,
            "output_dir": str(out / f"simcse_{tower}"),
            "model": {"base": args.model, "pooler": "cls"},
            "train": {**train, "lr": args.lr_simcse},
            **common,
        }
        label = f"stage 1: SimCSE tower {tower.upper()} (seed {seed}, {steps} steps)"
        stages.append(Stage(label, load_config(None, base=raw)))
    raw = {
        "method": "jtcse",
        "seed": 42,
        "output_dir": str(out / "jtcse"),
        "model": {
            "tower_a": str(out / "simcse_a"),
            "tower_b": str(out / "simcse_b"),
            "num_ca_layers": args.num_ca_layers,
        },
        "train": {**train, "lr": args.lr_jtcse},
        **common,
    }
    label = f"stage 2: JTCSE twin tower ({steps} steps, {args.num_ca_layers} cross-attention layers)"
    stages.append(Stage(label, load_config(None, base=raw), tuple(tasks)))
    return stages


def _done(result: Any, timings: dict[str, float]) -> None:
    timings[f"train {Path(result.output_dir).name}"] = result.train_s or 0.0
    best = f", best STS-B dev {result.dev_stsb:.2f} at step {result.best_step}" if result.best_step else ""
    _say(f"done: {result.output_dir}{best}")


def _prepare_output_dir(out: Path, model: str, data: Path) -> Path:
    """A fresh output dir; only a directory an earlier demo created (it holds the marker) is cleared."""
    from jtcse.output_policy import check_output

    check_output(
        out, option="--output-dir", ours=(MARKER,), inputs={"--model": model}, holders={"--data-dir": data}
    )
    if out.exists() and any(out.iterdir()):
        if not (out / MARKER).exists():
            raise JtcseError(
                f"--output-dir {out}: exists and is not an earlier demo's directory; choose another"
            )
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text("created by `jtcse demo`; the next demo run clears this directory\n")
    return out


def _comparison(tables: dict[str, Any]) -> str:
    names = [task for task in (*TASKS, "avg") if all(task in t["scores"] for t in tables.values())]
    head = ["model", *("Avg." if n == "avg" else short_name(n) for n in names)]
    rows = [[t["label"], *(f"{t['scores'][n]:.2f}" for n in names)] for t in tables.values()]
    lines = md_table(head, rows, align=True)
    return "\n".join(["7-task STS (Spearman x100, SentEval 'all' setting):", *lines])


def _say(message: str) -> None:
    print(f"[demo] {message}", file=sys.stderr, flush=True)
