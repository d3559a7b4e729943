"""The faiss index kinds, all on inner products of unit vectors (= cosine similarity).

* ``flat``: exact (``IndexFlatIP``), a scan of every vector per query;
* ``ivf``: ``IndexIVFFlat`` with a k-means coarse quantiser of ``nlist`` cells, trained on a sample;
  a query scans the ``nprobe`` nearest cells (more: better recall, slower);
* ``hnsw``: ``IndexHNSWFlat`` (``M`` links per node, ``efConstruction`` while building); a query explores
  ``efSearch`` candidates (more: better recall, slower). No training, slower to build, more memory.

The compressed kinds keep codes, not float vectors, in memory; their scores are approximate, so a search
re-ranks its best ``rerank`` candidates exactly from the vectors' shards (which stay on disk):

* ``ivfpq``: ``IndexIVFPQ``, IVF cells as above with each vector stored as ``pq_m`` sub-vector codes of
  ``pq_bits`` bits (``pq_m * pq_bits / 8`` bytes; 96 bytes for 384 dimensions by default);
* ``ivfsq8``: ``IndexIVFScalarQuantizer`` with 8 bits per dimension (``dim`` bytes).

In an IVF index every vector also costs its 8-byte id.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import IO, Any

from jtcse.errors import JtcseError

KINDS = ("flat", "ivf", "hnsw", "ivfpq", "ivfsq8")
IVF_KINDS = ("ivf", "ivfpq", "ivfsq8")
COMPRESSED_KINDS = ("ivfpq", "ivfsq8")  # approximate scores: re-ranked from the shards
DEFAULT_RERANK = 100  # candidates per query re-ranked exactly (compressed kinds)
# default --pq-m: one sub-vector per 4 dimensions (96 bytes for 384). bench/search.py, 1M x 384 mixture,
# default rerank 100, nprobe 4: recall@10 0.979 at 104 B/vector with ids (m 96) against 0.80 at 56 B (m 48)
PQ_SUBVECTOR_DIMS = 4
MAX_PQ_BITS = 12  # each sub-quantiser is a k-means of 2**bits centroids, trained on the sample
MIN_PER_CENTROID = 39  # faiss's k-means warns (on stderr) below this many training points per centroid
IVF_ID_BYTES = 8  # faiss stores an int64 id beside each code in an inverted list
EXACT_BELOW = 100_000  # default kind: exact below this many vectors, IVF from there on
TRAIN_PER_CELL = 50  # training vectors per IVF cell (faiss warns below 39; blank rows drop out)


@dataclass(frozen=True)
class IndexParams:
    kind: str
    nlist: int | None = None  # ivf: cells
    nprobe: int | None = None  # ivf: cells scanned per query (default for searches)
    m: int | None = None  # hnsw: links per node
    ef_construction: int | None = None  # hnsw: candidates while building
    ef_search: int | None = None  # hnsw: candidates per query (default for searches)
    pq_m: int | None = None  # ivfpq: sub-vectors (codes) per vector
    pq_bits: int | None = None  # ivfpq: bits per code
    rerank: int | None = None  # compressed kinds: candidates re-ranked exactly (default for searches)

    def describe(self) -> dict[str, Any]:
        return {key: value for key, value in asdict(self).items() if value is not None}


def faiss_module() -> Any:  # Any: faiss's SWIG bindings carry no type information
    try:
        import faiss
    except ImportError as exc:
        raise JtcseError(
            "faiss is not installed; pip install faiss-cpu (or: pip install 'jtcse[search]')"
        ) from exc
    return faiss


def default_kind(count: int) -> str:
    return "flat" if count < EXACT_BELOW else "ivf"


def resolve_params(
    kind: str | None,
    count: int,
    *,
    dim: int | None = None,
    nlist: int | None = None,
    nprobe: int | None = None,
    m: int | None = None,
    ef_construction: int | None = None,
    ef_search: int | None = None,
    pq_m: int | None = None,
    pq_bits: int | None = None,
    rerank: int | None = None,
) -> IndexParams:
    """Defaults filled in for ``count`` vectors: nlist ~ sqrt(n) (k-means training stays minutes on a few
    cores at 10 million), nprobe ~ nlist / 32 (at least 16); HNSW M 16, efConstruction 40, efSearch 64;
    PQ one 8-bit code per 8 dimensions; 100 candidates re-ranked."""
    kind = kind or default_kind(count)
    if kind not in KINDS:
        raise JtcseError(f"--kind {kind}: unknown; choose one of {', '.join(KINDS)}")
    _refuse_foreign_knobs(kind, pq_m=pq_m, pq_bits=pq_bits, rerank=rerank)
    if kind in IVF_KINDS:
        nlist = nlist or max(1, min(round(math.sqrt(count)), count // TRAIN_PER_CELL or 1))
        if nlist > count:
            raise JtcseError(f"--nlist {nlist}: more cells than vectors ({count})")
        ivf = IndexParams(kind, nlist=nlist, nprobe=min(nlist, nprobe or max(16, nlist // 32)))
        if kind == "ivf":
            return ivf
        rerank = DEFAULT_RERANK if rerank is None else rerank
        if kind == "ivfsq8":
            return replace(ivf, rerank=rerank)
        pq_m, pq_bits = _pq_shape(dim, count, pq_m, pq_bits)
        return replace(ivf, pq_m=pq_m, pq_bits=pq_bits, rerank=rerank)
    if kind == "hnsw":
        return IndexParams(kind, m=m or 16, ef_construction=ef_construction or 40, ef_search=ef_search or 64)
    return IndexParams(kind)


def _refuse_foreign_knobs(kind: str, **knobs: int | None) -> None:
    for name, value in knobs.items():
        owner = ("ivfpq",) if name.startswith("pq_") else COMPRESSED_KINDS
        if value is not None and kind not in owner:
            exact = "" if name.startswith("pq_") else f"; a {kind} index scores exactly already"
            raise JtcseError(f"--{name.replace('_', '-')}: only with --kind {' or '.join(owner)}{exact}")


def _pq_shape(dim: int | None, count: int, pq_m: int | None, pq_bits: int | None) -> tuple[int, int]:
    if dim is None:
        raise ValueError("resolve_params: ivfpq needs the dimension")
    pq_m = pq_m or max(1, dim // PQ_SUBVECTOR_DIMS)
    if dim % pq_m:
        raise JtcseError(f"--pq-m {pq_m}: must divide the dimension {dim} (each code covers dim / m values)")
    pq_bits = pq_bits or 8
    if not 1 <= pq_bits <= MAX_PQ_BITS:
        raise JtcseError(f"--pq-bits {pq_bits}: choose 1 to {MAX_PQ_BITS}")
    if count < MIN_PER_CENTROID * 2**pq_bits:
        raise JtcseError(
            f"--pq-bits {pq_bits}: ivfpq trains {2**pq_bits} centroids per code, which needs at least "
            f"{MIN_PER_CENTROID * 2**pq_bits:,} vectors ({count:,} here); lower --pq-bits or use --kind ivf"
        )
    return pq_m, pq_bits


def training_size(params: IndexParams) -> int:
    """Vectors to train on: TRAIN_PER_CELL per IVF cell, and per PQ centroid for ivfpq."""
    cells = params.nlist or 0
    if params.kind == "ivfpq":
        cells = max(cells, 2 ** int(params.pq_bits or 8))
    return cells * TRAIN_PER_CELL


def make_index(params: IndexParams, dim: int) -> Any:
    faiss = faiss_module()
    if params.kind == "flat":
        return faiss.IndexFlatIP(dim)
    if params.kind == "ivf":
        quantizer = faiss.IndexFlatIP(dim)
        # faiss's Python wrapper keeps a reference to the quantiser for the index's lifetime
        return faiss.IndexIVFFlat(quantizer, dim, params.nlist, faiss.METRIC_INNER_PRODUCT)
    if params.kind == "ivfpq":
        quantizer = faiss.IndexFlatIP(dim)
        ip = faiss.METRIC_INNER_PRODUCT
        return faiss.IndexIVFPQ(quantizer, dim, params.nlist, params.pq_m, params.pq_bits, ip)
    if params.kind == "ivfsq8":
        quantizer = faiss.IndexFlatIP(dim)
        qtype = faiss.ScalarQuantizer.QT_8bit
        return faiss.IndexIVFScalarQuantizer(quantizer, dim, params.nlist, qtype, faiss.METRIC_INNER_PRODUCT)
    index = faiss.IndexHNSWFlat(dim, params.m, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = params.ef_construction
    return index


def set_search_params(index: Any, kind: str, *, nprobe: int | None, ef_search: int | None) -> None:
    """Query-time knobs (they change speed and recall, never the saved index)."""
    if kind in IVF_KINDS and nprobe is not None:
        index.nprobe = int(nprobe)
    if kind == "hnsw" and ef_search is not None:
        index.hnsw.efSearch = int(ef_search)


def set_threads(threads: int | None) -> None:
    if threads:
        faiss_module().omp_set_num_threads(int(threads))


def serialized_bytes(index: Any) -> int:
    """The size of ``index`` as faiss writes it (counted, not copied): what it holds in memory."""
    faiss = faiss_module()
    total = 0

    def count(data: bytes) -> int:
        nonlocal total
        total += len(data)
        return len(data)

    faiss.write_index(index, faiss.PyCallbackIOWriter(count))
    return total


def bytes_per_vector(index: Any, kind: str) -> float:
    """Memory per indexed vector: the code (float vector, PQ or SQ code) and, for IVF kinds, its id;
    HNSW's links are counted by averaging its whole size over its vectors."""
    if kind in IVF_KINDS:
        return float(index.code_size + IVF_ID_BYTES)
    if kind == "flat":
        return float(index.code_size)
    return float(serialized_bytes(index) / max(1, index.ntotal))


