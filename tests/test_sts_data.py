"""STS file readers and data-directory resolution, on small synthetic files."""

from __future__ import annotations

from pathlib import Path

import pytest

from jtcse.data import paths
from jtcse.data.paths import DATA_ENV, OFFLINE_ENV, locate_data_dir, resolve_data_dir, wiki_corpus_path
from jtcse.data.sts import (
    STS_YEAR_SUBSETS,
    normalize_sentence,
    read_sick,
    read_sts_subset,
    read_sts_year,
    read_stsb,
    read_task,
)
from jtcse.errors import JtcseError
from sts_toy import write_toy_sts


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode("utf-8"))
    return path


# --- STS12-16 ------------------------------------------------------------------------------------------


def test_sts_subset_drops_unscored_pairs_and_rejoins_whitespace(tmp_path: Path) -> None:
    write(
        tmp_path / "STS.input.toy.txt",
        "a  dog\truns  fast \nsecond pair\tnot scored\n cat\tsits\textra col\n",
    )
    write(tmp_path / "STS.gs.toy.txt", "4.2\n\n1\n")
    pairs = read_sts_subset(tmp_path, "toy")
    assert pairs.sentences1 == ["a dog", "cat"]
    assert pairs.sentences2 == ["runs fast", "sits"]
    assert pairs.scores.tolist() == [4.2, 1.0]
    assert len(pairs) == 2


def test_normalize_sentence_matches_senteval_split_join() -> None:
    assert normalize_sentence("  two\u00a0 words\x0bhere \t") == "two words here"
    assert normalize_sentence("") == ""


def test_sts_year_reads_every_subset_in_senteval_order(tmp_path: Path) -> None:
    write_toy_sts(tmp_path, pairs=3)
    subsets = read_sts_year(tmp_path, "STS13")
    assert list(subsets) == ["FNWN", "headlines", "OnWN"]
    assert all(len(pairs) == 3 for pairs in subsets.values())  # the unscored pair is dropped


def test_year_subset_lists_match_senteval() -> None:
    assert STS_YEAR_SUBSETS["STS12"] == (
        "MSRpar",
        "MSRvid",
        "SMTeuroparl",
        "surprise.OnWN",
        "surprise.SMTnews",
    )
    assert STS_YEAR_SUBSETS["STS13"] == ("FNWN", "headlines", "OnWN")  # no SMT
    assert len(STS_YEAR_SUBSETS["STS14"]) == 6
    assert STS_YEAR_SUBSETS["STS15"] == (
        "answers-forums",
        "answers-students",
        "belief",
        "headlines",
        "images",
    )
    assert STS_YEAR_SUBSETS["STS16"][0] == "answer-answer"


def test_missing_subset_file_names_the_file(tmp_path: Path) -> None:
    write_toy_sts(tmp_path)
    (tmp_path / "sts" / "STS14" / "senteval" / "STS.gs.images.txt").unlink()
    with pytest.raises(JtcseError, match=r"STS14/senteval/STS\.gs\.images\.txt: missing"):
        read_sts_year(tmp_path, "STS14")


def test_line_count_mismatch_is_an_error(tmp_path: Path) -> None:
    write(tmp_path / "STS.input.toy.txt", "a\tb\nc\td\n")
    write(tmp_path / "STS.gs.toy.txt", "1\n2\n3\n")
    with pytest.raises(JtcseError, match=r"STS\.input\.toy\.txt: 2 lines, but .*STS\.gs\.toy\.txt has 3"):
        read_sts_subset(tmp_path, "toy")


def test_non_numeric_gold_names_file_and_line(tmp_path: Path) -> None:
    write(tmp_path / "STS.input.toy.txt", "a\tb\nc\td\n")
    write(tmp_path / "STS.gs.toy.txt", "1\nhigh\n")
    with pytest.raises(JtcseError, match=r"STS\.gs\.toy\.txt:2: gold score 'high' is not a number"):
        read_sts_subset(tmp_path, "toy")


