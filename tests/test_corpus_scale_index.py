"""faiss indexes over a vectors folder: flat == exact, IVF/HNSW recall, blank rows, tie to model and
shards, damaged files, a full disk; `jtcse index` + `jtcse search --index --check-recall` end to end."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("faiss")

from jtcse.cli.main import main
from jtcse.corpus_scale.encode import finish
from jtcse.corpus_scale.exact import exact_search, recall_at_k
from jtcse.corpus_scale.index import VectorIndex, build_index
from jtcse.corpus_scale.lines import plan_lines
from jtcse.corpus_scale.manifest import new_manifest, write_manifest
from jtcse.corpus_scale.shards import ShardedVectors, write_shard
from jtcse.errors import JtcseError
from jtcse.tools.encode_file import read_lines

DIM = 24


def clustered(n: int, seed: int = 0) -> np.ndarray:
    """A Gaussian mixture (40 centres): neighbours that an approximate index can miss."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(40, DIM))
    return (centres[rng.integers(0, 40, n)] + 0.35 * rng.normal(size=(n, DIM))).astype(np.float32)


def vectors_folder(tmp_path: Path, vectors: np.ndarray, shard_size: int = 500, name: str = "vecs") -> Path:
    """A finished vectors folder of ``vectors`` (zero rows = blank lines), made by the real writers."""
    text = tmp_path / f"{name}.txt"
    text.write_text("".join(f"line {i}\n" if v.any() else "\n" for i, v in enumerate(vectors)))
    plan = plan_lines(text, shard_size)
    folder = tmp_path / name
    folder.mkdir()
    manifest = new_manifest(
        plan, {"members": [{"source": "synthetic"}], "dim": DIM}, dim=DIM, normalize=False, shard_format="npy"
    )
    write_manifest(folder, manifest)
    for k, planned in enumerate(manifest["shards"]):
        part = vectors[planned["start"] : planned["stop"]]
        write_shard(
            folder,
            k,
            part,
            file=planned["file"],
            start=planned["start"],
            stop=planned["stop"],
            blank=int((~part.any(axis=1)).sum()),
        )
    assert finish(folder, manifest) is not None
    return folder


def brute_force(vectors: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1)
    scores = queries @ (vectors / np.maximum(norms, 1e-30)[:, None]).T
    scores[:, norms == 0] = -np.inf
    return np.stack([np.lexsort((np.arange(len(s)), -s))[:k] for s in scores])


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    vectors = clustered(3000)
    vectors[[5, 700, 2999]] = 0  # blank lines
    return vectors_folder(tmp_path_factory.mktemp("idx"), vectors), vectors


def unit_queries(n: int, seed: int = 1) -> np.ndarray:
    q = clustered(n, seed)
    return q / np.linalg.norm(q, axis=1, keepdims=True)


def test_exact_search_and_flat_equal_brute_force(data, tmp_path: Path) -> None:
    folder, vectors = data
    queries = unit_queries(20)
    want = brute_force(vectors, queries, 10)
    _, rows = exact_search(ShardedVectors(folder), queries, 10)
    np.testing.assert_array_equal(rows, want)
    out, meta = build_index(folder, tmp_path / "flat", kind="flat")
    assert meta["count"] == 2997  # blank lines are not indexed
    index = VectorIndex.load(out)
    _, rows = index.search_vectors(queries, 10)
    assert recall_at_k(rows, want) == 1.0 and not np.isin([5, 700, 2999], rows).any()
    assert index.check_recall(30, 10) == 1.0


@pytest.mark.parametrize(("kind", "knobs"), [("ivf", {"nlist": 40}), ("hnsw", {"m": 16})])
def test_approximate_kinds(data, tmp_path: Path, kind: str, knobs: dict) -> None:
    folder, vectors = data
    queries = unit_queries(100)
    want = brute_force(vectors, queries, 10)
    index = VectorIndex.load(build_index(folder, tmp_path / kind, kind=kind, **knobs)[0])
    assert index.kind == kind and len(index) == 2997
    if kind == "ivf":  # scanning every cell is exact; one cell is not
        assert recall_at_k(index.search_vectors(queries, 10, nprobe=40)[1], want) == 1.0
        assert recall_at_k(index.search_vectors(queries, 10, nprobe=1)[1], want) < 1.0
    else:
        low = recall_at_k(index.search_vectors(queries, 10, ef_search=10)[1], want)
        high = recall_at_k(index.search_vectors(queries, 10, ef_search=400)[1], want)
        assert high >= 0.98 and high >= low
    assert 0.5 < index.check_recall(50, 10) <= 1.0


