"""Dtype safety for the losses: a finite large-negative fill and a float32 floor for half precision.

The official code masks the self-similarity with ``-1e12``. That constant overflows to ``-inf`` in float16,
and a softmax over half-precision logits of up to ``1/0.05 = 20`` loses precision quickly. So every loss
here (1) computes in at least float32, with autocast switched off inside the loss, and (2) masks with the
finite minimum of the working dtype, whose ``exp`` underflows to exactly 0 as ``-1e12`` does in float32.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import Tensor

_HALF_DTYPES = (torch.float16, torch.bfloat16)


def large_negative(dtype: torch.dtype) -> float:
    """The most negative finite value of ``dtype``: a mask value that is never ``-inf`` or NaN-prone."""
    if not dtype.is_floating_point:
        raise ValueError(f"a mask value needs a floating dtype, got {dtype}")
    return torch.finfo(dtype).min


def compute_dtype(*tensors: Tensor) -> torch.dtype:
    """The dtype a loss computes in: the promoted input dtype, raised to float32 for float16/bfloat16."""
    dtype = tensors[0].dtype
    for tensor in tensors[1:]:
        dtype = torch.promote_types(dtype, tensor.dtype)
    if not dtype.is_floating_point:
        raise ValueError(f"loss inputs must be floating-point tensors, got {dtype}")
    return torch.float32 if dtype in _HALF_DTYPES else dtype


def upcast(*tensors: Tensor) -> tuple[Tensor, ...]:
    """Cast all inputs to :func:`compute_dtype` (a differentiable no-op when they already have it)."""
    dtype = compute_dtype(*tensors)
    return tuple(tensor.to(dtype) for tensor in tensors)


@contextlib.contextmanager
def autocast_off(device: torch.device) -> Iterator[None]:
    """Switch autocast off for ``device`` so the upcast inputs are not cast back to half in matmuls."""
    try:
        context: contextlib.AbstractContextManager[object] = torch.autocast(
            device_type=device.type, enabled=False
        )
    except (RuntimeError, ValueError):  # a device type autocast does not know: nothing to switch off
        context = contextlib.nullcontext()
    with context:
        yield


def mask_diagonal(scores: Tensor) -> Tensor:
    """Return ``scores`` [N, N] with the diagonal set to :func:`large_negative` (out of place)."""
    eye = torch.eye(scores.shape[0], dtype=torch.bool, device=scores.device)
    return scores.masked_fill(eye, large_negative(scores.dtype))
