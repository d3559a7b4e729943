"""The resumable checkpoint: one file, written atomically, checksummed, verified before it is used.

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

Integrity: the file ends with a footer line ``jtcse-sha256:<hex>`` holding the SHA-256 of every byte before
it (torch's zip reader ignores bytes after the archive). Loading recomputes it, so any byte changed,
dropped or added after the write is refused, and so is a state whose weights are not finite. A state with
non-finite weights is also never written: the previous checkpoint stays.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, cast

import torch

from jtcse.errors import JtcseError
from jtcse.fs import HashingWriter, atomic_write, check_output_dir, fsync_dir, remove_stale_temporaries
from jtcse.records import Instance, Int, ListOf, Nullable, Num, Obj, RecordInvalid, Spec, Str
from jtcse.run_files import CHECKPOINT_DIR, STATE_FILE

FORMAT = "jtcse-train-state"
FORMAT_VERSION = 2  # 2: with the checksum footer
_FOOTER = re.compile(rb"\njtcse-sha256:([0-9a-f]{64})\n\Z")
_FOOTER_LEN = len(b"\njtcse-sha256:\n") + 64
_CHUNK = 1 << 20
# the trainer's export staging folder and the tower folders it moves aside (see trainer._export)
_EXPORT_STAGING = ".export.tmp"
_ASIDE_PREFIX = ".old."


def checkpoint_path(output_dir: str | Path) -> Path:
    return Path(output_dir) / CHECKPOINT_DIR / STATE_FILE


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """Atomically write ``state`` (tensors and plain values) to ``path``, with its checksum footer.

    Refuses (one-line :class:`JtcseError`, the previous file kept) a state whose weights are not finite, and
    a full disk."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    bad = _first_non_finite(state)
    if bad is not None:
        raise JtcseError(
            f"{path}: not written: {bad} is not finite at step {state.get('step', '?')}; the previous "
            "checkpoint is kept; lower train.lr (or check the data) and resume or start again"
        )
    payload = {"format": FORMAT, "format_version": FORMAT_VERSION, **state}

    def write(fh: IO[bytes]) -> None:
        writer = HashingWriter(fh)
        torch.save(payload, cast(IO[bytes], writer))  # writes through write() only
        fh.write(b"\njtcse-sha256:" + writer.digest.hexdigest().encode("ascii") + b"\n")

    atomic_write(path, write, size_hint=_tensor_bytes(state) + _FOOTER_LEN)
    fsync_dir(path.parent)
    return path


