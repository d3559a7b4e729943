"""The training corpus reader: blank lines, dedup, bad UTF-8, huge lines, empty files."""

from __future__ import annotations

import tracemalloc
import warnings

import pytest

from jtcse.data.corpus import load_corpus, resolve_corpus_path
from jtcse.errors import JtcseError


def test_blank_lines_are_skipped_and_counted(tmp_path):
    path = tmp_path / "c.txt"
    path.write_bytes(b"  first sentence \n\n   \nsecond one\r\n\t\nthird")
    corpus = load_corpus(path)
    assert corpus.sentences == ["first sentence", "second one", "third"]
    assert corpus.stats.lines == 6 and corpus.stats.blank == 3
    assert "3 blank" in corpus.stats.summary()


def test_dedup_and_max_sentences(tmp_path):
    path = tmp_path / "c.txt"
    path.write_text("a b\nc d\na b\ne f\nc d\ng h\n", encoding="utf-8")
    assert len(load_corpus(path)) == 6
    deduped = load_corpus(path, dedup=True)
    assert deduped.sentences == ["a b", "c d", "e f", "g h"] and deduped.stats.duplicates == 2
    assert load_corpus(path, dedup=True, max_sentences=3).sentences == ["a b", "c d", "e f"]


def test_bad_utf8_is_skipped_with_line_numbers(tmp_path):
    path = tmp_path / "c.txt"
    path.write_bytes(b"good one\nbad \xff\xfe line\ngood two\n\xc3\x28 also bad\ncaf\xc3\xa9 ok\n")
    with pytest.warns(UserWarning, match=r"skipped 2 line\(s\) that are not valid UTF-8 \(line 2, 4\)"):
        corpus = load_corpus(path)
    assert corpus.sentences == ["good one", "good two", "café ok"]
    assert corpus.stats.bad_utf8 == 2 and corpus.stats.bad_utf8_lines == [2, 4]


def test_bad_utf8_can_be_an_error_naming_the_line(tmp_path):
    path = tmp_path / "c.txt"
    path.write_bytes(b"good one\ngood two\nbad \xff line\n")
    with pytest.raises(JtcseError, match=r"c\.txt:3: not valid UTF-8") as info:
        load_corpus(path, on_bad_utf8="error")
    assert "\n" not in str(info.value)


def test_huge_line_is_truncated_in_bounded_memory(tmp_path):
    path = tmp_path / "c.txt"
    huge = "word " * 20_000  # 100k characters
    path.write_text(f"short\n{huge}\nafter\n", encoding="utf-8")
    corpus = load_corpus(path, max_chars=640)
    assert corpus.sentences[0] == "short" and corpus.sentences[2] == "after"
    assert 0 < len(corpus.sentences[1]) <= 640 and corpus.stats.truncated == 1


def test_line_without_newline_costs_only_max_chars(tmp_path):
    path = tmp_path / "c.txt"
    with path.open("wb") as fh:  # 20 MB on one line
        chunk = b"abcdefghij" * 100_000
        for _ in range(20):
            fh.write(chunk)
        fh.write(b"\nnext line\n")
    tracemalloc.start()
    corpus = load_corpus(path, max_chars=100)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert corpus.sentences[0] == ("abcdefghij" * 10) and corpus.stats.truncated == 1
    assert len(corpus.sentences[0]) == 100 and corpus.sentences[1] == "next line"
    assert peak < 4_000_000  # the reader's skip buffer, not the 20 MB line


def test_cut_inside_a_multibyte_character_is_not_a_bad_line(tmp_path):
    path = tmp_path / "c.txt"
    # read up to 4 * 7 = 28 bytes: "x" + 13 two-byte characters + the first byte of the 14th
    path.write_text("x" + "é" * 50 + "\n", encoding="utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        corpus = load_corpus(path, max_chars=7)
    assert corpus.sentences == ["x" + "é" * 6] and corpus.stats.bad_utf8 == 0


@pytest.mark.parametrize(("content", "why"), [(b"", "is empty"), (b"\n  \n\t\n", "has no sentences")])
def test_empty_corpus_is_a_one_line_error_naming_the_file(tmp_path, content, why):
    path = tmp_path / "empty.txt"
    path.write_bytes(content)
    with pytest.raises(JtcseError, match=rf"empty\.txt: {why}") as info:
        load_corpus(path)
    assert "\n" not in str(info.value)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(JtcseError, match="no such corpus file"):
        load_corpus(tmp_path / "nope.txt")
    with pytest.raises(JtcseError, match="is not a file"):
        load_corpus(tmp_path)


def test_fingerprint_follows_content(tmp_path):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("one\ntwo\n", encoding="utf-8")
    b.write_text("one\n\ntwo", encoding="utf-8")  # same sentences
    assert load_corpus(a).fingerprint == load_corpus(b).fingerprint
    b.write_text("one\nthree\n", encoding="utf-8")
    assert load_corpus(a).fingerprint != load_corpus(b).fingerprint


def test_wiki_resolves_in_the_data_dir(tmp_path):
    unsup = tmp_path / "unsup"
    unsup.mkdir()
    (unsup / "wiki1m_for_simcse.head11914.txt").write_text("a sentence\n", encoding="utf-8")
    assert resolve_corpus_path("wiki", tmp_path) == unsup / "wiki1m_for_simcse.head11914.txt"
    (unsup / "wiki1m_for_simcse.txt").write_text("the full file\n", encoding="utf-8")
    assert resolve_corpus_path("wiki", tmp_path) == unsup / "wiki1m_for_simcse.txt"
    assert resolve_corpus_path("other.txt", tmp_path).name == "other.txt"
    with pytest.raises(JtcseError, match="unsup"):
        resolve_corpus_path("wiki", tmp_path / "unsup")
