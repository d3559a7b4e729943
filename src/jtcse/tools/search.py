"""Semantic search over a text corpus: an index of unit vectors, built once and saved beside the corpus.

``SearchIndex.for_corpus(encoder, corpus)`` loads ``<corpus>.jtcse-index/`` when it was built by the same
model from the same file content, builds and saves it otherwise. Scores are cosine similarities. The saved
form is plain numpy (``vectors.npy`` + ``index.json``) and the search an exact numpy product (a faiss flat
index would compute the same product; corpora too large for this use :mod:`jtcse.corpus_scale`, with
approximate IVF / HNSW indexes). Blank corpus lines are skipped; each hit carries its 1-based line number.
"""

from __future__ import annotations

import errno
import hashlib
import importlib.util
import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from jtcse import __version__
from jtcse.errors import JtcseError
from jtcse.fs import atomic_write, atomic_write_text, sha256_file
from jtcse.model.identity import IDENTITY_SPEC, check_query_model, model_identity
from jtcse.protocols import SearchHit
from jtcse.records import SHA256, Int, Obj, Str, read_format_record
from jtcse.tools.encode_file import SupportsEncode, decode_lines, read_text_bytes
from jtcse.tools.similarity import normalize_rows

INDEX_SUFFIX = ".jtcse-index"
META_NAME = "index.json"
VECTORS_NAME = "vectors.npy"
INDEX_FORMAT = "jtcse-search-index"
INDEX_FORMAT_VERSION = 1
BACKENDS = ("auto", "numpy")
_META_SPEC = Obj(
    {"model": IDENTITY_SPEC, "dim": Int(1), "count": Int(1), "corpus": Obj({"sha256": Str(pattern=SHA256)})},
    {"vectors_sha256": Str(pattern=SHA256)},  # absent in indexes saved before it was recorded: not checked
)


@dataclass(frozen=True)
class SearchCorpus:
    path: Path
    sentences: list[str]  # non-blank lines, in file order
    line_numbers: list[int]  # 1-based line of each sentence
    sha256: str


def read_corpus(path: str | Path) -> SearchCorpus:
    """The corpus sentences (blank lines skipped) with their line numbers and the file's sha256."""
    path = Path(path)
    data = read_text_bytes(path, what="--corpus")
    lines = decode_lines(data, path)
    digest = hashlib.sha256(data).hexdigest()
    kept = [(i + 1, line) for i, line in enumerate(lines) if line.strip()]
    if not kept:
        raise JtcseError(f"--corpus {path}: no sentences (the file is empty or blank)")
    return SearchCorpus(path, [s for _, s in kept], [n for n, _ in kept], digest)


def _check_model(
    saved: dict[str, Any], dim: int, encoder: SupportsEncode, index_dir: str | Path | None
) -> str:
    where = f"--index {index_dir}" if index_dir is not None else "the index"
    return check_query_model(saved, dim, encoder, where=where, fix="pass --rebuild to replace the index")


def faiss_available() -> bool:
    return importlib.util.find_spec("faiss") is not None


def _pick_backend(backend: str) -> str:
    if backend == "faiss":
        raise JtcseError(
            "--backend faiss: a corpus index is searched exactly with numpy (a flat faiss index gives the "
            "same product); for an approximate IVF or HNSW index of a large corpus use jtcse encode + "
            "jtcse index"
        )
    if backend not in BACKENDS:
        raise JtcseError(f"--backend {backend}: unknown; choose one of {', '.join(BACKENDS)}")
    return "numpy"


def default_index_dir(corpus: str | Path) -> Path:
    """``<corpus>.jtcse-index`` beside the corpus; a per-user cache folder if the corpus's is read-only."""
    corpus = Path(corpus).resolve()
    beside = corpus.with_name(corpus.name + INDEX_SUFFIX)
    if (beside / META_NAME).is_file() or os.access(corpus.parent, os.W_OK):
        return beside
    cache_root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "jtcse" / "search-index"
    key = hashlib.sha256(str(corpus).encode()).hexdigest()[:16]
    return cache_root / f"{corpus.name}-{key}{INDEX_SUFFIX}"


