"""A saved faiss index over a vectors folder, tied to the model and the exact shards it was built from.

``IDX/`` (written whole through :func:`jtcse.fs.staged_directory`: complete or not there at all)::

    index.faiss   the faiss index (unit vectors, inner product = cosine)
    rows.npy      int64: the input row (0-based line) of each indexed vector, blank lines left out (mmapped)
    index.json    kind and parameters, model identity, the vectors folder and its manifest's sha256, the
                  input file and shard offsets (to show the text of a hit), sha256 of the two files above,
                  bytes per vector in memory and the index's size

A compressed index (ivfpq, ivfsq8) re-ranks its best ``rerank`` candidates per query with the exact
cosine of their float vectors, read from the shards (memory-mapped) when the vectors folder is there, or
from ``rerank.npy`` in the index folder, which it keeps over Parquet shards (:mod:`.rerank_copy`).
"""

from __future__ import annotations

import errno
import json
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np

from jtcse import __version__
from jtcse.corpus_scale.exact import exact_search, recall_at_k, rerank_candidates
from jtcse.corpus_scale.faiss_kinds import (
    COMPRESSED_KINDS,
    DEFAULT_RERANK,
    EXACT_BELOW,
    IVF_KINDS,
    bytes_per_vector,
    describe_size,
    faiss_module,
    faiss_writer,
    make_index,
    resolve_params,
    set_search_params,
    set_threads,
    training_size,
)
from jtcse.corpus_scale.index_meta import (
    FAISS_NAME,
    FORMAT,
    FORMAT_VERSION,
    META_NAME,
    ROWS_NAME,
    read_meta,
    rebuild_hint,
)
from jtcse.corpus_scale.lines import read_lines_at
from jtcse.corpus_scale.manifest import MANIFEST_NAME
from jtcse.corpus_scale.progress import Progress
from jtcse.corpus_scale.rerank_copy import RERANK_NAME, CopyFetch, copy_writer, open_copy, wants_copy
from jtcse.corpus_scale.shards import ShardedVectors
from jtcse.corpus_scale.verified import FileChecks
from jtcse.errors import JtcseError
from jtcse.fs import atomic_write, atomic_write_text, sha256_file, staged_directory
from jtcse.locks import output_lock
from jtcse.model.identity import check_query_model
from jtcse.output_policy import check_output
from jtcse.tools.search import SearchHit
from jtcse.tools.similarity import normalize_rows

if TYPE_CHECKING:
    from jtcse.protocols import SentenceEncoder

INDEX_FILES = (META_NAME, FAISS_NAME, ROWS_NAME, RERANK_NAME)  # all an index folder holds: it is ours
_ADD_ROWS = 1 << 14  # rows added at once (memory: a few copies of one block)


