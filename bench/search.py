"""Exact vs approximate search on 1,000,000 vectors of dimension 384: build time, queries/s, recall@10,
bytes per vector in memory.

The vectors are a Gaussian mixture, normalised to unit length: 2,000 centres drawn from N(0, I), each vector a
centre plus N(0, I) noise (seed 0; ``--noise`` scales it): as much noise as signal, so the clusters overlap
and a vector's true neighbours often sit in other cells (with 0.6 every index finds them all; with 2.0 the
data is close to uniform on the sphere, unlike sentence embeddings). The 1,000 queries are fresh draws
from the same mixture (not corpus vectors). Recall@10 is the share of the exact top 10 (faiss
IndexFlatIP, the ``flat`` kind) that an approximate index returns.

The indexes are the ones ``jtcse index`` builds (:func:`jtcse.corpus_scale.faiss_kinds.make_index`): ``ivf``
with its default nlist (~sqrt(n)) swept over nprobe, ``hnsw`` (M 16, efConstruction 40) swept over efSearch,
and the compressed kinds ``ivfpq`` (default: 96 8-bit codes per 384-dim vector) and ``ivfsq8`` swept over
nprobe and the candidates re-ranked exactly (:func:`jtcse.corpus_scale.exact.rerank_candidates`, the search's
own re-ranking) from the float vectors in a memory-mapped ``.npy`` file, as ``jtcse search`` reads shards.
A compressed setting's time includes its re-ranking. Bytes per vector in memory: the faiss code (float vector
or PQ / SQ code) plus, for IVF kinds, the 8-byte id (:func:`jtcse.corpus_scale.faiss_kinds.bytes_per_vector`).
Query timing: every setting runs the same 1,000 queries in each of ``--repeats`` interleaved rounds (exact,
then every IVF and HNSW setting, round after round), best round kept. Same thread count for all.

On 2 cores the HNSW build of 1,000,000 vectors takes ~10 minutes; ``--hnsw-n`` builds it on the first N
vectors only (its recall and speed-up are then against exact search over the same N, and say so).

    python bench/search.py [--n 1000000] [--dim 384] [--queries 1000] [--hnsw-n N] [--threads T]

Before the last line: the fastest compressed setting whose recall@10 is at least 0.95, and the fastest one
that also keeps to 128 bytes per vector in memory (goal: <= 128 B, 12x less than float32, and >= 10x over
exact), each with its bytes per vector; the last line is the speed-up (queries/s) over exact search of the
fastest approximate setting whose recall@10 is at least 0.95.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from jtcse.corpus_scale.exact import rerank_candidates
from jtcse.corpus_scale.faiss_kinds import (
    COMPRESSED_KINDS,
    IVF_KINDS,
    bytes_per_vector,
    faiss_module,
    make_index,
    resolve_params,
    set_search_params,
    training_size,
)

RECALL_GOAL = 0.95
SPEEDUP_GOAL = 10.0
BYTES_GOAL = 128
RERANKS = (50, 100, 200, 400)
K = 10
NOISE = 1.0


def mixture(n: int, dim: int, centres: np.ndarray, noise: float, rng: np.random.Generator) -> np.ndarray:
    out = np.empty((n, dim), np.float32)
    for begin in range(0, n, 100_000):  # in blocks: the float64 noise of 1M x 384 would be 3 GB
        size = min(100_000, n - begin)
        noise_block = noise * rng.standard_normal((size, dim), np.float32)
        block = centres[rng.integers(0, len(centres), size)] + noise_block
        out[begin : begin + size] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(
        np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found.tolist(), truth.tolist(), strict=True)])
    )


def build(kind: str, x: np.ndarray, **knobs: int | None) -> tuple[Any, float]:
    params = resolve_params(kind, len(x), dim=x.shape[1], **knobs)
    started = time.perf_counter()
    index = make_index(params, x.shape[1])
    if kind in IVF_KINDS:
        sample = x[np.random.default_rng(1).choice(len(x), min(len(x), training_size(params)), replace=False)]
        index.train(sample)
    for begin in range(0, len(x), 65_536):
        index.add(x[begin : begin + 65_536])
    print(f"{kind}: built in {time.perf_counter() - started:.1f} s ({params.describe()})", flush=True)
    return index, time.perf_counter() - started


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--hnsw-n", type=int, help="build HNSW on the first N vectors only (default: all)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--noise", type=float, default=NOISE, help="noise scale (centres have scale 1)")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--pq-m", type=int, help="ivfpq codes per vector (default: jtcse index's)")
    parser.add_argument(
        "--reranks",
        type=lambda text: tuple(int(v) for v in text.split(",")),
        default=RERANKS,
        help="candidates re-ranked exactly, swept (default: %(default)s)",
    )
    parser.add_argument("--workdir", type=Path, help="folder of the memory-mapped vectors (default: temp)")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="smallest real run: 10,000 x 16 (ivfpq needs 9,984), 50 queries, 1 round; measures nothing",
    )
    args = parser.parse_args()
    if args.smoke:
        args.n, args.dim, args.queries, args.repeats, args.hnsw_n = 10_000, 16, 50, 1, 2_000
    return args


def build_settings(args: argparse.Namespace, x: np.ndarray) -> list[tuple]:
    """(kind, index, query knobs, position of its exact truth, build seconds, vectors) per setting."""
    hnsw_n = min(args.hnsw_n or args.n, args.n)
    exact, exact_build = build("flat", x)
    settings: list[tuple] = [("exact", exact, {}, 0, exact_build, args.n)]
    if hnsw_n < args.n:
        exact_small, small_build = build("flat", x[:hnsw_n])
        settings.append(("exact", exact_small, {}, 1, small_build, hnsw_n))
    small = len(settings) - 1
    ivf, ivf_build = build("ivf", x)
    hnsw, hnsw_build = build("hnsw", x[:hnsw_n])
    nprobes = [p for p in (4, 8, 16, 32, 64, 128, 256) if p <= ivf.nlist]
    settings += [("ivf", ivf, {"nprobe": p}, 0, ivf_build, args.n) for p in nprobes]
    efs = (16, 32, 64, 128, 256, 512)
    settings += [("hnsw", hnsw, {"ef_search": e}, small, hnsw_build, hnsw_n) for e in efs]
    for kind, knobs in (("ivfpq", {"pq_m": args.pq_m}), ("ivfsq8", {})):
        index, seconds = build(kind, x, **knobs)
        settings += [
            (kind, index, {"nprobe": p, "rerank": r}, 0, seconds, args.n)
            for p in nprobes[:5]
            for r in args.reranks
        ]
    return settings


def search(index: Any, kind: str, knobs: dict, queries: np.ndarray, stored: np.ndarray) -> np.ndarray:
    """The top-K rows of one setting (``index``: a faiss index, untyped); a compressed kind re-ranks its
    candidates from ``stored``."""
    depth = knobs.get("rerank", 0) if kind in COMPRESSED_KINDS else 0
    labels = index.search(queries, max(K, depth))[1]
    if depth:
        labels = rerank_candidates(queries, labels, lambda rows: stored[rows], K)[1]
    return labels


def time_rounds(
    settings: list[tuple], queries: np.ndarray, repeats: int, stored: np.ndarray
) -> tuple[list[float], list]:
    """Best seconds and the hits of every setting, in interleaved rounds (load drifts over all alike)."""
    best = [float("inf")] * len(settings)
    found: list[np.ndarray] = [np.empty(0)] * len(settings)
    for _ in range(repeats):
        for i, (kind, index, knobs, _, _, _) in enumerate(settings):
            set_search_params(index, kind, nprobe=knobs.get("nprobe"), ef_search=knobs.get("ef_search"))
            t = time.perf_counter()
            found[i] = search(index, kind, knobs, queries, stored)
            best[i] = min(best[i], time.perf_counter() - t)
    return best, found


def report(settings: list[tuple], best: list[float], found: list, queries: int) -> None:
    exact_qps = {n: queries / best[i] for i, (kind, *_, n) in enumerate(settings) if kind == "exact"}
    winner = 0.0
    compressed: dict[str, tuple[float, str, float]] = {}  # "any" size, and "small" (within BYTES_GOAL)
    for i, (kind, index, knobs, truth, build_s, n) in enumerate(settings):
        qps = queries / best[i]
        r = recall(found[i], found[truth])
        speedup = qps / exact_qps[n]
        per_vector = bytes_per_vector(index, "flat" if kind == "exact" else kind)
        setting = ", ".join(f"{k} {v}" for k, v in knobs.items() if v is not None) or "flat"
        print(
            f"{kind:<6} {setting:<20} n={n:>9,}  build {build_s:7.1f} s  {qps:10,.0f} queries/s  "
            f"recall@{K} {r:.3f}  x{speedup:.1f} vs exact  {per_vector:6,.0f} B/vector"
        )
        if kind != "exact" and r >= RECALL_GOAL:
            winner = max(winner, speedup)
        if kind not in COMPRESSED_KINDS or r < RECALL_GOAL:
            continue
        for size in ("any", "small") if per_vector <= BYTES_GOAL else ("any",):
            if speedup > compressed.get(size, (0.0,))[0]:
                compressed[size] = (speedup, f"{kind} {setting}", per_vector)
    float32 = 4 * settings[0][1].d
    for size, what in (("any", "fastest compressed index"), ("small", f"fastest index in <= {BYTES_GOAL} B")):
        if size not in compressed:
            print(f"{what} at the recall goal: none reached recall@{K} >= {RECALL_GOAL}")
            continue
        speedup, setting, per_vector = compressed[size]
        met = "met" if per_vector <= BYTES_GOAL and speedup >= SPEEDUP_GOAL else "not met"
        goal = f"goal <= {BYTES_GOAL} B and >= {SPEEDUP_GOAL:g}x: {met}"
        print(
            f"{what} at the recall goal: {setting} (x{speedup:.1f} vs exact), {per_vector:,.0f} bytes per "
            f"vector in memory (float32 {float32:,}; {goal})"
        )
    print(f"fastest approximate index at the recall goal, speed-up over exact search: {winner:.1f}x")


def main() -> None:
    args = parse_args()
    faiss_module().omp_set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((2000, args.dim)).astype(np.float32)
    started = time.perf_counter()
    x = mixture(args.n, args.dim, centres, args.noise, rng)
    queries = mixture(args.queries, args.dim, centres, args.noise, rng)
    print(
        f"data: {args.n:,} x {args.dim} mixture vectors (noise {args.noise}) + {args.queries:,} queries "
        f"in {time.perf_counter() - started:.1f} s"
    )
    print(
        f"goal: an approximate index >= {SPEEDUP_GOAL:.0f}x the queries/s of exact search "
        f"at recall@{K} >= {RECALL_GOAL}"
    )
    print(f"threads: {args.threads}, k = {K}", flush=True)
    settings = build_settings(args, x)
    with tempfile.TemporaryDirectory(dir=args.workdir) as work:
        np.save(Path(work) / "vectors.npy", x)  # re-ranking reads it memory-mapped, like the shards
        stored = np.load(Path(work) / "vectors.npy", mmap_mode="r")
        best, found = time_rounds(settings, queries, args.repeats, stored)
        del stored
    report(settings, best, found, args.queries)


if __name__ == "__main__":
    main()
