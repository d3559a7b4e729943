"""Integrity of saved models: a checksum manifest, safetensors sanity, finite weights, real model folders.

``jtcse.json`` carries ``"checksums": {"RELATIVE/PATH": "<sha256>"}`` for the files that make up the model
(weights, configs, tokenizer files of every member stored inside the directory), computed when it is
written. :class:`jtcse.Encoder` verifies them before loading, so a truncated, garbled or swapped file is a
one-line error naming it, not a ``SafetensorError`` or, worse, silently wrong vectors. Files written later
beside the model (model card, results, training logs) are not listed and may change freely.

Plain Hugging Face directories have no manifest; for them the ``.safetensors`` headers are checked against
the file sizes (truncation), and every model's weights must be finite.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterable
from pathlib import Path

from jtcse.errors import JtcseError
from jtcse.fs import sha256_file

MANIFEST_KEY = "checksums"
# what a model directory's weights, config and tokenizer are made of
_MODEL_SUFFIXES = (".safetensors", ".bin", ".json", ".txt", ".model")
# .json files jtcse writes beside a model that are not part of it (they change after the model is saved)
_NOT_MODEL_FILES = frozenset({"jtcse.json", "environment.json", "sts_results.json", "results.json"})
_MAX_HEADER = 100 << 20  # safetensors refuses headers over 100 MB too


def model_files(member_dir: Path) -> list[Path]:
    """The files of one model folder (not below it) that its weights, config and tokenizer consist of."""
    if not member_dir.is_dir():
        return []
    return sorted(
        p
        for p in member_dir.iterdir()
        if p.is_file()
        and p.suffix in _MODEL_SUFFIXES
        and p.name not in _NOT_MODEL_FILES
        and not p.name.startswith(".")
    )


def build_manifest(model_dir: Path, member_dirs: Iterable[str]) -> dict[str, str]:
    """Checksums of the model files of the members stored inside ``model_dir`` (relative paths)."""
    root = model_dir.resolve()
    manifest: dict[str, str] = {}
    for rel in dict.fromkeys(member_dirs):
        folder = (root / rel).resolve()
        if folder != root and root not in folder.parents:
            continue  # an external member is not ours to vouch for
        for file in model_files(folder):
            manifest[file.relative_to(root).as_posix()] = sha256_file(file)
    return manifest


def verify_manifest(model_dir: Path, manifest: dict[str, str], config_file: Path) -> None:
    """Every listed file is present and unchanged; else a one-line error naming the file."""
    root = model_dir.resolve()
    for rel, expected in manifest.items():
        file = (root / rel).resolve()
        if root not in file.parents:
            raise JtcseError(f"{config_file}: checksums entry {rel!r} points outside the model directory")
        if not file.is_file():
            raise JtcseError(f"{file}: missing; {config_file} lists it as part of the model")
        if sha256_file(file) != expected:
            raise JtcseError(
                f"{file}: does not match its checksum in {config_file} (damaged or changed after saving); "
                "restore or re-save the model (or delete the 'checksums' entry to accept the file as it is)"
            )


def check_model_folder(path: str, what: str) -> None:
    """A local model folder must hold a ``config.json`` and intact ``.safetensors`` files."""
    folder = Path(path)
    if not folder.is_dir():
        return  # a hub id
    if not (folder / "config.json").is_file():
        contents = "it is empty" if not any(folder.iterdir()) else "it has no config.json"
        raise JtcseError(f"{what} {path}: not a model directory ({contents})")
    for file in sorted(folder.glob("*.safetensors")):
        check_safetensors(file)


def check_safetensors(file: Path) -> None:
    """The header parses and its tensors end exactly at the end of the file (catches truncation and a
    garbled header without reading the weights)."""
    size = file.stat().st_size
    with file.open("rb") as fh:
        head = fh.read(8)
        n = struct.unpack("<Q", head)[0] if len(head) == 8 else -1
        if not 0 < n <= min(_MAX_HEADER, size - 8):
            raise _bad_safetensors(file, f"{size} bytes, header length {n}")
        try:
            header = json.loads(fh.read(n).decode("utf-8"))
            ends = [int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"]
        except (ValueError, UnicodeDecodeError, TypeError, KeyError, IndexError, AttributeError) as exc:
            raise _bad_safetensors(file, f"unreadable header: {exc}") from exc
    expected = 8 + n + max(ends, default=0)
    if expected != size:
        raise _bad_safetensors(file, f"{size} bytes where its header needs {expected}")


def _bad_safetensors(file: Path, detail: str) -> JtcseError:
    return JtcseError(
        f"{file}: truncated or damaged safetensors file ({detail}); restore or re-save the model"
    )


def check_finite_weights(model, source: str) -> None:
    """Refuse a model whose parameters or buffers hold NaN or inf (they would give NaN vectors)."""
    import torch

    for name, tensor in (*model.named_parameters(), *model.named_buffers()):
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise JtcseError(
                f"{source}: weight {name} holds NaN or inf; the model is damaged (restore or re-train it)"
            )


def parameter_bytes(module) -> int:
    """Bytes of the trainable parameters in float32: about what saving the model writes."""
    return sum(4 * p.numel() for p in module.parameters() if p.requires_grad)