def _unit_rows(block: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(positions, unit vectors)`` of the non-zero rows of ``block``, normalised in place in one copy
    (memory: the block once, not the three temporaries of a plain ``normalize_rows`` with a mask)."""
    unit = np.array(block, dtype=np.float32)
    norms = np.sqrt(np.einsum("ij,ij->i", unit, unit))
    keep = np.flatnonzero(norms > 0)
    if len(keep) < len(unit):
        unit, norms = unit[keep], norms[keep]
    unit /= norms[:, None]
    return keep, unit


def _unit_blocks(vectors: ShardedVectors) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``(rows, unit vectors)`` of the non-blank rows, one block of at most 16,384 rows at a time."""
    for first, shard in vectors.shards():
        for begin in range(0, shard.shape[0], _ADD_ROWS):
            keep, unit = _unit_rows(shard[begin : begin + _ADD_ROWS])
            yield first + begin + keep, unit


def _training_sample(vectors: ShardedVectors, size: int, seed: int = 0) -> np.ndarray:
    rows = np.sort(np.random.default_rng(seed).choice(vectors.rows, min(size, vectors.rows), replace=False))
    return _unit_rows(vectors.take(rows))[1]


def build_index(
    vectors_dir: str | Path,
    out: str | Path | None = None,
    *,
    kind: str | None = None,
    threads: int | None = None,
    log: Callable[[str], None] = lambda line: None,
    rerank_copy: bool | None = None,
    **knobs: int | None,
) -> tuple[Path, dict[str, Any]]:
    """Build the index of a finished vectors folder and save it (default: ``DIR/index-KIND``).

    ``knobs``: ``nlist``, ``nprobe`` (IVF kinds), ``m``, ``ef_construction``, ``ef_search`` (hnsw),
    ``pq_m``, ``pq_bits`` (ivfpq), ``rerank`` (compressed kinds). ``rerank_copy``: keep ``rerank.npy``
    (None: for a compressed kind over Parquet shards). Memory: the training sample (IVF kinds), the index
    (codes only for the compressed kinds), the row map and one shard at a time.
    """
    vectors = ShardedVectors(vectors_dir, rehash=True)
    vectors.verify()  # a damaged shard must not end up in an index: every byte read (and remembered)
    count = vectors.rows - int(vectors.manifest.get("blank", 0))
    if count == 0:
        raise JtcseError(f"--vectors {vectors_dir}: every line is blank; nothing to index")
    params = resolve_params(kind, count, dim=vectors.dim, **knobs)
    out = Path(out) if out is not None else vectors.folder / f"index-{params.kind}"
    # before any work: never the vectors folder itself, never a folder of someone else's files
    check_output(out, option="--output", ours=INDEX_FILES, holders={"--vectors": vectors_dir}, replaces=True)
    vectors.verify()  # a damaged shard must not end up in an index
    with output_lock(out, what="--output"):  # one writer per index folder: a second one stops here
        why = "--kind" if kind else f"default for {count:,} vectors: exact below {EXACT_BELOW:,}, ivf above"
        log(f"index: {params.kind} ({why}); {', '.join(f'{k}={v}' for k, v in params.describe().items())}")
        set_threads(threads)
        started = time.perf_counter()
        index = make_index(params, vectors.dim)
        if params.kind in IVF_KINDS:
            size = training_size(params)
            log(f"index: training the {params.kind} quantiser on a sample of {size:,} vectors")
            index.train(_training_sample(vectors, size))
        rows = []
        progress = Progress(count, prefix="index: adding", unit="vectors")  # a line every 10 s on long builds
        for block_rows, block in _unit_blocks(vectors):
            index.add(block)
            rows.append(block_rows)
            progress.advance(len(block_rows))
        meta = _meta(vectors, params.describe(), count, time.perf_counter() - started)
        meta["bytes_per_vector"] = bytes_per_vector(index, params.kind)
        copy = None
        if wants_copy(params.kind, [e["file"] for e in vectors.entries], rerank_copy):
            log(f"index: copying the float vectors into {RERANK_NAME} for re-ranking (Parquet shards)")
            copy = copy_writer(lambda: (block for _, block in _unit_blocks(vectors)), count, vectors.dim)
        _save(out, index, np.concatenate(rows).astype(np.int64), meta, copy)
        _remember(out, meta)
        log(describe_size(meta))
    return out, meta


def _remember(out: Path, meta: dict[str, Any]) -> None:
    """The files just written and hashed count as verified: the first search reads none of them again."""
    checks = FileChecks(out)
    for name, digest in meta["files"].items():
        checks.remember(name, digest)
    if "rerank_copy" in meta:
        checks.remember(RERANK_NAME, meta["rerank_copy"]["sha256"])


def _meta(vectors: ShardedVectors, params: dict[str, Any], count: int, seconds: float) -> dict[str, Any]:
    manifest = vectors.manifest
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "jtcse_version": __version__,
        "faiss_version": faiss_module().__version__,
        **params,
        "count": count,
        "dim": vectors.dim,
        "similarity": "cosine",
        "build_seconds": round(seconds, 3),
        "model": manifest["model"],
        "vectors": {"folder": str(vectors.folder.resolve()), "manifest_sha256": vectors.manifest_sha256()},
        "input": manifest["input"],
        "shard_size": manifest["shard_size"],
        "shard_offsets": [entry["offset"] for entry in manifest["shards"]],
    }


def _save(
    out: Path, index: Any, rows: np.ndarray, meta: dict[str, Any], copy: Callable[[IO[bytes]], None] | None
) -> None:
    """Write the index folder as a whole; a failure (a full disk) leaves no staging folder behind."""
    try:
        with staged_directory(out, prefix=".jtcse_index_tmp_") as staging:
            atomic_write(staging / FAISS_NAME, faiss_writer(index))
            atomic_write(staging / ROWS_NAME, lambda fh: np.save(fh, rows))
            meta["files"] = {name: sha256_file(staging / name) for name in (FAISS_NAME, ROWS_NAME)}
            if copy is not None:  # the re-ranking copy: checked by size on load, not hashed
                atomic_write(staging / RERANK_NAME, copy)
                file = staging / RERANK_NAME
                meta["rerank_copy"] = {"bytes": file.stat().st_size, "sha256": sha256_file(file)}
            meta["index_bytes"] = (staging / FAISS_NAME).stat().st_size
            atomic_write_text(staging / META_NAME, json.dumps(meta, indent=1) + "\n")
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        need = (rows.nbytes + index.ntotal * meta.get("bytes_per_vector", meta["dim"] * 4)) / 2**20
        raise JtcseError(
            f"--output {out}: no space left on the device; the index needs at least {need:,.0f} MiB"
        ) from exc


