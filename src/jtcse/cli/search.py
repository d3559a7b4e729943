"""``jtcse search --model M --corpus FILE --query "..." [--top-k 5]``: nearest corpus lines by cosine;
``jtcse search --model M --index DIR --query "..."``: the same through an index built by ``jtcse index``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from jtcse.cli.options import (
    MAX_COUNT,
    add_model_options,
    add_progress_option,
    int_range,
    load_encoder,
    positive_int,
)
from jtcse.errors import JtcseError
from jtcse.text_gate import check_text

EPILOG = """\
examples:
  jtcse search --model minilm --corpus faq.txt --query "how do I reset my password" --top-k 5
  jtcse search --model runs/jtcse --corpus faq.txt --query "refunds" --query "shipping times" --json
  jtcse search --model minilm --index corpus.vectors/index-ivf --query "refunds" --check-recall 200

With --corpus, the first search indexes the corpus (one sentence per line; blank lines skipped) and saves
the index as FILE.jtcse-index/ (or --index DIR); later searches reuse it while the model and the corpus
content are the same. A changed corpus is re-indexed; an index of another model is an error unless
--rebuild. That search is exact (numpy), fine up to some 100,000 lines.

For millions of lines: jtcse encode --output FOLDER, jtcse index --vectors FOLDER, then --index with the
index folder (flat, IVF, HNSW, IVF-PQ or IVF-SQ8; see jtcse index --help). --nprobe (IVF kinds) and
--ef-search (HNSW) trade speed for recall; --check-recall N measures recall@top-k against exact search on N
corpus vectors as queries. A compressed index (ivfpq, ivfsq8) re-ranks --rerank candidates per query with
their exact cosine from the shards (default: the index's, when the shards are there; --rerank 0: off).
Every file a search reads (shards, the index's files, rerank.npy) is checked against its recorded sha256:
hashed the first time after it changed, then trusted while its size, times and inode stay the same;
--verify hashes them all again.
"""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "search",
        help="semantic search over a text file (index built once, saved beside it) or a jtcse index",
        description="Find the corpus lines closest to a query (cosine similarity).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_model_options(parser)
    parser.add_argument("--corpus", type=Path, help="UTF-8 text file, one sentence per line")
    parser.add_argument("--query", action="append", required=True, help="the query (repeat for several)")
    parser.add_argument("--top-k", type=positive_int, default=5, help="hits per query (default: 5)")
    parser.add_argument(
        "--index", type=Path, help="index folder: CORPUS.jtcse-index by default, or one built by jtcse index"
    )
    parser.add_argument("--rebuild", action="store_true", help="re-index the --corpus even when saved")
    parser.add_argument(
        "--backend",
        default="auto",
        help="numpy (the exact search of a --corpus index; default: auto = numpy)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object per query")
    ann = parser.add_argument_group("an index built by jtcse index")
    ann.add_argument(
        "--nprobe", type=positive_int, help="ivf kinds: cells scanned per query (more: better recall)"
    )
    ann.add_argument(
        "--ef-search", type=positive_int, help="hnsw: candidates per query (more: better recall)"
    )
    ann.add_argument(
        "--rerank",
        type=_candidates,
        metavar="K",
        help="ivfpq/ivfsq8: candidates re-ranked exactly from the shards (0: off; default: the index's)",
    )
    ann.add_argument(
        "--verify",
        action="store_true",
        help="re-read every file the search uses against its checksum (default: only files changed since "
        "a search last verified them)",
    )
    ann.add_argument(
        "--check-recall", type=positive_int, metavar="N", help="recall@top-k vs exact, N queries"
    )
    add_progress_option(parser)
    parser.set_defaults(func=run)


_candidates = int_range(0, MAX_COUNT, what="0 (off) or a count of candidates")


def run(args: argparse.Namespace) -> int:
    from jtcse.corpus_scale.index_meta import is_vector_index

    for query in args.query:
        if not query.strip():
            raise JtcseError("--query: the query is empty")
        check_text(query, "--query", argv=True)
    # --index without --corpus names a folder of jtcse index: its reader says what is wrong with it (a garbled
    # index.json is one line naming it, not "--corpus: required")
    if args.index is not None and (args.corpus is None or is_vector_index(args.index)):
        return _run_vector_index(args)
    if args.verify:
        raise JtcseError(
            "--verify: only with an --index built by jtcse index (a --corpus index is hashed on every load)"
        )
    return _run_corpus(args)


def _run_corpus(args: argparse.Namespace) -> int:
    from jtcse.tools.search import SearchIndex, read_corpus

    if args.corpus is None:
        raise JtcseError("--corpus: required (or --index with a folder built by jtcse index)")
    for flag in ("nprobe", "ef_search", "rerank", "check_recall"):
        if getattr(args, flag) is not None:
            raise JtcseError(f"--{flag.replace('_', '-')}: only with an --index built by jtcse index")
    read_corpus(args.corpus)  # a missing or empty corpus fails before a model is loaded
    _check_index_dir(args)
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
    if index.model_note:
        print(f"index: {index.model_note}", file=sys.stderr)
    _print_hits(args, index.search(encoder, list(args.query), top_k=args.top_k))
    return 0


def _check_index_dir(args: argparse.Namespace) -> None:
    """An index that will be written (none saved yet, or --rebuild) must have a place it can go, before the
    model is loaded; a saved one is only read (a read-only folder is fine)."""
    from jtcse.output_policy import check_output
    from jtcse.tools.search import META_NAME, VECTORS_NAME, default_index_dir

    folder = args.index if args.index is not None else default_index_dir(args.corpus)
    if args.rebuild or not (folder / META_NAME).is_file():
        inputs = {"--corpus": args.corpus, "--model": args.model}
        check_output(folder, option="--index", ours=(META_NAME, VECTORS_NAME), inputs=inputs)


def _run_vector_index(args: argparse.Namespace) -> int:
    from jtcse.corpus_scale.faiss_kinds import set_threads
    from jtcse.corpus_scale.index import VectorIndex
    from jtcse.corpus_scale.index_meta import recorded_format
    from jtcse.tools.search import INDEX_FORMAT

    for flag, value in (("--corpus", args.corpus), ("--rebuild", args.rebuild)):
        if value:
            raise JtcseError(
                f"{flag}: not used with an index built by jtcse index (rebuild it with jtcse index)"
            )
    if recorded_format(args.index) == INDEX_FORMAT:
        raise JtcseError(f"--index {args.index}: the index of a --corpus file; pass that --corpus FILE too")
    # a damaged or mismatched index (or shard, or re-ranking copy) fails before a model is loaded
    index = VectorIndex.load(args.index, rehash=args.verify)
    set_threads(args.threads)  # --threads: faiss's too, besides torch's / onnxruntime's
    encoder = load_encoder(args)
    note = index.check_model(encoder)
    knobs = {"nprobe": args.nprobe, "ef_search": args.ef_search, "rerank": args.rerank}
    results = index.search(encoder, list(args.query), top_k=args.top_k, **knobs)
    nprobe = f", nprobe {args.nprobe or index.meta.get('nprobe')}"
    depth = index.rerank_depth(args.rerank)
    rerank = f", re-ranking {depth} candidates exactly" if depth else ", approximate scores (no re-ranking)"
    settings = {
        "ivf": nprobe,
        "hnsw": f", efSearch {args.ef_search or index.meta.get('ef_search')}",
        "ivfpq": nprobe + rerank,
        "ivfsq8": nprobe + rerank,
    }.get(index.kind, "")
    print(f"index: {index.kind}{settings}, {len(index):,} vectors, {index.dim}-dim", file=sys.stderr)
    if note:
        print(f"index: {note}", file=sys.stderr)
    _print_hits(args, results)
    if args.check_recall:
        recall = index.check_recall(args.check_recall, args.top_k, **knobs)
        print(
            f"recall@{args.top_k} against exact search ({min(args.check_recall, len(index))} corpus "
            f"vectors as queries): {recall:.3f}",
            file=sys.stderr,
        )
    return 0


def _print_hits(args: argparse.Namespace, results: list[Any]) -> None:
    for query, hits in zip(args.query, results, strict=True):
        if args.json:
            record = {"query": query, "hits": [hit.__dict__ for hit in hits]}
            print(json.dumps(record, ensure_ascii=False))
            continue
        if len(args.query) > 1:
            print(f"query: {query}")
        for hit in hits:
            print(f"{hit.rank:>3}  {hit.score:.4f}  line {hit.line}: {hit.text}")
