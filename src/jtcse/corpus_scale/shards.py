"""Shard files: written atomically with their checksum, then their entry; read back memory-mapped.

The order on disk is what makes a kill harmless: the shard's bytes go to a temporary file that is renamed
into place (:func:`jtcse.fs.atomic_write`), and only then is ``shard-NNNNN.json`` written. A shard without
its entry, or whose size disagrees with it, is redone by ``--resume``.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np

from jtcse.corpus_scale.manifest import ENTRY_SPEC, MANIFEST_NAME, entry_file, require_complete
from jtcse.corpus_scale.parquet_shards import read_parquet, read_parquet_rows, write_parquet
from jtcse.corpus_scale.verified import FileChecks
from jtcse.errors import JtcseError
from jtcse.fs import HashingWriter, atomic_write, atomic_write_text, remove_stale_temporaries, sha256_file
from jtcse.records import read_cache
from jtcse.tools.encode_file import SAFETENSORS_KEY

# Test hook: sleep this long inside the write of shard JTCSE_TEST_PAUSE_SHARD (a kill then lands mid-write)
_PAUSE_ENV = "JTCSE_TEST_PAUSE_SHARD"


def _write_body(
    fh: IO[bytes], vectors: np.ndarray, shard_format: str, start: int, texts: Sequence[str] | None
) -> None:
    if shard_format == "npy":
        np.save(fh, vectors)
    elif shard_format == "parquet":
        write_parquet(fh, vectors, start, texts)
    else:
        from safetensors.numpy import save

        fh.write(save({SAFETENSORS_KEY: vectors}))


def _pause_for_tests(index: int) -> None:
    spec = os.environ.get(_PAUSE_ENV)
    if spec and int(spec.split(":")[0]) == index:
        time.sleep(float(spec.split(":")[1]) if ":" in spec else 60.0)


def write_shard(
    folder: Path,
    index: int,
    vectors: np.ndarray,
    *,
    file: str,
    start: int,
    stop: int,
    blank: int,
    texts: Sequence[str] | None = None,
    zero: int | None = None,
) -> dict[str, Any]:
    """Write shard ``index`` (then its entry) and return the entry; ``texts``: Parquet's text column;
    ``zero``: rows of non-blank lines whose vector is all zero (``--normalize`` leaves them at zero)."""
    shard_format = file.rsplit(".", 1)[1]
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    digest: dict[str, Any] = {}

    def write(fh: IO[bytes]) -> None:
        writer = HashingWriter(fh)
        _write_body(writer, vectors, shard_format, start, texts)  # type: ignore[arg-type]
        _pause_for_tests(index)
        digest.update(sha256=writer.digest.hexdigest(), bytes=writer.size)

    atomic_write(folder / file, write)
    entry = {"file": file, "start": start, "stop": stop, "rows": int(vectors.shape[0]), "blank": blank}
    entry.update(digest)
    if zero is not None:
        entry["zero"] = zero
    atomic_write_text(folder / entry_file(index), json.dumps(entry) + "\n")
    return entry


def read_entry(folder: Path, index: int, planned: dict[str, Any]) -> dict[str, Any] | None:
    """Shard ``index``'s entry when the shard is complete (entry present, range and file size as planned); a
    damaged entry is a one-line note, and the shard is encoded again."""
    entry = read_cache(folder / entry_file(index), ENTRY_SPEC, what="shard entry", redo="the shard is redone")
    if entry is None:
        return None
    try:
        size = (folder / entry["file"]).stat().st_size
    except OSError:
        return None
    same_plan = (entry["file"], entry["start"], entry["stop"]) == (
        planned["file"],
        planned["start"],
        planned["stop"],
    )
    return entry if same_plan and size == entry["bytes"] else None


def completed_entries(folder: Path, manifest: dict[str, Any]) -> dict[int, dict[str, Any]]:
    """The complete shards of ``folder``, by index."""
    found = {k: read_entry(folder, k, planned) for k, planned in enumerate(manifest["shards"])}
    return {k: entry for k, entry in found.items() if entry is not None}


def remove_orphans(folder: Path) -> int:
    """Delete the temporaries that killed writes left behind (shards, the manifest); those of a writer
    still running (another rank) are left alone (:func:`jtcse.fs.remove_stale_temporaries`)."""
    return len(remove_stale_temporaries(folder))


def load_shard(folder: Path, entry: dict[str, Any], *, mmap: bool = True) -> np.ndarray:
    """One shard as float32 ``[rows, dim]`` (memory-mapped for ``.npy``; Parquet: read from a memory-mapped
    file)."""
    path = folder / entry["file"]
    try:
        array: np.ndarray
        if path.suffix == ".npy":
            array = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
        elif path.suffix == ".parquet":
            array = read_parquet(path, int(entry["start"]))
        else:
            from safetensors.numpy import load_file

            array = load_file(str(path))[SAFETENSORS_KEY]
    except (OSError, ValueError, KeyError) as exc:  # pyarrow's errors subclass these
        raise JtcseError(f"{path}: cannot read the shard ({exc}); re-encode with jtcse encode") from exc
    if array.ndim != 2 or array.shape[0] != entry["rows"]:
        raise JtcseError(f"{path}: {array.shape} does not match {MANIFEST_NAME}; re-encode with jtcse encode")
    return array


class ShardedVectors:
    """A finished vectors folder: the manifest and its shards, read one at a time. Every shard is checked
    against its manifest checksum before its first use (:mod:`.verified`: free when an earlier process
    verified it unchanged; ``rehash``: always read it again)."""

    def __init__(self, folder: str | Path, *, what: str = "--vectors", rehash: bool = False) -> None:
        from jtcse.corpus_scale.manifest import read_manifest

        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise JtcseError(f"{what} {self.folder}: no such folder")
        self.manifest = require_complete(read_manifest(self.folder, what=what), self.folder, what=what)
        self.entries: list[dict[str, Any]] = self.manifest["shards"]
        self.checks = FileChecks(self.folder, rehash=rehash)

    @property
    def rows(self) -> int:
        return int(self.manifest["lines"])

    @property
    def dim(self) -> int:
        return int(self.manifest["dim"])

    def manifest_sha256(self) -> str:
        return sha256_file(self.folder / MANIFEST_NAME)

    def verify(self, entries: Sequence[dict[str, Any]] | None = None) -> None:
        """The shards' sha256 against the manifest (default: all), each read once at most (see the class)."""
        self.checks.check_all(
            [(e["file"], e["sha256"]) for e in (self.entries if entries is None else entries)],
            recorded_in=MANIFEST_NAME,
            fix="re-encode with jtcse encode",
        )

    def shards(self) -> Iterator[tuple[int, np.ndarray]]:
        """``(first row, vectors)`` of each shard in order."""
        self.verify()
        for entry in self.entries:
            yield entry["start"], load_shard(self.folder, entry)

    def take(self, rows: np.ndarray) -> np.ndarray:
        """The vectors of the given rows (any order), reading only the shards they fall in."""
        rows = np.asarray(rows, dtype=np.int64)
        out = np.empty((len(rows), self.dim), np.float32)
        starts = np.array([e["start"] for e in self.entries])
        which = np.searchsorted(starts, rows, side="right") - 1
        touched = np.unique(which)
        self.verify([self.entries[k] for k in touched])
        for k in touched:
            mask = which == k
            entry = self.entries[k]
            local = rows[mask] - entry["start"]
            if entry["file"].endswith(".parquet"):
                out[mask] = read_parquet_rows(self.folder / entry["file"], local)
            else:
                out[mask] = load_shard(self.folder, entry)[local]
        return out
