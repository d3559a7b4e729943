"""Plain per-pair loop references of the official loss semantics (method.md §2, §4.2). Tests only.

Written as directly as possible from the formulas, one pair at a time, so that the vectorised losses in
``jtcse.losses`` can be checked against them in float64 (values and autograd gradients).
"""

from __future__ import annotations

import torch
from torch import Tensor


def partner(i: int) -> int:
    """The official ``y = i - (i % 2) * 2 + 1``."""
    return i - (i % 2) * 2 + 1


def cos(x: Tensor, y: Tensor) -> Tensor:
    return torch.dot(x, y) / (torch.linalg.vector_norm(x) * torch.linalg.vector_norm(y))


def cross_tower_info_nce(u: Tensor, v: Tensor, temperature: float = 0.05) -> Tensor:
    """mean_i -log( exp(S_i,p(i)) / sum_{j != i} exp(S_ij) ), S_ij = cos(u_i, v_j) / temperature."""
    n = u.shape[0]
    total = torch.zeros((), dtype=u.dtype)
    for i in range(n):
        logits = [cos(u[i], v[j]) / temperature for j in range(n) if j != i]
        positive = cos(u[i], v[partner(i)]) / temperature
        total = total + torch.logsumexp(torch.stack(logits), dim=0) - positive
    return total / n


def info_nce(z: Tensor, temperature: float = 0.05) -> Tensor:
    return cross_tower_info_nce(z, z, temperature)


def one_sided_info_nce(z: Tensor, temperature: float = 0.05) -> Tensor:
    """Princeton SimCSE: mean_k -log( exp(S_kk) / sum_m exp(S_km) ), S_km = cos(z_2k, z_2m+1) / temperature
    (first copies against second copies)."""
    sentences = z.shape[0] // 2
    total = torch.zeros((), dtype=z.dtype)
    for k in range(sentences):
        logits = [cos(z[2 * k], z[2 * m + 1]) / temperature for m in range(sentences)]
        total = total + torch.logsumexp(torch.stack(logits), dim=0) - logits[k]
    return total / sentences


def modulus_constraint(
    a: Tensor, b: Tensor, pooled_a: Tensor, pooled_b: Tensor, small_cos_floor: float | None = None
) -> Tensor:
    """LTN(A -> B) as the official loop; ``small_cos_floor=None`` is the official code exactly."""
    sentences = a.shape[0] // 2
    total = torch.zeros((), dtype=a.dtype)
    for k in range(sentences):
        e, o = 2 * k, 2 * k + 1
        c = cos(a[e], b[o])
        if c < 0:
            c = torch.tensor(1e-4, dtype=a.dtype)  # a fresh constant: no gradient
        elif small_cos_floor is not None and c < small_cos_floor:
            c = torch.tensor(small_cos_floor, dtype=a.dtype)
        pa, pb = pooled_a[e], pooled_b[o]
        modulus = torch.linalg.vector_norm(pa - pb) / (
            torch.linalg.vector_norm(pa) + torch.linalg.vector_norm(pb)
        )
        modulus = modulus / 2
        total = total + (-torch.log(c) * modulus)
    return total / sentences


def jtcse_terms(
    a: Tensor,
    b: Tensor,
    pooled_a: Tensor,
    pooled_b: Tensor,
    ca_a: list[Tensor],
    ca_b: list[Tensor],
    direction: int,
    temperature: float = 0.05,
    small_cos_floor: float | None = None,
) -> dict[str, Tensor]:
    """The four unweighted terms of the official step (CA term averaged over layers)."""
    nce = info_nce(a, temperature) + info_nce(b, temperature)
    if direction == 0:
        icnce = cross_tower_info_nce(a, b, temperature)
        ca_terms = [cross_tower_info_nce(u, v, temperature) for u, v in zip(ca_a, ca_b, strict=True)]
    else:
        icnce = cross_tower_info_nce(b, a, temperature)
        ca_terms = [cross_tower_info_nce(v, u, temperature) for u, v in zip(ca_a, ca_b, strict=True)]
    icnce_ca = sum(ca_terms, torch.zeros((), dtype=a.dtype)) / max(len(ca_terms), 1)
    ictm = modulus_constraint(a, b, pooled_a, pooled_b, small_cos_floor) + modulus_constraint(
        b, a, pooled_b, pooled_a, small_cos_floor
    )
    return {"nce": nce, "icnce": icnce, "icnce_ca": icnce_ca, "ictm": ictm}


def distillation_loss(student: Tensor, teacher: Tensor, k: float, temperature: float = 0.05) -> Tensor:
    rows = []
    for i in range(student.shape[0]):
        rows.append(teacher[i].detach())
        rows.append(student[i])
    contrastive = info_nce(torch.stack(rows), temperature)
    absolute_error = torch.zeros((), dtype=student.dtype)
    for i in range(student.shape[0]):
        for j in range(student.shape[1]):
            absolute_error = absolute_error + torch.abs(student[i, j] - teacher[i, j].detach())
    return k * contrastive + (1 - k) * absolute_error / student.numel()
