"""``jtcse eval <benchmark>``: evaluate an encoder.

Benchmarks are sub-commands registered in :data:`BENCHMARKS` as ``name -> (help, add_arguments, run)``. To
add one (``eval mteb``), write ``add_arguments(parser)`` and ``run(args) -> int | None`` in its own module,
keeping heavy imports inside ``run``, and register them here.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

from jtcse.benchmark import TASKS
from jtcse.cli.eval_mteb import add_mteb_arguments, run_mteb_command
from jtcse.cli.eval_transfer import add_transfer_arguments, run_transfer
from jtcse.cli.eval_zero_shot import add_zero_shot_arguments, run_zero_shot_command
from jtcse.cli.options import add_model_options, load_encoder, pooler_used
from jtcse.errors import JtcseError

AddArguments = Callable[[argparse.ArgumentParser], None]
Run = Callable[[argparse.Namespace], "int | None"]


def add_sts_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_options(parser, max_length_default="no truncation, as SentEval")
    parser.add_argument(
        "--tasks",
        nargs="+",
        metavar="TASK",
        help=f"subset of: {' '.join(TASKS)} (default: all 7; in dev mode STSBenchmark and SICKRelatedness)",
    )
    parser.add_argument(
        "--mode",
        choices=("test", "dev"),
        default="test",
        help="test: the papers' test sets; dev: STS-B dev and SICK-R trial (default: test)",
    )
    parser.add_argument(
        "--data-dir", help="data directory holding sts/ (default: $JTCSE_DATA, ../shared/data, cache)"
    )
    parser.add_argument(
        "--no-card",
        action="store_true",
        help="don't write the table into a jtcse model directory's README.md / sts_results.json",
    )
    parser.add_argument(
        "--output",
        help="also write the scores, details and per-pair cosines (for `jtcse plot`) to this JSON file",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run_sts(args: argparse.Namespace) -> int:
    from jtcse.evaluation.sts import evaluate_sts, resolve_tasks
    from jtcse.output_policy import check_output

    # Check everything cheap before loading a model.
    if args.output:  # a JSON file beside a model or in the data folder is fine; in place of them it is not
        holders = {"--data-dir": args.data_dir, "--model": args.model}
        check_output(args.output, option="--output", kind="file", holders=holders)
    tasks = resolve_tasks(args.tasks, args.mode)
    from jtcse.data.paths import resolve_data_dir

    data_dir = resolve_data_dir(args.data_dir, need="sts")
    encoder = load_encoder(args)

    started = time.perf_counter()
    report = evaluate_sts(
        encoder,
        data_dir=data_dir,
        tasks=tasks,
        mode=args.mode,
        batch_size=args.batch_size,
        show_progress=not args.quiet,
    )
    seconds = time.perf_counter() - started
    report.details.update(
        model=str(args.model),
        pooler=pooler_used(encoder),
        max_length=args.max_length,
        seconds=round(seconds, 2),
    )
    pairs = sum(report.details[task]["n_pairs"] for task in report.tasks)
    print(
        f"{args.model}: {len(report.tasks)} task(s), {pairs} pairs, {report.details['n_sentences']} distinct "
        f"sentences, {seconds:.1f} s (data: {data_dir})",
        file=sys.stderr,
    )
    print(report.format_table())
    if args.output:
        _write_json(Path(args.output), report.to_json(include_pairs=True))
        print(f"wrote {args.output}", file=sys.stderr)
    _update_model_card(args, report)
    return 0


def _update_model_card(args: argparse.Namespace, report) -> None:
    """A full test-mode run on a jtcse model directory (with its own pooler) goes into its model card."""
    from jtcse.model.format import is_jtcse_dir
    from jtcse.model_card import is_generated_card, refresh_model_card

    model_dir = Path(args.model)
    full_run = args.mode == "test" and report.tasks == list(TASKS) and args.pooler is None
    if args.no_card or not full_run or not is_jtcse_dir(model_dir) or not is_generated_card(model_dir):
        return
    try:
        refresh_model_card(model_dir, sts_report=report)
    except OSError as exc:  # a read-only model directory: the evaluation itself succeeded
        print(f"note: model card not updated ({exc.strerror or exc})", file=sys.stderr)
        return
    print(f"updated the model card {model_dir / 'README.md'}", file=sys.stderr)


# name -> (help, add_arguments, run)
BENCHMARKS: dict[str, tuple[str, AddArguments, Run]] = {
    "sts": ("the 7 STS tasks of the SimCSE/JTCSE papers (Spearman x100)", add_sts_arguments, run_sts),
    "mteb": (
        "MTEB tasks through mteb's own evaluator (pip install 'jtcse[mteb]')",
        add_mteb_arguments,
        run_mteb_command,
    ),
    "zero-shot": (
        "the JTCSE paper's zero-shot suite (138 rows of mteb tasks) beside its published columns",
        add_zero_shot_arguments,
        run_zero_shot_command,
    ),
    "transfer": (
        "SentEval's transfer tasks (MR CR SUBJ MPQA SST2 TREC MRPC): classifier accuracy on the embeddings",
        add_transfer_arguments,
        run_transfer,
    ),
}


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("eval", help="evaluate an encoder on a benchmark")
    benchmarks = parser.add_subparsers(dest="benchmark", metavar="BENCHMARK")
    benchmarks.required = True
    for name, (help_text, add_arguments, run) in BENCHMARKS.items():
        sub = benchmarks.add_parser(name, help=help_text, description=help_text)
        add_arguments(sub)
        sub.set_defaults(func=run)


def _write_json(path: Path, payload: dict) -> None:
    from jtcse.fs import atomic_write_text

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(payload, indent=2) + "\n")
    except OSError as exc:
        raise JtcseError(f"--output {path}: cannot write: {exc.strerror or exc}") from exc