def test_input_line_without_tab_names_file_and_line(tmp_path: Path) -> None:
    write(tmp_path / "STS.input.toy.txt", "a\tb\nno tab here\n")
    write(tmp_path / "STS.gs.toy.txt", "1\n2\n")
    with pytest.raises(JtcseError, match=r"STS\.input\.toy\.txt:2: expected two tab-separated sentences"):
        read_sts_subset(tmp_path, "toy")


def test_errors_are_one_line(tmp_path: Path) -> None:
    write(tmp_path / "STS.input.toy.txt", "a\tb\n")
    write(tmp_path / "STS.gs.toy.txt", "1\n2\n")
    with pytest.raises(JtcseError) as info:
        read_sts_subset(tmp_path, "toy")
    assert "\n" not in str(info.value)


# --- STS-B and SICK ------------------------------------------------------------------------------------


def test_stsb_columns(tmp_path: Path) -> None:
    folder = tmp_path / "sts" / "STSB" / "senteval"
    write(
        folder / "sts-test.csv",
        "main-captions\tMSRvid\t2012test\t0001\t5.000\tA  man plays.\tA man is playing .\n"
        "main-news\theadlines\t2013\t0002\t0.5\tone\ttwo\n",
    )
    pairs = read_stsb(tmp_path, "test")
    assert pairs.sentences1 == ["A man plays.", "one"]
    assert pairs.sentences2 == ["A man is playing .", "two"]
    assert pairs.scores.tolist() == [5.0, 0.5]


def test_stsb_short_line_and_bad_score(tmp_path: Path) -> None:
    folder = tmp_path / "sts" / "STSB" / "senteval"
    write(folder / "sts-dev.csv", "g\tf\ty\t1\t2.0\ta\tb\ng\tf\ty\t2\t3.0\tonly one sentence\n")
    with pytest.raises(
        JtcseError, match=r"sts-dev\.csv:2: expected at least 7 tab-separated columns, found 6"
    ):
        read_stsb(tmp_path, "dev")
    write(folder / "sts-dev.csv", "g\tf\ty\t1\tN/A\ta\tb\n")
    with pytest.raises(JtcseError, match=r"sts-dev\.csv:1: gold score 'N/A' is not a number"):
        read_stsb(tmp_path, "dev")


def test_sick_header_and_crlf(tmp_path: Path) -> None:
    folder = tmp_path / "sts" / "SICK" / "senteval"
    write(
        folder / "SICK_test_annotated.txt",
        "pair_ID\tsentence_A\tsentence_B\trelatedness_score\tentailment_judgment\r\n"
        "1\tA dog  runs\tA dog is running\t4.5\tENTAILMENT\r\n"
        "2\tA cat\tNobody\t1.2\tNEUTRAL\r\n",
    )
    pairs = read_sick(tmp_path, "test")
    assert pairs.sentences1 == ["A dog runs", "A cat"]
    assert pairs.sentences2 == ["A dog is running", "Nobody"]  # no stray \r
    assert pairs.scores.tolist() == [4.5, 1.2]


def test_sick_dev_is_the_trial_file(tmp_path: Path) -> None:
    write_toy_sts(tmp_path, pairs=4)
    assert len(read_sick(tmp_path, "dev")) == 7
    assert len(read_sick(tmp_path, "test")) == 7  # CRLF file: header skipped, no empty trailing pair


def test_sick_bad_line_names_file_and_line(tmp_path: Path) -> None:
    folder = tmp_path / "sts" / "SICK" / "senteval"
    write(folder / "SICK_trial.txt", "pair_ID\tsentence_A\tsentence_B\trelatedness_score\n1\tonly\t3.0\n")
    with pytest.raises(JtcseError, match=r"SICK_trial\.txt:2: expected at least 4"):
        read_sick(tmp_path, "dev")


def test_read_task_splits(tmp_path: Path) -> None:
    write_toy_sts(tmp_path, pairs=2)
    assert list(read_task(tmp_path, "STSBenchmark", "dev")) == ["dev"]
    assert len(read_task(tmp_path, "STS16")) == 5
    with pytest.raises(JtcseError, match="STS12 has only a test set"):
        read_task(tmp_path, "STS12", "dev")
    with pytest.raises(JtcseError, match="unknown STS task 'STS17'"):
        read_task(tmp_path, "STS17")


