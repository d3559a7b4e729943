"""Readers for SentEval's transfer-task files (``<data_dir>/downstream/<TASK>/...``), read as SentEval does.

* MR, CR, SUBJ, MPQA: two files of one sentence per line (latin-1), one per class; SentEval labels the first
  file 1 and the second 0 (for SUBJ the first is ``subj.objective``). Lines are split as ``str.splitlines``
  splits them, like SentEval's ``f.read().splitlines()``.
* SST2 ``SST/binary/sentiment-{train,dev,test}``: ``sentence<TAB>label`` (utf-8), label 0 or 1.
* TREC ``TREC/{train_5500,TREC_10}.label``: ``COARSE:fine question words`` (latin-1); the coarse class is
  the label (ABBR DESC ENTY HUM LOC NUM -> 0..5), the fine class is dropped.
* MRPC ``MRPC/msr_paraphrase_{train,test}.txt``: a header line, then
  ``quality<TAB>id1<TAB>id2<TAB>s1<TAB>s2``.

Every sentence is split on whitespace and re-joined with single spaces (SentEval keeps tokens; SimCSE's
batcher joins them with spaces). A malformed line raises :class:`JtcseError` naming the file and line.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from jtcse.errors import JtcseError
from jtcse.text_gate import decode_error

DOWNSTREAM = "downstream"
# task -> (first file: label 1, second file: label 0), under downstream/<task>/
BINARY_FILES: dict[str, tuple[str, str]] = {
    "MR": ("rt-polarity.pos", "rt-polarity.neg"),
    "CR": ("custrev.pos", "custrev.neg"),
    "SUBJ": ("subj.objective", "subj.subjective"),
    "MPQA": ("mpqa.pos", "mpqa.neg"),
}
SST2_FILES = {"train": "SST/binary/sentiment-train", "dev": "SST/binary/sentiment-dev",
              "test": "SST/binary/sentiment-test"}  # fmt: skip
TREC_FILES = {"train": "TREC/train_5500.label", "test": "TREC/TREC_10.label"}
MRPC_FILES = {"train": "MRPC/msr_paraphrase_train.txt", "test": "MRPC/msr_paraphrase_test.txt"}
TREC_CLASSES = ("ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM")
HINT = "; check the data directory (`jtcse data download --what transfer`)"


@dataclass(frozen=True)
class Labelled:
    """Sentences with one integer class each."""

    sentences: list[str]
    labels: list[int]

    def __len__(self) -> int:
        return len(self.labels)


@dataclass(frozen=True)
class LabelledPairs:
    """Sentence pairs with one integer class each (MRPC: 1 = paraphrase)."""

    first: list[str]
    second: list[str]
    labels: list[int]

    def __len__(self) -> int:
        return len(self.labels)


def task_file(data_dir: Path, relative: str) -> Path:
    """``<data_dir>/downstream/<relative>``, which must be a file."""
    path = Path(data_dir) / DOWNSTREAM / relative
    if not path.is_file():
        raise JtcseError(f"{path}: missing{HINT}")
    return path


def _normalise(text: str) -> str:
    return " ".join(text.split())


def _read_lines(path: Path, encoding: str, *, split_all: bool) -> list[str]:
    """Lines of ``path``: ``str.splitlines`` (``split_all``) or file iteration (newline-only) semantics."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise JtcseError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        if encoding == "utf-8":
            raise decode_error(data, exc, path) from None
        line = data[: exc.start].count(b"\n") + 1
        raise JtcseError(f"{path}:{line}: not valid {encoding}") from None
    if split_all:
        lines = text.splitlines()
    else:  # what iterating over a text file gives: only \n, \r\n and \r end a line
        lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        lines = lines[:-1] if lines[-1] == "" else lines
    if not lines:
        raise JtcseError(f"{path}: empty{HINT}")
    return lines


def read_binary(data_dir: Path, task: str) -> Labelled:
    """MR, CR, SUBJ or MPQA: the first file's sentences (label 1), then the second's (label 0)."""
    if task not in BINARY_FILES:
        raise ValueError(f"not a binary task: {task}")
    first, second = (task_file(data_dir, f"{task}/{name}") for name in BINARY_FILES[task])
    ones = [_normalise(line) for line in _read_lines(first, "latin-1", split_all=True)]
    zeros = [_normalise(line) for line in _read_lines(second, "latin-1", split_all=True)]
    return Labelled(ones + zeros, [1] * len(ones) + [0] * len(zeros))


def read_sst2(data_dir: Path, split: str) -> Labelled:
    """One split of SST2: ``sentence<TAB>label`` with label 0 or 1."""
    path = task_file(data_dir, SST2_FILES[split])
    sentences, labels = [], []
    for number, line in enumerate(_read_lines(path, "utf-8", split_all=False), start=1):
        fields = line.strip().split("\t")
        if len(fields) != 2 or fields[1].strip() not in ("0", "1"):
            raise JtcseError(f"{path}:{number}: expected 'sentence<TAB>0|1', got {line[:60]!r}")
        sentences.append(_normalise(fields[0]))
        labels.append(int(fields[1]))
    return Labelled(sentences, labels)


def read_trec(data_dir: Path, split: str) -> Labelled:
    """One split of TREC: the coarse class of ``COARSE:fine words...`` as the label."""
    path = task_file(data_dir, TREC_FILES[split])
    sentences, labels = [], []
    for number, line in enumerate(_read_lines(path, "latin-1", split_all=False), start=1):
        target, _, rest = line.strip().partition(":")
        words = rest.split(" ", 1)
        if target not in TREC_CLASSES or len(words) != 2:
            raise JtcseError(
                f"{path}:{number}: expected 'CLASS:fine question' with CLASS one of "
                f"{' '.join(TREC_CLASSES)}, got {line[:60]!r}"
            )
        sentences.append(_normalise(words[1]))
        labels.append(TREC_CLASSES.index(target))
    return Labelled(sentences, labels)


def read_mrpc(data_dir: Path, split: str) -> LabelledPairs:
    """One split of MRPC (its header line skipped)."""
    path = task_file(data_dir, MRPC_FILES[split])
    first, second, labels = [], [], []
    for number, line in enumerate(_read_lines(path, "utf-8", split_all=False)[1:], start=2):
        fields = line.strip().split("\t")
        if len(fields) < 5 or fields[0].strip() not in ("0", "1"):
            raise JtcseError(
                f"{path}:{number}: expected 'quality<TAB>id1<TAB>id2<TAB>sentence1<TAB>sentence2' with "
                f"quality 0 or 1, got {line[:60]!r}"
            )
        first.append(_normalise(fields[3]))
        second.append(_normalise(fields[4]))
        labels.append(int(fields[0]))
    if not labels:
        raise JtcseError(f"{path}: no pairs after the header line{HINT}")
    return LabelledPairs(first, second, labels)
