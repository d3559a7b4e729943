"""``manifest.json`` of a sharded vectors folder: what made the vectors and which lines each shard holds.

A folder written by ``jtcse encode --output DIR`` holds::

    manifest.json        the plan (model, input, shards) and "complete": true once every shard is written
    shard-00000.npy      rows 0 .. S-1 (float32 [rows, dim]; .safetensors: key "embeddings"; .parquet: columns
                         id, vector and with --with-text text, see :mod:`jtcse.corpus_scale.parquet_shards`)
    shard-00000.json     the shard's entry: line range, blank lines, sha256; written after the shard's rename,
    ...                  so a shard without its entry (a kill mid-write) never counts as done

Row ``i`` of the shards in order is line ``i + 1`` of the input. A blank line (empty or whitespace only) is a
zero row: it keeps the row numbering and scores 0 against every query.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from jtcse import __version__
from jtcse.corpus_scale.lines import LinePlan
from jtcse.errors import JtcseError
from jtcse.fs import atomic_write_text
from jtcse.model.identity import IDENTITY_SPEC, describe_identity
from jtcse.records import SHA256, Bool, Const, Int, ListOf, Obj, Str, check_record, read_format_record

MANIFEST_NAME = "manifest.json"
FORMAT = "jtcse-vectors"
FORMAT_VERSION = 1
SHARD_FORMATS = ("npy", "safetensors", "parquet")
BLANK_LINES = "zero vector"
# What must be equal for a resumed run to continue an earlier one
_RESUME_KEYS = ("model", "dim", "normalize", "shard_format", "shard_size", "input", "with_text")


# what a shard's entry records once it is written (shard-NNNNN.json, and the complete manifest's shards)
ENTRY_SPEC = Obj(
    {
        "file": Str(pattern=r"shard-\d{5,}\.(npy|safetensors|parquet)"),  # a plain name: never a path out
        "start": Int(0),
        "stop": Int(0),
        "rows": Int(0),
        "blank": Int(0),
        "sha256": Str(pattern=SHA256),
        "bytes": Int(0),
    },
    {"zero": Int(0)},  # non-blank lines whose vector is all zero; absent in entries of older versions
)
_PLANNED = Obj({"file": ENTRY_SPEC.required["file"], "start": Int(0), "stop": Int(0), "offset": Int(0)})
MANIFEST_SPEC = Obj(
    {
        "complete": Bool(),
        "model": IDENTITY_SPEC,
        "dim": Int(1),
        "normalize": Bool(),
        "shard_format": Str(choices=SHARD_FORMATS),
        "shard_size": Int(1),
        "input": Obj({"path": Str(), "sha256": Str(pattern=SHA256), "bytes": Int(0)}),
        "lines": Int(0),
        "shards": ListOf(_PLANNED),
    },
    {"dtype": Const("float32"), "blank": Int(0), "zero_vectors": Int(0)},
)
# a complete manifest: every shard also has its entry's fields
_COMPLETE_SPEC = Obj(
    {"shards": ListOf(Obj({**ENTRY_SPEC.required, "offset": Int(0)}, ENTRY_SPEC.optional))}, {"blank": Int(0)}
)


def shard_file(index: int, shard_format: str) -> str:
    return f"shard-{index:05d}.{shard_format}"


def entry_file(index: int) -> str:
    return f"shard-{index:05d}.json"


def new_manifest(
    plan: LinePlan,
    identity: dict[str, Any],
    *,
    dim: int,
    normalize: bool,
    shard_format: str,
    with_text: bool = False,
) -> dict[str, Any]:
    """The manifest of a run that has not finished (``complete`` false, no checksums yet)."""
    text = {"with_text": True} if with_text else {}  # absent (not false) keeps older folders resumable
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "jtcse_version": __version__,
        "complete": False,
        "model": identity,
        "dim": dim,
        "dtype": "float32",
        "normalize": normalize,
        "blank_lines": BLANK_LINES,
        "shard_format": shard_format,
        **text,
        "shard_size": plan.shard_size,
        "input": {"path": str(plan.path.resolve()), "sha256": plan.sha256, "bytes": plan.size},
        "lines": plan.lines,
        "shards": [
            {"file": shard_file(k, shard_format), "start": start, "stop": stop, "offset": plan.offsets[k]}
            for k, (start, stop) in enumerate(plan.line_range(k) for k in range(plan.shards))
        ],
    }


def read_manifest(folder: str | Path, *, what: str = "--vectors") -> dict[str, Any] | None:
    """The manifest in ``folder``, or None when there is none; a damaged one is a one-line error."""
    file = Path(folder) / MANIFEST_NAME
    if not file.is_file():
        return None
    where = f"{what} {folder}: {MANIFEST_NAME}"
    manifest = read_format_record(
        file,
        MANIFEST_SPEC,
        kind="jtcse vectors manifest",
        format_name=FORMAT,
        max_version=FORMAT_VERSION,
        where=where,
    )
    if manifest["complete"]:
        check_record(manifest, _COMPLETE_SPEC, where=where)
    return manifest


def write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    atomic_write_text(folder / MANIFEST_NAME, json.dumps(manifest, indent=1) + "\n")


def check_resumable(saved: dict[str, Any], wanted: dict[str, Any], folder: Path) -> None:
    """A one-line error when ``folder`` holds a run of another model, input or setting."""
    where = f"--output {folder}"
    if saved["model"] != wanted["model"]:
        raise JtcseError(
            f"{where}: encoded by another model ({describe_identity(saved['model'])}), not "
            f"{describe_identity(wanted['model'])}; use another --output or delete the folder"
        )
    if saved["input"]["sha256"] != wanted["input"]["sha256"]:
        raise JtcseError(
            f"{where}: encoded from another input ({saved['input']['path']}, sha256 differs from "
            f"{wanted['input']['path']}); use another --output or delete the folder"
        )
    for key in _RESUME_KEYS:
        before, now = (m.get(key, False if key == "with_text" else None) for m in (saved, wanted))
        if key != "input" and before != now:
            raise JtcseError(
                f"{where}: encoded with {key} = {before}, this run has {now}; resume with the same "
                f"--{key.replace('_', '-')} or use another --output"
            )


def require_complete(
    manifest: dict[str, Any] | None, folder: Path, *, what: str = "--vectors"
) -> dict[str, Any]:
    """The manifest of a finished encoding; one-line errors for a missing or unfinished one."""
    if manifest is None:
        raise JtcseError(f"{what} {folder}: no {MANIFEST_NAME} here (not a folder written by jtcse encode)")
    if not manifest.get("complete"):
        raise JtcseError(
            f"{what} {folder}: the encoding is not finished; run the same jtcse encode command with --resume"
        )
    return manifest
