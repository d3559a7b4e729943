"""The resumable checkpoint: one file, written atomically.

``OUT/checkpoint/state.pt`` holds everything a resumed run needs to continue on the same loss curve: the
model's and optimizer's state dicts, the LR scheduler (and fp16 grad scaler) state, the Python / numpy /
torch RNG states, the data position (epoch, batch within the epoch, and that epoch's shuffled order), the
step, the best dev score so far, and the resolved config. ``OUT/checkpoint/train_config.yaml`` repeats the
config for people.

Writes go to a temporary file in the same directory, are flushed and fsynced, then renamed over the old
file (and the directory entry fsynced), so a crash at any moment leaves either the previous checkpoint or
the new one, never a torn file. Everything in the file is tensors and plain Python values, so it loads with
``torch.load(weights_only=True)``: no pickled code runs when a checkpoint is read. What the state holds is
written and read in one place, :class:`jtcse.training.state.TrainState`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from jtcse.errors import JtcseError
from jtcse.fs import atomic_write, fsync_dir
from jtcse.run_files import CHECKPOINT_DIR, STATE_FILE

FORMAT = "jtcse-train-state"
FORMAT_VERSION = 1


def checkpoint_path(output_dir: str | Path) -> Path:
    return Path(output_dir) / CHECKPOINT_DIR / STATE_FILE


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """Atomically write ``state`` (tensors and plain values) to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format": FORMAT, "format_version": FORMAT_VERSION, **state}
    atomic_write(path, lambda fh: torch.save(payload, fh))
    fsync_dir(path.parent)
    return path


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise JtcseError(f"{path}: no checkpoint to resume from")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise JtcseError(f"{path}: cannot read the checkpoint ({type(exc).__name__}: {exc})") from exc
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise JtcseError(f"{path}: not a jtcse training checkpoint")
    if int(state.get("format_version", 0)) > FORMAT_VERSION:
        raise JtcseError(
            f"{path}: written by a newer jtcse (format {state['format_version']}); upgrade jtcse"
        )
    return state
