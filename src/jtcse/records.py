"""One reader for every JSON record jtcse writes and reads back, each checked against a declared schema.

Caches, shard manifests and entries, ``index.json``, ``jtcse.json``, lock records, result files, the zero-shot
score cache, ``metrics.jsonl``, the ``modules.json`` / ``jtcse_towers.json`` an export reads back and
``jtcse plot``'s eval JSON are all read here. A schema is a small tree of :class:`Spec` objects
(types, required keys, ranges, patterns) declared beside the code that writes the record; whatever the file
holds (any bytes, any JSON, a truncation), reading it ends in one of three ways:

* the value, every declared field of the declared type and range;
* :func:`read_record` and friends: a one-line :class:`JtcseError` naming the file and the field;
* :func:`read_cache`: ``None`` and a one-line :class:`JtcseWarning` (the caller redoes the work).

Undeclared keys are allowed (a newer jtcse may add some); declared ones are never trusted unchecked.
"""

from __future__ import annotations

import json
import math
import re
import sys
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jtcse.errors import JtcseError, JtcseWarning

PID_MAX = 2**31 - 1  # what os.kill accepts; 0 and negatives would address process groups
SHA256 = r"[0-9a-f]{64}"
_REPR_CHARS = 40
_FLOAT_MAX = sys.float_info.max


class RecordInvalid(ValueError):
    """A record that does not match its schema: ``field`` (dotted path, "" for the whole record), ``why``."""

    def __init__(self, field: str, why: str) -> None:
        super().__init__(f"field {field}: {why}" if field else why)
        self.field, self.why = field, why


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _REPR_CHARS else text[: _REPR_CHARS - 3] + "..."


