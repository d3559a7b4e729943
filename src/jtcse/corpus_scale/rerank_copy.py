"""A float copy of a compressed index's vectors for exact re-ranking, kept when the shards are Parquet.

Re-ranking reads the float vectors of each query's candidates. From ``.npy`` shards that is a gather from a
memory map (about 2 ms for 100 random rows of 200,000); Parquet is read by row group, so fetching one row
decodes its 8,192-row group (about 400 ms for the same 100 rows). A compressed index built over Parquet
shards therefore keeps ``rerank.npy`` in its folder: float32 unit vectors in index order (row ``i`` is the
vector of ``rows.npy[i]``), memory-mapped at search time. It costs the shards' size again on disk and
nothing in RAM, and it lets the index re-rank without the shards. ``jtcse index --no-rerank-copy`` skips it
(searches then re-rank from the Parquet shards, slowly).

Its sha256 is recorded in ``index.json`` and checked like the index's other files (:mod:`.verified`): read
in full the first time a process opens it after it changed (a gigabyte per million vectors), then trusted
by its stat until it changes again; ``jtcse search --verify`` reads it again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any

import numpy as np

from jtcse.corpus_scale.faiss_kinds import COMPRESSED_KINDS
from jtcse.corpus_scale.verified import FileChecks
from jtcse.errors import JtcseError

RERANK_NAME = "rerank.npy"


def wants_copy(kind: str, shard_files: Iterable[str], choice: bool | None) -> bool:
    """Whether to keep the copy: ``choice`` when given, else for a compressed kind over Parquet shards."""
    if kind not in COMPRESSED_KINDS:
        if choice:
            raise JtcseError(f"--rerank-copy: only for the compressed kinds; a {kind} index scores exactly")
        return False
    if choice is not None:
        return choice
    return any(name.endswith(".parquet") for name in shard_files)


def copy_writer(
    blocks: Callable[[], Iterable[np.ndarray]], count: int, dim: int
) -> Callable[[IO[bytes]], None]:
    """A writer for :func:`jtcse.fs.atomic_write`: an ``.npy`` header for ``[count, dim]`` float32, then
    the unit-vector blocks in index order as they come (one block in memory at a time)."""

    def write(fh: IO[bytes]) -> None:
        header = {"descr": "<f4", "fortran_order": False, "shape": (count, dim)}
        np.lib.format.write_array_header_2_0(fh, header)
        written = 0
        for block in blocks():
            fh.write(np.ascontiguousarray(block, dtype="<f4").tobytes())
            written += len(block)
        if written != count:  # the shards changed under the build: do not leave a copy that lies
            raise JtcseError(f"{RERANK_NAME}: wrote {written:,} vectors, the index holds {count:,}")

    return write


def open_copy(
    folder: Path, record: dict[str, Any] | None, count: int, dim: int, checks: FileChecks
) -> np.ndarray | None:
    """The memory-mapped copy named by ``record`` (``index.json``'s ``rerank_copy``), or None without one;
    a missing, truncated, damaged (checksum) or reshaped file is a one-line error."""
    if not record:
        return None
    file = folder / RERANK_NAME
    rebuild = f"rebuild the index (jtcse index --output {folder} ...), or delete {file} and its entry"
    if not file.is_file() or file.stat().st_size != record.get("bytes"):
        raise JtcseError(f"{file}: missing or truncated (its size differs from index.json); {rebuild}")
    checks.check(RERANK_NAME, record["sha256"], recorded_in="index.json", fix=rebuild)
    try:
        copy: np.ndarray = np.load(file, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise JtcseError(f"{file}: cannot read it ({exc}); {rebuild}") from exc
    if copy.shape != (count, dim) or copy.dtype != np.float32:
        raise JtcseError(f"{file}: holds {copy.dtype} {copy.shape}, the index {count:,} x {dim}; {rebuild}")
    return copy


class CopyFetch:
    """``fetch(rows)`` for re-ranking from the copy: input rows to index positions through the sorted
    ``rows.npy`` (the index adds rows in increasing order)."""

    def __init__(self, copy: np.ndarray, rows: np.ndarray) -> None:
        self.copy, self.rows = copy, rows

    def __call__(self, rows: np.ndarray) -> np.ndarray:
        positions = np.searchsorted(self.rows, rows)
        return np.asarray(self.copy[np.minimum(positions, len(self.rows) - 1)])
