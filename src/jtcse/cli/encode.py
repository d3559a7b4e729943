"""``jtcse encode --model M --input sents.txt --output vecs.npy``: one vector per input line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from jtcse.cli.options import add_model_options, add_progress_option, load_encoder

EPILOG = """\
examples:
  jtcse encode --model minilm --input sents.txt --output vecs.npy
  jtcse encode --model runs/jtcse --input sents.txt --output vecs.safetensors --normalize

Row i of the output is line i+1 of the input (blank lines included). .npy holds a float32 matrix;
.safetensors holds it under the key "embeddings", with the source file in the metadata.
"""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "encode",
        help="encode a text file (one sentence per line) into .npy or .safetensors vectors",
        description="Encode every line of a text file with a sentence encoder and save the matrix.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_model_options(parser)
    parser.add_argument("--input", required=True, type=Path, help="UTF-8 text file, one sentence per line")
    parser.add_argument(
        "--output", required=True, type=Path, help="output file ending in .npy or .safetensors"
    )
    parser.add_argument("--normalize", action="store_true", help="scale every vector to unit length")
    add_progress_option(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from jtcse.fs import remove_stale_temporaries
    from jtcse.tools.encode_file import check_vector_suffix, encode_file

    check_vector_suffix(args.output)  # before loading a model
    remove_stale_temporaries(args.output.parent)  # what an encode or search killed mid-write left there
    encoder = load_encoder(args)
    vectors = encode_file(
        encoder,
        args.input,
        args.output,
        normalize=args.normalize,
        show_progress=args.progress,
        metadata={"model": str(args.model)},
    )
    note = ", unit length" if args.normalize else ""
    print(
        f"wrote {vectors.shape[0]} x {vectors.shape[1]} float32 vectors{note} to {args.output}",
        file=sys.stderr,
    )
    return 0