class VectorIndex:
    """A loaded index: search by vectors or by text, check recall against exact search."""

    def __init__(self, folder: Path, meta: dict[str, Any], index: Any, rows: np.ndarray) -> None:
        self.folder, self.meta, self.index, self.rows = folder, meta, index, rows
        self._checked_encoder: SentenceEncoder | None = None
        self.vectors: ShardedVectors | None = None  # the shards, when present (re-ranking, recall)
        self.rerank_copy: np.ndarray | None = None  # rerank.npy, when kept (re-ranking without the shards)
        self.checks: FileChecks | None = None  # the checksums of the index's own files (set by load)

    @property
    def kind(self) -> str:
        return str(self.meta["kind"])

    @property
    def dim(self) -> int:
        return int(self.meta["dim"])

    def __len__(self) -> int:
        return int(self.meta["count"])

    @classmethod
    def load(cls, folder: str | Path, *, rehash: bool = False) -> VectorIndex:
        """Load and verify: the checksums of its files, and of the shards when it uses them (each read only
        when changed since a process last verified it, or always with ``rehash``: ``--verify``); the vectors
        folder, when present, must be the one indexed."""
        folder = Path(folder)
        meta = read_meta(folder)
        checks = FileChecks(folder, rehash=rehash)
        checks.check_all(list(meta["files"].items()), recorded_in=META_NAME, fix=rebuild_hint(folder, meta))
        try:
            index = faiss_module().read_index(str(folder / FAISS_NAME))
            rows = np.load(folder / ROWS_NAME, mmap_mode="r", allow_pickle=False)
        except (RuntimeError, ValueError, OSError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            fix = rebuild_hint(folder, meta)
            raise JtcseError(f"--index {folder}: cannot read the index ({first}); {fix}") from exc
        loaded = cls(folder, meta, index, rows)
        loaded.checks = checks
        loaded.vectors = loaded.check_vectors(required=False, rehash=rehash)
        loaded.rerank_copy = open_copy(folder, meta.get("rerank_copy"), len(loaded), loaded.dim, checks)
        return loaded

    def check_vectors(self, *, required: bool = True, rehash: bool = False) -> ShardedVectors | None:
        """The vectors folder this index was built from, refused when its shards changed since."""
        folder = Path(self.meta["vectors"]["folder"])
        if not (folder / MANIFEST_NAME).is_file():
            if required:
                raise JtcseError(f"--index {self.folder}: its vectors folder {folder} is gone")
            return None
        vectors = ShardedVectors(folder, rehash=rehash)
        if vectors.manifest_sha256() != self.meta["vectors"]["manifest_sha256"]:
            raise JtcseError(
                f"--index {self.folder}: built from other shards than those now in {folder} (the manifest "
                f"changed); rebuild it: jtcse index --vectors {folder} --output {self.folder}"
            )
        return vectors

    def check_model(self, encoder: SentenceEncoder) -> str:
        """A one-line error unless ``encoder`` made these vectors or is an export of the same weights; returns
        the line that names the export (``""`` for the same model)."""
        return check_query_model(
            self.meta["model"],
            self.dim,
            encoder,
            where=f"--index {self.folder}",
            fix="search with the same --model",
            built="built from vectors of",
        )

    def search_vectors(
        self,
        queries: np.ndarray,
        top_k: int = 5,
        *,
        nprobe: int | None = None,
        ef_search: int | None = None,
        rerank: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (cosine, input row) per query; a row of -1 (score -inf) where fewer than k were found.

        ``rerank`` (compressed kinds): candidates per query re-scored exactly from the shards; None: the
        index's default when its shards are present, else none; 0: none (approximate scores)."""
        if not isinstance(top_k, int) or top_k < 1:
            raise JtcseError(f"--top-k {top_k}: must be a positive integer")
        queries = np.ascontiguousarray(normalize_rows(np.atleast_2d(queries)), dtype=np.float32)
        if queries.shape[1] != self.dim:
            raise JtcseError(f"query vectors have {queries.shape[1]} dimensions, the index {self.dim}")
        set_search_params(
            self.index,
            self.kind,
            nprobe=nprobe or self.meta.get("nprobe"),
            ef_search=ef_search or self.meta.get("ef_search"),
        )
        depth = self.rerank_depth(rerank)
        k = min(top_k, len(self))
        scores, labels = self.index.search(queries, min(max(k, depth), len(self)))
        rows = np.where(labels >= 0, self.rows[np.maximum(labels, 0)], -1).astype(np.int64)
        if depth:
            return rerank_candidates(queries, rows, self._fetch(), k)
        return np.where(labels >= 0, scores, -np.inf).astype(np.float32), rows

    def _fetch(self) -> Callable[[np.ndarray], np.ndarray]:
        """Where re-ranking reads float vectors: the copy when kept (fast over Parquet), else the shards."""
        if self.rerank_copy is not None:
            return CopyFetch(self.rerank_copy, self.rows)
        assert self.vectors is not None  # rerank_depth() is 0 without one of the two
        return self.vectors.take

    def rerank_depth(self, rerank: int | None = None) -> int:
        """Candidates re-ranked per query (0: none); see :meth:`search_vectors`."""
        if self.kind not in COMPRESSED_KINDS:
            if rerank:
                raise JtcseError(
                    f"--rerank {rerank}: only for the compressed kinds ({', '.join(COMPRESSED_KINDS)}); "
                    f"a {self.kind} index scores exactly already"
                )
            return 0
        if rerank is not None and rerank < 0:
            raise JtcseError(f"--rerank {rerank}: must be 0 (off) or a positive number of candidates")
        if rerank == 0:
            return 0
        if self.vectors is None and self.rerank_copy is None:
            if rerank is not None:
                raise JtcseError(
                    f"--rerank {rerank}: needs the shards, and the vectors folder "
                    f"{self.meta['vectors']['folder']} of --index {self.folder} is gone; restore it, or "
                    "search with --rerank 0 (approximate scores)"
                )
            return 0
        return int(rerank or self.meta.get("rerank") or DEFAULT_RERANK)

    def texts(self, rows: Sequence[int]) -> dict[int, str]:
        """The input lines of ``rows`` (0-based), read from the input file the vectors were made from."""
        source = self.meta["input"]
        path = Path(source["path"])
        if not path.is_file() or path.stat().st_size != source["bytes"]:
            raise JtcseError(
                f"--index {self.folder}: the input {path} is missing or changed since it was encoded, so "
                "hits cannot show their text; restore it or encode it again"
            )
        size, found = int(self.meta["shard_size"]), {}
        for shard in sorted({row // size for row in rows}):
            wanted = {row for row in rows if row // size == shard}
            found.update(read_lines_at(path, self.meta["shard_offsets"][shard], shard * size, wanted))
        return found

    def search(
        self, encoder: SentenceEncoder, queries: str | Sequence[str], top_k: int = 5, **knobs: int | None
    ) -> list[SearchHit] | list[list[SearchHit]]:
        """Hits for one query (a list) or several (a list of lists), like :meth:`SearchIndex.search`."""
        single = isinstance(queries, str)
        texts: list[str] = [queries] if isinstance(queries, str) else list(queries)
        if not texts or any(not isinstance(t, str) or not t.strip() for t in texts):
            raise JtcseError("--query: the query is empty")
        if self._checked_encoder is not encoder:
            self.check_model(encoder)
            self._checked_encoder = encoder
        q = np.asarray(encoder.encode(texts, normalize=True, show_progress=False))
        results = self.hits(q, top_k, **knobs)
        return results[0] if single else results

    def hits(self, queries: np.ndarray, top_k: int = 5, **knobs: int | None) -> list[list[SearchHit]]:
        """Hits (with their input lines) per query vector; the model check is the caller's."""
        scores, rows = self.search_vectors(queries, top_k, **knobs)
        lines = self.texts(sorted({int(r) for r in rows.ravel() if r >= 0}))
        return [
            [
                SearchHit(rank=i + 1, score=float(s), line=int(r) + 1, text=lines[int(r)])
                for i, (s, r) in enumerate(zip(srow, rrow, strict=True))
                if r >= 0
            ]
            for srow, rrow in zip(scores, rows, strict=True)
        ]

    def check_recall(self, queries: int, top_k: int = 10, *, seed: int = 0, **knobs: int | None) -> float:
        """recall@top_k of this index against exact search, on ``queries`` corpus vectors taken as queries."""
        vectors = self.vectors or self.check_vectors()
        assert vectors is not None
        picked = np.sort(np.random.default_rng(seed).choice(self.rows, min(queries, len(self.rows)), False))
        q = normalize_rows(vectors.take(picked))
        _, approx = self.search_vectors(q, top_k, **knobs)
        _, exact = exact_search(vectors, q, min(top_k, len(self)))
        return recall_at_k(approx, exact)
