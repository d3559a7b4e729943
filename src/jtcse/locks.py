"""One writer per output folder: an exclusive lock on a run, shard or index folder while a command writes it.

``with output_lock(folder, what="--output-dir"):`` takes ``fcntl.flock`` on ``folder/.jtcse.lock`` (without
waiting) and writes into that file who holds it: host, pid, start time and command. A second writer of the
same folder stops at once with a one-line :class:`JtcseError` (CLI exit 2) naming the holder. The file is
removed when the lock is released; a process killed with ``-9`` leaves it behind, but the kernel dropped its
``flock`` with the process, so the next writer takes it over (and says whose it was).

Where ``flock`` does not reach (a file system without it, or one that does not share it between machines),
the recorded holder decides: a holder on this host whose process is gone is taken over, a running one
refuses, and one recorded by another host (whose processes this host cannot see) refuses with the way to
clear it: delete the lock file once no writer runs there. The file's name starts with a dot, so model
checksums (:mod:`jtcse.integrity`) and folder listings of shards never count it.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from jtcse.errors import JtcseError, JtcseWarning
from jtcse.fs import check_output_dir
from jtcse.records import PID_MAX, Int, Obj, RecordInvalid, Str, parse

LOCK_NAME = ".jtcse.lock"
HOLDER_SPEC = Obj({"host": Str(), "pid": Int(1, PID_MAX)}, {"since": Str(), "command": Str()})
DAMAGED = "damaged"  # _read_holder's key for a record that does not match HOLDER_SPEC
_NO_FLOCK = frozenset({errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL})
_HELD = frozenset({errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES})
_ATTEMPTS = 5  # the file was replaced between open and flock (a writer released it): open it again


def lock_path(folder: str | Path) -> Path:
    return Path(folder) / LOCK_NAME


@contextmanager
def output_lock(folder: str | Path, *, what: str) -> Iterator[Path]:
    """Hold the folder's lock for the block (the folder is created if needed; one this call created and
    left empty is removed again). ``what``: the option that named the folder, for the messages."""
    folder = Path(folder)
    check_output_dir(folder)  # a file in its place: the usual one line
    created = not folder.exists()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise JtcseError(f"{what} {folder}: cannot create the folder ({exc.strerror or exc})") from exc
    fd = _acquire(folder, what)
    try:
        yield lock_path(folder)
    finally:
        if _same_file(fd, lock_path(folder)):  # not one a later writer made (the folder was swapped)
            with suppress(OSError):
                lock_path(folder).unlink()  # before the unlock: an opener then finds it gone and retries
        os.close(fd)
        if created:
            with suppress(OSError):
                folder.rmdir()  # only when empty: a run that wrote nothing leaves no folder behind


def _acquire(folder: Path, what: str) -> int:
    path = lock_path(folder)
    for _ in range(_ATTEMPTS):
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            has_flock = _try_flock(fd, path, what)
            if not _same_file(fd, path):
                os.close(fd)
                continue
            _check_recorded(_read_holder(fd), has_flock, path, what)
            _record_self(fd)
            return fd
        except BaseException:
            os.close(fd)
            raise
    raise JtcseError(
        f"{what} {folder}: {path} keeps changing under this process; another writer is busy here"
    )


def _try_flock(fd: int, path: Path, what: str) -> bool:
    """True: this process holds the flock; False: the file system has none (the recorded holder decides)."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError as exc:
        if exc.errno in _NO_FLOCK:
            return False
        if exc.errno in _HELD:
            raise _busy(path, what, _read_holder(fd)) from exc
        raise


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.fstat(fd).st_ino == os.stat(path).st_ino
    except FileNotFoundError:
        return False


def _check_recorded(holder: dict[str, object], has_flock: bool, path: Path, what: str) -> None:
    """A holder recorded in the file that this process's flock could not see: refuse or take over."""
    if not holder:
        return
    if DAMAGED in holder:
        if not has_flock:
            raise JtcseError(
                f"{what} {path.parent}: {path} holds a damaged lock record ({holder[DAMAGED]}); if no jtcse "
                f"process writes there any more, delete {path}"
            )
        warnings.warn(
            JtcseWarning(
                f"{path}: damaged lock record ({holder[DAMAGED]}); no process holds it, taking it over"
            ),
            stacklevel=2,
        )
        return
    host, pid = str(holder.get("host", "")), holder.get("pid")
    if host and host != socket.gethostname():
        raise JtcseError(
            f"{what} {path.parent}: locked by {_describe(holder)}, another host whose processes this one "
            f"cannot see; if no jtcse process writes there any more, delete {path}"
        )
    if pid == os.getpid():
        return
    alive = isinstance(pid, int) and _pid_alive(pid)
    if alive and not has_flock:
        raise _busy(path, what, holder)
    warnings.warn(
        JtcseWarning(f"{what} {path.parent}: taking over the lock of {_describe(holder)}, which is gone"),
        stacklevel=2,
    )


def _busy(path: Path, what: str, holder: dict[str, object]) -> JtcseError:
    return JtcseError(
        f"{what} {path.parent}: another jtcse process is writing here ({_describe(holder)}); wait for it to "
        "finish or stop it, or use another folder"
    )


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def _read_holder(fd: int) -> dict[str, object]:
    """The recorded holder; ``{}`` when none is recorded yet (an empty file), ``{DAMAGED: why}`` when the
    record does not match its schema (a pid out of range was an ``OverflowError`` in ``os.kill``)."""
    os.lseek(fd, 0, os.SEEK_SET)
    data = os.read(fd, 1 << 16)
    if not data.strip():
        return {}
    try:
        holder: dict[str, object] = parse(data, HOLDER_SPEC)
    except RecordInvalid as exc:
        return {DAMAGED: str(exc)}
    return holder


def _record_self(fd: int) -> None:
    """Who holds the lock, written into the lock file itself (in place: its inode is what is locked)."""
    holder = {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "since": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": " ".join([_program(), *sys.argv[1:]])[:300],
    }
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, (json.dumps(holder) + "\n").encode("utf-8"))


def _program() -> str:
    name = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python"
    return "jtcse" if name in ("__main__.py", "jtcse", "-m", "-c") else name


def _describe(holder: dict[str, object]) -> str:
    if not holder:
        return "its holder is not recorded yet"
    if DAMAGED in holder:
        return f"its holder record is damaged: {holder[DAMAGED]}"
    text = f"pid {holder.get('pid')} on {holder.get('host')}"
    if holder.get("since"):
        text += f" since {holder['since']}"
    if holder.get("command"):
        text += f": {holder['command']}"
    return text
