"""`jtcse diagnose` end to end on tiny models: table, JSON, PNG, twin towers, comparison, and bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from jtcse.cli.diagnose import read_sentences
from jtcse.cli.main import main
from jtcse.errors import JtcseError
from jtcse.model.format import MemberSpec, ModelSpec, write_spec

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _run(argv: list[str]) -> int:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    return int(exc.value.code or 0)


@pytest.fixture()
def corpus(tmp_path: Path) -> Path:
    path = tmp_path / "corpus.txt"
    lines = ["A man is playing a guitar.", "", "Two dogs run across the field.", "Hello.", "A fourth line."]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_compare_two_models(
    tiny_bert_dir: Path, tiny_bert_dir_b: Path, corpus: Path, tmp_path: Path, capsys
) -> None:
    out = tmp_path / "out"
    argv = [
        "diagnose",
        "--model",
        str(tiny_bert_dir),
        "--compare",
        str(tiny_bert_dir_b),
        "--corpus",
        str(corpus),
    ]
    assert _run([*argv, "--max-sentences", "3", "--output-dir", str(out)]) == 0

    stdout = capsys.readouterr().out
    header, *rows = stdout.split("\n\n")[0].splitlines()
    assert header.split()[0] == "layer" and header.count("cls_attn") == 2 and header.count("e_cls") == 2
    assert [r.split()[0] for r in rows] == ["0", "1", "2", "3", "4"]
    assert "3 sentences" in stdout

    data = json.loads((out / "diagnose.json").read_text())
    assert [s["source"] for s in data["series"]] == [str(tiny_bert_dir), str(tiny_bert_dir_b)]
    assert all(s["n_sentences"] == 3 for s in data["series"])
    assert data["settings"]["corpus"] == str(corpus.resolve())
    assert (out / "diagnose.png").read_bytes()[:8] == PNG_MAGIC


def test_twin_tower_one_tower(
    tiny_bert_dir: Path, tiny_bert_dir_b: Path, corpus: Path, tmp_path: Path
) -> None:
    twin = tmp_path / "twin"
    shutil.copytree(tiny_bert_dir, twin / "tower_a")
    shutil.copytree(tiny_bert_dir_b, twin / "tower_b")
    write_spec(twin, ModelSpec(kind="twin", members=[MemberSpec("tower_a"), MemberSpec("tower_b")]))
    out = tmp_path / "out"
    argv = ["diagnose", "--model", str(twin), "--corpus", str(corpus), "--output-dir", str(out), "--no-plot"]

    assert _run([*argv, "--tower", "b"]) == 0
    data = json.loads((out / "diagnose.json").read_text())
    assert [s["tower"] for s in data["series"]] == ["b"]
    assert data["series"][0]["source"].endswith("tower_b")
    assert not (out / "diagnose.png").exists()

    assert _run(argv) == 0
    data = json.loads((out / "diagnose.json").read_text())
    assert [s["tower"] for s in data["series"]] == ["a", "b"]


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing_corpus", "--corpus"),
        ("empty_corpus", "no sentences"),
        ("missing_model", "no such directory"),
        ("tower_on_plain_model", "not a twin tower"),
    ],
)
def test_bad_input_is_one_line_error(
    case: str, message: str, tiny_bert_dir: Path, corpus: Path, tmp_path: Path, capsys
) -> None:
    model, corpus_arg, extra = str(tiny_bert_dir), str(corpus), []
    if case == "missing_corpus":
        corpus_arg = str(tmp_path / "nope.txt")
    elif case == "empty_corpus":
        empty = tmp_path / "empty.txt"
        empty.write_text("\n  \n", encoding="utf-8")
        corpus_arg = str(empty)
    elif case == "missing_model":
        model = str(tmp_path / "no-model")
    else:
        extra = ["--tower", "a"]
    argv = ["diagnose", "--model", model, "--corpus", corpus_arg, "--output-dir", str(tmp_path / "o"), *extra]
    assert _run(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("jtcse: error:") and message in err[0]


def test_read_sentences(tmp_path: Path) -> None:
    path = tmp_path / "c.txt"
    path.write_bytes(b"one\n\n  two  \nthree\n")
    assert read_sentences(path) == ["one", "two", "three"]
    assert read_sentences(path, 2) == ["one", "two"]
    path.write_bytes(b"fine\n\nbad \xff byte\n")
    with pytest.raises(JtcseError, match=r"c\.txt:3: not UTF-8"):
        read_sentences(path)
    with pytest.raises(JtcseError, match="is a directory"):
        read_sentences(tmp_path)
    with pytest.raises(JtcseError, match="--max-sentences 0"):
        read_sentences(path, 0)
