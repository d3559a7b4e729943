"""Parquet shards: equal to .npy shards (vectors and ids), a text column, read by pyarrow.dataset and DuckDB
as docs/scaling.md shows, kill then --resume equals an unbroken run, a damaged shard is caught by its
checksum, and jtcse index / search read them like the others."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pa = pytest.importorskip("pyarrow")
pytest.importorskip("faiss")

import pyarrow.dataset as ds  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from jtcse.cli.main import main  # noqa: E402
from jtcse.corpus_scale import ShardedVectors, ShardOptions, encode_to_shards  # noqa: E402
from jtcse.encoder import Encoder  # noqa: E402
from jtcse.errors import JtcseError  # noqa: E402
from jtcse.tools.encode_file import read_lines  # noqa: E402

WORDS = ["a", "man", "woman", "dog", "plays", "guitar", "runs", "across", "the", "snowy", "field", "park"]


@pytest.fixture(scope="module")
def encoder(tiny_bert_dir: Path) -> Encoder:
    return Encoder(tiny_bert_dir, device="cpu")


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    lines = [" ".join(rng.choice(WORDS, 1 + i % 6)) if i % 7 != 3 else "" for i in range(45)]
    path = tmp_path / "corpus.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def concatenated(folder: Path) -> np.ndarray:
    return np.concatenate([np.asarray(v) for _, v in ShardedVectors(folder).shards()])


def test_parquet_equals_npy(encoder: Encoder, corpus: Path, tmp_path: Path) -> None:
    npy, parquet = tmp_path / "npy", tmp_path / "parquet"
    encode_to_shards(encoder, corpus, npy, ShardOptions(shard_size=8, normalize=True, progress=False))
    options = ShardOptions(
        shard_size=8, shard_format="parquet", normalize=True, progress=False, with_text=True
    )
    result = encode_to_shards(encoder, corpus, parquet, options)
    assert result.complete and result.manifest["with_text"] is True
    np.testing.assert_array_equal(concatenated(parquet), concatenated(npy))  # same vectors, same rows
    ShardedVectors(parquet).verify()
    table = pq.read_table(parquet / "shard-00001.parquet")
    assert table.schema.field("vector").type == pa.list_(pa.float32(), encoder.dim)  # fixed-size list
    assert table.column("id").to_pylist() == list(range(8, 16))  # the 0-based line
    assert table.column("text").to_pylist() == read_lines(corpus)[8:16]
    rows = np.array([44, 3, 9, 9, 0, 17])
    np.testing.assert_array_equal(ShardedVectors(parquet).take(rows), ShardedVectors(npy).take(rows))


def test_engines_read_the_folder(encoder: Encoder, corpus: Path, tmp_path: Path) -> None:
    """The examples of docs/scaling.md: pyarrow.dataset and DuckDB load the folder as one table."""
    folder = tmp_path / "corpus.vectors"
    options = ShardOptions(shard_size=8, shard_format="parquet", progress=False, with_text=True)
    encode_to_shards(encoder, corpus, folder, options)
    want = concatenated(folder)
    table = ds.dataset(sorted(folder.glob("*.parquet")), format="parquet").to_table()
    assert table.num_rows == 45 and sorted(table.column("id").to_pylist()) == list(range(45))
    duckdb = pytest.importorskip("duckdb")
    con = duckdb.connect()
    count, dim = con.execute(
        f"SELECT count(*), max(len(vector)) FROM read_parquet('{folder}/*.parquet')"
    ).fetchone()
    assert (count, dim) == (45, encoder.dim)
    (vector, text) = con.execute(
        f"SELECT vector, text FROM read_parquet('{folder}/*.parquet') WHERE id = 20"
    ).fetchone()
    np.testing.assert_allclose(np.array(vector, np.float32), want[20], rtol=0, atol=0)
    assert text == read_lines(corpus)[20]


def _cli(argv: list[str], capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    out, err = capsys.readouterr()
    return int(exit_info.value.code or 0), out, err


def _one_line_error(code: int, err: str, pattern: str) -> None:
    lines = [line for line in err.splitlines() if line.startswith("jtcse: error:")]
    assert code == 2 and len(lines) == 1 and pattern in lines[0], err
    assert "Traceback" not in err


def _encode_cmd(
    model: Path, corpus: Path, out: Path, *extra: str, shard_format: str = "parquet"
) -> list[str]:
    return [
        *["encode", "--model", str(model), "--device", "cpu", "--input", str(corpus), "--output", str(out)],
        *["--shard-size", "5", "--shard-format", shard_format, "--no-progress", *extra],
    ]


def test_kill_then_resume_equals_unbroken(tiny_bert_dir: Path, corpus: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "killed"
    env = {**os.environ, "JTCSE_TEST_PAUSE_SHARD": "2:120"}  # sleeps inside shard 2's write
    env.pop("WORLD_SIZE", None)
    argv = [sys.executable, "-m", "jtcse", *_encode_cmd(tiny_bert_dir, corpus, out, "--with-text")]
    proc = subprocess.Popen(argv, env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not list(out.glob(".shard-00002.parquet.*.tmp")):
            assert proc.poll() is None, proc.communicate()[1][-2000:]
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert (out / "shard-00001.json").is_file() and not (out / "shard-00002.json").exists()
    code, _, err = _cli(_encode_cmd(tiny_bert_dir, corpus, out, "--resume"), capsys)
    _one_line_error(code, err, "with_text = True, this run has False; resume with the same --with-text")
    code, _, err = _cli(_encode_cmd(tiny_bert_dir, corpus, out, "--with-text", "--resume"), capsys)
    assert code == 0 and "(2 were done before: resumed)" in err
    unbroken = tmp_path / "unbroken"
    assert _cli(_encode_cmd(tiny_bert_dir, corpus, unbroken, "--with-text"), capsys)[0] == 0
    for shard in sorted(unbroken.glob("shard-*.parquet")):
        assert pq.read_table(out / shard.name).equals(pq.read_table(shard))
    shards = [json.loads((f / "manifest.json").read_text())["shards"] for f in (out, unbroken)]
    assert [s["sha256"] for s in shards[0]] == [s["sha256"] for s in shards[1]]  # byte for byte


def test_index_and_search_parquet_and_refusals(tiny_bert_dir: Path, tmp_path: Path, capsys) -> None:
    rng = np.random.default_rng(1)
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("".join(" ".join(rng.choice(WORDS, 5)) + "\n" for _ in range(300)), encoding="utf-8")
    vecs = tmp_path / "corpus.vectors"
    model = ["--model", str(tiny_bert_dir), "--device", "cpu"]
    code, _, err = _cli(_encode_cmd(tiny_bert_dir, corpus, vecs, "--with-text"), capsys)
    assert code == 0, err
    _one_line_error(
        *_cli(_encode_cmd(tiny_bert_dir, corpus, tmp_path / "n", "--with-text", shard_format="npy"), capsys)[
            ::2
        ],
        "--with-text: only with --shard-format parquet, not npy",
    )
    code, _, err = _cli(["index", "--vectors", str(vecs), "--kind", "ivfsq8", "--threads", "1"], capsys)
    assert code == 0 and "index: 392" not in err and "bytes per vector in memory" in err, err
    query = read_lines(corpus)[10]
    argv = ["search", *model, "--index", str(vecs / "index-ivfsq8"), "--query", query, "--top-k", "3"]
    code, out, err = _cli([*argv, "--check-recall", "20", "--json"], capsys)
    assert code == 0 and "re-ranking 100 candidates exactly" in err, err
    hit = json.loads(out)["hits"][0]
    assert hit["score"] == pytest.approx(1.0, abs=1e-5) and hit["text"] == query
    recall = float(err.split("recall@3 against exact search (20 corpus vectors as queries): ")[1].split()[0])
    assert recall >= 0.8  # not 1: a random tiny model's vectors are near-ties (cosines ~0.99)
    code, _, err = _cli(["index", "--vectors", str(vecs), "--kind", "ivfpq", "--threads", "1"], capsys)
    _one_line_error(code, err, "--pq-bits 8: ivfpq trains 256 centroids per code")
    bare = ["index", "--vectors", str(vecs), "--kind", "ivfsq8", "--no-rerank-copy", "--output"]
    assert _cli([*bare, str(tmp_path / "bare"), "--threads", "1"], capsys)[0] == 0
    moved = tmp_path / "moved.vectors"
    shutil.move(vecs, moved)
    shutil.move(moved / "index-ivfsq8", tmp_path / "index")
    argv[argv.index("--index") + 1] = str(tmp_path / "index")  # its rerank.npy re-ranks without the shards
    code, out, err = _cli([*argv, "--rerank", "5", "--json"], capsys)
    assert code == 0 and json.loads(out)["hits"][0]["score"] == pytest.approx(1.0, abs=1e-5), err
    argv[argv.index("--index") + 1] = str(tmp_path / "bare")
    code, _, err = _cli([*argv, "--rerank", "5"], capsys)
    _one_line_error(code, err, "--rerank 5: needs the shards, and the vectors folder")


def test_damaged_parquet_shard_is_caught(encoder: Encoder, corpus: Path, tmp_path: Path, capsys) -> None:
    folder = tmp_path / "vecs"
    encode_to_shards(
        encoder, corpus, folder, ShardOptions(shard_size=8, shard_format="parquet", progress=False)
    )
    shard = folder / "shard-00002.parquet"
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0x40  # one flipped bit inside the vectors: still a readable Parquet file
    shard.write_bytes(bytes(data))
    with pytest.raises(JtcseError, match=r"shard-00002\.parquet: checksum differs from manifest\.json"):
        ShardedVectors(folder).verify()
    code, _, err = _cli(["index", "--vectors", str(folder), "--kind", "flat"], capsys)
    _one_line_error(code, err, "checksum differs")
