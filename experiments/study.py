#!/usr/bin/env python
"""The JTCSE study: the start model, SimCSE, two summed SimCSE towers, TNCSE-style, JTCSE and JTCSE-D, trained
at equal compute from one backbone on one corpus, evaluated on the 7 STS tasks, for several seeds.

    python experiments/study.py --scale tiny      # smoke test, minutes
    python experiments/study.py --scale small     # what a 2-core CPU does in about 1-2 hours
    python experiments/study.py --scale paper     # the papers' schedule, for a GPU

Writes ``experiments/results/study.md`` (tables, settings, hardware, the exact command, what the scale can and
cannot show), ``study.json`` (every number) and PNGs (``study_avg.png`` and training curves under
``curves/``). Training runs go to ``runs/study/<scale>/`` (git-ignored); ``--resume`` reuses finished runs
and continues an interrupted one. Every run is seeded; see experiments/README.md for the design.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from jtcse.errors import JtcseError
from jtcse.pipeline.study.plan import distill_teacher_key, make_plan
from jtcse.pipeline.study.report import write_report
from jtcse.pipeline.study.run import diagnose_attention_sink, run_study
from jtcse.pipeline.study.scales import LABELS, SCALES

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_RESULTS_DIR = REPO_ROOT / "experiments" / "results"

__all__ = ["build_parser", "distill_teacher_key", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python experiments/study.py",
        description="Train and evaluate the start model, SimCSE, summed SimCSE towers, TNCSE-style, JTCSE "
        "and JTCSE-D at equal compute; write experiments/results/study.md and PNGs.",
    )
    parser.add_argument(
        "--scale",
        required=True,
        choices=tuple(SCALES),
        help="tiny: smoke test (minutes); small: a 2-core CPU, about 2 h; paper: the papers' schedule, GPU",
    )
    parser.add_argument("--seeds", metavar="S1,S2", help="comma-separated study seeds (default: the scale's)")
    parser.add_argument("--corpus", default="wiki", help="training sentences: wiki (default) or a text file")
    parser.add_argument("--data-dir", help="data directory with sts/ (and wiki1m); default: the usual lookup")
    parser.add_argument("--eval-tasks", nargs="+", metavar="TASK", help="test tasks (default: the scale's)")
    parser.add_argument("--runs-dir", type=Path, help="where runs go (default: runs/study/<scale>)")
    parser.add_argument(
        "--results-dir", type=Path, default=DEFAULT_RESULTS_DIR, help="where study.md and PNGs go"
    )
    parser.add_argument(
        "--resume", action="store_true", help="reuse finished runs, continue an interrupted one"
    )
    parser.add_argument(
        "--keep-checkpoints", action="store_true", help="keep each finished run's checkpoint/"
    )
    parser.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: CUDA when available)")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads for torch (default: torch's)")
    parser.add_argument("--quiet", action="store_true", help="no training progress bars")
    # Tests swap in a tiny random model; the study's claims are about the default backbone only.
    parser.add_argument("--base-model", help=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    given = list(sys.argv[1:] if argv is None else argv)
    # --resume only reuses finished runs; the command that reproduces the table is the same without it
    command = "python experiments/study.py " + " ".join(shlex.quote(a) for a in given if a != "--resume")
    try:
        started = time.perf_counter()
        if args.threads < 0:
            raise JtcseError(f"--threads {args.threads}: must be >= 0")
        if args.threads:
            import torch

            torch.set_num_threads(args.threads)
        args.runs_dir = args.runs_dir or REPO_ROOT / "runs" / "study" / args.scale
        plan = make_plan(args)
        say = lambda message: print(message, file=sys.stderr, flush=True)  # noqa: E731
        for key, why in plan.skipped_variants.items():
            say(f"study: {LABELS[key]} will not run: {why}")
        scores, recorded = run_study(
            plan, resume=args.resume, keep_checkpoints=args.keep_checkpoints, say=say
        )
        sink = diagnose_attention_sink(plan, say)
        wall = time.perf_counter() - started
        md = write_report(
            plan,
            scores,
            args.results_dir,
            command=command,
            recorded_s=recorded,
            wall_s=wall,
            sink=sink,
            resumed=args.resume,
        )
    except JtcseError as exc:
        print(f"study: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("study: interrupted; rerun the same command with --resume to continue", file=sys.stderr)
        return 130
    print(md.read_text(encoding="utf-8"))
    print(f"study: wrote {md}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