def _type_name(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")


def _bounds(lo: float | None, hi: float | None) -> str:
    if hi is None:
        return f">= {lo}"
    return f"<= {hi}" if lo is None else f"in [{lo}, {hi}]"


class Spec:
    """What one value must be. ``check`` raises :class:`RecordInvalid` naming ``at`` (the field's path)."""

    def check(self, value: Any, at: str) -> None:
        raise NotImplementedError

    def fail(self, value: Any, at: str, expected: str) -> RecordInvalid:
        got = _type_name(value) if isinstance(value, (dict, list)) else _shown(value)
        return RecordInvalid(at, f"expected {expected}, got {got}")


@dataclass(frozen=True)
class AnyValue(Spec):
    def check(self, value: Any, at: str) -> None:
        return None


@dataclass(frozen=True)
class Str(Spec):
    pattern: str | None = None  # the whole string must match
    choices: tuple[str, ...] | None = None
    nonempty: bool = False

    def check(self, value: Any, at: str) -> None:
        if not isinstance(value, str):
            raise self.fail(value, at, "a string")
        if self.choices is not None and value not in self.choices:
            raise self.fail(value, at, f"one of {', '.join(self.choices)}")
        if self.pattern is not None and not re.fullmatch(self.pattern, value):
            raise self.fail(value, at, f"a string matching {self.pattern}")
        if self.nonempty and not value:
            raise self.fail(value, at, "a non-empty string")


@dataclass(frozen=True)
class Int(Spec):
    lo: int | None = None
    hi: int | None = None

    def check(self, value: Any, at: str) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(value, at, "an integer")
        if (self.lo is not None and value < self.lo) or (self.hi is not None and value > self.hi):
            raise self.fail(value, at, f"an integer {_bounds(self.lo, self.hi)}")


@dataclass(frozen=True)
class Num(Spec):
    """A finite number (int or float; JSON's NaN/Infinity are refused unless ``finite`` is False)."""

    lo: float | None = None
    hi: float | None = None
    finite: bool = True

    def check(self, value: Any, at: str) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(value, at, "a number")
        if isinstance(value, int) and abs(value) > _FLOAT_MAX:  # JSON allows 4,300 digits; float() overflows
            raise self.fail(value, at, "a number within float range")
        if self.finite and not math.isfinite(value):
            raise self.fail(value, at, "a finite number")
        if (self.lo is not None and value < self.lo) or (self.hi is not None and value > self.hi):
            raise self.fail(value, at, f"a number {_bounds(self.lo, self.hi)}")


@dataclass(frozen=True)
class Bool(Spec):
    def check(self, value: Any, at: str) -> None:
        if not isinstance(value, bool):
            raise self.fail(value, at, "true or false")


@dataclass(frozen=True)
class Const(Spec):
    value: Any

    def check(self, value: Any, at: str) -> None:
        if type(value) is not type(self.value) or value != self.value:
            raise self.fail(value, at, _shown(self.value))


@dataclass(frozen=True)
class Instance(Spec):
    """A Python object of ``kind`` (records that are not JSON: a checkpoint's tensors)."""

    kind: type
    name: str

    def check(self, value: Any, at: str) -> None:
        if not isinstance(value, self.kind):
            raise RecordInvalid(at, f"expected {self.name}, got {type(value).__name__}")


@dataclass(frozen=True)
class Nullable(Spec):
    inner: Spec

    def check(self, value: Any, at: str) -> None:
        if value is not None:
            self.inner.check(value, at)


@dataclass(frozen=True)
class Either(Spec):
    """The first of ``options`` the value matches; the error is the last option's."""

    options: tuple[Spec, ...]

    def check(self, value: Any, at: str) -> None:
        error: RecordInvalid | None = None
        for option in self.options:
            try:
                option.check(value, at)
                return
            except RecordInvalid as exc:
                error = exc
        assert error is not None
        raise error


@dataclass(frozen=True)
class ListOf(Spec):
    item: Spec
    min_len: int = 0

    def check(self, value: Any, at: str) -> None:
        if not isinstance(value, list):
            raise self.fail(value, at, "a list")
        if len(value) < self.min_len:
            raise RecordInvalid(at, f"expected at least {self.min_len} item(s), got {len(value)}")
        for i, item in enumerate(value):
            self.item.check(item, f"{at}[{i}]")


@dataclass(frozen=True)
class MapOf(Spec):
    """An object whose every value is ``value`` (keys: any string, or matching ``key_pattern``)."""

    value: Spec
    key_pattern: str | None = None
    min_len: int = 0

    def check(self, value: Any, at: str) -> None:
        if not isinstance(value, dict):
            raise self.fail(value, at, "an object")
        if len(value) < self.min_len:
            raise RecordInvalid(at, f"expected at least {self.min_len} key(s), got {len(value)}")
        for key, item in value.items():
            if self.key_pattern is not None and not re.fullmatch(self.key_pattern, key):
                raise RecordInvalid(_join(at, key), f"not a key matching {self.key_pattern}")
            self.value.check(item, _join(at, key))


@dataclass(frozen=True)
class Obj(Spec):
    """An object with ``required`` keys and ``optional`` ones (checked when present); others are allowed."""

    required: Mapping[str, Spec] = field(default_factory=dict)
    optional: Mapping[str, Spec] = field(default_factory=dict)

    def check(self, value: Any, at: str) -> None:
        if not isinstance(value, dict):
            raise self.fail(value, at, "an object")
        for key, spec in self.required.items():
            if key not in value:
                raise RecordInvalid(_join(at, key), "missing")
            spec.check(value[key], _join(at, key))
        for key, spec in self.optional.items():
            if key in value:
                spec.check(value[key], _join(at, key))


def _join(at: str, key: str) -> str:
    return f"{at}.{key}" if at else key


# ------------------------------------------------------------------------------------------- parsing
def parse_json(data: bytes | str) -> Any:
    """JSON from bytes or text; anything that is not UTF-8 JSON is :class:`RecordInvalid` (no other error)."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        return json.loads(text)
    except UnicodeDecodeError as exc:
        raise RecordInvalid("", f"not UTF-8 text (byte {exc.start})") from exc
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno} column {exc.colno}"
        raise RecordInvalid("", f"not valid JSON ({exc.msg} at {where})") from exc
    except (ValueError, RecursionError) as exc:  # an integer of > 4300 digits; nesting deeper than the stack
        raise RecordInvalid("", f"not valid JSON ({type(exc).__name__})") from exc


def parse(data: bytes | str, spec: Spec) -> Any:
    """Parse and check; raises :class:`RecordInvalid`."""
    value = parse_json(data)
    try:
        spec.check(value, "")
    except RecursionError as exc:
        raise RecordInvalid("", "nested too deeply") from exc
    return value


def _read_bytes(file: Path, where: str) -> bytes:
    try:
        return file.read_bytes()
    except FileNotFoundError as exc:
        raise JtcseError(f"{where}: not found") from exc
    except IsADirectoryError as exc:
        raise JtcseError(f"{where}: is a directory, not a file") from exc
    except OSError as exc:
        raise JtcseError(f"{where}: cannot read it ({exc.strerror or exc})") from exc


def _fix(remedy: str) -> str:
    return f"; {remedy}" if remedy else ""


def read_record(file: str | Path, spec: Spec, *, where: str = "", remedy: str = "") -> Any:
    """The checked record in ``file``; anything wrong is a one-line :class:`JtcseError` that starts with
    ``where`` (default: the file), names the field and ends with ``remedy``."""
    file = Path(file)
    where = where or str(file)
    try:
        return parse(_read_bytes(file, where), spec)
    except RecordInvalid as exc:
        raise JtcseError(f"{where}: {exc}{_fix(remedy)}") from exc


def check_record(value: Any, spec: Spec, *, where: str, remedy: str = "") -> Any:
    """``value`` (a record already read) checked against ``spec``; a one-line :class:`JtcseError` if not."""
    try:
        spec.check(value, "")
    except RecordInvalid as exc:
        raise JtcseError(f"{where}: {exc}{_fix(remedy)}") from exc
    return value


def read_format_record(
    file: str | Path,
    spec: Spec,
    *,
    kind: str,
    format_name: str,
    max_version: int,
    where: str = "",
    remedy: str = "",
) -> dict[str, Any]:
    """A record that names its ``format`` and ``format_version`` (manifests, index metadata): the format is
    checked first (a file of another kind or a newer jtcse says so), then ``spec``."""
    file = Path(file)
    where = where or str(file)
    try:
        document = parse_json(_read_bytes(file, where))
    except RecordInvalid as exc:
        raise JtcseError(f"{where}: {exc}{_fix(remedy)}") from exc
    if not isinstance(document, dict) or document.get("format") != format_name:
        raise JtcseError(f"{where}: not a {kind}{_fix(remedy)}")
    version = document.get("format_version", 0)
    if isinstance(version, int) and not isinstance(version, bool) and version > max_version:
        raise JtcseError(
            f"{where}: written by a newer jtcse; upgrade jtcse" + (f" or {remedy}" if remedy else "")
        )
    try:
        Obj({"format_version": Int(0, max_version)}).check(document, "")
        spec.check(document, "")
    except RecordInvalid as exc:
        raise JtcseError(f"{where}: {exc}{_fix(remedy)}") from exc
    return document


def read_cache(file: str | Path, spec: Spec, *, what: str = "cached result", redo: str = "redoing it") -> Any:
    """A cache entry: its checked value, or ``None`` when there is none or it is damaged. A damaged one is
    one :class:`JtcseWarning` line naming the file and the field; the caller redoes the work."""
    file = Path(file)
    try:
        data = file.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        note = f"{file}: cannot read the {what} ({exc.strerror or exc}); {redo}"
        warnings.warn(JtcseWarning(note), stacklevel=2)
        return None
    try:
        return parse(data, spec)
    except RecordInvalid as exc:
        warnings.warn(JtcseWarning(f"{file}: damaged {what} ({exc}); ignored, {redo}"), stacklevel=2)
        return None


def parse_lines(
    data: bytes, spec: Spec, *, where: str, remedy: str = "", torn_tail: bool = True
) -> list[Any]:
    """The records of a JSON-lines file (blank lines skipped). A last line without its newline that does
    not parse is a write a crash cut short and is dropped (``torn_tail``); any other bad line is a one-line
    :class:`JtcseError` naming ``where:LINE`` and the field."""
    lines = data.split(b"\n")
    records = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            records.append(parse(line, spec))
        except RecordInvalid as exc:
            if torn_tail and number == len(lines):  # no newline after it: the line was being written
                break
            raise JtcseError(f"{where}:{number}: {exc}{_fix(remedy)}") from exc
    return records


def read_lines(file: str | Path, spec: Spec, *, where: str = "", remedy: str = "") -> list[Any]:
    """:func:`parse_lines` of a file."""
    file = Path(file)
    where = where or str(file)
    return parse_lines(_read_bytes(file, where), spec, where=where, remedy=remedy)
