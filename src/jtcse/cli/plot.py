"""``jtcse plot RUN_DIR`` (loss terms and dev score vs step) or ``jtcse plot EVAL.json`` (gold vs cosine)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from jtcse.errors import JtcseError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "plot",
        help="PNG plots of a training run or of an STS evaluation",
        description=(
            "RUN_DIR (or its metrics.jsonl): one PNG per loss term and the dev score against step, "
            "in RUN_DIR/plots. "
            "EVAL.json: per-task scatter of gold score against cosine, in EVAL_plots/."
        ),
    )
    parser.add_argument("path", type=Path, metavar="RUN_DIR|EVAL.json", help="a training run or an eval JSON")
    parser.add_argument("--out", type=Path, help="folder for the PNG files")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from jtcse.plotting import plot_eval, plot_run

    path: Path = args.path
    if not path.exists():
        raise JtcseError(f"{path}: no such file or directory")
    if args.out is not None:  # PNGs of their own names, added to any folder
        from jtcse.output_policy import check_output

        check_output(args.out, option="--out", ours=None, inputs={"RUN_DIR|EVAL.json": path})
    if path.is_file() and path.suffix.lower() == ".json":
        written = plot_eval(path, args.out)
    else:
        written = plot_run(path, args.out)
    for file in written:
        print(file)
    print(f"wrote {len(written)} plot(s)", file=sys.stderr)
    return 0
