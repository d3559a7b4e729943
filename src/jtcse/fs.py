"""File-system helpers every writer uses: atomic file writes and build-then-swap directories.

One home for "never leave a torn file": checkpoints, ``jtcse.json``, model cards, vectors, search indexes,
reports and exports all write through here.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO


def _umask() -> int:
    """The process umask (read by setting it and putting it back: the only portable way)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write(target: str | Path, write: Callable[[IO[bytes]], object]) -> None:
    """Write a file so that a crash leaves either the old or the new content, never a torn file:
    ``write(fh)`` fills a temporary file beside ``target``, which is fsynced and renamed over it."""
    target = Path(target)
    # mkstemp makes a private (0600) file; the result gets the mode a plain open() would give it (or keeps
    # the mode of the file it replaces), so a model directory stays readable by whoever could read it before.
    mode = target.stat().st_mode & 0o7777 if target.is_file() else 0o666 & ~_umask()
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def staged_directory(out: str | Path, *, prefix: str = "jtcse_tmp_") -> Iterator[Path]:
    """Build a directory in a sibling temporary folder and swap it in for ``out`` only when the block
    succeeds: an error (or Ctrl-C) leaves ``out`` as it was, never half-written. The old ``out`` is moved
    aside before the new one is renamed in, and deleted only after."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=prefix, dir=out.parent))
    try:
        os.chmod(staging, 0o777 & ~_umask())  # mkdtemp's folder is private (0700); a plain mkdir's is not
        yield staging
        aside = None
        if out.exists():
            aside = Path(tempfile.mkdtemp(prefix=f"{prefix}old_", dir=out.parent)) / "old"
            out.rename(aside)
        try:
            staging.rename(out)
        except BaseException:
            if aside is not None:
                aside.rename(out)
            raise
        if aside is not None:
            shutil.rmtree(aside.parent, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def atomic_write_text(target: str | Path, text: str) -> None:
    """:func:`atomic_write` of UTF-8 text."""
    atomic_write(target, lambda fh: fh.write(text.encode("utf-8")))


def fsync_dir(directory: Path) -> None:
    # Makes the rename itself durable; not every platform can open a directory (Windows cannot).
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
