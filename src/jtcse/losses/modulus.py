"""Inter-tower tensor-modulus constraint, LTN / ICTM (method.md §2.3, §2.5, §7.7).

One direction, A -> B. For each sentence k with rows ``e = 2k`` and ``o = 2k + 1``::

    c_k = cos(a_e, b_o)
    M_k = ||PA_e - PB_o|| / (||PA_e|| + ||PB_o||) / 2
    LTN(A -> B) = (1 / B) * sum_k -log(c_k) * M_k

Quirks of the official code kept on purpose (each has a dedicated test in tests/test_losses.py):

* **Even-row anchors only**: only copy 0 of A and copy 1 of B enter; ``a_o``, ``b_e``, ``PA_o`` and
  ``PB_e`` have no effect (the B -> A direction, called with the towers swapped, uses the other rows).
* **Copy 0 of A vs copy 1 of B**: the pair is always ``(e, o)``, never ``(o, e)``.
* **Pooler outputs for M**: the modulus ratio uses ``pooled_a`` / ``pooled_b`` (dense + tanh), the cosine
  uses the CLS states ``a`` / ``b``.
* **Mean over the B sentences**, not over the 2B rows.
* **The /2**: precedence is ``(diff / sum) / 2``, so ``M_k`` lies in [0, 0.5].
* **Negative-cosine constant**: ``c_k < 0`` is replaced by the constant 1e-4 (no gradient), so
  ``-log c = 9.21`` and only ``M_k`` (the pooler outputs) gets a gradient for that pair.

Project decision (the one deviation, off with ``small_cos_floor=None``): the official code does not clamp
``0 <= c_k < 1e-4``, so ``c_k = 0`` gives ``inf``. By default such cosines are also replaced by the
constant ``small_cos_floor`` (1e-4, no gradient); the value changes by at most ``-log(1e-4) * M_k`` only in
that band, which random high-dimensional vectors essentially never hit.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from jtcse.losses._checks import check_interleaved
from jtcse.losses.info_nce import COSINE_EPS
from jtcse.losses.masking import autocast_off, upcast

# The official replacement for a negative cosine.
NEGATIVE_COS_CONSTANT = 1e-4


def modulus_constraint(
    a: Tensor,
    b: Tensor,
    pooled_a: Tensor,
    pooled_b: Tensor,
    *,
    small_cos_floor: float | None = 1e-4,
) -> Tensor:
    """LTN(A -> B) for CLS states ``a``, ``b`` [N, H] and pooler outputs ``pooled_a``, ``pooled_b`` [N, H'].

    ``small_cos_floor``: cosines in ``[0, small_cos_floor)`` are replaced by the constant
    ``small_cos_floor`` (no gradient); ``None`` reproduces the official code exactly (``c = 0`` gives inf).
    Negative cosines always become the constant 1e-4, as in the official code.
    For B -> A call ``modulus_constraint(b, a, pooled_b, pooled_a)``.
    """
    n = check_interleaved("modulus_constraint", a, b)
    n_pooled = check_interleaved("modulus_constraint (pooled)", pooled_a, pooled_b)
    if n_pooled != n:
        raise ValueError(
            f"modulus_constraint: CLS states have N={n} rows but pooler outputs have N={n_pooled}"
        )
    if small_cos_floor is not None and not (math.isfinite(small_cos_floor) and small_cos_floor > 0):
        raise ValueError(f"modulus_constraint: small_cos_floor must be > 0 or None, got {small_cos_floor!r}")

    with autocast_off(a.device):
        a, b, pooled_a, pooled_b = upcast(a, b, pooled_a, pooled_b)
        raw_cos = F.cosine_similarity(a[0::2], b[1::2], dim=-1, eps=COSINE_EPS)
        # torch.where passes no gradient to the branch it did not pick: the constants carry none.
        cos = torch.where(raw_cos < 0, raw_cos.new_tensor(NEGATIVE_COS_CONSTANT), raw_cos)
        if small_cos_floor is not None:
            tiny = (raw_cos >= 0) & (raw_cos < small_cos_floor)
            cos = torch.where(tiny, raw_cos.new_tensor(small_cos_floor), cos)

        anchor, other = pooled_a[0::2], pooled_b[1::2]
        diff_norm = torch.linalg.vector_norm(anchor - other, dim=-1)
        norm_sum = torch.linalg.vector_norm(anchor, dim=-1) + torch.linalg.vector_norm(other, dim=-1)
        modulus = diff_norm / norm_sum / 2
        loss: torch.Tensor = (-torch.log(cos) * modulus).mean()
        return loss
