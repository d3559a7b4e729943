"""Where a launcher (torchrun) put this process: rank, local rank and world size from its environment.

Reading them needs no torch, so a one-process command (``jtcse encode`` with an ONNX export) can ask whether
it runs under torchrun without importing it; joining the process group is :mod:`jtcse.training.distributed`.
"""

from __future__ import annotations

import os

from jtcse.errors import JtcseError


def launched_world() -> tuple[int, int, int]:
    """``(rank, local_rank, world_size)`` from the launcher's environment; ``(0, 0, 1)`` without one."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local_rank = int(os.environ.get("LOCAL_RANK", str(rank)))
    except ValueError as exc:
        raise JtcseError(f"RANK / LOCAL_RANK / WORLD_SIZE: not integers ({exc})") from exc
    return rank, local_rank, world
