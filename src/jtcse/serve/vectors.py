"""Vector post-processing and wire formats (normalise as ``torch.nn.functional.normalize`` does)."""

from __future__ import annotations

import base64
import json

import numpy as np

_EPS = 1e-12  # torch.nn.functional.normalize's default eps


def normalize(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return (vectors / np.maximum(norms, _EPS)).astype(np.float32, copy=False)


def shorten(vectors: np.ndarray, dimensions: int | None) -> np.ndarray:
    """OpenAI ``dimensions``: keep the first ``dimensions`` values, then re-normalise."""
    if dimensions is None or dimensions == vectors.shape[1]:
        return vectors
    return normalize(vectors[:, :dimensions])


def to_base64(vector: np.ndarray) -> str:
    """Little-endian float32 bytes, base64: what the OpenAI clients decode."""
    return base64.b64encode(np.ascontiguousarray(vector, dtype="<f4").tobytes()).decode("ascii")


def cosine_pairs(a: np.ndarray, b: np.ndarray) -> list[float]:
    return [float(x) for x in np.sum(normalize(a) * normalize(b), axis=1)]


def json_bytes(payload: object) -> bytes:
    """Compact JSON; float32 values go out as the shortest decimal that reads back to the same float32."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def float_lists(vectors: np.ndarray) -> list[list[float]]:
    # float32 -> Python float (exact) -> repr: parses back to the identical float32
    return vectors.astype(np.float64).tolist()
