"""Unsupervised SimCSE InfoNCE with dropout positives (method.md §2.1).

Rows are interleaved ``[x0, x0, x1, x1, ...]`` (N = 2B): row ``i``'s positive is its partner
``p(i) = i ^ 1`` (the other dropout copy of the same sentence), every other row is a negative, and the
row itself is excluded by masking the diagonal.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from jtcse.losses._checks import check_interleaved, check_temperature
from jtcse.losses.masking import autocast_off, mask_diagonal, upcast

# Same epsilon as torch.nn.functional.cosine_similarity, the official code's similarity.
COSINE_EPS = 1e-8


def cosine_matrix(u: Tensor, v: Tensor) -> Tensor:
    """``S[i, j] = cos(u_i, v_j)`` for 2-D ``u`` [N, d] and ``v`` [M, d]."""
    return F.normalize(u, dim=-1, eps=COSINE_EPS) @ F.normalize(v, dim=-1, eps=COSINE_EPS).T


def partner_labels(n: int, device: torch.device) -> Tensor:
    """``p(i) = i + 1`` for even ``i``, ``i - 1`` for odd ``i``: flipping the lowest bit."""
    return torch.arange(n, device=device) ^ 1


def partner_cross_entropy(scores: Tensor) -> Tensor:
    """Mean over rows of the cross-entropy of ``scores`` [N, N] (diagonal masked) against ``p(i)``."""
    masked = mask_diagonal(scores)
    return F.cross_entropy(masked, partner_labels(scores.shape[0], scores.device))


def info_nce(z: Tensor, temperature: float = 0.05) -> Tensor:
    """SimCSE unsupervised InfoNCE of one tower's embeddings ``z`` [N, dim].

    ``S_ij = cos(z_i, z_j) / temperature``, the diagonal masked, cross-entropy with label ``p(i)``, averaged
    over all N rows. Half-precision inputs are computed in float32; the result has the compute dtype.
    With N = 2 (one sentence) the partner is the only candidate and the loss is 0.
    """
    check_interleaved("info_nce", z)
    check_temperature("info_nce", temperature)
    with autocast_off(z.device):
        (z,) = upcast(z)
        return partner_cross_entropy(cosine_matrix(z, z) / temperature)
