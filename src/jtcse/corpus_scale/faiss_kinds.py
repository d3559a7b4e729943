"""The three faiss index kinds, all on inner products of unit vectors (= cosine similarity).

* ``flat``: exact (``IndexFlatIP``), a scan of every vector per query;
* ``ivf``: ``IndexIVFFlat`` with a k-means coarse quantiser of ``nlist`` cells, trained on a sample;
  a query scans the ``nprobe`` nearest cells (more: better recall, slower);
* ``hnsw``: ``IndexHNSWFlat`` (``M`` links per node, ``efConstruction`` while building); a query explores
  ``efSearch`` candidates (more: better recall, slower). No training, slower to build, more memory.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from jtcse.errors import JtcseError

KINDS = ("flat", "ivf", "hnsw")
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
    nlist: int | None = None,
    nprobe: int | None = None,
    m: int | None = None,
    ef_construction: int | None = None,
    ef_search: int | None = None,
) -> IndexParams:
    """Defaults filled in for ``count`` vectors: nlist ~ sqrt(n) (k-means training stays minutes on a few
    cores at 10 million), nprobe ~ nlist / 32 (at least 16); HNSW M 16, efConstruction 40, efSearch 64."""
    kind = kind or default_kind(count)
    if kind not in KINDS:
        raise JtcseError(f"--kind {kind}: unknown; choose one of {', '.join(KINDS)}")
    if kind == "ivf":
        nlist = nlist or max(1, min(round(math.sqrt(count)), count // TRAIN_PER_CELL or 1))
        if nlist > count:
            raise JtcseError(f"--nlist {nlist}: more cells than vectors ({count})")
        return IndexParams(kind, nlist=nlist, nprobe=min(nlist, nprobe or max(16, nlist // 32)))
    if kind == "hnsw":
        return IndexParams(kind, m=m or 16, ef_construction=ef_construction or 40, ef_search=ef_search or 64)
    return IndexParams(kind)


def make_index(params: IndexParams, dim: int) -> Any:
    faiss = faiss_module()
    if params.kind == "flat":
        return faiss.IndexFlatIP(dim)
    if params.kind == "ivf":
        quantizer = faiss.IndexFlatIP(dim)
        # faiss's Python wrapper keeps a reference to the quantiser for the index's lifetime
        return faiss.IndexIVFFlat(quantizer, dim, params.nlist, faiss.METRIC_INNER_PRODUCT)
    index = faiss.IndexHNSWFlat(dim, params.m, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = params.ef_construction
    return index


def set_search_params(index: Any, kind: str, *, nprobe: int | None, ef_search: int | None) -> None:
    """Query-time knobs (they change speed and recall, never the saved index)."""
    if kind == "ivf" and nprobe is not None:
        index.nprobe = int(nprobe)
    if kind == "hnsw" and ef_search is not None:
        index.hnsw.efSearch = int(ef_search)


def set_threads(threads: int | None) -> None:
    if threads:
        faiss_module().omp_set_num_threads(int(threads))
