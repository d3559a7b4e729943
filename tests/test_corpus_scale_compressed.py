"""Compressed faiss indexes (ivfpq, ivfsq8): exact re-ranking from the shards, bytes per vector and the
size report, --check-recall, and the one-line refusals (unknown kind, --pq-m, --rerank without shards)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("faiss")

from jtcse.cli.main import main
from jtcse.corpus_scale.encode import finish
from jtcse.corpus_scale.exact import recall_at_k, rerank_candidates
from jtcse.corpus_scale.faiss_kinds import resolve_params
from jtcse.corpus_scale.index import VectorIndex, build_index
from jtcse.corpus_scale.lines import plan_lines
from jtcse.corpus_scale.manifest import new_manifest, write_manifest
from jtcse.corpus_scale.shards import write_shard
from jtcse.errors import JtcseError

DIM = 24


def clustered(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(40, DIM))
    return (centres[rng.integers(0, 40, n)] + 0.35 * rng.normal(size=(n, DIM))).astype(np.float32)


def vectors_folder(root: Path, vectors: np.ndarray, shard_format: str = "npy") -> Path:
    """A finished vectors folder of ``vectors`` (zero rows = blank lines), made by the real writers."""
    text = root / "vecs.txt"
    text.write_text("".join(f"line {i}\n" if v.any() else "\n" for i, v in enumerate(vectors)))
    plan = plan_lines(text, 700)
    folder = root / "vecs"
    folder.mkdir()
    identity = {"members": [{"source": "synthetic"}], "dim": DIM}
    manifest = new_manifest(plan, identity, dim=DIM, normalize=False, shard_format=shard_format)
    write_manifest(folder, manifest)
    for k, planned in enumerate(manifest["shards"]):
        part = vectors[planned["start"] : planned["stop"]]
        blank = int((~part.any(axis=1)).sum())
        write_shard(
            folder, k, part, file=planned["file"], start=planned["start"], stop=planned["stop"], blank=blank
        )
    assert finish(folder, manifest) is not None
    return folder


def cosines(vectors: np.ndarray, queries: np.ndarray, rows: np.ndarray) -> np.ndarray:
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-30)
    return np.einsum("qkd,qd->qk", unit[rows], queries)


def brute_force(vectors: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1)
    scores = queries @ (vectors / np.maximum(norms, 1e-30)[:, None]).T
    scores[:, norms == 0] = -np.inf
    return np.stack([np.lexsort((np.arange(len(s)), -s))[:k] for s in scores])


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    vectors = clustered(3000)
    vectors[[5, 700, 2999]] = 0  # blank lines
    return vectors_folder(tmp_path_factory.mktemp("compressed"), vectors), vectors


def unit_queries(n: int, seed: int = 1) -> np.ndarray:
    q = clustered(n, seed)
    return q / np.linalg.norm(q, axis=1, keepdims=True)


# (kind, knobs, bytes per vector in memory: the code + the 8-byte id)
KINDS = [("ivfpq", {"nlist": 20, "pq_m": 12, "pq_bits": 6}, 9 + 8), ("ivfsq8", {"nlist": 20}, DIM + 8)]


@pytest.mark.parametrize(("kind", "knobs", "per_vector"), KINDS)
def test_compressed_kinds_rerank_exactly(
    data, tmp_path: Path, kind: str, knobs: dict, per_vector: int
) -> None:
    folder, vectors = data
    queries = unit_queries(100)
    want = brute_force(vectors, queries, 10)
    logs: list[str] = []
    out, meta = build_index(folder, tmp_path / kind, kind=kind, log=logs.append, threads=1, **knobs)
    assert meta["bytes_per_vector"] == per_vector and meta["rerank"] == 100
    assert meta["index_bytes"] == (out / "index.faiss").stat().st_size
    assert (
        f"index: {per_vector} bytes per vector in memory" in logs[-1] and "at 1 billion vectors ~" in logs[-1]
    )
    index = VectorIndex.load(out)
    assert index.vectors is not None and index.rerank_depth() == 100
    scores, rows = index.search_vectors(queries, 10, nprobe=20)  # every cell: only the codes are lossy
    assert recall_at_k(rows, want) >= 0.99 and not np.isin([5, 700, 2999], rows).any()
    np.testing.assert_allclose(scores, cosines(vectors, queries, rows), atol=1e-5)  # exact cosines
    approx_scores, approx_rows = index.search_vectors(queries, 10, nprobe=20, rerank=0)
    assert not np.allclose(approx_scores, cosines(vectors, queries, approx_rows), atol=1e-4)  # the codes'
    assert recall_at_k(approx_rows, want) <= recall_at_k(rows, want)
    assert index.check_recall(50, 10, nprobe=20) >= 0.99  # --check-recall: re-ranked like a search


def test_rerank_candidates_orders_like_exact_search() -> None:
    stored = np.array([[1, 0], [0, 1], [1, 0], [1, 1]], np.float32)
    queries = np.array([[1, 0], [0, 1]], np.float32)
    candidates = np.array([[3, 2, 0, -1], [0, 1, -1, -1]])
    scores, rows = rerank_candidates(queries, candidates, lambda r: stored[r], 3)
    np.testing.assert_array_equal(rows, [[0, 2, 3], [1, 0, -1]])  # ties: the lower row first
    np.testing.assert_allclose(scores, [[1, 1, np.sqrt(0.5)], [1, 0, -np.inf]], atol=1e-6)


def test_rerank_needs_the_shards(data, tmp_path: Path) -> None:
    folder, _ = data
    moved = tmp_path / "vecs"
    shutil.copytree(folder, moved)
    out, _ = build_index(moved, tmp_path / "pq", kind="ivfpq", nlist=10, pq_bits=5, threads=1)
    shutil.move(moved, tmp_path / "elsewhere")
    index = VectorIndex.load(out)  # loads: the codes alone still answer
    assert index.vectors is None and index.rerank_depth() == 0
    assert index.search_vectors(unit_queries(3), 5)[1].shape == (3, 5)
    with pytest.raises(JtcseError, match="--rerank 50: needs the shards, and the vectors folder"):
        index.search_vectors(unit_queries(3), 5, rerank=50)
    flat = VectorIndex.load(build_index(folder, tmp_path / "flat", kind="flat")[0])
    with pytest.raises(JtcseError, match=r"only for the compressed kinds .* a flat index scores exactly"):
        flat.search_vectors(unit_queries(3), 5, rerank=50)


@pytest.mark.parametrize(
    ("kind", "knobs", "message"),
    [
        ("ivfx", {}, "--kind ivfx: unknown; choose one of flat, ivf, hnsw, ivfpq, ivfsq8"),
        ("ivfpq", {"pq_m": 5}, "--pq-m 5: must divide the dimension 24"),
        ("ivfpq", {"pq_bits": 13}, "--pq-bits 13: choose 1 to 12"),
        ("ivfpq", {}, "--pq-bits 8: ivfpq trains 256 centroids per code, which needs at least 9,984"),
        ("ivf", {"pq_m": 4}, "--pq-m: only with --kind ivfpq"),
        ("hnsw", {"rerank": 10}, "--rerank: only with --kind ivfpq or ivfsq8; a hnsw index scores exactly"),
    ],
)
def test_bad_knobs_are_one_line_errors(kind: str, knobs: dict, message: str) -> None:
    with pytest.raises(JtcseError, match="^" + re.escape(message)):
        resolve_params(kind, 3000, dim=DIM, **knobs)


def test_index_cli(data, tmp_path: Path, capsys) -> None:
    folder, _ = data
    vectors = tmp_path / "vecs"
    shutil.copytree(folder, vectors)
    argv = [
        "index",
        "--vectors",
        str(vectors),
        "--kind",
        "ivfpq",
        "--pq-m",
        "8",
        "--pq-bits",
        "6",
        "--rerank",
        "40",
        "--threads",
        "1",  # faiss's OpenMP threads spin on a busy machine
    ]
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == 0 and "index: 14 bytes per vector in memory" in err, err
    assert VectorIndex.load(vectors / "index-ivfpq").rerank_depth() == 40  # saved as the default
    for bad, message in (
        (["--kind", "pq"], "--kind pq: unknown"),
        (["--pq-m", "7"], "--pq-m 7: must divide"),
    ):
        with pytest.raises(SystemExit) as exit_info:
            main(
                [
                    "index",
                    "--vectors",
                    str(vectors),
                    *(["--kind", "ivfpq"] if "--kind" not in bad else []),
                    *bad,
                ]
            )
        lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
        assert exit_info.value.code == 2 and len(lines) == 1 and message in lines[0], lines


@pytest.fixture(scope="module")
def parquet_data(tmp_path_factory: pytest.TempPathFactory, data) -> Path:
    pytest.importorskip("pyarrow")
    _, vectors = data
    return vectors_folder(tmp_path_factory.mktemp("compressed_parquet"), vectors, shard_format="parquet")


def test_over_parquet_shards_the_index_keeps_a_rerank_copy(data, parquet_data: Path, tmp_path: Path) -> None:
    folder, vectors = data
    queries = unit_queries(40)
    knobs = {"kind": "ivfpq", "nlist": 20, "pq_m": 12, "pq_bits": 6, "threads": 1}
    logs: list[str] = []
    out, meta = build_index(parquet_data, tmp_path / "pq", log=logs.append, **knobs)
    copy = np.load(out / "rerank.npy")
    kept = np.flatnonzero(vectors.any(axis=1))
    np.testing.assert_allclose(
        copy, vectors[kept] / np.linalg.norm(vectors[kept], axis=1)[:, None], atol=1e-6
    )
    assert meta["rerank_copy"]["bytes"] == (out / "rerank.npy").stat().st_size
    assert any("rerank.npy for re-ranking (Parquet shards)" in line for line in logs)
    from_npy = VectorIndex.load(build_index(folder, tmp_path / "npy", **knobs)[0])
    assert not (tmp_path / "npy" / "rerank.npy").exists()  # .npy shards are read in place
    want = from_npy.search_vectors(queries, 10, nprobe=20)
    shutil.move(parquet_data, tmp_path / "gone")  # the copy re-ranks without the shards
    try:
        index = VectorIndex.load(out)
        assert index.vectors is None and index.rerank_depth() == 100
        scores, rows = index.search_vectors(queries, 10, nprobe=20)
    finally:
        shutil.move(tmp_path / "gone", parquet_data)
    np.testing.assert_array_equal(rows, want[1])  # same codes, same exact re-ranking as from .npy
    np.testing.assert_allclose(scores, cosines(vectors, queries, rows), atol=1e-5)


def test_rerank_copy_can_be_skipped_and_is_checked(parquet_data: Path, tmp_path: Path) -> None:
    knobs = {"kind": "ivfsq8", "nlist": 20, "threads": 1}
    skipped, meta = build_index(parquet_data, tmp_path / "skip", rerank_copy=False, **knobs)
    assert not (skipped / "rerank.npy").exists() and "rerank_copy" not in meta
    index = VectorIndex.load(skipped)  # re-ranks from the Parquet shards: the same answers, slower
    queries = unit_queries(5)
    out, _ = build_index(parquet_data, tmp_path / "kept", **knobs)
    np.testing.assert_array_equal(
        index.search_vectors(queries, 5)[1], VectorIndex.load(out).search_vectors(queries, 5)[1]
    )
    with (out / "rerank.npy").open("r+b") as fh:
        fh.truncate((out / "rerank.npy").stat().st_size - 96)
    with pytest.raises(JtcseError, match=r"rerank.npy: missing or truncated .*rebuild the index"):
        VectorIndex.load(out)
    with pytest.raises(JtcseError, match="--rerank-copy: only for the compressed kinds; a flat index"):
        build_index(parquet_data, tmp_path / "flat", kind="flat", rerank_copy=True)
