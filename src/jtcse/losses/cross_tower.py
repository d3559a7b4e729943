"""Inter-tower InfoNCE, ICNCE (method.md §2.2).

Anchors come from one tower (``u``), candidates from the other (``v``). The positive for ``u_i`` is the
*other* dropout copy ``v_p(i)``; the same row ``v_i`` (same sentence, same copy, other tower) is masked out,
as in the official code, so it is neither a positive nor a negative.
"""

from __future__ import annotations

from torch import Tensor

from jtcse.losses._checks import check_interleaved, check_temperature
from jtcse.losses.info_nce import cosine_matrix, partner_cross_entropy
from jtcse.losses.masking import autocast_off, upcast


def cross_tower_info_nce(u: Tensor, v: Tensor, temperature: float = 0.05) -> Tensor:
    """ICNCE(u -> v) for ``u``, ``v`` [N, dim] from two towers on the same interleaved rows.

    ``S_ij = cos(u_i, v_j) / temperature``, diagonal masked, label ``p(i)``, mean over N rows.
    Not symmetric: ``cross_tower_info_nce(u, v) != cross_tower_info_nce(v, u)`` in general.
    """
    check_interleaved("cross_tower_info_nce", u, v)
    check_temperature("cross_tower_info_nce", temperature)
    with autocast_off(u.device):
        u, v = upcast(u, v)
        return partner_cross_entropy(cosine_matrix(u, v) / temperature)
