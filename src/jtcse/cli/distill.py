"""``jtcse distill CONFIG [--set key=value ...] [--resume] [--output-dir DIR]``: ``jtcse train`` for
``method = "distill"`` (the same config, progress bar, metrics, checkpoint and resume)."""

from __future__ import annotations

import argparse

from jtcse.cli.train import add_run_arguments, load_run_config, run_training

EPILOG = """\
examples:
  jtcse distill distill-minilm
  jtcse distill distill-bert-base --set distill.teacher=runs/jtcse_bert_base
  jtcse distill uc-distill-bert-base                 (UC-D: an ensemble teacher, k = 0.1)
  jtcse distill distill-minilm --set distill.student_init=tower_a
  jtcse distill --resume --output-dir runs/distill_minilm        (continue from the last checkpoint)

The [distill] section: teacher (a jtcse twin-tower or ensemble dir, or any encoder jtcse.Encoder loads),
k (0.01 for D, 0.1 for UC-D), teacher_pooler (empty = the teacher's own), student_init (base = model.base,
or tower_a / tower_b of the twin-tower teacher). The student is model.base with model.pooler
(cls_before_pooler) and model.dropout (0.1 for D; CACSE's UC-D uses 0.015). A config without `method`
gets method = "distill". OUT holds the student, a single-tower model directory that `jtcse eval sts --model
OUT` and jtcse.Encoder(OUT) load; the teacher is not copied into it.
"""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "distill",
        help="distil a frozen teacher (twin tower or ensemble) into a single-tower student (D, UC-D)",
        description="Train a single-tower student on a frozen teacher's vectors (method = distill).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_run_arguments(parser, method="distill")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config = load_run_config(args, command="distill", method="distill")
    return run_training(config, resume=args.resume)
