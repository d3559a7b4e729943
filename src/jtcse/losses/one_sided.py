"""SimCSE as published (Princeton's ``models.py``, unsupervised): the one-sided B x B InfoNCE.

Rows are interleaved ``[x0, x0, x1, x1, ...]`` (N = 2B): the first dropout copies ``z[0::2]`` are the
anchors, the second copies ``z[1::2]`` the candidates. ``S_ij = cos(first_i, second_j) / temperature``;
the cross-entropy of row ``i`` has label ``i`` (its own second copy) and the other ``B - 1`` sentences'
second copies as negatives. Unlike :func:`jtcse.losses.info_nce` (2B x 2B, both copies anchors, 2B - 2
negatives), the anchors' own copies are never negatives and each pair is scored in one direction only.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from jtcse.losses._checks import check_interleaved, check_temperature
from jtcse.losses.info_nce import cosine_matrix
from jtcse.losses.masking import autocast_off, upcast


def one_sided_info_nce(z: Tensor, temperature: float = 0.05) -> Tensor:
    """Mean over the B sentences of ``-log softmax_j(S_ij)[i]``, ``S`` as in the module doc.

    Half-precision inputs are computed in float32; the result has the compute dtype. With one sentence
    (N = 2) its second copy is the only candidate and the loss is 0.
    """
    check_interleaved("one_sided_info_nce", z)
    check_temperature("one_sided_info_nce", temperature)
    with autocast_off(z.device):
        (z,) = upcast(z)
        scores = cosine_matrix(z[0::2], z[1::2]) / temperature
        return F.cross_entropy(scores, torch.arange(scores.shape[0], device=z.device))
