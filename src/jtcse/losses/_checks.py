"""Shape and argument checks shared by the loss functions (programming errors: ``ValueError``)."""

from __future__ import annotations

import math

from torch import Tensor

LAYOUT = "rows interleaved [x0, x0, x1, x1, ...]"


def check_interleaved(name: str, *tensors: Tensor) -> int:
    """Check 2-D tensors of equal shape [N, dim] with N even and >= 2; return N."""
    first = tensors[0]
    for tensor in tensors:
        if tensor.dim() != 2:
            raise ValueError(
                f"{name}: expected 2-D tensors [N, dim] ({LAYOUT}), got shape {tuple(tensor.shape)}"
            )
        if tensor.shape != first.shape:
            raise ValueError(
                f"{name}: inputs must have the same shape, got {tuple(first.shape)} and {tuple(tensor.shape)}"
            )
    n = first.shape[0]
    if n < 2 or n % 2:
        raise ValueError(f"{name}: N must be even and >= 2 (two rows per sentence, {LAYOUT}), got N={n}")
    return n


def check_temperature(name: str, temperature: float) -> None:
    if not (isinstance(temperature, (int, float)) and math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"{name}: temperature must be a finite number > 0, got {temperature!r}")
