"""Mixed precision for training: which autocast dtype, whether a gradient scaler, and the GPU kernel settings
that go with them.

``train.precision``:

* ``fp32`` (default): no autocast, fp32 everywhere.
* ``bf16``: ``torch.autocast(dtype=bfloat16)`` on CUDA, no scaler (bf16 has fp32's exponent range). A GPU
  without bf16 (before Ampere: V100, T4) gets ``fp16`` instead, with a notice.
* ``fp16``: ``torch.autocast(dtype=float16)`` on CUDA with a ``torch.amp.GradScaler`` (dynamic loss scaling);
  the current scale is logged as ``loss_scale`` in metrics.jsonl.

**Half precision on a CPU (or MPS) is a warning, not an error**: training goes on in fp32 and says so on
stderr. The choice lets one config file (say, bf16 for the GPU box) also drive a CPU smoke test; the
effective precision is in the start line and in ``environment.json`` (``precision``: requested, effective,
autocast dtype, grad scaler), so nobody mistakes the CPU run for a bf16 one. (CPU autocast exists in torch,
but bf16 matmuls are slower than fp32 on most CPUs and would only change the numbers.)

The losses are computed in fp32 whatever the autocast dtype, and mask with the dtype's finite minimum, never
``-1e12`` (:mod:`jtcse.losses.masking`); the cross-attention mask does the same
(:func:`jtcse.model.cross_attention.additive_mask`).

GPU kernel settings (UNVERIFIED on hardware; ``bench/gpu_step.py`` measures each one, and the defaults should
follow its numbers). A previous bench measured bf16 autocast 2-4x *slower* than fp32 on an H100 with our
variable-length batches. The likely cause: since PyTorch 2.9 the cuDNN backend of
``scaled_dot_product_attention`` is preferred on Hopper (sm90) in fp16/bf16 (pytorch#162073; fp32 never uses
it), and cuDNN builds an execution graph for every new input shape (tens to hundreds of ms each;
pytorch#155958 adds an opt-in ``TORCH_CUDNN_SDPA_AVOID_RECOMPILE=1``). Length-bucketed batches padded to
their longest sentence bring a new shape every few steps, and a 30-step bench is nothing but new shapes.
Two defaults follow:

* ``train.cudnn_attention = false``: under half-precision autocast on CUDA, attention may use the flash,
  memory-efficient and math SDPA kernels but not cuDNN (:meth:`Precision.autocast`). At our lengths
  (32-64 tokens) attention is a few percent of a BERT step, so the faster cuDNN kernel has little to gain.
* ``data.pad_to_multiple_of`` unset: 8 on CUDA (at most ``max_len / 8`` distinct lengths, and tensor-core
  friendly shapes), exact (0) elsewhere, where padding is only wasted work (:func:`resolve_pad_multiple`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal, get_args

import torch

# ``train.precision``: the requested one
PrecisionName = Literal["fp32", "bf16", "fp16"]
PRECISIONS: tuple[PrecisionName, ...] = get_args(PrecisionName)

# data.pad_to_multiple_of when unset, on CUDA
CUDA_PAD_MULTIPLE = 8

_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass
class Precision:
    """The effective precision of a run: autocast dtype, grad scaler, attention-kernel restriction."""

    requested: str
    name: str
    """Effective: ``fp32``, ``bf16`` or ``fp16``."""
    device_type: str
    scaler: Any = None
    """A ``torch.amp.GradScaler`` for fp16, else None."""
    cudnn_attention: bool = True
    """Whether SDPA may pick its cuDNN kernel (only matters under half precision on CUDA)."""
    notice: str | None = None
    """Why the effective precision differs from the requested one (printed by the trainer)."""

    @property
    def dtype(self) -> torch.dtype | None:
        """The autocast dtype, None for fp32."""
        return _DTYPES.get(self.name)

    @contextlib.contextmanager
    def autocast(self) -> Iterator[None]:
        """The context for forward passes: autocast (half precision) and the SDPA backend restriction."""
        if self.dtype is None:
            yield
            return
        with contextlib.ExitStack() as stack:
            stack.enter_context(torch.autocast(device_type=self.device_type, dtype=self.dtype))
            if self.device_type == "cuda" and not self.cudnn_attention:
                stack.enter_context(_sdpa_without_cudnn())
            yield

    def describe(self) -> dict[str, Any]:
        """For environment.json."""
        return {
            "requested": self.requested,
            "effective": self.name,
            "autocast_dtype": str(self.dtype).removeprefix("torch.") if self.dtype is not None else None,
            "grad_scaler": self.scaler is not None,
            "cudnn_attention": self.cudnn_attention if self.dtype is not None else None,
        }


def resolve_precision(requested: str, device: torch.device, *, cudnn_attention: bool = False) -> Precision:
    """What ``train.precision = requested`` means on ``device`` (see the module docstring)."""
    if requested not in ("fp32", "bf16", "fp16"):
        raise ValueError(f"unknown precision {requested!r}")
    name, notice = requested, None
    if requested != "fp32" and device.type != "cuda":
        name = "fp32"
        notice = f"train.precision = {requested} needs CUDA; using fp32 on {device.type}"
    elif requested == "bf16" and not _cuda_has_bf16(device):
        name = "fp16"
        notice = (
            f"train.precision = bf16: {torch.cuda.get_device_name(device)} has no bf16; using fp16 with a "
            "gradient scaler"
        )
    scaler = torch.amp.GradScaler("cuda") if name == "fp16" else None
    return Precision(
        requested=requested,
        name=name,
        device_type=device.type,
        scaler=scaler,
        cudnn_attention=cudnn_attention,
        notice=notice,
    )


def resolve_pad_multiple(value: int | None, device: torch.device | str) -> int:
    """The effective ``data.pad_to_multiple_of``: as set, or when unset 8 on CUDA and 0 (exact) elsewhere.

    ``device`` may be a config string (``auto`` counts as CUDA when CUDA is available), so a task built
    before the trainer moves it to its device can resolve the same value.
    """
    if value is not None:
        return value
    if isinstance(device, str):
        kind = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device.split(":")[0]
    else:
        kind = device.type
    return CUDA_PAD_MULTIPLE if kind == "cuda" else 0


def _cuda_has_bf16(device: torch.device) -> bool:
    try:
        with torch.cuda.device(device):
            return bool(torch.cuda.is_bf16_supported())
    except (RuntimeError, AssertionError):
        return False


@contextlib.contextmanager
def _sdpa_without_cudnn() -> Iterator[None]:
    """SDPA restricted to the flash, memory-efficient and math kernels (no cuDNN graph builds per shape)."""
    try:
        from torch.nn.attention import SDPBackend, sdpa_kernel
    except ImportError:  # an old torch without the context manager: it also has no cuDNN SDPA default
        yield
        return
    with sdpa_kernel([SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]):
        yield
