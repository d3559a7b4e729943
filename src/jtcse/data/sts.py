"""Readers for the SentEval STS files: pairs of sentences with a gold similarity score.

The files and their quirks, read the way SentEval (and SimCSE's fork of it) reads them:

* STS12-16 ``sts/STSxx/senteval/STS.input.<subset>.txt``: ``sentence1<TAB>sentence2`` per line (extra columns
  ignored), and ``STS.gs.<subset>.txt``: one gold score per line. An empty gold line marks an unscored pair,
  which is dropped. Lines are split as ``str.splitlines`` splits them.
* STS-B ``sts/STSB/senteval/sts-{train,dev,test}.csv``: tab-separated; column 5 is the score, columns 6 and 7
  are the sentences (1-based).
* SICK ``sts/SICK/senteval/SICK_{train,trial,test_annotated}.txt``: tab-separated with a header line;
  ``pair_ID, sentence_A, sentence_B, relatedness_score, ...``. The test file has CRLF line ends.

Every sentence is split on whitespace and re-joined with single spaces, as SentEval's tokens are re-joined by
SimCSE's batcher. Malformed files raise :class:`JtcseError` naming the file and line.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from jtcse.errors import JtcseError
from jtcse.text_gate import decode_error

# Subsets per year, in SentEval's order. STS13 has no SMT: its inputs are LDC-licensed.
STS_YEAR_SUBSETS: dict[str, tuple[str, ...]] = {
    "STS12": ("MSRpar", "MSRvid", "SMTeuroparl", "surprise.OnWN", "surprise.SMTnews"),
    "STS13": ("FNWN", "headlines", "OnWN"),
    "STS14": ("deft-forum", "deft-news", "headlines", "images", "OnWN", "tweet-news"),
    "STS15": ("answers-forums", "answers-students", "belief", "headlines", "images"),
    "STS16": ("answer-answer", "headlines", "plagiarism", "postediting", "question-question"),
}
# Task name -> folder under <data_dir>/sts
TASK_FOLDERS: dict[str, str] = {
    **{year: year for year in STS_YEAR_SUBSETS},
    "STSBenchmark": "STSB",
    "SICKRelatedness": "SICK",
}
STSB_FILES = {"train": "sts-train.csv", "dev": "sts-dev.csv", "test": "sts-test.csv"}
SICK_FILES = {"train": "SICK_train.txt", "dev": "SICK_trial.txt", "test": "SICK_test_annotated.txt"}
SPLITS = ("train", "dev", "test")
DATA_DIR_HINT = "; check the data directory (`jtcse data where`)"


@dataclass(frozen=True)
class StsPairs:
    """Scored sentence pairs of one subset (STS12-16) or one split (STS-B, SICK-R)."""

    name: str
    source: str  # the file(s) read, for messages
    sentences1: list[str]
    sentences2: list[str]
    scores: np.ndarray  # float64 gold scores, one per pair

    def __len__(self) -> int:
        return len(self.scores)


def normalize_sentence(text: str) -> str:
    """Whitespace-split and re-join with single spaces (SentEval tokens joined by SimCSE's batcher)."""
    return " ".join(text.split())


def task_folder(data_dir: str | Path, task: str) -> Path:
    """``<data_dir>/sts/<TASK>/senteval``."""
    if task not in TASK_FOLDERS:
        raise JtcseError(f"unknown STS task '{task}'; choose from {', '.join(TASK_FOLDERS)}")
    return Path(data_dir) / "sts" / TASK_FOLDERS[task] / "senteval"


def read_sts_subset(
    folder: str | Path,
    subset: str,
    *,
    prefix: str = "STS",
    normalize: Callable[[str], str] = normalize_sentence,
) -> StsPairs:
    """One STS12-16 subset: ``<prefix>.input.<subset>.txt`` + ``<prefix>.gs.<subset>.txt``; unscored pairs
    dropped. ``prefix`` is ``STS2016`` for the raw STS16 release; ``normalize`` is applied to each
    sentence."""
    folder = Path(folder)
    input_path = folder / f"{prefix}.input.{subset}.txt"
    gold_path = folder / f"{prefix}.gs.{subset}.txt"
    input_lines = read_text_file(input_path, f"STS input of subset {subset}").splitlines()
    gold_lines = read_text_file(gold_path, f"STS gold scores of subset {subset}").splitlines()
    if len(input_lines) != len(gold_lines):
        raise JtcseError(
            f"{input_path}: {len(input_lines)} lines, but {gold_path} has {len(gold_lines)}; "
            "expected one gold line (possibly empty) per pair"
        )
    sentences1: list[str] = []
    sentences2: list[str] = []
    scores: list[float] = []
    for index, (pair_line, gold_line) in enumerate(zip(input_lines, gold_lines, strict=True)):
        if not gold_line.strip():  # unscored pair
            continue
        columns = pair_line.split("\t")
        if len(columns) < 2:
            raise JtcseError(
                f"{input_path}:{index + 1}: expected two tab-separated sentences, found {len(columns)} column"
            )
        scores.append(parse_score(gold_line, gold_path, index + 1))
        sentences1.append(normalize(columns[0]))
        sentences2.append(normalize(columns[1]))
    return check_gold(
        StsPairs(subset, f"{input_path} + {gold_path.name}", sentences1, sentences2, np.array(scores)),
        gold_path,
    )


def check_gold(pairs: StsPairs, source: Path) -> StsPairs:
    """A subset can be scored only with pairs and gold scores that differ (a correlation needs spread)."""
    if len(pairs) == 0:
        raise JtcseError(f"{source}: no scored pairs (every gold line is blank); nothing to evaluate")
    if len(pairs) < 2 or float(np.ptp(pairs.scores)) == 0.0:
        raise JtcseError(
            f"{source}: every gold score is {pairs.scores[0]:g} ({len(pairs)} pair(s)); a correlation needs "
            "gold scores that differ"
        )
    return pairs


def read_sts_year(data_dir: str | Path, task: str) -> dict[str, StsPairs]:
    """All subsets of an STS12-16 task, in SentEval's order."""
    if task not in STS_YEAR_SUBSETS:
        raise JtcseError(f"unknown STS year task '{task}'; choose from {', '.join(STS_YEAR_SUBSETS)}")
    folder = task_folder(data_dir, task)
    return {subset: read_sts_subset(folder, subset) for subset in STS_YEAR_SUBSETS[task]}


def read_stsb(data_dir: str | Path, split: str = "test") -> StsPairs:
    """An STS Benchmark split (``train``, ``dev`` or ``test``)."""
    path = task_folder(data_dir, "STSBenchmark") / STSB_FILES[_check_split(split)]
    return check_gold(read_pair_table(path, split, score_col=4, sent_cols=(5, 6), header=False), path)


def read_sick(data_dir: str | Path, split: str = "test") -> StsPairs:
    """A SICK relatedness split (``train``, ``dev`` = SICK_trial, or ``test`` = SICK_test_annotated)."""
    path = task_folder(data_dir, "SICKRelatedness") / SICK_FILES[_check_split(split)]
    return check_gold(read_pair_table(path, split, score_col=3, sent_cols=(1, 2), header=True), path)


def read_task(data_dir: str | Path, task: str, split: str = "test") -> dict[str, StsPairs]:
    """The pairs a task is scored on: every subset of an STS year, or one split of STS-B / SICK-R."""
    if task in STS_YEAR_SUBSETS:
        if split != "test":
            raise JtcseError(
                f"{task} has only a test set; a {split} split exists for STSBenchmark and SICKRelatedness"
            )
        return read_sts_year(data_dir, task)
    if task == "STSBenchmark":
        return {split: read_stsb(data_dir, split)}
    if task == "SICKRelatedness":
        return {split: read_sick(data_dir, split)}
    task_folder(data_dir, task)  # raises the unknown-task error
    raise AssertionError("unreachable")


def read_pair_table(
    path: Path,
    name: str,
    *,
    score_col: int,
    sent_cols: tuple[int, int],
    header: bool,
    normalize: Callable[[str], str] = normalize_sentence,
    hint: str = DATA_DIR_HINT,
) -> StsPairs:
    """A tab-separated pair file, one pair per line (SentEval strips each line, then splits on tabs); blank
    lines are skipped and extra columns ignored. ``hint`` ends the message for a missing file."""
    text = read_text_file(path, "STS file", hint=hint)
    lines = text.split("\n")  # universal newlines already turned CRLF into \n
    needed = max(score_col, *sent_cols) + 1
    sentences1: list[str] = []
    sentences2: list[str] = []
    scores: list[float] = []
    for index, line in enumerate(lines):
        if header and index == 0:
            continue
        stripped = line.strip()
        if not stripped:  # the file's final newline, or a stray blank line
            continue
        columns = stripped.split("\t")
        if len(columns) < needed:
            raise JtcseError(
                f"{path}:{index + 1}: expected at least {needed} tab-separated columns, found {len(columns)}"
            )
        scores.append(parse_score(columns[score_col], path, index + 1))
        sentences1.append(normalize(columns[sent_cols[0]]))
        sentences2.append(normalize(columns[sent_cols[1]]))
    return StsPairs(name, str(path), sentences1, sentences2, np.array(scores))


def read_text_file(path: Path, what: str, *, hint: str = DATA_DIR_HINT) -> str:
    """A UTF-8 file's text; a missing or unreadable file is a one-line :class:`JtcseError` naming it."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise JtcseError(f"{path}: missing {what} (no such file){hint}") from None
    except OSError as exc:
        raise JtcseError(f"{path}: cannot read {what}: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise decode_error(data, exc, path) from None


def parse_score(text: str, path: Path, line_number: int) -> float:
    """A finite gold score, or a :class:`JtcseError` naming the file and line."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise JtcseError(f"{path}:{line_number}: gold score {text.strip()!r} is not a number")
    return value


def _check_split(split: str) -> str:
    if split not in SPLITS:
        raise JtcseError(f"unknown split '{split}'; choose from {', '.join(SPLITS)}")
    return split