class SearchIndex:
    """Unit-length corpus vectors plus what is needed to trust them later (model identity, corpus hash)."""

    def __init__(
        self, vectors: np.ndarray, corpus: SearchCorpus, identity: dict[str, Any], *, backend: str = "auto"
    ) -> None:
        vectors = normalize_rows(vectors)
        if vectors.ndim != 2 or vectors.shape[0] != len(corpus.sentences):
            raise ValueError(f"{vectors.shape[0]} vectors for {len(corpus.sentences)} sentences")
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.corpus = corpus
        self.identity = identity
        self.backend = _pick_backend(backend)
        self.status = "new"  # set by for_corpus: "loaded", "built" or "rebuilt (...)"
        self.model_note = ""  # set by check_model: which export of the same weights queries it, if one does
        self._checked_encoder: SupportsEncode | None = None

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def __len__(self) -> int:
        return int(self.vectors.shape[0])

    # -- building, saving, loading -------------------------------------------------------------------------

    @classmethod
    def build(
        cls,
        encoder: SupportsEncode,
        corpus: str | Path | SearchCorpus,
        *,
        batch_size: int | None = None,
        show_progress: bool | None = None,
        backend: str = "auto",
    ) -> SearchIndex:
        """Encode every corpus sentence (with a progress bar on long corpora)."""
        corpus = corpus if isinstance(corpus, SearchCorpus) else read_corpus(corpus)
        vectors = encoder.encode(
            corpus.sentences, batch_size=batch_size, normalize=True, show_progress=show_progress
        )
        index = cls(np.asarray(vectors), corpus, model_identity(encoder), backend=backend)
        index.status = "built"
        return index

    def save(self, index_dir: str | Path | None = None) -> Path:
        """Write ``vectors.npy``, then ``index.json`` (last, so a half-written index is never trusted)."""
        index_dir = Path(index_dir) if index_dir is not None else default_index_dir(self.corpus.path)
        created = not index_dir.exists()
        try:
            index_dir.mkdir(parents=True, exist_ok=True)
            (index_dir / META_NAME).unlink(missing_ok=True)
            atomic_write(index_dir / VECTORS_NAME, lambda fh: np.save(fh, self.vectors))
            meta = {**self._meta(), "vectors_sha256": sha256_file(index_dir / VECTORS_NAME)}
            atomic_write_text(index_dir / META_NAME, json.dumps(meta, indent=2) + "\n")
        except BaseException as exc:
            if created:  # a folder without a complete index would only be in the way
                shutil.rmtree(index_dir, ignore_errors=True)
            if isinstance(exc, OSError) and exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
                raise JtcseError(
                    f"--index {index_dir}: cannot write the index here ({exc.strerror})"
                ) from exc
            if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise JtcseError(
                    f"--index {index_dir}: no space left on the device; about "
                    f"{self.vectors.nbytes / 2**20:,.0f} MiB is needed"
                ) from exc
            raise
        return index_dir

    def _meta(self) -> dict[str, Any]:
        return {
            "format": INDEX_FORMAT,
            "format_version": INDEX_FORMAT_VERSION,
            "jtcse_version": __version__,
            "model": self.identity,
            "dim": self.dim,
            "normalize": True,
            "similarity": "cosine",
            "count": len(self),
            "corpus": {"path": str(self.corpus.path.resolve()), "sha256": self.corpus.sha256},
        }

    @staticmethod
    def read_meta(index_dir: str | Path) -> dict[str, Any] | None:
        """The saved metadata, or None when there is no complete index in ``index_dir``."""
        file = Path(index_dir) / META_NAME
        if not file.is_file():
            return None
        return read_format_record(
            file,
            _META_SPEC,
            kind="jtcse search index",
            format_name=INDEX_FORMAT,
            max_version=INDEX_FORMAT_VERSION,
            remedy="pass --rebuild to replace the index",
        )

    @classmethod
    def load(
        cls, index_dir: str | Path, corpus: str | Path | SearchCorpus, *, backend: str = "auto"
    ) -> SearchIndex:
        """Load a saved index for ``corpus``; the corpus content must be the one the index was built from."""
        index_dir = Path(index_dir)
        meta = cls.read_meta(index_dir)
        if meta is None:
            raise JtcseError(f"--index {index_dir}: no search index here ({META_NAME} missing)")
        corpus = corpus if isinstance(corpus, SearchCorpus) else read_corpus(corpus)
        if meta["corpus"]["sha256"] != corpus.sha256:
            raise JtcseError(
                f"--index {index_dir}: built from another version of {corpus.path} (sha256 differs); "
                "pass --rebuild"
            )
        digest, file = meta.get("vectors_sha256"), index_dir / VECTORS_NAME
        # ~0.1 s per 100,000 x 384, a file read in full next anyway
        if digest is not None and file.is_file() and sha256_file(file) != digest:
            raise JtcseError(
                f"{index_dir / VECTORS_NAME}: checksum differs from {META_NAME} (damaged or replaced); "
                "pass --rebuild"
            )
        try:
            vectors = np.load(index_dir / VECTORS_NAME, allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:  # a truncated or damaged file, or none
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise JtcseError(
                f"{index_dir / VECTORS_NAME}: cannot read the index ({first}); pass --rebuild"
            ) from exc
        if vectors.shape != (meta["count"], meta["dim"]) or vectors.shape[0] != len(corpus.sentences):
            raise JtcseError(
                f"{index_dir / VECTORS_NAME}: shape {vectors.shape} does not match {META_NAME}; "
                "pass --rebuild"
            )
        index = cls(vectors, corpus, meta["model"], backend=backend)
        index.status = "loaded"
        return index

    def check_model(self, encoder: SupportsEncode, index_dir: str | Path | None = None) -> str:
        """Raise a one-line error when ``encoder`` may not query this index: not the model that built it
        nor an export of its weights. Returns (and keeps as ``model_note``) the line naming the export."""
        self.model_note = _check_model(self.identity, self.dim, encoder, index_dir)
        return self.model_note

    @classmethod
    def for_corpus(
        cls,
        encoder: SupportsEncode,
        corpus: str | Path,
        *,
        index_dir: str | Path | None = None,
        rebuild: bool = False,
        batch_size: int | None = None,
        show_progress: bool | None = None,
        backend: str = "auto",
    ) -> SearchIndex:
        """The saved index when it matches this model and this corpus content; else build it and save it.

        A changed corpus is re-indexed silently (``status`` says so). An index built by another model is an
        error unless ``rebuild``: replacing it would throw away someone's (possibly long) indexing run.
        """
        corpus_data = read_corpus(corpus)
        index_dir = Path(index_dir) if index_dir is not None else default_index_dir(corpus_data.path)
        meta = None if rebuild else cls.read_meta(index_dir)
        status = "built"
        if meta is not None:
            note = _check_model(meta["model"], int(meta["dim"]), encoder, index_dir)
            if meta["corpus"]["sha256"] == corpus_data.sha256:
                index = cls.load(index_dir, corpus_data, backend=backend)
                index.model_note = note
                return index
            status = "rebuilt (the corpus changed)"
        elif rebuild and (index_dir / META_NAME).is_file():
            status = "rebuilt (--rebuild)"
        index = cls.build(
            encoder, corpus_data, batch_size=batch_size, show_progress=show_progress, backend=backend
        )
        index.save(index_dir)
        index.status = status
        return index

    # -- searching ------------------------------------------------------------------------------------------

    def search_vectors(self, queries: np.ndarray, top_k: int = 5) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (scores, row indices) per query row, best first; ties broken by corpus order."""
        if not isinstance(top_k, int) or top_k < 1:
            raise JtcseError(f"--top-k {top_k}: must be a positive integer")
        queries = normalize_rows(np.atleast_2d(queries))
        if queries.shape[1] != self.dim:
            raise JtcseError(
                f"query vectors have {queries.shape[1]} dimensions, the index {self.dim}; "
                "the index was built by another model: pass --rebuild"
            )
        k = min(top_k, len(self))
        return _exact_top_k(queries @ self.vectors.T, k)

    def search(
        self, encoder: SupportsEncode, queries: str | Sequence[str], top_k: int = 5
    ) -> list[SearchHit] | list[list[SearchHit]]:
        """Hits for one query (a list) or for several (a list of lists)."""
        single = isinstance(queries, str)
        texts: list[str] = [queries] if isinstance(queries, str) else list(queries)
        if not texts:
            raise JtcseError("--query: no query given")
        for text in texts:
            if not isinstance(text, str) or not text.strip():
                raise JtcseError("--query: the query is empty")
        if self._checked_encoder is not encoder:  # vectors of another model would give silent nonsense
            self.check_model(encoder)
            self._checked_encoder = encoder
        q = encoder.encode(texts, normalize=True, show_progress=False)
        results = self.hits(np.asarray(q), top_k)
        return results[0] if single else results

    def hits(self, queries: np.ndarray, top_k: int = 5) -> list[list[SearchHit]]:
        """Hits per query vector, with their corpus lines; the model check is the caller's."""
        scores, rows = self.search_vectors(queries, top_k)
        return [
            [
                SearchHit(
                    rank=r + 1,
                    score=float(s),
                    line=self.corpus.line_numbers[i],
                    text=self.corpus.sentences[i],
                )
                for r, (s, i) in enumerate(zip(score_row.tolist(), row.tolist(), strict=True))
            ]
            for score_row, row in zip(scores, rows, strict=True)
        ]


def _exact_top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k of each row, best first, ties broken by row order (earliest corpus line first)."""
    out_scores = np.empty((scores.shape[0], k), np.float32)
    out_rows = np.empty((scores.shape[0], k), np.int64)
    for q, row in enumerate(scores):
        if k < row.shape[0]:
            # Everything scoring at least the k-th best value: includes every member of a tie at the cut.
            kth = np.partition(row, row.shape[0] - k)[row.shape[0] - k]
            candidates = np.flatnonzero(row >= kth)
        else:
            candidates = np.arange(row.shape[0])
        order = np.lexsort((candidates, -row[candidates]))[:k]
        out_rows[q] = candidates[order]
        out_scores[q] = row[out_rows[q]]
    return out_scores, out_rows
