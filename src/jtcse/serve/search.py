"""The searchable corpus: the one place that talks to the search indexes.

``--corpus FILE`` goes through ``SearchIndex.for_corpus`` (reusing the index ``jtcse search`` saves beside
the file); ``--index DIR`` loads either a saved corpus index with ``SearchIndex.load`` and the corpus it
records, or a folder that ``jtcse index`` built over sharded vectors (flat / IVF / HNSW,
:class:`jtcse.corpus_scale.VectorIndex`). The served model is checked against the index once, here; each
search hands the query vectors the model worker computed to the index's ``hits``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from jtcse.errors import JtcseError

if TYPE_CHECKING:
    from jtcse.protocols import SentenceEncoder, VectorSearch


class ServedSearch:
    def __init__(self, index: VectorSearch, model_note: str = "") -> None:
        self.index = index
        self.size = len(index)
        self.model_note = model_note  # which export of the index's weights the served model is, if one

    @classmethod
    def open(cls, encoder: SentenceEncoder, *, corpus: Path | None, index_dir: Path | None) -> ServedSearch:
        from jtcse.corpus_scale.index import VectorIndex
        from jtcse.corpus_scale.index_meta import is_vector_index
        from jtcse.tools.search import SearchIndex

        if corpus is not None:
            index = SearchIndex.for_corpus(encoder, corpus, show_progress=False)
            return cls(index, index.model_note)
        assert index_dir is not None  # the config requires --corpus or --index
        if is_vector_index(index_dir):
            vector_index = VectorIndex.load(index_dir)
            note = vector_index.check_model(encoder)  # once: the served model is fixed
            return cls(vector_index, note)
        meta = SearchIndex.read_meta(index_dir)
        if meta is None:
            raise JtcseError(f"--index {index_dir}: no search index here")
        recorded = Path(str(meta.get("corpus", {}).get("path", "")))
        if not recorded.is_file():
            raise JtcseError(f"--index {index_dir}: its corpus {recorded} is missing; pass --corpus FILE")
        index = SearchIndex.load(index_dir, recorded)
        return cls(index, index.check_model(encoder, index_dir))

    def search(self, vectors: np.ndarray, top_k: int) -> list[list[dict[str, Any]]]:
        """Hits per query vector: ``id`` (the 1-based corpus line), ``rank``, ``text``, ``score`` (cosine)."""
        return [
            [{"id": h.line, "rank": h.rank, "text": h.text, "score": h.score} for h in hits]
            for hits in self.index.hits(vectors, top_k)
        ]