def test_shared_data_pair_counts(shared_data_dir: Path) -> None:
    counts = {
        task: sum(len(p) for p in read_task(shared_data_dir, task).values())
        for task in ("STS12", "STS13", "STS14", "STS15", "STS16", "STSBenchmark", "SICKRelatedness")
    }
    assert counts == {
        "STS12": 3108,
        "STS13": 1500,
        "STS14": 3750,
        "STS15": 3000,
        "STS16": 1186,
        "STSBenchmark": 1379,
        "SICKRelatedness": 4927,
    }


# --- data directory resolution -------------------------------------------------------------------------


@pytest.fixture
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No $JTCSE_DATA, no shared folder, an empty per-user cache, downloads off."""
    monkeypatch.delenv(DATA_ENV, raising=False)
    monkeypatch.delenv("JTCSE_DATA_URL", raising=False)
    monkeypatch.setenv(OFFLINE_ENV, "1")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(paths, "shared_data_candidates", lambda: [tmp_path / "no-shared" / "data"])
    return tmp_path


def test_explicit_dir_wins(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    explicit = write_toy_sts(isolated / "explicit")
    monkeypatch.setenv(DATA_ENV, str(write_toy_sts(isolated / "from-env")))
    assert resolve_data_dir(explicit) == explicit.resolve()
    assert locate_data_dir(None)[0] == (isolated / "from-env").resolve()
    assert locate_data_dir(None)[1] == f"${DATA_ENV}"


def test_missing_explicit_dir_is_a_one_line_error(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(JtcseError, match=r"^--data-dir .*nowhere: no such directory$"):
        resolve_data_dir(isolated / "nowhere")
    monkeypatch.setenv(DATA_ENV, str(isolated / "nowhere"))
    with pytest.raises(JtcseError, match=r"^\$JTCSE_DATA .*nowhere: no such directory$"):
        resolve_data_dir()


def test_explicit_dir_without_sts(isolated: Path) -> None:
    (isolated / "empty").mkdir()
    with pytest.raises(JtcseError, match="has no sts/ folder"):
        resolve_data_dir(isolated / "empty")
    write_toy_sts(isolated / "parent")
    with pytest.raises(JtcseError, match=r"pass its parent"):
        resolve_data_dir(isolated / "parent" / "sts")


def test_shared_folder_is_used_when_present(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shared = write_toy_sts(isolated / "shared" / "data")
    monkeypatch.setattr(paths, "shared_data_candidates", lambda: [isolated / "absent", shared])
    assert locate_data_dir() == (shared, "../shared/data beside the checkout")


def test_shared_candidates_include_cwd_parent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "repo").mkdir()
    monkeypatch.chdir(tmp_path / "repo")
    assert (tmp_path / "shared" / "data").resolve() in paths.shared_data_candidates()


def test_nothing_found_offline_says_what_to_do(isolated: Path) -> None:
    with pytest.raises(
        JtcseError, match=r"no STS evaluation data found: pass --data-dir DIR, set \$JTCSE_DATA"
    ):
        resolve_data_dir()
    with pytest.raises(JtcseError, match="jtcse data download"):
        resolve_data_dir(download=False)


def test_wiki_corpus_prefers_the_full_file(tmp_path: Path) -> None:
    assert wiki_corpus_path(tmp_path) is None
    write(tmp_path / "unsup" / "wiki1m_for_simcse.head100.txt", "a\n")
    assert wiki_corpus_path(tmp_path).name == "wiki1m_for_simcse.head100.txt"
    write(tmp_path / "unsup" / "wiki1m_for_simcse.txt", "a\n")
    assert wiki_corpus_path(tmp_path).name == "wiki1m_for_simcse.txt"
    assert resolve_data_dir(tmp_path, need="wiki") == tmp_path.resolve()
