"""File-system helpers every writer uses: atomic file writes and build-then-swap directories.

One home for "never leave a torn file": checkpoints, ``jtcse.json``, model cards, vectors, search indexes,
reports and exports all write through here. Three promises:

* a crash leaves either the old or the new content of a file or directory, never a mix;
* a full disk (``ENOSPC``/``EDQUOT``, however the writer reports it) is a one-line :class:`JtcseError`
  naming the path, the free space and the space needed; the temporary is removed and the old file kept;
* temporaries left by a process that died are removed the next time anything writes there. Their names
  carry the writer's host and process id, so a temporary of a process that is still running is never
  touched.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO, Any

from jtcse.errors import JtcseError

_DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
# how writers that do not raise OSError say it (safetensors' Rust writer, torch's zip writer)
_DISK_FULL_TEXT = ("no space left on device", "disk quota exceeded", "os error 28", "os error 122")
# numpy's ndarray.tofile (np.save to a real file) reports a short write without an errno
_SHORT_WRITE = re.compile(r"\b\d+ requested and \d+ written\b")
# a temporary of another host is only taken to be orphaned after this long (no way to ask for its pid)
_FOREIGN_AGE_S = 24 * 3600
# ".NAME.<host>-<pid>.<random>.tmp" (this version) or ".NAME.<random>.tmp" (earlier versions)
_TEMP_FILE = re.compile(r"^\.(?P<name>.+?)\.(?:(?P<host>[0-9a-f]{6})-(?P<pid>\d+)\.)?[a-z0-9_]{8}\.tmp$")
# staged_directory's folders: "<prefix>[old_]<host>-<pid>.<random>", prefix "jtcse_..._tmp_"
# (a leading dot: jtcse index's hidden ones)
_STAGING_DIR = re.compile(
    r"^\.?jtcse_(?:[a-z]+_)*tmp_(?P<old>old_)?(?:(?P<host>[0-9a-f]{6})-(?P<pid>\d+)\.)?[a-z0-9_]{8}$"
)


def _umask() -> int:
    """The process umask (read by setting it and putting it back: the only portable way)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _owner_tag() -> str:
    """``<host>-<pid>`` of this process, part of every temporary's name (pid taken now: forks differ)."""
    host = hashlib.sha1(socket.gethostname().encode("utf-8", "replace")).hexdigest()[:6]
    return f"{host}-{os.getpid()}"


