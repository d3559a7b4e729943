"""Option groups shared by the commands: the model options of every command that loads an encoder (encode,
similarity, search, eval sts/mteb, serve) and the config options of every command that trains."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jtcse.errors import JtcseError, first_line

POOLER_HELP = (
    "cls | cls_before_pooler | avg | avg_first_last (default: from the model: jtcse.json, else its "
    "sentence-transformers pooling config, else cls_before_pooler)"
)


# Every numeric option is bounded where it is parsed: a value out of range is argparse's one line naming
# the option ("jtcse index: error: argument --nlist: expected an integer from 1 to 16777216, got 0").
MAX_COUNT = 1 << 24  # batch sizes, candidates, cells...: far above any useful value, far below an overflow
MAX_THREADS = 4096
MAX_TOKENS = 1 << 20


def int_range(low: int, high: int, *, what: str = "an integer") -> Callable[[str], int]:
    """An argparse type: an integer in ``[low, high]``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"expected {what} from {low} to {high}, got {value}")
        return value

    parse.__name__ = f"integer in [{low}, {high}]"  # argparse names the type when the function raises
    return parse


def float_range(low: float, high: float, *, low_open: bool = False) -> Callable[[str], float]:
    """An argparse type: a finite number in ``[low, high]`` (``(low, high]`` with ``low_open``)."""
    interval = f"{'(' if low_open else '['}{low:g}, {high:g}]"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        inside = (low < value if low_open else low <= value) and value <= high  # False for nan
        if not inside:
            raise argparse.ArgumentTypeError(f"expected a number in {interval}, got {text}")
        return value

    parse.__name__ = f"number in {interval}"
    return parse


positive_int = int_range(1, MAX_COUNT)
"""argparse type: a count (batch size, candidates, cells, lines per shard...) >= 1."""
threads_int = int_range(1, MAX_THREADS, what="a thread count")
tokens_int = int_range(1, MAX_TOKENS, what="a token count")
port_int = int_range(0, 65535, what="a port")
seed_int = int_range(0, 2**32 - 1, what="a seed")


MODEL_HELP = "short name (minilm), Hugging Face id or directory, or jtcse model directory (default: minilm)"


def add_model_options(
    parser: argparse.ArgumentParser,
    *,
    max_length_default: str = "the model's limit",
    batch_size: int = 64,
    repeatable: bool = False,
    model_help: str = MODEL_HELP,
    threads: bool = True,
) -> None:
    """``--model --pooler --device --max-length --batch-size --threads``; :func:`load_encoder` reads them.
    ``repeatable``: ``--model`` may be given several times (``[NAME=]MODEL``, a list; None when not given)."""
    if repeatable:
        parser.add_argument("--model", action="append", metavar="[NAME=]MODEL", help=model_help)
    else:
        parser.add_argument("--model", default="minilm", help=model_help)
    parser.add_argument("--pooler", help=POOLER_HELP)
    parser.add_argument("--device", help="cpu, cuda, cuda:N (default: CUDA when available)")
    parser.add_argument(
        "--max-length",
        type=tokens_int,
        help=f"truncate inputs to this many tokens (default: {max_length_default})",
    )
    parser.add_argument(
        "--batch-size",
        type=positive_int,
        default=batch_size,
        help=f"sentences per batch (default: {batch_size})",
    )
    if threads:
        add_threads_option(parser)


def add_config_options(
    parser: argparse.ArgumentParser,
    *,
    set_help: str = "override a config key, e.g. --set train.lr=2e-5 (repeatable)",
    output_dir_help: str = "where the run goes (overrides output_dir)",
) -> None:
    """``--set KEY=VALUE`` (repeatable, ``args.overrides``) and ``--output-dir`` (``args.output_dir``):
    every command that trains from a config (train, distill, ablate, reproduce)."""
    group = parser.add_argument_group("config")
    group.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help=set_help
    )
    group.add_argument("--output-dir", type=Path, help=output_dir_help)


def add_threads_option(parser: argparse.ArgumentParser) -> None:
    """``--threads``: CPU threads of torch and onnxruntime alike (a comparison needs equal counts)."""
    parser.add_argument(
        "--threads",
        type=threads_int,
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


def pooler_used(encoder: Any) -> str | list[str]:
    """What a report records as the pooler: the one every member used (``--pooler``, else the model's own:
    jtcse.json, its sentence-transformers config or ``cls_before_pooler``), or each member's when they differ;
    ``graph`` for an ONNX export, whose pooling is inside the graph."""
    poolers = [member.pooler for member in encoder.members]
    return poolers[0] if len(set(poolers)) == 1 else poolers