def load_checkpoint(path: str | Path, *, spec: Spec | None = None) -> dict[str, Any]:
    """Read a checkpoint after verifying its checksum (and its keys against ``spec``: :data:`RESUME_SPEC`
    for what a resume reads); every problem is one line that names the file (and the key)."""
    path = Path(path)
    if not path.is_file():
        raise JtcseError(f"{path}: no checkpoint to resume from")
    has_footer = _verify_footer(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise damaged(path, f"cannot read it: {type(exc).__name__}: {exc}") from exc
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise JtcseError(f"{path}: not a jtcse training checkpoint")
    version = state.get("format_version", 0)
    if not isinstance(version, int) or version < 1:
        raise damaged(path, f"format_version {version!r}")
    if version > FORMAT_VERSION:
        raise JtcseError(f"{path}: written by a newer jtcse (format {version}); upgrade jtcse")
    if version >= 2 and not has_footer:
        raise damaged(path, "its checksum line is missing")
    if spec is not None:
        try:
            spec.check(state, "")
        except RecordInvalid as exc:
            raise damaged(path, str(exc)) from exc
    bad = _first_non_finite(state)
    if bad is not None:
        raise damaged(path, f"{bad} is not finite")
    return state


_TENSOR = Instance(torch.Tensor, "a tensor")
# what a resume reads from a checkpoint besides the objects' own state dicts (TrainState.to_checkpoint's keys)
RESUME_SPEC = Obj(
    {
        "model": Obj(),
        "optimizer": Obj(),
        "scheduler": Obj(),
        "rng": Obj(),
        "step": Int(0),
        "epoch": Int(0),
        "batch_in_epoch": Int(0),
        "order": _TENSOR,
        "order_offsets": _TENSOR,
        "best_dev": Nullable(Num()),
        "best_step": Nullable(Int(0)),
        "elapsed_s": Num(0),
        "config": Obj(),
        "corpus_fingerprint": Str(),
        "corpus_sentences": Int(0),
    },
    {"scaler": Obj(), "rng_per_rank": ListOf(Obj())},
)


def damaged(path: Path, reason: str) -> JtcseError:
    """The refusal for a checkpoint that cannot be trusted, with what to do about it."""
    return JtcseError(
        f"{path}: the checkpoint is damaged ({reason}) and cannot be resumed; the model saved in "
        f"{path.parent.parent} is not affected; restore the checkpoint from a backup, or start a new run "
        "with another --output-dir"
    )


def _verify_footer(path: Path) -> bool:
    """Check the SHA-256 footer; False for a file written before checksums (format 1, no footer)."""
    size = path.stat().st_size
    if size <= _FOOTER_LEN:
        raise damaged(path, f"only {size} bytes")
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        remaining = size - _FOOTER_LEN
        while remaining:
            chunk = fh.read(min(_CHUNK, remaining))
            if not chunk:
                raise damaged(path, "it changed while being read")
            digest.update(chunk)
            remaining -= len(chunk)
        footer = fh.read()
    match = _FOOTER.match(footer)
    if match is None:
        if b"jtcse-sha256" in footer:
            raise damaged(path, "its checksum line is garbled")
        return False
    if match.group(1).decode("ascii") != digest.hexdigest():
        raise damaged(path, "checksum mismatch: its bytes changed after it was written")
    return True


def _tensors(value: object, name: str) -> Iterator[tuple[str, torch.Tensor]]:
    if isinstance(value, torch.Tensor):
        yield name, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _tensors(item, f"{name}.{key}" if name else str(key))
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            yield from _tensors(item, f"{name}[{i}]")


def _first_non_finite(state: dict[str, Any]) -> str | None:
    """The name of the first weight or optimizer tensor holding NaN or inf, else None."""
    for section in ("model", "optimizer"):
        for name, tensor in _tensors(state.get(section), section):
            if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
                return name
    return None


def _tensor_bytes(state: dict[str, Any]) -> int:
    return sum(t.numel() * t.element_size() for _, t in _tensors(state, ""))


def recover_output_dir(output_dir: str | Path) -> None:
    """Refuse an output path that is a file, then tidy what a crashed earlier run left in a training output
    directory: temporaries of dead writers in ``OUT``, ``OUT/checkpoint`` and the model's sub-folders, and an
    interrupted model export. An export whose staging folder is complete (it holds ``jtcse.json``, written
    last) is finished; an incomplete one is deleted, and a tower folder it had moved aside is put back."""
    out = Path(output_dir)
    check_output_dir(out)
    if not out.is_dir():
        return
    remove_stale_temporaries(out)
    staging = out / _EXPORT_STAGING
    if (staging / "jtcse.json").is_file():
        _finish_export(staging, out)
    shutil.rmtree(staging, ignore_errors=True)
    for entry in sorted(out.iterdir()):
        if entry.name.startswith(_ASIDE_PREFIX) and entry.is_dir():
            original = out / entry.name[len(_ASIDE_PREFIX) :]
            if original.exists():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.rename(original)
        elif entry.is_dir() and not entry.name.startswith("."):
            remove_stale_temporaries(entry)


def _finish_export(staging: Path, out: Path) -> None:
    """Move the rest of a complete export into place, ``jtcse.json`` last (as trainer._export does)."""
    for entry in sorted(staging.iterdir(), key=lambda p: p.name == "jtcse.json"):
        target = out / entry.name
        if entry.is_dir() and target.is_dir():
            shutil.rmtree(target)
        os.replace(entry, target)
