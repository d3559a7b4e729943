"""``jtcse export --model DIR --format sentence-transformers|onnx OUT``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from jtcse.cli.options import add_threads_option, tokens_int

EPILOG = """\
examples:
  jtcse export --model runs/simcse --format sentence-transformers exported/simcse
  jtcse export --model runs/jtcse --format sentence-transformers exported/jtcse --overwrite
  jtcse export --model runs/jtcse --format onnx exported/jtcse-onnx
  jtcse export --model minilm --format onnx --quantize int8 exported/minilm-int8
  jtcse export --model minilm --format onnx --quantize int8-rowwise exported/minilm-int8-rowwise

sentence-transformers: a single tower becomes a plain Transformer + Pooling pipeline:
SentenceTransformer(OUT).
Twin towers and ensembles become one custom module shipped inside OUT (jtcse_st_module.py):
SentenceTransformer(OUT, trust_remote_code=True); jtcse itself is not needed to load it.
The vectors are checked against jtcse.Encoder(MODEL) before OUT is written (--no-verify skips that).

onnx (pip install 'jtcse[onnx]'): one graph per tokenizer group computes the whole embedding (pooling, twin
and ensemble sums inside); jtcse.Encoder(OUT) and every jtcse command run it with onnxruntime. The fp32
graph must match torch (cosine >= 0.9999 on probe sentences); --quantize int8 scores STS-B dev with both
precisions and refuses when int8 loses more than 0.5 points, unless --accept-loss. --quantize int8 scales
each product's input by one range per batch (a sentence's vector then depends on its batch: MiniLM cosine
down to 0.95); --quantize int8-rowwise by one range per token (the same vector in any batch, closer to fp32,
slower; 8-bit weights, made for VNNI CPUs).
"""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export",
        help="export a model to another format (sentence-transformers, onnx)",
        description="Write a directory that another library or runtime loads and that gives jtcse's vectors.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--model", required=True, help="jtcse model directory (or any model jtcse.Encoder loads)"
    )
    parser.add_argument(
        "--format", default="sentence-transformers", help="sentence-transformers (default) or onnx"
    )
    parser.add_argument("output", type=Path, metavar="OUT", help="output directory (absent or empty)")
    parser.add_argument(
        "--overwrite", action="store_true", help="replace OUT when it exists and is not empty"
    )
    parser.add_argument("--pooler", help="override the model's pooler(s)")
    parser.add_argument("--max-length", type=tokens_int, help="truncate inputs to this many tokens")
    parser.add_argument("--no-verify", dest="verify", action="store_false", help="skip the vector check")
    onnx = parser.add_argument_group("onnx")
    onnx.add_argument(
        "--quantize",
        choices=("int8", "int8-rowwise"),
        help="int8 quantisation, gated on STS-B dev: int8 (one activation range per batch, fastest) or "
        "int8-rowwise (one per token: a sentence's vector does not depend on its batch)",
    )
    onnx.add_argument(
        "--accept-loss", action="store_true", help="keep the int8 graph even when it loses > 0.5 STS-B points"
    )
    onnx.add_argument("--data-dir", help="data directory holding sts/ for the int8 gate (default: as eval)")
    add_threads_option(onnx)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from jtcse.export import ONNX_FORMAT, check_format
    from jtcse.export.sentence_transformers import check_export_dir

    fmt = check_format(args.format)  # fail fast, before any model is loaded
    check_export_dir(args.output, overwrite=args.overwrite, model=args.model)
    if fmt == ONNX_FORMAT:
        return _run_onnx(args)
    if args.quantize or args.accept_loss:
        from jtcse.errors import JtcseError

        raise JtcseError("--quantize/--accept-loss: only with --format onnx")
    from jtcse.export import export_model

    result = export_model(
        args.model,
        args.output,
        format=fmt,
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


def _run_onnx(args: argparse.Namespace) -> int:
    from jtcse.export.onnx import export_onnx

    gate = "; int8: quantizing and comparing STS-B dev with fp32" if args.quantize else ""
    print(f"jtcse export: writing ONNX graph(s), checking them against torch{gate}", file=sys.stderr)
    result = export_onnx(
        args.model,
        args.output,
        overwrite=args.overwrite,
        pooler=args.pooler,
        max_length=args.max_length,
        quantize=args.quantize,
        accept_loss=args.accept_loss,
        threads=args.threads,
        data_dir=args.data_dir,
    )
    line = (
        f"exported {args.model} to {result['path']} ({result['graphs']} ONNX graph(s), "
        f"{args.quantize or 'fp32'}; fp32 vs torch min cosine {result['min_cosine']:.6f}"
    )
    if "stsb_dev" in result:
        dev = result["stsb_dev"]
        line += f"; STS-B dev fp32 {dev['fp32']:.2f}, int8 {dev['int8']:.2f}"
    print(line + "); load with jtcse.Encoder(OUT)", file=sys.stderr)
    return 0
