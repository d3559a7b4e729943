"""Encode once, query with the export: recall@10 of int8, int8-rowwise (and fp32) ONNX queries against the
fp32 index, and of each int8 export's own index queried with itself.

The usual deployment encodes a corpus once with the full model and answers queries on CPUs with its int8
ONNX export. This measures what that costs in retrieval: the corpus (``--corpus-size`` distinct sentences:
the Wiki sample, then the STS test sentences, from the data directory) is indexed by the fp32 torch model
through ``SearchIndex.for_corpus`` (the index ``jtcse search`` saves); the queries (``--queries`` other
distinct sentences from the same pool) are searched through ``SearchIndex.search``, which accepts the export
because it records the weights it came from (the one-line note is printed). Recall@10 is the share of the
fp32 queries' top 10 that the export's queries return, averaged over queries.

    python bench/export_queries.py [--model minilm] [--corpus-size 20000] [--queries 1000] [--threads T]

The export is made once into ``--work`` (default: a temporary folder; ``jtcse export --format onnx
--quantize int8`` / ``int8-rowwise`` with its STS-B dev gate). The last lines are the int8 recalls@10.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from jtcse.benchmark import TASKS
from jtcse.data.paths import resolve_data_dir, wiki_corpus_path
from jtcse.data.sts import read_task
from jtcse.encoder import Encoder
from jtcse.export.onnx import export_onnx
from jtcse.tools.search import SearchIndex

K = 10


def sentence_pool(data_dir: Path) -> list[str]:
    """Distinct sentences: the Wiki sample first, then every STS test sentence, in file order."""
    pool: dict[str, None] = {}
    wiki = wiki_corpus_path(data_dir)
    if wiki is not None:
        for line in wiki.read_text(encoding="utf-8").splitlines():
            if line.strip():
                pool.setdefault(line.strip())
    for task in TASKS:
        for pairs in read_task(data_dir, task).values():
            for sentence in (*pairs.sentences1, *pairs.sentences2):
                pool.setdefault(sentence.strip())
    return [s for s in pool if s]


def recall(got: list[list[int]], want: list[list[int]]) -> float:
    return float(np.mean([len(set(g) & set(w)) / len(w) for g, w in zip(got, want, strict=True)]))


def lines_of(index: SearchIndex, encoder: Encoder, queries: list[str]) -> tuple[list[list[int]], float]:
    started = time.perf_counter()
    hits = index.search(encoder, queries, top_k=K)
    seconds = time.perf_counter() - started
    return [[h.line for h in per_query] for per_query in hits if isinstance(per_query, list)], seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--corpus-size", type=int, default=20_000)
    parser.add_argument("--queries", type=int, default=1_000)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--work", type=Path, default=None, help="folder for the exports and the index")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="smallest real run: a tiny random BERT, 60 generated sentences, 20 queries, fp32 only",
    )
    args = parser.parse_args()
    precisions = ("fp32", "int8", "int8-rowwise")
    if args.smoke:
        import _smoke

        args.model, args.corpus_size, args.queries = str(_smoke.tiny_model()), 60, 20
        precisions = ("fp32",)
        _smoke.skipped("int8", "its STS-B dev gate would reject a random model")
        data_dir, pool = None, _smoke.sentences(80)
    else:
        data_dir = resolve_data_dir(None, need="sts")
        pool = sentence_pool(data_dir)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(pool))
    corpus_size = min(args.corpus_size, len(pool) - args.queries)
    corpus = [pool[i] for i in sorted(order[:corpus_size])]
    queries = [pool[i] for i in order[corpus_size : corpus_size + args.queries]]
    work = args.work or Path(tempfile.mkdtemp(prefix="jtcse_bench_export_"))
    work.mkdir(parents=True, exist_ok=True)
    (work / "corpus.txt").write_text("\n".join(corpus) + "\n", encoding="utf-8")
    exports = {precision: work / f"onnx_{precision}" for precision in precisions}
    for precision, out in exports.items():
        if not (out / "jtcse.json").is_file():
            quantize = None if precision == "fp32" else precision
            export_onnx(args.model, out, quantize=quantize, threads=args.threads, data_dir=data_dir)

    torch_fp32 = Encoder(args.model, device="cpu", threads=args.threads)
    index = SearchIndex.for_corpus(torch_fp32, work / "corpus.txt", show_progress=True)
    print(f"corpus: {len(index):,} sentences ({index.status}), {len(queries):,} queries, model {args.model}")
    want, seconds = lines_of(index, torch_fp32, queries)
    print(f"fp32 torch queries:  {len(queries) / seconds:8.1f} queries/s (encode + search), recall@10 1.000")
    results = {}
    for precision, out in exports.items():
        encoder = Encoder(out, device="cpu", threads=args.threads)
        got, seconds = lines_of(index, encoder, queries)
        results[precision] = recall(got, want)
        print(f"  note: {index.model_note}")
        print(
            f"{precision} ONNX queries: {len(queries) / seconds:8.1f} queries/s (encode + search), "
            f"recall@10 {results[precision]:.3f} against the fp32 queries' top 10"
        )
        if precision != "fp32":  # the whole pipeline on the export: its own index, its own queries
            own = SearchIndex.for_corpus(encoder, work / "corpus.txt", index_dir=work / f"index_{precision}")
            got, _ = lines_of(own, encoder, queries)
            print(f"{precision} ONNX index + {precision} queries: recall@10 {recall(got, want):.3f}")
    for precision in [p for p in precisions if p != "fp32"] or ["fp32"]:  # the last line: the headline
        print(f"{precision} ONNX queries against the fp32 index: recall@10 {results[precision]:.3f}")


if __name__ == "__main__":
    main()
