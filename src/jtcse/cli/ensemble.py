"""``jtcse ensemble --member PATH[:WEIGHT] ... --output OUT``: write a jtcse ensemble directory.

The directory (``jtcse.json``, kind ``ensemble``) loads wherever a model does: ``jtcse eval sts --model OUT``,
``jtcse.Encoder(OUT)``, ``jtcse serve``, ``jtcse export``. Its vector is ``sum_i weight_i * pool_i(member_i)``
on raw vectors (:mod:`jtcse.model.format`).

How ``--member`` is read: the weight is the text after the **last** ``:``, and only when that text is a
plain number (``0.7``, ``-1``, ``.5``, ``2e-1``); otherwise the whole argument is the path. So
``C:\\models\\enc`` and ``runs/a:b`` are paths, ``C:\\models\\enc:0.3`` is a path with weight 0.3, and a path
that itself ends in ``:<number>`` is written with an explicit weight after it (``dir:0.5:1``).
"""

from __future__ import annotations

import argparse
import math
import re
from pathlib import Path

from jtcse.errors import JtcseError

# a plain decimal number, optionally with an exponent: what may follow the last ':' as a weight
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")

EPILOG = """\
--member PATH[:WEIGHT]: the weight (default 1) is the text after the LAST ':', and only when it is a plain
number; otherwise the whole argument is the path. C:\\models\\enc is a path; C:\\models\\enc:0.3 is that path
with weight 0.3; a path ending in ':<number>' needs an explicit weight after it (dir:0.5:1).
PATH is a model folder (Hugging Face or jtcse), a short name (minilm) or a hub id.

--pooler and --tokenizer apply to every plain (Hugging Face) member; a member that is itself a jtcse
directory (a twin tower, an earlier ensemble) keeps the poolers and tokenizers recorded in it.

examples:
  # the published JTCSE-BERT twin (evaluation_CKPT.py): h_CLS(encoder_1) + h_CLS(encoder_2), one tokenizer
  jtcse ensemble --member JTCSE_saved_ckpt/JTCSE_BERT/JTCSE_bert_ckpt_encoder_1 \\
      --member JTCSE_saved_ckpt/JTCSE_BERT/JTCSE_bert_ckpt_encoder_2 \\
      --pooler cls_before_pooler --tokenizer bert-base-uncased --output jtcse-bert
  # JTCSE-BERT-UC (ensemble_UC.py): 0.3 * (h_A + h_B) + 0.7 * h_InfoCSE, all read the twin's token ids
  jtcse ensemble --member ENC_1:0.3 --member ENC_2:0.3 --member ffgcc/InfoCSE-bert-base:0.7 \\
      --pooler cls_before_pooler --tokenizer bert-base-uncased --output jtcse-bert-uc
  jtcse eval sts --model jtcse-bert

Members are referenced where they are (absolute paths, hub ids by name) unless --copy copies them, and the
tokenizer, into OUT: a movable directory whose jtcse.json checksums cover every file.
"""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "ensemble",
        help="combine models into one weighted-sum model directory",
        description="Write a jtcse ensemble directory: sum_i weight_i * pool_i(member_i(x)), raw vectors.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--member",
        dest="members",
        action="append",
        required=True,
        metavar="PATH[:WEIGHT]",
        help="a member model and its weight (default 1); repeat for each member",
    )
    parser.add_argument(
        "--pooler",
        help="pooler of every plain member (cls, cls_before_pooler, avg, avg_first_last; default: each "
        "model's own, else cls_before_pooler)",
    )
    parser.add_argument(
        "--tokenizer", help="one tokenizer (folder or hub id) for every plain member (default: each its own)"
    )
    parser.add_argument("--copy", action="store_true", help="copy the members and the tokenizer into OUT")
    parser.add_argument("--output", required=True, type=Path, metavar="OUT", help="the new model directory")
    parser.add_argument("--overwrite", action="store_true", help="replace OUT when it exists")
    parser.set_defaults(func=run)


def parse_member(text: str) -> tuple[str, float]:
    """``PATH[:WEIGHT]`` -> (path, weight), by the rule in the module doc. A weight that is not a number
    (text after the last ``:`` where what comes before it is an existing folder) is a one-line error."""
    head, sep, tail = text.rpartition(":")
    if sep and head and _NUMBER.fullmatch(tail):
        weight = float(tail)
        if not math.isfinite(weight):
            raise JtcseError(f"--member {text}: weight {tail} is not a finite number")
        return head, weight
    if sep and head and not Path(text).expanduser().exists() and Path(head).expanduser().is_dir():
        raise JtcseError(
            f"--member {text}: weight {tail!r} is not a number (the weight is what follows the last ':')"
        )
    return text, 1.0


def run(args: argparse.Namespace) -> int:
    from jtcse.ensemble import save_ensemble
    from jtcse.model.pooling import POOLERS
    from jtcse.output_policy import check_output

    if args.pooler is not None and args.pooler not in POOLERS:
        raise JtcseError(f"--pooler {args.pooler}: choose one of {', '.join(POOLERS)}")
    out: Path = args.output
    parsed = [parse_member(text) for text in args.members]
    members = {f"--member {text}": path for text, (path, _) in zip(args.members, parsed, strict=True)}
    check_output(
        out,
        option="--output",
        inputs={**members, "--tokenizer": args.tokenizer},
        replaces=True,
        overwrite=args.overwrite,
    )
    labels = [f"--member {text}" for text in args.members]
    nested = [_is_jtcse_model(path) for path, _ in parsed]
    if args.copy:
        print(f"jtcse ensemble: copying {len(parsed)} member(s) into {out}", flush=True)
    config = save_ensemble(
        out,
        [path for path, _ in parsed],
        [weight for _, weight in parsed],
        [None if inner else args.pooler for inner in nested],
        tokenizer=args.tokenizer,
        labels=labels,
        copy=args.copy,
        overwrite=args.overwrite,
    )
    from jtcse.model.format import read_spec

    parts = " + ".join(
        f"{m.weight:g} * {'its own poolers' if inner else m.pooler}({path})"
        for m, (path, _), inner in zip(read_spec(out).members, parsed, nested, strict=True)
    )
    print(f"jtcse ensemble: wrote {config}: {parts}")
    print(f"use it: jtcse eval sts --model {out}")
    return 0


def _is_jtcse_model(path: str) -> bool:
    from jtcse.model.format import is_jtcse_dir
    from jtcse.model.names import resolve_model

    try:
        return is_jtcse_dir(resolve_model(path))
    except JtcseError:
        return False  # save_ensemble says what is wrong with it, naming --member
