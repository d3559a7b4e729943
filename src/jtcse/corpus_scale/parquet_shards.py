"""Parquet shards: columns ``id`` (int64, the 0-based input line), ``vector`` (fixed-size list of float32)
and, when asked, ``text`` (the input line), the layout that Spark, DuckDB, Milvus and Qdrant bulk-load.

Written in row groups of :data:`ROW_GROUP` rows (a search re-ranking a few rows reads only their groups),
uncompressed vectors (float noise does not compress; plain pages decode fastest), zstd-compressed text.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np

from jtcse.errors import JtcseError

ROW_GROUP = 8192
COLUMNS = ("id", "vector", "text")


class _Sink:
    """The file object pyarrow writes to: passes bytes on to ``fh`` (which pyarrow must not close)."""

    closed = False

    def __init__(self, fh: IO[bytes]) -> None:
        self.fh = fh

    def write(self, data: Any) -> int:
        return self.fh.write(data)

    def flush(self) -> None:
        self.fh.flush()

    def close(self) -> None:
        """The caller (:func:`jtcse.fs.atomic_write`) closes the real file after its fsync."""


def pyarrow_modules() -> tuple[Any, Any]:
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError as exc:
        raise JtcseError(
            "--shard-format parquet needs pyarrow; pip install pyarrow (or: pip install 'jtcse[parquet]')"
        ) from exc
    return pyarrow, pyarrow.parquet


def write_parquet(fh: IO[bytes], vectors: np.ndarray, start: int, texts: Sequence[str] | None) -> None:
    """Write rows ``start ..`` of ``vectors`` (and their ``texts``) as one Parquet file to ``fh``."""
    pa, pq = pyarrow_modules()
    rows, dim = vectors.shape
    columns = {
        "id": pa.array(np.arange(start, start + rows, dtype=np.int64)),
        "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), dim),
    }
    if texts is not None:
        columns["text"] = pa.array(list(texts), pa.string())
    compression = {"id": "zstd", "vector": "none", "text": "zstd"}
    pq.write_table(
        pa.table(columns),
        _Sink(fh),
        row_group_size=ROW_GROUP,
        compression={name: compression[name] for name in columns},
        use_dictionary=False,
        write_statistics=["id"],
    )


def _vectors_of(table: Any, path: Path, dim: int | None = None) -> np.ndarray:
    column = table.column("vector").combine_chunks()
    width = column.type.list_size
    if dim is not None and width != dim:
        raise JtcseError(f"{path}: vectors of {width} dimensions, the manifest says {dim}")
    values = column.flatten().to_numpy(zero_copy_only=False)
    return np.asarray(values, dtype=np.float32).reshape(-1, width)


def read_parquet(path: Path, start: int) -> np.ndarray:
    """The ``vector`` column as float32 ``[rows, dim]`` (memory-mapped file, decoded once); the ``id``
    column must be ``start, start + 1, ...`` (a shard of another folder or position is refused)."""
    _, pq = pyarrow_modules()
    table = pq.read_table(path, columns=["id", "vector"], memory_map=True)
    ids = table.column("id").to_numpy()
    if not np.array_equal(ids, np.arange(start, start + len(ids))):
        raise JtcseError(f"{path}: its id column is not the rows {start}.. of this shard; re-encode")
    return _vectors_of(table, path)


def read_parquet_rows(path: Path, local_rows: np.ndarray) -> np.ndarray:
    """The vectors of ``local_rows`` (in that order) of one shard, reading only the row groups that hold
    them."""
    _, pq = pyarrow_modules()
    order = np.argsort(local_rows, kind="stable")
    local_rows = local_rows[order]
    file = pq.ParquetFile(path, memory_map=True)
    sizes = [file.metadata.row_group(g).num_rows for g in range(file.metadata.num_row_groups)]
    firsts = np.concatenate([[0], np.cumsum(sizes)])
    group_of = np.searchsorted(firsts, local_rows, side="right") - 1
    parts: list[np.ndarray] = []
    for group in np.unique(group_of):
        block = _vectors_of(file.read_row_group(int(group), columns=["vector"]), path)
        parts.append(block[local_rows[group_of == group] - firsts[group]])
    if not parts:
        width = int(file.schema_arrow.field("vector").type.list_size)
        return np.empty((0, width), np.float32)
    out: np.ndarray = np.empty((len(local_rows), parts[0].shape[1]), dtype=parts[0].dtype)
    out[order] = np.concatenate(parts)
    return out
