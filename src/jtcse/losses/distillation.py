"""Distillation loss for single-tower students, D and UC-D (method.md §4.2, CACSE recipe [inferred]).

Each sentence is encoded once by the student and once by the frozen teacher. The teacher vector is the
positive in an interleaved InfoNCE, ``[T(x0), S(x0), T(x1), S(x1), ...]`` with partner labels as in
SimCSE (so teacher rows are anchors too, and every other sentence's teacher and student rows are
negatives), plus an L1 pull of the student towards the teacher::

    loss = k * info_nce(interleaved) + (1 - k) * mean(|S - T|)

D uses ``k = 0.01``, UC-D ``k = 0.1``. The teacher is detached: it is a constant target.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from jtcse.losses._checks import check_temperature
from jtcse.losses.info_nce import info_nce
from jtcse.losses.masking import autocast_off, upcast

K_DISTILL = 0.01  # JTCSE-D
K_UC_DISTILL = 0.1  # JTCSE-UC-D


def interleave(teacher: Tensor, student: Tensor) -> Tensor:
    """``[T(x0), S(x0), T(x1), S(x1), ...]`` from two [B, H] tensors."""
    return torch.stack((teacher, student), dim=1).reshape(-1, student.shape[-1])


def distillation_loss(
    student: Tensor, teacher: Tensor, k: float = K_DISTILL, temperature: float = 0.05
) -> Tensor:
    """``k * InfoNCE(interleaved teacher/student) + (1 - k) * L1(student, teacher)``, one row per sentence.

    ``student`` and ``teacher`` are [B, H] (B >= 1). ``teacher`` gets no gradient. L1 is the mean absolute
    error over all B * H entries of the raw (unnormalised) vectors.
    """
    return distillation_terms(student, teacher, k, temperature)["loss"]


def distillation_terms(
    student: Tensor, teacher: Tensor, k: float = K_DISTILL, temperature: float = 0.05
) -> dict[str, Tensor]:
    """:func:`distillation_loss` as ``{"loss", "nce", "l1"}``: the loss and its two parts, unweighted."""
    for tensor_name, tensor in (("student", student), ("teacher", teacher)):
        if tensor.dim() != 2 or tensor.shape[0] < 1:
            raise ValueError(
                f"distillation_loss: {tensor_name} must be 2-D [B, H] with B >= 1 (one row per sentence), "
                f"got shape {tuple(tensor.shape)}"
            )
    if student.shape != teacher.shape:
        raise ValueError(
            "distillation_loss: student and teacher shapes differ: "
            f"{tuple(student.shape)} vs {tuple(teacher.shape)}"
        )
    if not (isinstance(k, (int, float)) and math.isfinite(k) and 0.0 <= k <= 1.0):
        raise ValueError(f"distillation_loss: k must be in [0, 1], got {k!r}")
    check_temperature("distillation_loss", temperature)

    with autocast_off(student.device):
        student, teacher = upcast(student, teacher.detach())
        contrastive = info_nce(interleave(teacher, student), temperature)
        pull = F.l1_loss(student, teacher)
        return {"loss": k * contrastive + (1.0 - k) * pull, "nce": contrastive, "l1": pull}
