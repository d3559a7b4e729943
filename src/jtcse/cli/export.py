"""``jtcse export --model DIR --format sentence-transformers OUT``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EPILOG = """\
examples:
  jtcse export --model runs/simcse --format sentence-transformers exported/simcse
  jtcse export --model runs/jtcse --format sentence-transformers exported/jtcse --overwrite

A single tower becomes a plain Transformer + Pooling pipeline: SentenceTransformer(OUT).
Twin towers and ensembles become one custom module shipped inside OUT (jtcse_st_module.py):
SentenceTransformer(OUT, trust_remote_code=True); jtcse itself is not needed to load it.
The vectors are checked against jtcse.Encoder(MODEL) before OUT is written (--no-verify skips that).
"""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export",
        help="export a model to another library's format (sentence-transformers)",
        description="Write a directory that another library loads and that gives jtcse's vectors.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--model", required=True, help="jtcse model directory (or any model jtcse.Encoder loads)"
    )
    parser.add_argument(
        "--format", default="sentence-transformers", help="sentence-transformers (the only one so far)"
    )
    parser.add_argument("output", type=Path, metavar="OUT", help="output directory (absent or empty)")
    parser.add_argument(
        "--overwrite", action="store_true", help="replace OUT when it exists and is not empty"
    )
    parser.add_argument("--pooler", help="override the model's pooler(s)")
    parser.add_argument("--max-length", type=int, help="truncate inputs to this many tokens")
    parser.add_argument("--no-verify", dest="verify", action="store_false", help="skip the vector check")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from jtcse.export import check_format, export_model
    from jtcse.export.sentence_transformers import check_output_dir

    check_format(args.format)  # fail fast, before any model is loaded
    check_output_dir(args.output, overwrite=args.overwrite)
    result = export_model(
        args.model,
        args.output,
        format=args.format,
        overwrite=args.overwrite,
        pooler=args.pooler,
        max_length=args.max_length,
        verify=args.verify,
    )
    how = (
        "SentenceTransformer(OUT)"
        if result["layout"] == "plain"
        else "SentenceTransformer(OUT, trust_remote_code=True)"
    )
    checked = "" if result["max_abs_diff"] is None else f"; max |diff| vs jtcse {result['max_abs_diff']:.2g}"
    print(
        f"exported {args.model} to {result['path']} ({result['layout']} layout{checked}); load with {how}",
        file=sys.stderr,
    )
    return 0
