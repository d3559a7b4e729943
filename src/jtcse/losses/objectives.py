"""Training objectives: unsupervised SimCSE (stage 1) and JTCSE / TNCSE twin-tower (stage 2), method.md §2.4.

``jtcse_objective`` returns every term so the trainer can log them; each value is the *unweighted* term
(a 0-dim tensor, still attached to the graph; call ``.item()`` or ``.detach()`` to log it). ``"loss"`` is
the weighted sum of the terms that are on (weight > 0); a term that is off is a 0-valued tensor and is never
computed. Each term is computed here and nowhere else: training calls this function.

    L = w_nce * [nce(a) + nce(b)] + w_icnce * icnce + w_icnce_ca * icnce_ca + w_ictm * ictm

with the direction ``r`` drawn by the trainer once per step and shared by both inter-tower terms:

* r = 0: ``icnce = ICNCE(a, b)``, ``icnce_ca = mean_l ICNCE(ca_a[l], ca_b[l])``
* r = 1: ``icnce = ICNCE(b, a)``, ``icnce_ca = mean_l ICNCE(ca_b[l], ca_a[l])``
* ``ictm = LTN(A -> B) + LTN(B -> A)``

The CA term is averaged over the cross-attention layers given (one layer = the official single term; an
empty list = no CA term). TNCSE (``LossWeights.tncse()``) is the same objective without the CA term and
with the direction fixed to 0.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

import torch
from torch import Tensor

from jtcse.errors import JtcseError
from jtcse.losses.cross_tower import cross_tower_info_nce
from jtcse.losses.info_nce import info_nce
from jtcse.losses.masking import compute_dtype
from jtcse.losses.modulus import modulus_constraint
from jtcse.losses.one_sided import one_sided_info_nce

TERMS = ("nce", "icnce", "icnce_ca", "ictm")


# ``loss.direction`` of ICNCE: drawn per step (the official code), or fixed (0 = A->B, 1 = B->A).
Direction = Literal["random", "a_to_b", "b_to_a"]
DIRECTIONS: tuple[Direction, ...] = get_args(Direction)

# The per-term on/off switches LossWeights once had: a term is on exactly when its weight is > 0.
_REMOVED_SWITCHES = tuple(f"use_{term}" for term in TERMS)


@dataclass(frozen=True)
class LossWeights:
    """Per-term weights of the twin-tower objective (official: all 1). A term is on exactly when its weight
    is positive; a term with weight 0 is never computed.

    ``fixed_direction``: when set (0 or 1) it overrides the direction the trainer draws each step.
    """

    nce: float = 1.0
    icnce: float = 1.0
    icnce_ca: float = 1.0
    ictm: float = 1.0
    fixed_direction: int | None = None

    def __post_init__(self) -> None:
        for term in TERMS:
            weight = getattr(self, term)
            if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight):
                raise JtcseError(f"loss weight {term!r} must be a finite number, got {weight!r}")
            if weight < 0:
                raise JtcseError(f"loss weight {term!r} must be >= 0, got {weight!r}")
        if self.fixed_direction not in (None, 0, 1) or isinstance(self.fixed_direction, bool):
            raise JtcseError(
                f"loss option 'fixed_direction' must be 0, 1 or unset, got {self.fixed_direction!r}"
            )
        if not any(self.is_on(term) for term in TERMS):
            raise JtcseError(
                f"every loss term has weight 0; give at least one of {', '.join(TERMS)} a weight > 0"
            )

    def __new__(cls, *args: Any, **kwargs: Any) -> LossWeights:  # Any: the dataclass fields, checked after
        # before the generated __init__, so that an old switch is a one-line error, not a TypeError
        for key in _REMOVED_SWITCHES:
            if key in kwargs:
                raise JtcseError(
                    f"loss switch {key!r} was removed: a term is on exactly when its weight is > 0 "
                    f"(set {key.removeprefix('use_')} = 0 to turn it off)"
                )
        return super().__new__(cls)

    @classmethod
    def jtcse(cls) -> LossWeights:
        """The official JTCSE objective: every term on with weight 1, random direction."""
        return cls()

    @classmethod
    def tncse(cls) -> LossWeights:
        """TNCSE: no cross-attention term and the fixed direction ICNCE(a, b)."""
        return cls(icnce_ca=0.0, fixed_direction=0)

    def is_on(self, term: str) -> bool:
        return self.weight(term) > 0

    def weight(self, term: str) -> float:
        return float(getattr(self, term))

    def to_dict(self) -> dict[str, float | int | None]:
        return dataclasses.asdict(self)


SimcseForm = Literal["one_sided", "interleaved"]
SIMCSE_FORMS: tuple[SimcseForm, ...] = get_args(SimcseForm)


def simcse_objective(
    z: Tensor, temperature: float = 0.05, form: SimcseForm = "one_sided"
) -> dict[str, Tensor]:
    """Stage-1 unsupervised SimCSE: ``{"loss", "nce"}``, both the same value.

    ``form``: ``one_sided`` (:func:`one_sided_info_nce`, SimCSE as published) or ``interleaved``
    (:func:`info_nce`, the 2B x 2B form of the JTCSE towers' own term).
    """
    if form not in SIMCSE_FORMS:
        raise ValueError(f"simcse_objective: form must be one of {', '.join(SIMCSE_FORMS)}, got {form!r}")
    nce = one_sided_info_nce(z, temperature) if form == "one_sided" else info_nce(z, temperature)
    return {"loss": nce, "nce": nce}


def _resolve_direction(direction: int | None, weights: LossWeights) -> int:
    if weights.fixed_direction is not None:
        return weights.fixed_direction
    if direction is None:
        raise ValueError("jtcse_objective: pass direction=0 or 1 or set fixed_direction")
    if isinstance(direction, bool) or direction not in (0, 1):
        raise ValueError(f"jtcse_objective: direction must be 0 or 1, got {direction!r}")
    return int(direction)


def _ca_term(
    ca_a: Sequence[Tensor], ca_b: Sequence[Tensor], n_rows: int, direction: int, temperature: float
) -> Tensor:
    """Mean over layers of ICNCE between the cross-attended CLS states, in the step's direction."""
    per_layer = []
    for layer, (u, v) in enumerate(zip(ca_a, ca_b, strict=True)):
        if u.dim() != 2 or u.shape[0] != n_rows:
            raise ValueError(
                f"jtcse_objective: ca_a[{layer}] must be [N={n_rows}, H] like cls_a, got {tuple(u.shape)}"
            )
        if direction == 1:
            u, v = v, u
        per_layer.append(cross_tower_info_nce(u, v, temperature))
    return torch.stack(per_layer).mean()


def _modulus_term(
    cls_a: Tensor,
    cls_b: Tensor,
    pooled_a: Tensor | None,
    pooled_b: Tensor | None,
    *,
    small_cos_floor: float | None,
    scale: float,
) -> Tensor:
    """``ictm = LTN(A -> B) + LTN(B -> A)``, times ``scale`` (a process's share of the batch mean)."""
    if pooled_a is None or pooled_b is None:
        raise ValueError("jtcse_objective: the ictm term needs pooled_a and pooled_b")
    term = modulus_constraint(
        cls_a, cls_b, pooled_a, pooled_b, small_cos_floor=small_cos_floor
    ) + modulus_constraint(cls_b, cls_a, pooled_b, pooled_a, small_cos_floor=small_cos_floor)
    return term * scale if scale != 1.0 else term


def jtcse_objective(
    cls_a: Tensor,
    cls_b: Tensor,
    pooled_a: Tensor | None,
    pooled_b: Tensor | None,
    ca_a: Sequence[Tensor] = (),
    ca_b: Sequence[Tensor] = (),
    *,
    direction: int | None = None,
    temperature: float = 0.05,
    weights: LossWeights | None = None,
    small_cos_floor: float | None = 1e-4,
    ictm_rows: tuple[Tensor, Tensor, Tensor, Tensor] | None = None,
    ictm_scale: float = 1.0,
) -> dict[str, Tensor]:
    """The twin-tower objective: ``{"loss", "nce", "icnce", "icnce_ca", "ictm"}`` (see the module doc).

    ``cls_a``/``cls_b`` [N, H] CLS states, ``pooled_a``/``pooled_b`` [N, H] pooler outputs, ``ca_a``/``ca_b``
    one [N, H] tensor per cross-attention layer, rows interleaved ``[x0, x0, x1, x1, ...]``.
    ``small_cos_floor`` is passed to :func:`modulus_constraint`.

    The modulus term reads each sentence's own pair only, so it may be averaged over other rows than the
    batch terms: ``ictm_rows = (cls_a, cls_b, pooled_a, pooled_b)`` of those rows (under DDP, one process's
    rows, when the others are the gathered batch) and ``ictm_scale`` the factor that turns their mean into
    that process's share of the batch mean (``Vectors.local_weight``); ``pooled_a``/``pooled_b`` may then be
    None.
    """
    weights = weights if weights is not None else LossWeights()
    direction = _resolve_direction(direction, weights)
    if len(ca_a) != len(ca_b):
        raise ValueError(f"jtcse_objective: ca_a has {len(ca_a)} layers but ca_b has {len(ca_b)}")
    if cls_a.shape != cls_b.shape:
        raise ValueError(f"jtcse_objective: cls_a {tuple(cls_a.shape)} and cls_b {tuple(cls_b.shape)} differ")

    zero = torch.zeros((), dtype=compute_dtype(cls_a, cls_b), device=cls_a.device)
    terms = dict.fromkeys(TERMS, zero)
    first, second = (cls_a, cls_b) if direction == 0 else (cls_b, cls_a)
    if weights.is_on("nce"):
        terms["nce"] = info_nce(cls_a, temperature) + info_nce(cls_b, temperature)
    if weights.is_on("icnce"):
        terms["icnce"] = cross_tower_info_nce(first, second, temperature)
    if weights.is_on("icnce_ca") and len(ca_a) > 0:
        terms["icnce_ca"] = _ca_term(ca_a, ca_b, cls_a.shape[0], direction, temperature)
    if weights.is_on("ictm"):
        rows = ictm_rows if ictm_rows is not None else (cls_a, cls_b, pooled_a, pooled_b)
        terms["ictm"] = _modulus_term(*rows, small_cos_floor=small_cos_floor, scale=ictm_scale)

    active = [term for term in TERMS if terms[term] is not zero]
    if not active:
        raise ValueError("jtcse_objective: no loss term is active (only icnce_ca is on and ca_a is empty)")
    loss = zero
    for term in active:
        loss = loss + weights.weight(term) * terms[term]
    return {"loss": loss, **terms}
