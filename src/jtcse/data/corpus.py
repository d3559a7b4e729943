"""The training corpus: a text file with one sentence per line.

* Blank lines (after stripping whitespace) are skipped and counted.
* Lines that are not valid UTF-8 are, by policy, skipped and counted with a warning that names their line
  numbers (``on_bad_utf8="skip"``, the default: one bad line in a million should not cost a run), or
  rejected with a one-line error naming the first one (``"error"``).
* Each line keeps at most ``max_chars`` characters. A line is read in bounded pieces, so even a gigabyte
  without a newline costs no more than ``max_chars`` characters of memory; tokenisation then truncates to
  ``max_len`` tokens, and the character cap just keeps the tokenizer from chewing on text it would drop.
* ``dedup`` drops exact repeats (after stripping), keeping the first.
* ``max_sentences`` keeps the first N sentences (after the above).

Sentences stay plain strings; they are tokenised per batch (:mod:`jtcse.data.batching`).
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, get_args

from jtcse.errors import JtcseError, JtcseWarning

# Bytes per character at most in UTF-8: a line is read up to 4 * max_chars bytes before it is cut.
_MAX_UTF8_BYTES = 4
_SKIP_CHUNK = 1 << 20
# Line numbers quoted in the bad-UTF-8 warning.
_LINES_QUOTED = 10


@dataclass
class CorpusStats:
    lines: int = 0
    blank: int = 0
    bad_utf8: int = 0
    bad_utf8_lines: list[int] = field(default_factory=list)
    duplicates: int = 0
    truncated: int = 0

    def summary(self) -> str:
        parts = [f"{self.lines} lines read"]
        for name, count in (
            ("blank", self.blank),
            ("not UTF-8", self.bad_utf8),
            ("duplicate", self.duplicates),
            ("truncated", self.truncated),
        ):
            if count:
                parts.append(f"{count} {name}")
        return ", ".join(parts)


@dataclass
class TrainingCorpus:
    path: Path
    sentences: list[str]
    stats: CorpusStats
    fingerprint: str
    """sha256 over the kept sentences: a resumed run checks that it reads the same data."""

    def __len__(self) -> int:
        return len(self.sentences)

    def char_lengths(self) -> list[int]:
        return [len(s) for s in self.sentences]


WIKI = "wiki"


def resolve_corpus_path(corpus: str, data_dir: str | Path | None = None) -> Path:
    """``"wiki"`` -> the wiki1m file of the data directory (jtcse.data.paths); anything else is a path."""
    if corpus == WIKI:
        from jtcse.data.paths import resolve_data_dir, wiki_corpus_path

        found = wiki_corpus_path(resolve_data_dir(data_dir or None, need="wiki"))
        assert found is not None  # resolve_data_dir(need="wiki") guarantees it
        return found
    return Path(corpus).expanduser()


# a line that is not valid UTF-8: skipped (counted, warned) or an error
BadUtf8Policy = Literal["skip", "error"]
BAD_UTF8_POLICIES: tuple[BadUtf8Policy, ...] = get_args(BadUtf8Policy)


def load_corpus(
    path: str | Path,
    *,
    max_chars: int = 640,
    dedup: bool = False,
    max_sentences: int = 0,
    on_bad_utf8: BadUtf8Policy = "skip",
    min_sentences: int = 1,
) -> TrainingCorpus:
    """Read a one-sentence-per-line file (see the module docstring for the rules); fewer than
    ``min_sentences`` sentences is an error (training asks for 2: a contrastive loss needs negatives)."""
    if on_bad_utf8 not in BAD_UTF8_POLICIES:
        raise ValueError(f"on_bad_utf8 must be 'skip' or 'error', not {on_bad_utf8!r}")
    if max_chars < 1:
        raise ValueError("max_chars must be >= 1")
    path = _corpus_file(path)
    stats = CorpusStats()
    sentences: list[str] = []
    seen: set[str] = set()
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for line_no, (raw, cut) in enumerate(_bounded_lines(fh, max_chars * _MAX_UTF8_BYTES), start=1):
            stats.lines += 1
            text = _decode(raw, cut, f"{path}:{line_no}", on_bad_utf8)
            if text is None:
                stats.bad_utf8 += 1
                if len(stats.bad_utf8_lines) < _LINES_QUOTED:
                    stats.bad_utf8_lines.append(line_no)
                continue
            sentence = text.strip()
            if not sentence:
                stats.blank += 1
                continue
            if cut or len(sentence) > max_chars:
                stats.truncated += 1
                sentence = sentence[:max_chars].rstrip()
            if dedup:
                if sentence in seen:
                    stats.duplicates += 1
                    continue
                seen.add(sentence)
            sentences.append(sentence)
            digest.update(sentence.encode("utf-8"))
            digest.update(b"\n")
            if max_sentences and len(sentences) >= max_sentences:
                break

    if stats.bad_utf8:
        more = ", ..." if stats.bad_utf8 > len(stats.bad_utf8_lines) else ""
        warnings.warn(
            f"{path}: skipped {stats.bad_utf8} line(s) that are not valid UTF-8 "
            f"(line {', '.join(map(str, stats.bad_utf8_lines))}{more})",
            JtcseWarning,
            stacklevel=2,
        )
    _check_count(path, len(sentences), stats, min_sentences)
    return TrainingCorpus(path=path, sentences=sentences, stats=stats, fingerprint=digest.hexdigest())


def _check_count(path: Path, count: int, stats: CorpusStats, min_sentences: int) -> None:
    if not count:
        why = "is empty" if stats.lines == 0 else f"has no sentences ({stats.summary()})"
        raise JtcseError(f"{path}: {why}; expected one sentence per line")
    if count < min_sentences:
        raise JtcseError(
            f"{path}: only {count} sentence(s) ({stats.summary()}); contrastive training needs at least "
            f"{min_sentences}, since each sentence's negatives are the other sentences of its batch"
        )


def _corpus_file(path: str | Path) -> Path:
    path = Path(path).expanduser()
    if not path.exists():
        raise JtcseError(f"{path}: no such corpus file")
    if not path.is_file():
        raise JtcseError(f"{path}: is not a file; expected a text file with one sentence per line")
    return path


def _decode(raw: bytes, cut: bool, where: str, on_bad_utf8: str) -> str | None:
    """The line as text; None for a line that is not valid UTF-8 (an error with ``on_bad_utf8="error"``)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A cut can split one multi-byte character at the very end; that is not a bad line.
        if cut and exc.start >= len(raw) - (_MAX_UTF8_BYTES - 1) and exc.reason.startswith("unexpected end"):
            return raw[: exc.start].decode("utf-8", errors="strict")
        if on_bad_utf8 == "error":
            raise JtcseError(
                f"{where}: not valid UTF-8 ({exc.reason} at byte {exc.start} of the "
                'line); fix the file or set data.on_bad_utf8 = "skip"'
            ) from None
        return None


def _bounded_lines(fh, limit: int):
    """Yield ``(bytes, was_cut)`` per line, holding at most ``limit`` bytes of any line in memory."""
    while True:
        chunk = fh.readline(limit)
        if not chunk:
            return
        if chunk.endswith(b"\n"):
            yield chunk, False
            continue
        # Either the last line without a newline, or a line longer than the limit: skip its rest.
        cut = False
        while True:
            rest = fh.readline(_SKIP_CHUNK)
            if not rest:
                break
            cut = True
            if rest.endswith(b"\n"):
                break
        yield chunk, cut
