"""``jtcse eval zero-shot --model M [--model M2 ...]``: the JTCSE paper's zero-shot suite through mteb.

The work is done by :mod:`jtcse.evaluation.zero_shot`; this module holds the flags, the model loop and the
printout. Exit status 1 when any task failed (the summary names them), 0 otherwise.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from jtcse.cli.options import POOLER_HELP, add_threads_option, load_encoder, positive_int, tokens_int
from jtcse.errors import JtcseError

if TYPE_CHECKING:
    from jtcse.evaluation.zero_shot.suite import Suite


def add_zero_shot_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``jtcse eval zero-shot``."""
    from jtcse.evaluation.zero_shot.suite import CATEGORIES

    # add_model_options declares one --model; here it repeats, so the same options are declared with it.
    parser.add_argument(
        "--model",
        action="append",
        dest="models",
        metavar="M",
        help="a model to evaluate (repeat for several): short name (minilm), hub id or directory",
    )
    parser.add_argument("--pooler", help=POOLER_HELP)
    parser.add_argument("--device", help="cpu, cuda, cuda:N (default: CUDA when available)")
    parser.add_argument("--max-length", type=tokens_int, help="truncate inputs to this many tokens")
    parser.add_argument(
        "--batch-size", type=positive_int, default=64, help="sentences per batch (default: 64)"
    )
    add_threads_option(parser)
    parser.add_argument(
        "--categories",
        help=f"comma-separated subset of {','.join(CATEGORIES)} (default: all)",
    )
    parser.add_argument(
        "--output-dir",
        default="zero-shot-results",
        help="for zero_shot.md/.json, the per-task cache and mteb's results (default: zero-shot-results)",
    )
    parser.add_argument("--overwrite", action="store_true", help="re-run tasks that already have results")
    parser.add_argument("--list", action="store_true", help="print the suite's tasks and counts, run nothing")
    parser.add_argument("--quiet", action="store_true", help="no progress line per task")


def model_labels(models: Sequence[str]) -> list[str]:
    """A short, distinct column label per model: its mteb name's last part, numbered when repeated."""
    from jtcse.evaluation.mteb import model_name_for

    stems = [model_name_for(m).split("/")[-1] for m in models]
    return [s if stems.count(s) == 1 else f"{s}#{i + 1}" for i, s in enumerate(stems)]


def run_zero_shot_command(args: argparse.Namespace) -> int:
    """``--list`` prints the suite; otherwise run every model and write the report."""
    from jtcse.evaluation.zero_shot.suite import load_suite, parse_categories

    suite = load_suite().select(parse_categories(args.categories))
    if args.list:
        print("\n".join(suite.list_lines()))
        return 0
    if not args.models:
        raise JtcseError("--model: name at least one model (or use --list)")
    from jtcse.evaluation.zero_shot.report import JSON_NAME, MARKDOWN_NAME
    from jtcse.evaluation.zero_shot.runner import MTEB_DIR, TASKS_DIR
    from jtcse.output_policy import check_output

    # before the first task: a file, a read-only folder or someone else's folder would fail after all of them
    models = {f"--model {m}": m for m in args.models}
    ours = (JSON_NAME, MARKDOWN_NAME, TASKS_DIR, MTEB_DIR)  # the report, the per-task cache, mteb's results
    check_output(args.output_dir, option="--output-dir", ours=ours, inputs=models)
    return _run(args, suite)


def _run(args: argparse.Namespace, suite: Suite) -> int:
    from jtcse.evaluation.hub import settle_offline
    from jtcse.evaluation.mteb import MtebEncoder, model_name_for
    from jtcse.evaluation.zero_shot.report import build_report, write_report
    from jtcse.evaluation.zero_shot.runner import jobs_for, run_model

    jobs = jobs_for(suite)
    # one probe of the hub, before any model load: unreachable, uncached tasks fail at once (no retries)
    settle_offline(announce=None if args.quiet else "zero-shot")
    first = _check_models(args)
    runs = []
    for i, (model, label) in enumerate(zip(args.models, model_labels(args.models), strict=True)):
        encoder = first if i == 0 else load_encoder(_with_model(args, model))
        first = None  # only one model in memory while the suite runs
        wrapper = MtebEncoder(
            encoder, name=model_name_for(model), batch_size=args.batch_size, show_progress=False
        )
        runs.append(
            run_model(
                wrapper,
                jobs,
                args.output_dir,
                label=label,
                model=str(model),
                overwrite=args.overwrite,
                batch_size=args.batch_size,
                progress=not args.quiet,
            )
        )
    report = build_report(suite, runs)
    json_path, md_path = write_report(args.output_dir, report)
    _print_summary(report)
    print(f"wrote {md_path} and {json_path}", file=sys.stderr)
    if report["failures"]:
        names = ", ".join(f"{f['model']}:{f['task']}" for f in report["failures"])
        print(f"{len(report['failures'])} task(s) failed: {names}", file=sys.stderr)
        return 1
    return 0


def _with_model(args: argparse.Namespace, model: str) -> argparse.Namespace:
    return argparse.Namespace(**{**vars(args), "model": model})


def _check_models(args: argparse.Namespace) -> Any:
    """Load every ``--model`` before any task runs, so that a bad second one is not found only after the
    first one's hours of tasks; returns the first (the others are loaded again at their turn)."""
    first = load_encoder(_with_model(args, args.models[0]))
    for model in args.models[1:]:
        load_encoder(_with_model(args, model))
    return first


def _print_summary(report: Mapping[str, Any]) -> None:
    labels = [m["label"] for m in report["models"]]
    ref = report["reference_column"]
    for name, cat in report["categories"].items():
        avg = cat["average"]
        cells = "  ".join(
            f"{k} {_fmt(avg['measured'][k])} ({avg['counted'][k]}/{avg['total']})" for k in labels
        )
        print(f"{name:<15} {cells}  paper {ref} {_fmt(avg['paper'].get(ref))}")


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"
