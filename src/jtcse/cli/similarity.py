"""``jtcse similarity --model M "sentence a" "sentence b"``: prints their cosine similarity."""

from __future__ import annotations

import argparse

from jtcse.cli.options import add_model_options, load_encoder
from jtcse.errors import JtcseError
from jtcse.text_gate import check_text


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "similarity",
        help="cosine similarity of two sentences",
        description="Print the cosine similarity of two sentences' embeddings.",
    )
    add_model_options(parser)
    parser.add_argument("sentence_a", metavar="A", help="first sentence")
    parser.add_argument("sentence_b", metavar="B", help="second sentence")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from jtcse.tools.similarity import similarity

    for name, text in (("A", args.sentence_a), ("B", args.sentence_b)):
        if not text.strip():
            raise JtcseError(f"similarity: sentence {name} is empty")
        check_text(text, f"similarity: sentence {name}", argv=True)
    encoder = load_encoder(args)
    print(f"{similarity(encoder, args.sentence_a, args.sentence_b):.4f}")
    return 0
