"""``jtcse index --vectors DIR [--kind flat|ivf|hnsw|ivfpq|ivfsq8]``: a faiss index over a shards folder."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from jtcse.cli.options import int_range, positive_int, threads_int

EPILOG = """\
examples:
  jtcse encode --model minilm --input corpus.txt --output corpus.vectors --normalize
  jtcse index --vectors corpus.vectors                       # kind chosen by size, printed
  jtcse index --vectors corpus.vectors --kind hnsw --m 32 --ef-search 128
  jtcse index --vectors corpus.vectors --kind ivfpq --pq-m 96 --rerank 100  # 104 bytes per 384-dim vector
  jtcse search --model minilm --index corpus.vectors/index-ivf --query "..." --check-recall 200

Kinds (cosine similarity, blank lines not indexed):
  flat   exact search (every vector per query); the default below 100,000 vectors
  ivf    k-means cells (--nlist, default ~sqrt(n)); a query scans --nprobe cells; the default above
  hnsw   a neighbour graph (--m links, --ef-construction); a query explores --ef-search candidates
  ivfpq  ivf cells holding product-quantisation codes: --pq-m codes of --pq-bits bits per vector
         (default: one 8-bit code per 4 dimensions), not float vectors
  ivfsq8 ivf cells holding 8-bit scalar codes (one byte per dimension)
The compressed kinds (ivfpq, ivfsq8) re-rank the best --rerank candidates per query (default: 100) with
the exact cosine of their float vectors, read from the shards (memory-mapped): the shards must stay.
Over Parquet shards (read by row group, slow for a few rows) the index keeps those vectors in its own
rerank.npy instead (--no-rerank-copy: not; --rerank-copy: over .npy shards too).
jtcse index prints the bytes per vector in memory, the index size, and that size at a billion vectors.
--nprobe / --ef-search / --rerank here are saved as the defaults of later searches (jtcse search can
override them).
The index (DIR/index-KIND unless --output) records the model and the sha256 of the vectors' manifest:
a search with another model, or after the shards changed, is refused.
"""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "index",
        help="build a faiss index (flat, IVF or HNSW) over the shards written by jtcse encode",
        description="Build an exact or approximate nearest-neighbour index over a folder of vectors.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--vectors", required=True, type=Path, help="folder written by jtcse encode")
    parser.add_argument(
        "--kind", metavar="KIND", help="flat, ivf, hnsw, ivfpq or ivfsq8 (default: flat or ivf by size)"
    )
    parser.add_argument("--output", type=Path, help="index folder (default: VECTORS/index-KIND)")
    parser.add_argument("--nlist", type=positive_int, help="ivf kinds: number of cells")
    parser.add_argument("--nprobe", type=positive_int, help="ivf kinds: cells scanned per query")
    parser.add_argument(
        "--m", type=int_range(2, 1024, what="a link count"), help="hnsw: links per node (default: 16)"
    )
    parser.add_argument("--ef-construction", type=positive_int, help="hnsw: build candidates (default: 40)")
    parser.add_argument("--ef-search", type=positive_int, help="hnsw: candidates per query (default: 64)")
    parser.add_argument(
        "--pq-m", type=positive_int, help="ivfpq: codes per vector (must divide the dim; default dim / 4)"
    )
    parser.add_argument(
        "--pq-bits", type=int_range(1, 16, what="a bit count"), help="ivfpq: bits per code (default: 8)"
    )
    parser.add_argument(
        "--rerank", type=positive_int, help="ivfpq/ivfsq8: candidates re-ranked exactly (default: 100)"
    )
    parser.add_argument(
        "--rerank-copy",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="ivfpq/ivfsq8: keep a float copy of the vectors in the index folder for fast re-ranking "
        "(default: only over Parquet shards, which are slow to read row by row; it costs their size on disk)",
    )
    parser.add_argument("--threads", type=threads_int, help="faiss threads (default: all cores)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from jtcse.corpus_scale.index import build_index

    out, meta = build_index(
        args.vectors,
        args.output,
        kind=args.kind,
        threads=args.threads,
        log=lambda line: print(line, file=sys.stderr),
        rerank_copy=args.rerank_copy,
        nlist=args.nlist,
        nprobe=args.nprobe,
        m=args.m,
        ef_construction=args.ef_construction,
        ef_search=args.ef_search,
        pq_m=args.pq_m,
        pq_bits=args.pq_bits,
        rerank=args.rerank,
    )
    print(
        f"indexed {meta['count']:,} vectors ({meta['kind']}, {meta['dim']}-dim) in "
        f"{meta['build_seconds']:.1f} s to {out}/",
        file=sys.stderr,
    )
    return 0
