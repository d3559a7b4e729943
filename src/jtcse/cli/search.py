"""``jtcse search --model M --corpus FILE --query "..." [--top-k 5]``: nearest corpus lines by cosine."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from jtcse.cli.options import add_model_options, add_progress_option, load_encoder
from jtcse.errors import JtcseError

EPILOG = """\
examples:
  jtcse search --model minilm --corpus faq.txt --query "how do I reset my password" --top-k 5
  jtcse search --model runs/jtcse --corpus faq.txt --query "refunds" --query "shipping times" --json

The first search indexes the corpus (one sentence per line; blank lines skipped) and saves the index as
FILE.jtcse-index/ (or --index DIR); later searches reuse it while the model and the corpus content are the
same. A changed corpus is re-indexed; an index of another model is an error unless --rebuild.
Search is exact either way: faiss-cpu (IndexFlatIP) when installed, numpy otherwise.
"""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "search",
        help="semantic search over a text file (index built once, saved beside it)",
        description="Find the corpus lines closest to a query (cosine similarity).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_model_options(parser)
    parser.add_argument("--corpus", required=True, type=Path, help="UTF-8 text file, one sentence per line")
    parser.add_argument("--query", action="append", required=True, help="the query (repeat for several)")
    parser.add_argument("--top-k", type=int, default=5, help="hits per query (default: 5)")
    parser.add_argument("--index", type=Path, help="index directory (default: CORPUS.jtcse-index)")
    parser.add_argument("--rebuild", action="store_true", help="re-index even when a saved index exists")
    parser.add_argument(
        "--backend", default="auto", help="auto | faiss | numpy (default: auto = faiss when installed)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object per query")
    add_progress_option(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from jtcse.tools.search import SearchIndex, read_corpus

    for query in args.query:
        if not query.strip():
            raise JtcseError("--query: the query is empty")
    if args.top_k < 1:
        raise JtcseError(f"--top-k {args.top_k}: must be a positive integer")
    read_corpus(args.corpus)  # a missing or empty corpus fails before a model is loaded
    encoder = load_encoder(args)
    index = SearchIndex.for_corpus(
        encoder,
        args.corpus,
        index_dir=args.index,
        rebuild=args.rebuild,
        show_progress=args.progress,
        backend=args.backend,
    )
    print(f"index: {index.status}, {len(index)} sentences, {index.dim}-dim, {index.backend}", file=sys.stderr)
    results = index.search(encoder, list(args.query), top_k=args.top_k)
    for query, hits in zip(args.query, results, strict=True):
        if args.json:
            record = {"query": query, "hits": [hit.__dict__ for hit in hits]}
            print(json.dumps(record, ensure_ascii=False))
            continue
        if len(args.query) > 1:
            print(f"query: {query}")
        for hit in hits:
            print(f"{hit.rank:>3}  {hit.score:.4f}  line {hit.line}: {hit.text}")
    return 0
