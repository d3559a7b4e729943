"""The one gate for text (jtcse.text_gate): command-line sentences with bytes that are not UTF-8, lone
surrogates handed to ``Encoder.encode``, and text files that are not UTF-8 each end in one line naming the
argument, the sentence or FILE:LINE, never the tokenizer's ``TextEncodeInput`` traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from jtcse.cli.main import main
from jtcse.data.sts import read_text_file
from jtcse.errors import JtcseError
from jtcse.text_gate import check_text, decode_error, first_bad, text_problem
from jtcse.tools.encode_file import read_lines

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def test_well_formed_text_passes_and_a_lone_surrogate_does_not() -> None:
    for text in ("plain", "café ☕", "smile \U0001f600", ""):
        assert text_problem(text) is None and check_text(text, "x") == text
    assert text_problem("ab\ud800") == "lone surrogate U+D800 at character 3 is not valid Unicode text"
    # a command line's undecodable byte 0xff arrives as U+DCFF (surrogateescape)
    assert text_problem("a \udcff", argv=True) == "byte 0xff at character 3 is not valid UTF-8"
    with pytest.raises(JtcseError, match=r"^--query: byte 0xff at character 1 is not valid UTF-8"):
        check_text("\udcff", "--query", argv=True)
    assert first_bad(["ok", "fine", "x\udfff", "\ud800"]) == (
        2,
        "lone surrogate U+DFFF at character 2 is not valid Unicode text",
    )
    assert first_bad(["ok", "\U0001f600"]) is None


def test_decode_error_names_the_line_and_the_byte() -> None:
    data = b"one\ntwo\nth\xffree\n"
    with pytest.raises(UnicodeDecodeError) as info:
        data.decode("utf-8")
    error = decode_error(data, info.value, "f.txt", first_line=11)
    assert str(error) == "f.txt:13: not valid UTF-8 (byte 0xff at byte 3 of the line)"


def test_encoder_refuses_a_lone_surrogate_with_one_line(tiny_bert_dir: Path) -> None:
    from jtcse.encoder import Encoder

    encoder = Encoder(tiny_bert_dir, device="cpu")
    with pytest.raises(JtcseError, match=r"^sentence 1: lone surrogate U\+D800 at character 5"):
        encoder.encode(["fine", "bad \ud800"])
    with pytest.raises(JtcseError, match=r"^the sentence: lone surrogate U\+DC00"):
        encoder.encode("\udc00")
    assert encoder.encode(["smile \U0001f600"]).shape == (1, encoder.dim)


def test_similarity_with_a_byte_that_is_not_utf8_on_the_real_command_line(tiny_bert_dir: Path) -> None:
    """Real argv bytes (Python decodes them with surrogateescape); checked before the model loads."""
    cmd = [sys.executable.encode(), b"-m", b"jtcse", b"similarity", b"--model", bytes(tiny_bert_dir)]
    run = subprocess.run([*cmd, b"bad \xff", b"x"], env=ENV, capture_output=True, timeout=120)
    err = run.stderr.decode("utf-8", "replace")
    assert run.returncode == 2, err
    assert err.strip().splitlines() == [
        "jtcse: error: similarity: sentence A: byte 0xff at character 5 is not valid UTF-8; give UTF-8 text"
    ], err


def test_search_query_that_is_not_utf8_is_one_line(tmp_path: Path, capsys) -> None:
    corpus = tmp_path / "c.txt"
    corpus.write_text("a\nb\n", "utf-8")
    with pytest.raises(SystemExit) as info:
        main(
            [
                "search",
                "--model",
                "none-needed",
                "--corpus",
                str(corpus),
                "--query",
                "ok",
                "--query",
                "\udcff",
            ]
        )
    err = capsys.readouterr().err
    assert info.value.code == 2
    assert err.splitlines() == [
        "jtcse: error: --query: byte 0xff at character 1 is not valid UTF-8; give UTF-8 text"
    ]


@pytest.mark.parametrize("reader", ["encode", "sts"])
def test_text_files_that_are_not_utf8_name_file_and_line(tmp_path: Path, reader: str) -> None:
    path = tmp_path / "bad.txt"
    path.write_bytes("one\ntwo\nthré\n".encode("latin-1"))
    with pytest.raises(JtcseError) as info:
        read_lines(path) if reader == "encode" else read_text_file(path, "STS file")
    assert str(info.value) == f"{path}:3: not valid UTF-8 (byte 0xe9 at byte 4 of the line)"
