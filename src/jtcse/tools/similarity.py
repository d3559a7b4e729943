"""Cosine similarity between sentences, the way the STS evaluation scores a pair."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from jtcse.errors import JtcseError
from jtcse.tools.encode_file import SupportsEncode


def normalize_rows(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (a zero row stays zero instead of becoming NaN)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.maximum(norms, np.finfo(np.float32).tiny)


def cosine_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """All-pairs cosine [len(a), len(b)] of two vector matrices."""
    return normalize_rows(np.atleast_2d(a)) @ normalize_rows(np.atleast_2d(b)).T


def _as_list(text: str | Sequence[str], name: str) -> list[str]:
    items = [text] if isinstance(text, str) else list(text)
    if not items:
        raise JtcseError(f"{name}: no sentences given")
    for i, s in enumerate(items):
        if not isinstance(s, str):
            raise JtcseError(f"{name}[{i}]: expected a string, got {type(s).__name__}")
        if not s.strip():
            raise JtcseError(f"{name}[{i}]: the sentence is empty")
    return items


def similarity(
    encoder: SupportsEncode, a: str | Sequence[str], b: str | Sequence[str], *, batch_size: int | None = None
) -> float | np.ndarray:
    """Cosine similarity of ``a`` and ``b``.

    Two strings give a float; otherwise the result is the [len(a), len(b)] matrix of every pair (a single
    string counts as a list of one). Each distinct sentence is encoded once.
    """
    left, right = _as_list(a, "a"), _as_list(b, "b")
    distinct = list(dict.fromkeys(left + right))
    vectors = encoder.encode(distinct, batch_size=batch_size, show_progress=False)
    row = {s: i for i, s in enumerate(distinct)}
    scores = cosine_matrix(vectors[[row[s] for s in left]], vectors[[row[s] for s in right]])
    if isinstance(a, str) and isinstance(b, str):
        return float(scores[0, 0])
    return scores
