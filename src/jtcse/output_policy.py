"""One output policy for every writer: what a command may write to, checked before any work starts.

Every command that writes a file or a folder calls :func:`check_output` first (one line), before it loads a
model or reads its data, so a bad output costs nothing and destroys nothing::

    out = check_output(args.output, option="--output", ours=("index.json",), inputs={"--model": model},
                       replaces=True)

The rules, each a one-line :class:`JtcseError` naming the option and the path:

* **kind**: a folder wanted where a file is (or a file wanted where a folder is), or a parent that is a file;
* **inputs**: the output is one of the command's inputs, or lies inside one (except ``holders``: ``jtcse
  index`` puts its index in the vectors folder by design), or, for a writer that replaces its folder as a
  whole, holds one;
* **ours**: an existing, non-empty folder that this command did not write is refused (``--overwrite``, for
  the commands that have one, is the user's consent to replace it). A folder is *ours* when it holds one
  of the names the command itself writes (``ours``: ``index.json``, ``manifest.json``,
  ``train_config.yaml``...): no marker file is needed, so folders written by earlier versions stay ours.
  A writer that replaces the folder as a whole (``replaces``) requires *every* entry to be one of
  ``ours``: a user's file put beside an index would otherwise be deleted with it. A folder holding only
  jtcse's lock file or crash temporaries counts as empty;
* **the current directory, a parent of it or a mount point** cannot be replaced as a whole (the rename
  fails with ``EBUSY``, or would pull the shell's directory away): refused for ``replaces`` writers;
* **writable**: a probe file is created and removed where the writer will write (the folder when it
  exists; for a new folder, a file or a ``replaces`` writer also the nearest existing parent). A probe is the
  only check that works for root, whom permission bits do not stop but a read-only file system does.

Every path checked is remembered (:func:`checked_outputs`) so the CLI can turn an ``OSError`` on it into one
line (``jtcse.cli.main``).
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Literal

from jtcse.errors import JtcseError
from jtcse.fs import can_write_in, is_leftover_name, nearest_existing
from jtcse.locks import LOCK_NAME

_CHECKED: list[Path] = []

Kind = Literal["folder", "file"]


def check_output(
    path: str | Path,
    *,
    option: str,
    kind: Kind = "folder",
    ours: Collection[str] | None = (),
    inputs: Mapping[str, str | Path | None] | None = None,
    holders: Mapping[str, str | Path | None] | None = None,
    replaces: bool = False,
    overwrite: bool | None = None,
) -> Path:
    """Check ``path`` (the value of ``option``) against the rules of the module doc and return it.

    ``kind``: what the writer makes there. ``ours``: names whose presence marks a folder this command wrote
    (None: the writer only adds files of its own names to any folder, as ``jtcse plot`` does). ``inputs``:
    the command's inputs, option -> path (None, or a path that does not exist: nothing to protect, e.g. a
    hub id). ``holders``: inputs the output may lie inside (but neither be nor, when it ``replaces``,
    hold). ``replaces``: the writer swaps the whole folder in (``jtcse.fs.staged_directory``).
    ``overwrite``: the command's ``--overwrite`` (None when it has none)."""
    out = Path(path).expanduser()
    where = f"{option} {path}"
    _check_kind(out, where, kind)
    for nested, sources in ((False, inputs), (True, holders)):
        for name, value in (sources or {}).items():
            if value is not None and str(value) != "" and Path(value).expanduser().exists():
                _check_input(out, where, name, Path(value).expanduser(), nested=nested, replaces=replaces)
    if replaces:
        _check_replaceable(out, where)
    if kind == "folder" and out.is_dir() and ours is not None:
        _check_ours(out, where, ours, replaces=replaces, overwrite=overwrite)
    # in the folder (its files, its lock); beside it when it is new, a file, or swapped in whole (staging)
    probes = [out] if out.is_dir() else []
    probes += [_existing_parent(out)] if replaces or not out.is_dir() else []
    for folder in probes:
        reason = can_write_in(folder)
        if reason is not None:
            raise JtcseError(f"{where}: cannot write in {folder}: {reason}")
    if _absolute(out) not in _CHECKED:
        _CHECKED.append(_absolute(out))
    return out


def checked_outputs() -> list[Path]:
    """Every output :func:`check_output` accepted in this process (absolute)."""
    return list(_CHECKED)


# ------------------------------------------------------------------------------------------- the rules
def _absolute(path: Path) -> Path:
    """The absolute path with symlinks resolved as far as the path exists (``Path.resolve`` is not strict)."""
    return Path(os.path.realpath(path))


def _existing_parent(out: Path) -> Path:
    return nearest_existing(_absolute(out).parent) or Path("/")


def _check_kind(out: Path, where: str, kind: Kind) -> None:
    if kind == "folder" and out.exists() and not out.is_dir():
        raise JtcseError(f"{where}: is a file, not a folder; choose another output folder")
    if kind == "file" and out.is_dir():
        raise JtcseError(f"{where}: is a folder, not a file; name a file to write")
    parent = _existing_parent(out)
    if not parent.is_dir():
        raise JtcseError(f"{where}: cannot be created: {parent} is a file")


def _check_input(out: Path, where: str, name: str, source: Path, *, nested: bool, replaces: bool) -> None:
    target, held = _absolute(out), _absolute(source)
    if target == held:
        raise JtcseError(f"{where}: is the input {name} {source}; writing there would destroy it")
    if held in target.parents and not nested:
        raise JtcseError(f"{where}: lies inside the input {name} {source}; choose a path outside it")
    if target in held.parents and replaces:
        raise JtcseError(f"{where}: holds the input {name} {source}; replacing it would delete that input")


def _check_replaceable(out: Path, where: str) -> None:
    target = _absolute(out)
    if target == _absolute(Path.cwd()) or target in _absolute(Path.cwd()).parents:
        raise JtcseError(f"{where}: is the current directory (or holds it); name a new folder inside it")
    if out.is_dir() and os.path.ismount(target):
        raise JtcseError(f"{where}: is a mount point, which cannot be replaced; name a new folder inside it")


def _foreign_entries(out: Path) -> list[str]:
    """The entries of ``out`` other than jtcse's lock file and crash temporaries."""
    names = sorted(os.listdir(out))
    return [n for n in names if n != LOCK_NAME and not is_leftover_name(n)]


def _check_ours(
    out: Path, where: str, ours: Collection[str], *, replaces: bool, overwrite: bool | None
) -> None:
    try:
        entries = _foreign_entries(out)
    except OSError as exc:
        raise JtcseError(f"{where}: cannot read the folder: {exc.strerror or exc}") from exc
    if not entries or overwrite:
        return
    others = [n for n in entries if n not in ours]
    mine = len(others) < len(entries)
    if mine and not (replaces and others):
        return
    shown = ", ".join(others[:3]) + (", ..." if len(others) > 3 else "")
    what = f"holds files jtcse did not write ({shown})" if mine else "exists and is not empty"
    way = "pass --overwrite to replace it, or choose" if overwrite is not None else "choose"
    raise JtcseError(f"{where}: {what}; {way} a new or empty folder")