# ------------------------------------------------------------------------------------------- full disk
def is_disk_full(exc: BaseException) -> bool:
    """True when ``exc`` (or an exception it was raised from) says the disk or the quota is full."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in _DISK_FULL_ERRNOS:
            return True
        text = str(current).lower()
        if any(marker in text for marker in _DISK_FULL_TEXT) or _SHORT_WRITE.search(text):
            return True
        current = current.__cause__ or current.__context__
    return False


def free_bytes(path: str | Path) -> int | None:
    """Free space for an unprivileged writer on the file system holding ``path`` (or its nearest parent)."""
    path = Path(path).absolute()
    for candidate in (path, *path.parents):
        try:
            return shutil.disk_usage(candidate).free
        except OSError:
            continue
    return None


def human_size(n: int | None) -> str:
    if n is None:
        return "unknown"
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} TB"


def disk_full_error(
    path: str | Path, needed: int | None, *, exact: bool = True, kept: str = ""
) -> JtcseError:
    """The one-line error for a full disk at ``path``; ``needed`` is what the write takes in all (``exact``)
    or what it had written when the disk filled up (a lower bound)."""
    need = f", {'about' if exact else 'at least'} {human_size(needed)} needed" if needed else ""
    tail = f"; {kept}" if kept else ""
    return JtcseError(
        f"{path}: no space left on the device ({human_size(free_bytes(path))} free{need}); "
        f"free some space and run again{tail}"
    )


def _tree_size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            with suppress(OSError):
                total += (Path(root) / name).stat().st_size
    return total


# ------------------------------------------------------------------------------------------- writers
def nearest_existing(path: Path) -> Path | None:
    """``path`` itself when it exists, else its nearest existing parent (None: nothing of it exists)."""
    return next((candidate for candidate in (path, *path.parents) if candidate.exists()), None)


def check_output_dir(out: str | Path) -> None:
    """An output directory (or one of its parents) that is a file is a one-line error, before any work."""
    out = Path(out)
    found = nearest_existing(out)
    if found == out and not out.is_dir():
        raise JtcseError(f"{out}: is a file, not a directory; choose another output directory")
    if found is not None and not found.is_dir():
        raise JtcseError(f"{out}: cannot be created: {found} is a file; choose another output path")


def atomic_write(
    target: str | Path, write: Callable[[IO[bytes]], object], *, size_hint: int | None = None
) -> None:
    """Write a file so that a crash leaves either the old or the new content, never a torn file:
    ``write(fh)`` fills a temporary file beside ``target``, which is fsynced and renamed over it.

    A full disk raises a one-line :class:`JtcseError` (the temporary removed, ``target`` untouched);
    ``size_hint`` (the expected size in bytes) makes its "needed" figure exact."""
    target = Path(target)
    remove_stale_temporaries(target.parent, name=target.name)
    # mkstemp makes a private (0600) file; the result gets the mode a plain open() would give it (or keeps
    # the mode of the file it replaces), so a model directory stays readable by whoever could read it before.
    mode = target.stat().st_mode & 0o7777 if target.is_file() else 0o666 & ~_umask()
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.{_owner_tag()}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException as exc:
        written = Path(tmp).stat().st_size if Path(tmp).exists() else 0
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, Exception) and is_disk_full(exc):
            kept = "the previous file is unchanged" if target.exists() else ""
            needed, exact = (size_hint, True) if size_hint and size_hint > written else (written + 1, False)
            raise disk_full_error(target, needed, exact=exact, kept=kept) from exc
        raise


@contextmanager
def staged_directory(
    out: str | Path, *, prefix: str = "jtcse_tmp_", size_hint: int | None = None
) -> Iterator[Path]:
    """Build a directory in a sibling temporary folder and swap it in for ``out`` only when the block
    succeeds: an error (or Ctrl-C) leaves ``out`` as it was, never half-written. The old ``out`` is moved
    aside before the new one is renamed in, and deleted only after. A full disk inside the block is a
    one-line :class:`JtcseError` naming ``out`` (``size_hint``: the expected size in bytes, for its
    "needed" figure)."""
    out = Path(os.path.abspath(out))  # "." has no name to rename by
    check_output_dir(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(out.parent)
    tag = _owner_tag()
    staging = Path(tempfile.mkdtemp(prefix=f"{prefix}{tag}.", dir=out.parent))
    with removed_on_failure(staging, out, size_hint=size_hint):
        os.chmod(staging, 0o777 & ~_umask())  # mkdtemp's folder is private (0700); a plain mkdir's is not
        yield staging
        aside = None
        if out.exists():
            # the aside folder keeps out's name, so a crash between the two renames can be undone
            aside = Path(tempfile.mkdtemp(prefix=f"{prefix}old_{tag}.", dir=out.parent)) / out.name
            try:
                out.rename(aside)
            except BaseException:  # a mount point or the current directory (EBUSY): leave no aside folder
                aside.parent.rmdir()
                raise
        try:
            staging.rename(out)
        except BaseException:
            if aside is not None:
                aside.rename(out)
            raise
        if aside is not None:
            shutil.rmtree(aside.parent, ignore_errors=True)


@contextmanager
def removed_on_failure(staging: Path, target: Path, *, size_hint: int | None = None) -> Iterator[None]:
    """Any error in the block deletes the folder ``staging`` that was being filled for ``target``; a full
    disk becomes the one-line :class:`JtcseError` naming ``target``."""
    try:
        yield
    except BaseException as exc:
        written = _tree_size(staging) if staging.exists() else 0
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(exc, Exception) and not isinstance(exc, JtcseError) and is_disk_full(exc):
            kept = f"{target} is unchanged" if target.exists() else ""
            exact = bool(size_hint and size_hint > written)
            needed = size_hint if exact else written + 1
            raise disk_full_error(target, needed, exact=exact, kept=kept) from exc
        raise


def atomic_write_text(target: str | Path, text: str) -> None:
    """:func:`atomic_write` of UTF-8 text."""
    data = text.encode("utf-8")
    atomic_write(target, lambda fh: fh.write(data), size_hint=len(data))


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


def can_write_in(folder: Path) -> str | None:
    """None when a file can be created in ``folder``, else the reason (a probe file is created and removed:
    permission bits do not stop root, a read-only file system or an immutable folder do)."""
    try:
        fd, probe = tempfile.mkstemp(prefix=f".jtcse_probe.{_owner_tag()}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        return exc.strerror or type(exc).__name__
    os.close(fd)
    os.unlink(probe)
    return None


# ------------------------------------------------------------------------------ leftovers of a crash
def is_leftover_name(name: str) -> bool:
    """Whether ``name`` is one of jtcse's temporaries (an atomic write's file, a staging folder, a probe)."""
    return bool(_TEMP_FILE.match(name) or _STAGING_DIR.match(name))


def _owner_is_gone(host: str | None, pid: str | None, mtime: float) -> bool:
    """Whether the process that made a temporary has ended (names without an owner: earlier versions)."""
    if host is None or pid is None:
        return True
    if host != _owner_tag().split("-")[0]:
        return time.time() - mtime > _FOREIGN_AGE_S
    if int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OSError):
        return False  # alive, but someone else's
    return False


def remove_stale_temporaries(directory: str | Path, *, name: str | None = None) -> list[Path]:
    """Remove what writers that died left in ``directory`` (not below it): ``.NAME.*.tmp`` files of
    :func:`atomic_write` (only those of ``name`` when given) and :func:`staged_directory` folders. An
    old version moved aside just before a crash is put back when nothing took its place. Returns what
    was removed; anything that cannot be removed is left alone."""
    directory = Path(directory)
    removed: list[Path] = []
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return removed
    for entry in entries:
        temp = _TEMP_FILE.match(entry.name)
        staging = None if temp else _STAGING_DIR.match(entry.name)
        match = temp or staging
        if match is None or (name is not None and (temp is None or temp["name"] != name)):
            continue
        try:
            if not _owner_is_gone(match["host"], match["pid"], entry.stat(follow_symlinks=False).st_mtime):
                continue
            path = Path(entry.path)
            if temp and entry.is_file(follow_symlinks=False):
                path.unlink()
            elif staging and entry.is_dir(follow_symlinks=False):
                if staging["old"]:
                    if staging["pid"] is None:
                        continue  # an earlier version's aside folder does not say what it held: keep it
                    _restore_aside(path)
                shutil.rmtree(path)
            else:
                continue
            removed.append(path)
        except OSError:
            continue
    return removed


def _restore_aside(aside_dir: Path) -> None:
    """A staged swap that died between its two renames: put the old version back where it was."""
    for child in aside_dir.iterdir():
        original = aside_dir.parent / child.name
        if not original.exists():
            child.rename(original)


def sha256_file(path: str | Path) -> str:
    """The SHA-256 of a file's bytes (hex), read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


class HashingWriter:
    """A write-only file object that passes writes through to ``fh`` while hashing (SHA-256) and counting
    them, so a writer learns its file's checksum without reading it back (torch.save and numpy write
    through ``write`` only)."""

    def __init__(self, fh: IO[bytes]) -> None:
        self.fh, self.digest, self.size = fh, hashlib.sha256(), 0

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self.digest.update(view)
        self.size += len(view)
        return self.fh.write(view)

    def flush(self) -> None:
        self.fh.flush()
