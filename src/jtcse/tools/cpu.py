"""What this CPU offers the encoder's kernels: model name and the vector features (from ``/proc/cpuinfo``).

The int8 kernels differ by feature: with VNNI (AVX-512 VNNI or AVX-VNNI) onnxruntime multiplies u8 x s8 and
accumulates in 32 bits; without it (AVX2 only) pairs of products are summed in 16 bits first, which can
saturate with full-range weights (hence the 7-bit weights of the AVX2-safe graph).
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

FEATURES = (
    "avx2",
    "fma",
    "avx512f",
    "avx512bw",
    "avx512_vnni",
    "avx_vnni",
    "amx_tile",
    "amx_int8",
    "amx_bf16",
)
VNNI_FLAGS = frozenset({"avx512_vnni", "avx_vnni"})


@cache
def _cpuinfo() -> tuple[str, frozenset[str]]:
    try:
        lines = Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines()
    except OSError:
        return "unknown", frozenset()
    model = next(
        (line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), "unknown"
    )
    flags = next((line.split(":", 1)[1].split() for line in lines if line.startswith("flags")), [])
    return model, frozenset(flags)


def cpu_model() -> str:
    return _cpuinfo()[0]


def cpu_features() -> list[str]:
    """The features of :data:`FEATURES` this CPU has, in that order (empty where /proc/cpuinfo is absent)."""
    flags = _cpuinfo()[1]
    return [name for name in FEATURES if name in flags]


def has_vnni() -> bool:
    return bool(VNNI_FLAGS & _cpuinfo()[1])


def describe_cpu() -> str:
    """One line: model, CPU count, features, VNNI yes/no."""
    features = " ".join(cpu_features()) or "none known"
    vnni = "yes" if has_vnni() else "no"
    return f"CPU: {cpu_model()}, {os.cpu_count()} CPUs, features: {features} (VNNI: {vnni})"
