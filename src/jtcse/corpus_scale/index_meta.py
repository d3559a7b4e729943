"""``index.json`` of a folder built by ``jtcse index``: its names, its schema and its reader.

Every field a search or a load uses is declared here (:mod:`jtcse.records`), so a damaged or hand-edited
``index.json`` is one line naming the field, never a ``KeyError`` or a search that misreads it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jtcse.corpus_scale.faiss_kinds import KINDS
from jtcse.errors import JtcseError
from jtcse.model.identity import IDENTITY_SPEC
from jtcse.records import (
    SHA256,
    Int,
    ListOf,
    MapOf,
    Num,
    Obj,
    RecordInvalid,
    Str,
    parse_json,
    read_format_record,
)

FORMAT = "jtcse-vector-index"
FORMAT_VERSION = 1
META_NAME = "index.json"
FAISS_NAME = "index.faiss"
ROWS_NAME = "rows.npy"

META_SPEC = Obj(
    {
        "kind": Str(choices=KINDS),
        "count": Int(1),
        "dim": Int(1),
        "model": IDENTITY_SPEC,
        "vectors": Obj({"folder": Str(nonempty=True), "manifest_sha256": Str(pattern=SHA256)}),
        "input": Obj({"path": Str(), "bytes": Int(0)}),
        "shard_size": Int(1),
        "shard_offsets": ListOf(Int(0)),
        # only the index's own files: a name like ../x would make a load hash a file outside the folder
        "files": MapOf(Str(pattern=SHA256), key_pattern=rf"{FAISS_NAME}|{ROWS_NAME}"),
    },
    {
        "nlist": Int(1),
        "nprobe": Int(1),
        "m": Int(1),
        "ef_construction": Int(1),
        "ef_search": Int(1),
        "pq_m": Int(1),
        "pq_bits": Int(1, 16),
        "rerank": Int(0),
        "rerank_copy": Obj({"bytes": Int(0), "sha256": Str(pattern=SHA256)}, {"block_sha256": ListOf(Str())}),
        "bytes_per_vector": Num(0),
        "index_bytes": Int(0),
    },
)


def rebuild_hint(folder: Path, meta: dict[str, Any]) -> str:
    return f"rebuild it: jtcse index --vectors {meta['vectors']['folder']} --output {folder}"


def read_meta(folder: Path) -> dict[str, Any]:
    file = folder / META_NAME
    if not file.is_file():
        raise JtcseError(f"--index {folder}: no {META_NAME} (build one with: jtcse index --vectors DIR)")
    return read_format_record(
        file,
        META_SPEC,
        kind="jtcse vector index (built by jtcse index)",
        format_name=FORMAT,
        max_version=FORMAT_VERSION,
        remedy="rebuild it with jtcse index",
    )


def recorded_format(folder: str | Path) -> str | None:
    """The ``format`` an ``index.json`` in ``folder`` names, or None (none there, or not readable as one):
    which of the two kinds of index a folder holds, before the reader of that kind checks it all."""
    try:
        document = parse_json((Path(folder) / META_NAME).read_bytes())
    except (OSError, RecordInvalid):
        return None
    value = document.get("format") if isinstance(document, dict) else None
    return value if isinstance(value, str) else None


def is_vector_index(folder: str | Path) -> bool:
    return recorded_format(folder) == FORMAT
