"""Exact top-k over a sharded vectors folder, streamed shard by shard (memory: one block of scores),
exact re-ranking of an approximate index's candidates, and recall@k of an approximate result."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from jtcse.corpus_scale.shards import ShardedVectors

_BLOCK_ROWS = 1 << 16
_RERANK_QUERIES = 256  # queries re-ranked at once (memory: 256 x candidates x dim floats)


def _merge(
    best_scores: np.ndarray, best_rows: np.ndarray, scores: np.ndarray, rows: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """The k best of two candidate sets per query, ordered by (score descending, row ascending)."""
    all_scores = np.concatenate([best_scores, scores], axis=1)
    all_rows = np.concatenate([best_rows, rows], axis=1)
    order = np.lexsort((all_rows, -all_scores), axis=1)[:, :k]
    return np.take_along_axis(all_scores, order, 1), np.take_along_axis(all_rows, order, 1)


def exact_search(vectors: ShardedVectors, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k (cosine, row) per unit-length query over every non-blank row, best first."""
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    best_scores = np.full((len(queries), 0), -np.inf, np.float32)
    best_rows = np.zeros((len(queries), 0), np.int64)
    for first, shard in vectors.shards():
        for begin in range(0, shard.shape[0], _BLOCK_ROWS):
            block = np.asarray(shard[begin : begin + _BLOCK_ROWS], dtype=np.float32)
            norms = np.linalg.norm(block, axis=1)
            scores = queries @ block.T / np.maximum(norms, np.finfo(np.float32).tiny)
            scores[:, norms == 0] = -np.inf  # blank lines are never hits
            take = min(k, block.shape[0])
            part = np.argpartition(-scores, take - 1, axis=1)[:, :take]
            # every row tied with the k-th best must compete, or ties would depend on the block borders
            kth = np.take_along_axis(scores, part, 1).min(axis=1, keepdims=True)
            tied = scores >= kth
            if tied.sum(axis=1).max() > take:
                part = np.argsort(-scores, axis=1, kind="stable")[:, : int(tied.sum(axis=1).max())]
            rows = part + first + begin
            best_scores, best_rows = _merge(
                best_scores, best_rows, np.take_along_axis(scores, part, 1), rows, k
            )
    return best_scores, best_rows


def recall_at_k(approx_rows: np.ndarray, exact_rows: np.ndarray) -> float:
    """Mean over queries of the share of the exact top-k that the approximate top-k found."""
    hits = [
        len(set(a.tolist()) & set(e.tolist())) / max(len(e), 1)
        for a, e in zip(approx_rows, exact_rows, strict=True)
    ]
    return float(np.mean(hits)) if hits else 1.0


def rerank_candidates(
    queries: np.ndarray, candidates: np.ndarray, fetch: Callable[[np.ndarray], np.ndarray], k: int
) -> tuple[np.ndarray, np.ndarray]:
    """The exact top-k (cosine, row) among each query's ``candidates`` (rows; -1 = none), best first.

    ``fetch(rows)`` returns the float vectors of ``rows`` (any order, repeats allowed), read from the shards
    (memory-mapped); it is called once per group of queries. Ties go to the lower row, as in exact search.
    """
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    best_scores = np.full((len(queries), k), -np.inf, np.float32)
    best_rows = np.full((len(queries), k), -1, np.int64)
    tiny = np.finfo(np.float32).tiny
    for begin in range(0, len(queries), _RERANK_QUERIES):
        part = slice(begin, begin + _RERANK_QUERIES)
        rows = candidates[part]
        found = np.asarray(fetch(np.maximum(rows, 0).ravel()), dtype=np.float32).reshape(*rows.shape, -1)
        norms = np.sqrt(np.einsum("qkd,qkd->qk", found, found))
        scores = np.einsum("qkd,qd->qk", found, queries[part]) / np.maximum(norms, tiny)
        scores[rows < 0] = -np.inf
        order = np.lexsort((rows, -scores), axis=1)[:, :k]
        best_scores[part, : order.shape[1]] = np.take_along_axis(scores, order, 1)
        best_rows[part, : order.shape[1]] = np.take_along_axis(rows, order, 1)
    best_rows[~np.isfinite(best_scores)] = -1
    return best_scores, best_rows