def test_default_kind_and_tie_to_shards(tmp_path: Path) -> None:
    folder = vectors_folder(tmp_path, clustered(300))
    logs: list[str] = []
    out, _ = build_index(folder, log=logs.append)
    assert out == folder / "index-flat" and "flat (default for 300 vectors" in logs[0]
    # the shards change (re-encoded): the index no longer belongs to them
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["jtcse_version"] = "other"
    write_manifest(folder, manifest)
    with pytest.raises(JtcseError, match="built from other shards than those now in"):
        VectorIndex.load(out)


def test_damaged_files_are_one_line_errors(tmp_path: Path) -> None:
    folder = vectors_folder(tmp_path, clustered(600))
    out, _ = build_index(folder, kind="hnsw")
    data = (out / "index.faiss").read_bytes()
    (out / "index.faiss").write_bytes(data[: len(data) // 2])  # truncated
    with pytest.raises(JtcseError, match=r"truncated or damaged .*rebuild it: jtcse index --vectors"):
        VectorIndex.load(out)
    shard = folder / "shard-00000.npy"
    shard.write_bytes(shard.read_bytes()[:-8] + b"\0" * 8)
    with pytest.raises(JtcseError, match="checksum differs"):
        build_index(folder, kind="flat")


def test_full_disk_leaves_no_staging(data, tmp_path: Path, monkeypatch) -> None:
    folder, _ = data
    before = sorted(p.name for p in folder.iterdir())

    def no_space(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(JtcseError, match="no space left on the device"):
        build_index(folder, kind="flat")
    assert sorted(p.name for p in folder.iterdir()) == before  # no index-flat, no .jtcse_index_tmp_*


def _cli(argv: list[str], capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    out, err = capsys.readouterr()
    return int(exit_info.value.code or 0), out, err


def test_encode_index_search_end_to_end(
    tiny_bert_dir: Path, tiny_bert_dir_b: Path, tmp_path: Path, capsys
) -> None:
    corpus = tmp_path / "corpus.txt"
    words = ["man", "woman", "dog", "plays", "guitar", "runs", "field", "park", "music", "rain"]
    rng = np.random.default_rng(0)
    corpus.write_text(
        "".join(" ".join(rng.choice(words, 4)) + "\n" if i % 9 else "\n" for i in range(300)),
        encoding="utf-8",
    )
    vecs = tmp_path / "corpus.vectors"
    model = ["--model", str(tiny_bert_dir), "--device", "cpu"]
    assert (
        _cli(["encode", *model, "--input", str(corpus), "--output", str(vecs), "--shard-size", "64"], capsys)[
            0
        ]
        == 0
    )
    code, _, err = _cli(["index", "--vectors", str(vecs), "--kind", "hnsw", "--ef-search", "100"], capsys)
    assert code == 0 and "index: hnsw (--kind)" in err
    query = read_lines(corpus)[10]
    argv = ["search", *model, "--index", str(vecs / "index-hnsw"), "--query", query, "--top-k", "3"]
    code, out, err = _cli([*argv, "--check-recall", "20", "--json"], capsys)
    assert code == 0 and "index: hnsw, efSearch 100, 266 vectors" in err
    hits = json.loads(out)["hits"]
    lines = read_lines(corpus)
    assert hits[0]["score"] == pytest.approx(1.0, abs=1e-5) and lines[hits[0]["line"] - 1] == query
    assert all(lines[h["line"] - 1] == h["text"] for h in hits)
    assert "recall@3 against exact search (20 corpus vectors as queries): " in err
    code, _, err = _cli(["search", "--model", str(tiny_bert_dir_b), *argv[3:]], capsys)
    assert code == 2 and "built from vectors of" in err and "search with the same --model" in err
    code, _, err = _cli([*argv, "--corpus", str(corpus)], capsys)
    assert code == 2 and "--corpus: not used with an index built by jtcse index" in err

    # issue 26: a flipped byte in a shard sent the true top hit to rank 569 with score 0, exit 0
    assert _cli(["index", "--vectors", str(vecs), "--kind", "ivfsq8", "--nlist", "4"], capsys)[0] == 0
    compressed = ["search", *model, "--index", str(vecs / "index-ivfsq8"), "--query", query]
    assert _cli(compressed, capsys)[0] == 0
    shard = vecs / "shard-00000.npy"  # line 11 (the query) is row 10
    data = bytearray(shard.read_bytes())
    data[128 + 10 * 4 * int(json.loads((vecs / "manifest.json").read_text())["dim"])] ^= 0x40
    shard.write_bytes(bytes(data))
    for extra in ([], ["--verify"]):
        code, out, err = _cli([*compressed, *extra], capsys)
        assert code == 2 and out == "" and err.count("\n") == 1, err
        assert err.startswith(f"jtcse: error: {shard}: checksum differs from manifest.json")


# ------------------------------------------------------------------------------ where an index may go
def _one_line(code: int, err: str, *fragments: str) -> None:
    assert code == 2 and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1 and err.startswith("jtcse: error: "), err
    for fragment in fragments:
        assert fragment in err, err


def test_index_never_replaces_a_folder_it_did_not_write(data, tmp_path: Path, capsys) -> None:
    folder, _ = data
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "thesis.tex").write_text("years of work")
    code, _, err = _cli(["index", "--vectors", str(folder), "--output", str(theirs)], capsys)
    _one_line(code, err, f"--output {theirs}: exists and is not empty")
    assert os.listdir(theirs) == ["thesis.tex"]
    ours = tmp_path / "ours"  # an index folder of ours, with the user's file beside it: not replaced either
    assert _cli(["index", "--vectors", str(folder), "--output", str(ours), "--kind", "flat"], capsys)[0] == 0
    (ours / "notes.txt").write_text("mine")
    code, _, err = _cli(["index", "--vectors", str(folder), "--output", str(ours)], capsys)
    _one_line(code, err, "holds files jtcse did not write (notes.txt)")
    (ours / "notes.txt").unlink()
    assert _cli(["index", "--vectors", str(folder), "--output", str(ours)], capsys)[0] == 0  # a rebuild
    assert sorted(os.listdir(tmp_path)) == ["ours", "theirs"]  # no staging or aside folder left


def test_index_output_is_never_its_vectors(data, tmp_path: Path, capsys) -> None:
    folder, _ = data
    before = sorted(os.listdir(folder))
    code, _, err = _cli(["index", "--vectors", str(folder), "--output", str(folder)], capsys)
    _one_line(
        code, err, f"--output {folder}: is the input --vectors {folder}; writing there would destroy it"
    )
    code, _, err = _cli(["index", "--vectors", str(folder), "--output", str(folder.parent)], capsys)
    _one_line(code, err, "holds the input --vectors")
    assert sorted(os.listdir(folder)) == before
    ShardedVectors(folder).verify()


def test_index_output_dot_is_refused_cleanly(data, tmp_path: Path, capsys, monkeypatch) -> None:
    folder, _ = data
    cwd = tmp_path / "here"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    code, _, err = _cli(["index", "--vectors", str(folder), "--output", "."], capsys)
    _one_line(code, err, "--output .: is the current directory")
    assert os.listdir(cwd) == [] and os.listdir(tmp_path) == ["here"]  # no .jtcse_index_tmp_old_* folder


def test_index_into_a_read_only_folder_is_one_line(data, tmp_path: Path, capsys, read_only) -> None:
    folder, _ = data
    frozen = read_only(tmp_path / "frozen")
    code, _, err = _cli(["index", "--vectors", str(folder), "--output", str(frozen / "idx")], capsys)
    _one_line(code, err, f"--output {frozen / 'idx'}: cannot write in {frozen}")
    code, _, err = _cli(["index", "--vectors", str(folder), "--output", str(frozen)], capsys)
    _one_line(code, err, f"--output {frozen}: cannot write in {frozen}: ")
    assert os.listdir(frozen) == [] and sorted(os.listdir(tmp_path)) == ["frozen"]
