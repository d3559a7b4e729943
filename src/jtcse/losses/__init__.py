"""Loss functions: pure, vectorised tensor functions on rows interleaved ``[x0, x0, x1, x1, ...]``.

See method.md §2 (SimCSE / JTCSE / TNCSE terms) and §4.2 (distillation).
"""

from __future__ import annotations

from jtcse.losses.cross_tower import cross_tower_info_nce
from jtcse.losses.distillation import K_DISTILL, K_UC_DISTILL, distillation_loss, distillation_terms
from jtcse.losses.info_nce import info_nce, partner_labels
from jtcse.losses.masking import large_negative
from jtcse.losses.modulus import NEGATIVE_COS_CONSTANT, modulus_constraint
from jtcse.losses.objectives import TERMS, LossWeights, jtcse_objective, simcse_objective
from jtcse.losses.one_sided import one_sided_info_nce

__all__ = [
    "K_DISTILL",
    "K_UC_DISTILL",
    "NEGATIVE_COS_CONSTANT",
    "TERMS",
    "LossWeights",
    "cross_tower_info_nce",
    "distillation_loss",
    "distillation_terms",
    "info_nce",
    "jtcse_objective",
    "large_negative",
    "modulus_constraint",
    "one_sided_info_nce",
    "partner_labels",
    "simcse_objective",
]
