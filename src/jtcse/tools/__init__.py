"""Everyday tools on top of :class:`jtcse.Encoder`: encode a file, compare sentences, search a corpus.

Each takes an encoder (``jtcse.Encoder`` or anything with the same ``encode``)::

    from jtcse import Encoder
    from jtcse.tools import SearchIndex, encode_file, similarity

    encoder = Encoder("minilm")
    encode_file(encoder, "sents.txt", "vecs.npy")
    similarity(encoder, "A man plays guitar.", "Someone plays an instrument.")
    index = SearchIndex.for_corpus(encoder, "corpus.txt")   # built once, saved as corpus.txt.jtcse-index/
    index.search(encoder, "a query", top_k=5)
"""

from __future__ import annotations

from jtcse.tools.encode_file import encode_file, load_vectors, read_lines, save_vectors
from jtcse.tools.search import SearchHit, SearchIndex, read_corpus
from jtcse.tools.similarity import cosine_matrix, similarity

__all__ = [
    "SearchHit",
    "SearchIndex",
    "cosine_matrix",
    "encode_file",
    "load_vectors",
    "read_corpus",
    "read_lines",
    "save_vectors",
    "similarity",
]
