"""Read a text file of any size in line ranges: one planning pass (line count, sha256, shard offsets), then
each shard's lines read on their own, so memory depends on the shard size, never on the file size.

Lines follow :func:`jtcse.tools.encode_file.decode_lines`: split on ``\\n`` only, a trailing ``\\r`` dropped,
a byte-order mark at the start of the file ignored, no line after a final newline.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from jtcse.errors import JtcseError
from jtcse.text_gate import decode_error

_BLOCK = 16 << 20  # bytes read at a time by the planning pass
_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class LinePlan:
    """Where each shard of ``shard_size`` lines starts in the file (``offsets[k]`` = byte of line k*S)."""

    path: Path
    sha256: str
    size: int  # bytes
    lines: int
    shard_size: int
    offsets: tuple[int, ...]  # one per shard, plus the file size at the end

    @property
    def shards(self) -> int:
        return len(self.offsets) - 1

    def line_range(self, shard: int) -> tuple[int, int]:
        """``(start, stop)``: the 0-based lines of ``shard``."""
        start = shard * self.shard_size
        return start, min(start + self.shard_size, self.lines)


def plan_lines(path: str | Path, shard_size: int, *, what: str = "--input") -> LinePlan:
    """One pass over the file: its sha256, its line count and the byte offset of every shard's first line."""
    path = Path(path)
    _check_file(path, what=what)
    digest = hashlib.sha256()
    offsets = [0]  # byte offset of lines 0, S, 2S, ...
    lines = 0  # newlines seen so far
    position = 0
    last_byte = b""
    with open(path, "rb") as fh:
        while block := fh.read(_BLOCK):
            digest.update(block)
            newlines = np.flatnonzero(np.frombuffer(block, dtype=np.uint8) == 10)
            # line n (n >= 1) starts right after newline number n (counting from 1)
            first = -(-(lines + 1) // shard_size) * shard_size
            for n in range(first, lines + len(newlines) + 1, shard_size):
                offsets.append(position + int(newlines[n - lines - 1]) + 1)
            lines += len(newlines)
            position += len(block)
            last_byte = block[-1:]
    if position and last_byte != b"\n":
        lines += 1  # a last line without a newline
    if lines == 0:
        raise JtcseError(f"{what} {path}: the file is empty")
    offsets = [*offsets[: -(-lines // shard_size)], position]
    return LinePlan(path, digest.hexdigest(), position, lines, shard_size, tuple(offsets))


def _check_file(path: Path, *, what: str) -> None:
    """The one-line errors of :func:`jtcse.tools.encode_file.read_text_bytes`, without reading the file."""
    if not path.exists():
        raise JtcseError(f"{what} {path}: no such file")
    if not path.is_file():
        raise JtcseError(f"{what} {path}: not a file")


def read_shard_lines(plan: LinePlan, shard: int) -> list[str]:
    """The lines of ``shard``, decoded; a UTF-8 error names the file and the line."""
    start, stop = plan.line_range(shard)
    begin, end = plan.offsets[shard], plan.offsets[shard + 1]
    with open(plan.path, "rb") as fh:
        fh.seek(begin)
        data = fh.read(end - begin)
    if len(data) != end - begin:
        raise JtcseError(f"{plan.path}: the file changed while it was read (shorter than planned)")
    if shard == 0 and data.startswith(_BOM):
        data = data[len(_BOM) :]  # a byte-order mark is not part of the first sentence
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise decode_error(data, exc, plan.path, first_line=start + 1) from None
    lines = text.split("\n")
    if text.endswith("\n"):
        lines.pop()  # no line after the final newline
    if len(lines) != stop - start:
        raise JtcseError(f"{plan.path}: the file changed while it was read (line {start + 1} onwards)")
    return [line.removesuffix("\r") for line in lines]


def read_lines_at(path: Path, offset: int, first_line: int, wanted: set[int]) -> dict[int, str]:
    """The text of the 0-based lines in ``wanted`` (all >= ``first_line``), scanning from ``offset``."""
    found: dict[int, str] = {}
    last = max(wanted)
    with open(path, "rb") as fh:
        fh.seek(offset)
        for number, raw in enumerate(fh, start=first_line):
            if number in wanted:
                line = raw.rstrip(b"\n").removesuffix(b"\r").decode("utf-8", errors="replace")
                found[number] = line.removeprefix("\ufeff") if number == 0 else line
            if number >= last:
                break
    return found
