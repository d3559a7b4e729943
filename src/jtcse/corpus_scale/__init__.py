"""Corpora of millions of lines: sharded, resumable encoding and approximate (faiss) search indexes.

::

    from jtcse import Encoder
    from jtcse.corpus_scale import ShardOptions, encode_to_shards, build_index, VectorIndex

    encoder = Encoder("minilm")
    encode_to_shards(encoder, "corpus.txt", "corpus.vectors", ShardOptions(normalize=True, resume=True))
    build_index("corpus.vectors", "corpus.index", kind="ivf")
    VectorIndex.load("corpus.index").search(encoder, "a query", top_k=5)

One job per module: ``lines`` (reading a file by line ranges), ``manifest`` (what a vectors
folder holds), ``shards`` (writing and reading shard files), ``parquet_shards`` (the Parquet shard format),
``progress``, ``encode`` (the resumable multi-process loop), ``exact`` (streaming exact top-k, re-ranking,
recall), ``faiss_kinds`` (flat / IVF / HNSW / IVF-PQ / IVF-SQ8), ``index`` (a saved index tied to its
vectors and model).
"""

from __future__ import annotations

from jtcse.corpus_scale.encode import DEFAULT_SHARD_SIZE, EncodeResult, ShardOptions, encode_to_shards
from jtcse.corpus_scale.index import VectorIndex, build_index
from jtcse.corpus_scale.shards import ShardedVectors

__all__ = [
    "DEFAULT_SHARD_SIZE",
    "EncodeResult",
    "ShardOptions",
    "ShardedVectors",
    "VectorIndex",
    "build_index",
    "encode_to_shards",
]
