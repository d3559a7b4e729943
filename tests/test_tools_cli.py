"""The tool commands end to end: encode, similarity, search, export, plot; bad input exits 2 with one line."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import numpy as np
import pytest

from jtcse.cli.main import main
from jtcse.encoder import Encoder
from jtcse.tools import load_vectors, similarity

SENTENCES = [
    "A man is playing a guitar.",
    "",
    "Two dogs run across a snowy field.",
    "A man is playing a guitar.",
]


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    out, err = capsys.readouterr()
    return int(exit_info.value.code or 0), out, err


def assert_one_line_error(code: int, err: str, pattern: str) -> None:
    assert code == 2
    lines = [line for line in err.splitlines() if line.startswith("jtcse: error:")]
    assert len(lines) == 1, err
    assert pattern in lines[0], lines[0]
    assert "Traceback" not in err


@pytest.fixture
def sentences_file(tmp_path: Path) -> Path:
    path = tmp_path / "sents.txt"
    path.write_text("\n".join(SENTENCES) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("suffix", [".npy", ".safetensors"])
def test_encode(tiny_bert_dir: Path, sentences_file: Path, tmp_path: Path, capsys, suffix: str) -> None:
    out = tmp_path / f"vecs{suffix}"
    code, _, err = run_cli(
        [
            "encode",
            "--model",
            str(tiny_bert_dir),
            "--device",
            "cpu",
            "--input",
            str(sentences_file),
            "--output",
            str(out),
            "--normalize",
            "--batch-size",
            "2",
        ],
        capsys,
    )
    assert code == 0 and "wrote 4 x 32" in err
    vectors = load_vectors(out)
    want = Encoder(tiny_bert_dir, device="cpu").encode(SENTENCES, normalize=True)
    assert vectors.dtype == np.float32 and vectors.shape == (4, 32)  # row i = line i + 1, blank line included
    np.testing.assert_allclose(vectors, want, atol=1e-6)


def test_similarity(tiny_bert_dir: Path, capsys) -> None:
    a, b = "A man is playing a guitar.", "Someone plays an instrument."
    code, out, _ = run_cli(["similarity", "--model", str(tiny_bert_dir), "--device", "cpu", a, b], capsys)
    assert code == 0
    want = similarity(Encoder(tiny_bert_dir, device="cpu"), a, b)
    vectors = Encoder(tiny_bert_dir, device="cpu").encode([a, b])
    cosine = float(vectors[0] @ vectors[1] / np.linalg.norm(vectors[0]) / np.linalg.norm(vectors[1]))
    assert want == pytest.approx(cosine, abs=1e-6)
    assert float(out.strip()) == pytest.approx(cosine, abs=1e-4)
    matrix = similarity(Encoder(tiny_bert_dir, device="cpu"), [a, b], [b])
    assert matrix.shape == (2, 1) and matrix[0, 0] == pytest.approx(cosine, abs=1e-6)


def test_search(tiny_bert_dir: Path, tiny_bert_dir_b: Path, sentences_file: Path, capsys) -> None:
    base = ["search", "--model", str(tiny_bert_dir), "--device", "cpu", "--corpus", str(sentences_file)]
    code, out, err = run_cli([*base, "--query", "a guitar player", "--top-k", "2"], capsys)
    assert code == 0 and "index: built" in err
    hits = out.splitlines()
    assert len(hits) == 2 and hits[0].startswith("  1  ")
    assert (sentences_file.parent / "sents.txt.jtcse-index" / "index.json").is_file()

    code, out, err = run_cli([*base, "--query", "a guitar player", "--query", "dogs", "--json"], capsys)
    assert code == 0 and "index: loaded" in err
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["query"] for r in records] == ["a guitar player", "dogs"]
    assert {h["line"] for h in records[0]["hits"]} == {1, 3, 4}  # line 2 is blank

    other = [
        "search",
        "--model",
        str(tiny_bert_dir_b),
        "--device",
        "cpu",
        "--corpus",
        str(sentences_file),
        "--query",
        "dogs",
    ]
    code, _, err = run_cli(other, capsys)
    assert_one_line_error(code, err, "built by another model")
    assert "--rebuild" in err
    code, _, err = run_cli([*other, "--rebuild"], capsys)
    assert code == 0 and "index: rebuilt" in err


def test_search_bad_input(tiny_bert_dir: Path, sentences_file: Path, tmp_path: Path, capsys) -> None:
    base = ["search", "--model", str(tiny_bert_dir), "--device", "cpu"]
    code, _, err = run_cli([*base, "--corpus", str(sentences_file), "--query", "  "], capsys)
    assert_one_line_error(code, err, "--query: the query is empty")
    code, _, err = run_cli([*base, "--corpus", str(tmp_path / "nope.txt"), "--query", "x"], capsys)
    assert_one_line_error(code, err, "nope.txt: no such file")
    code, _, err = run_cli([*base, "--corpus", str(sentences_file), "--query", "x", "--top-k", "0"], capsys)
    assert code == 2 and err.splitlines()[-1].startswith("jtcse search: error: argument --top-k: expected")


def test_encode_and_similarity_bad_input(
    tiny_bert_dir: Path, sentences_file: Path, tmp_path: Path, capsys
) -> None:
    code, _, err = run_cli(
        [
            "encode",
            "--model",
            str(tiny_bert_dir),
            "--input",
            str(sentences_file),
            "--output",
            str(tmp_path / "v.csv"),
        ],
        capsys,
    )
    assert_one_line_error(code, err, ".npy or .safetensors")
    code, _, err = run_cli(
        [
            "encode",
            "--model",
            str(tiny_bert_dir),
            "--input",
            str(tmp_path / "missing.txt"),
            "--output",
            str(tmp_path / "v.npy"),
        ],
        capsys,
    )
    assert_one_line_error(code, err, "missing.txt: no such file")
    code, _, err = run_cli(["similarity", "--model", str(tiny_bert_dir), "a", " "], capsys)
    assert_one_line_error(code, err, "sentence B is empty")
    code, _, err = run_cli(["similarity", "--model", str(tmp_path / "no_model"), "a", "b"], capsys)
    assert_one_line_error(code, err, "no such directory")


def test_export(tiny_bert_dir: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "st"
    code, _, err = run_cli(
        ["export", "--model", str(tiny_bert_dir), "--format", "sentence-transformers", str(out)], capsys
    )
    assert code == 0 and "plain layout" in err and "SentenceTransformer(OUT)" in err
    assert (out / "modules.json").is_file()
    code, _, err = run_cli(
        ["export", "--model", str(tiny_bert_dir), "--format", "sentence-transformers", str(out)], capsys
    )
    assert_one_line_error(code, err, "exists and is not empty; pass --overwrite")
    code, _, err = run_cli(
        ["export", "--model", str(tiny_bert_dir), "--format", "tflite", str(tmp_path / "o")], capsys
    )
    assert_one_line_error(code, err, "--format tflite: unknown export format")


def test_plot(tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    run.mkdir()
    records = [{"step": s, "loss": 1.0 / s, "nce": 1.0 / s} for s in range(1, 6)] + [
        {"step": 5, "dev_stsb": 70.0}
    ]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    code, out, _ = run_cli(["plot", str(run)], capsys)
    assert code == 0
    assert sorted(Path(p).name for p in out.split()) == ["dev_score.png", "loss_loss.png", "loss_nce.png"]
    scores = tmp_path / "eval.json"
    scores.write_text(json.dumps({"STS12": 70.0, "avg": 70.0}), encoding="utf-8")
    code, _, err = run_cli(["plot", str(scores)], capsys)
    assert_one_line_error(code, err, "no per-pair data")
    code, _, err = run_cli(["plot", str(tmp_path / "nothing")], capsys)
    assert_one_line_error(code, err, "no such file or directory")


def test_search_truncated_index_and_full_disk(
    tiny_bert_dir: Path, sentences_file: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    base = ["search", "--model", str(tiny_bert_dir), "--device", "cpu", "--corpus", str(sentences_file)]
    index_dir = tmp_path / "idx"
    assert run_cli([*base, "--index", str(index_dir), "--query", "music"], capsys)[0] == 0
    vectors = index_dir / "vectors.npy"
    good = vectors.read_bytes()
    vectors.write_bytes(good[:-20])  # truncated
    code, _, err = run_cli([*base, "--index", str(index_dir), "--query", "music"], capsys)
    assert_one_line_error(code, err, "vectors.npy: checksum differs from index.json")
    assert "pass --rebuild" in err
    vectors.write_bytes(good[:-20] + bytes([good[-20] ^ 1]) + good[-19:])  # one bit flipped, same size
    code, _, err = run_cli([*base, "--index", str(index_dir), "--query", "music"], capsys)
    assert_one_line_error(code, err, "vectors.npy: checksum differs from index.json")
    assert run_cli([*base, "--index", str(index_dir), "--query", "music", "--rebuild"], capsys)[0] == 0

    def no_space(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", no_space)  # every atomic write fails as on a full disk
    fresh = tmp_path / "fresh_idx"
    code, _, err = run_cli([*base, "--index", str(fresh), "--query", "music"], capsys)
    assert_one_line_error(code, err, "no space left on the device")
    assert not fresh.exists()  # no empty index folder left behind


def test_search_index_on_a_read_only_disk(
    tiny_bert_dir: Path, sentences_file: Path, tmp_path: Path, capsys, read_only
) -> None:
    """An index that must be written to a read-only folder: one line before the model loads (the model named
    does not exist); a saved index on a read-only disk is only read, and searched."""
    frozen = read_only(tmp_path / "frozen")
    query = ["search", "--corpus", str(sentences_file), "--query", "a cat"]
    code, _, err = run_cli([*query, "--index", str(frozen), "--model", str(tmp_path / "no-model")], capsys)
    assert_one_line_error(code, err, f"--index {frozen}: cannot write in {frozen}: ")
    assert os.listdir(frozen) == []
    saved = tmp_path / "saved"
    model = ["--model", str(tiny_bert_dir), "--device", "cpu"]
    assert run_cli([*query, "--index", str(saved), *model], capsys)[0] == 0
    read_only(saved)
    code, out, err = run_cli([*query, "--index", str(saved), *model], capsys)
    assert code == 0 and "index: loaded" in err and out.strip()
