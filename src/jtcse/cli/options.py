"""Options shared by the commands that load one encoder (encode, similarity, search, eval sts/mteb)."""

from __future__ import annotations

import argparse
from typing import Any

from jtcse.errors import JtcseError, first_line

POOLER_HELP = (
    "cls | cls_before_pooler | avg | avg_first_last (default: from the model: jtcse.json, else its "
    "sentence-transformers pooling config, else cls_before_pooler)"
)


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def add_model_options(
    parser: argparse.ArgumentParser, *, max_length_default: str = "the model's limit", batch_size: int = 64
) -> None:
    """``--model --pooler --device --max-length --batch-size --threads``; :func:`load_encoder` reads them."""
    parser.add_argument(
        "--model",
        default="minilm",
        help="short name (minilm), Hugging Face id or directory, or jtcse model directory (default: minilm)",
    )
    parser.add_argument("--pooler", help=POOLER_HELP)
    parser.add_argument("--device", help="cpu, cuda, cuda:N (default: CUDA when available)")
    parser.add_argument(
        "--max-length",
        type=positive_int,
        help=f"truncate inputs to this many tokens (default: {max_length_default})",
    )
    parser.add_argument(
        "--batch-size",
        type=positive_int,
        default=batch_size,
        help=f"sentences per batch (default: {batch_size})",
    )
    add_threads_option(parser)


def add_threads_option(parser: argparse.ArgumentParser) -> None:
    """``--threads``: CPU threads of torch and onnxruntime alike (a comparison needs equal counts)."""
    parser.add_argument(
        "--threads",
        type=positive_int,
        help="CPU threads for torch and onnxruntime alike (default: torch's, i.e. the machine's cores)",
    )


def add_progress_option(parser: argparse.ArgumentParser) -> None:
    """``--progress`` / ``--no-progress``; unset means: a bar when stderr is a terminal."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--progress", dest="progress", action="store_true", default=None, help="always show a progress bar"
    )
    group.add_argument(
        "--no-progress", dest="progress", action="store_false", help="never show a progress bar"
    )


def load_encoder(args: argparse.Namespace) -> Any:
    """The :class:`jtcse.Encoder` the model options describe; a model that cannot be loaded (a hub id not
    cached while offline, a directory without weights) is a one-line error naming ``--model``."""
    from jtcse.encoder import Encoder
    from jtcse.model.pooling import POOLERS

    if args.pooler is not None and args.pooler not in POOLERS:
        raise JtcseError(f"--pooler {args.pooler}: unknown pooler; choose from {', '.join(POOLERS)}")
    try:
        return Encoder(
            args.model,
            pooler=args.pooler,
            device=args.device,
            max_length=args.max_length,
            batch_size=args.batch_size,
            threads=getattr(args, "threads", None),
        )
    except (OSError, ValueError) as exc:
        raise JtcseError(f"--model {args.model}: cannot load: {first_line(exc)}") from exc