BILLION = 10**9


def describe_size(meta: dict[str, Any]) -> str:
    """Bytes per vector in memory, the index's size, and that size projected to a billion vectors (the
    fixed part, cells and codebooks, kept; the row map stays on disk, memory-mapped)."""
    per_vector, size, count = float(meta["bytes_per_vector"]), int(meta["index_bytes"]), int(meta["count"])
    projected = max(0.0, size - per_vector * count) + per_vector * BILLION
    return (
        f"index: {per_vector:,.0f} bytes per vector in memory, {size / 2**20:,.1f} MiB for {count:,} "
        f"vectors; at 1 billion vectors ~{projected / 2**30:,.0f} GiB (+ rows.npy, 8 bytes per vector "
        "on disk, memory-mapped)"
    )


def faiss_writer(index: Any) -> Callable[[IO[bytes]], None]:
    """A writer for :func:`atomic_write` that streams the index (no second in-memory copy); an error of
    the file (a full disk) comes out as itself, not as faiss's RuntimeError."""
    faiss = faiss_module()

    def write(fh: IO[bytes]) -> None:
        failures: list[BaseException] = []

        def sink(data: bytes) -> int:
            try:
                return fh.write(data)
            except BaseException as exc:
                failures.append(exc)
                raise

        try:
            faiss.write_index(index, faiss.PyCallbackIOWriter(sink))
        except RuntimeError:
            if failures:
                raise failures[0] from None
            raise

    return write
