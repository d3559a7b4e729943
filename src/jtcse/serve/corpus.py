"""The searchable corpus: the one place that talks to the search indexes.

``--corpus FILE`` goes through ``SearchIndex.for_corpus`` (reusing the index ``jtcse search`` saves beside
the file); ``--index DIR`` loads either a saved corpus index with ``SearchIndex.load`` and the corpus it
records, or a folder that ``jtcse index`` built over sharded vectors (flat / IVF / HNSW,
:class:`jtcse.corpus_scale.VectorIndex`). Query vectors come from the model worker like every other vector;
the index is handed an object that returns exactly those vectors, so ranking, ties and the model check stay
the index's own."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from jtcse.errors import JtcseError


class Corpus:
    def __init__(self, index: Any, encoder: Any) -> None:
        self.index = index
        self.encoder = encoder
        self.size = len(index)

    @classmethod
    def open(cls, encoder: Any, *, corpus: Path | None, index_dir: Path | None) -> Corpus:
        from jtcse.corpus_scale.index import VectorIndex, is_vector_index
        from jtcse.tools.search import SearchIndex

        if corpus is not None:
            return cls(SearchIndex.for_corpus(encoder, corpus, show_progress=False), encoder)
        if is_vector_index(index_dir):
            vector_index = VectorIndex.load(index_dir)
            vector_index.check_model(encoder)  # once: the served model is fixed
            return cls(_ShardIndex(vector_index), encoder)
        meta = SearchIndex.read_meta(index_dir)
        if meta is None:
            raise JtcseError(f"--index {index_dir}: no search index here")
        recorded = Path(str(meta.get("corpus", {}).get("path", "")))
        if not recorded.is_file():
            raise JtcseError(f"--index {index_dir}: its corpus {recorded} is missing; pass --corpus FILE")
        index = SearchIndex.load(index_dir, recorded)
        index.check_model(encoder, index_dir)
        return cls(index, encoder)

    def search(self, queries: list[str], vectors: np.ndarray, top_k: int) -> list[list[dict[str, Any]]]:
        """Hits per query: ``id`` (the 1-based corpus line), ``rank``, ``text``, ``score`` (cosine)."""
        results = self.index.search(_Precomputed(self.encoder, queries, vectors), queries, top_k=top_k)
        return [
            [{"id": h.line, "rank": h.rank, "text": h.text, "score": h.score} for h in hits]
            for hits in results
        ]


class _Precomputed:
    """Looks like the served encoder to the index (same members, so the model check holds) but returns the
    query vectors the worker already computed."""

    def __init__(self, encoder: Any, texts: Sequence[str], vectors: np.ndarray) -> None:
        self.members = encoder.members
        self.dim = encoder.dim
        self._texts = list(texts)
        self._vectors = vectors

    def encode(self, sentences: Sequence[str], **_: Any) -> np.ndarray:
        if list(sentences) != self._texts:
            raise RuntimeError("search asked for vectors of other sentences than the queries")
        return self._vectors


class _ShardIndex:
    """A ``jtcse index`` folder behind the ``search(encoder, queries, top_k)`` call :class:`Corpus` makes."""

    def __init__(self, index: Any) -> None:
        self.index = index

    def __len__(self) -> int:
        return len(self.index)

    def search(self, encoder: Any, queries: Sequence[str], *, top_k: int) -> list[list[Any]]:
        return self.index.hits(encoder.encode(list(queries)), top_k)
