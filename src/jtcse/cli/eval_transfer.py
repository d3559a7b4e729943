"""``jtcse eval transfer``: SentEval's transfer tasks (MR CR SUBJ MPQA SST2 TREC MRPC), frozen embeddings."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from jtcse.cli.options import add_model_options, load_encoder, pooler_used, seed_int

TASK_NAMES = "MR CR SUBJ MPQA SST2 TREC MRPC"


def add_transfer_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_options(parser, max_length_default="no truncation, as SentEval")
    parser.add_argument(
        "--tasks",
        nargs="+",
        metavar="TASK",
        help=f"subset of: {TASK_NAMES} (also comma-separated; default: all 7)",
    )
    parser.add_argument(
        "--mode",
        choices=("test", "fasttest"),
        default="test",
        help="test: SentEval's full protocol (10 folds, adam, batch 64, tenacity 5, epoch size 4); "
        "fasttest: SimCSE's quick one (5 folds, rmsprop, batch 128, tenacity 3, epoch size 2); default: test",
    )
    parser.add_argument(
        "--seed",
        type=seed_int,
        default=1111,
        help="seed of every classifier (initial weights, held-out 5%%, shuffles) and of TREC's and MRPC's "
        "folds; MR CR SUBJ MPQA keep SentEval's folds (seed 1111) whatever it is (default: 1111, SentEval's)",
    )
    parser.add_argument(
        "--classifier-device",
        help="where the classifiers train: cpu, cuda, cuda:N (default: --device, else CUDA when available)",
    )
    parser.add_argument(
        "--data-dir",
        help="data directory holding downstream/ (SentEval's layout; `jtcse data download --what transfer`); "
        "default: $JTCSE_DATA, ../shared/data, cache",
    )
    parser.add_argument("--output", help="also write the scores and details to this JSON file")
    parser.add_argument("--quiet", action="store_true", help="no progress output")


def run_transfer(args: argparse.Namespace) -> int:
    from jtcse.data.paths import resolve_data_dir
    from jtcse.evaluation.transfer.runner import evaluate_transfer
    from jtcse.evaluation.transfer.tasks import resolve_tasks, sentences_of
    from jtcse.model.loading import select_device
    from jtcse.output_policy import check_output

    # Check everything cheap (options, the output, every file of every task) before loading a model.
    device = args.classifier_device or args.device
    if args.classifier_device is not None:  # the one device check, naming this flag
        select_device(args.classifier_device, option="--classifier-device")
    if args.output:  # a JSON file beside a model or in the data folder is fine; in place of them it is not
        holders = {"--data-dir": args.data_dir, "--model": args.model}
        check_output(args.output, option="--output", kind="file", holders=holders)
    tasks = resolve_tasks(args.tasks)
    data_dir = resolve_data_dir(args.data_dir, need="transfer")
    for task in tasks:
        sentences_of(task, data_dir)
    encoder = load_encoder(args)

    started = time.perf_counter()
    report = evaluate_transfer(
        encoder,
        data_dir=data_dir,
        tasks=tasks,
        mode=args.mode,
        seed=args.seed,
        device=device,
        batch_size=args.batch_size,
        show_progress=not args.quiet,
    )
    seconds = time.perf_counter() - started
    report.details.update(model=str(args.model), pooler=pooler_used(encoder), seconds=round(seconds, 2))
    print(f"{args.model}: {len(report.tasks)} task(s), mode {args.mode}, {seconds:.1f} s", file=sys.stderr)
    print(report.format_table())
    if args.output:
        _write_json(Path(args.output), report.to_json())
        print(f"wrote {args.output}", file=sys.stderr)
    return 0


def _write_json(path: Path, payload: dict[str, object]) -> None:
    from jtcse.errors import JtcseError
    from jtcse.fs import atomic_write_text

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(payload, indent=2) + "\n")
    except OSError as exc:
        raise JtcseError(f"--output {path}: cannot write: {exc.strerror or exc}") from exc
