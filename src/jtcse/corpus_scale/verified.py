"""Checksums of large files verified on first use and remembered, so a search never reads a damaged
shard or re-ranking copy and never re-hashes an unchanged one.

Hashing every shard on every search would cost a full read of the vectors (1.5 GB per million 384-dim
vectors, about a second at SHA-256 speed) per command. Instead a file's SHA-256 (recorded by the writer:
the manifest for shards, ``index.json`` for an index's files) is checked the first time a process uses the
file, and a success is remembered in a small per-folder record under ``$XDG_CACHE_HOME/jtcse/verified/``,
keyed by what any write changes: size, ``mtime_ns``, ``ctime_ns`` (which no user call can set back), inode
and device. A later process finds the same stat and skips the hash (cost: one ``stat`` per file); any
write through the file system changes the stat, so the file is hashed again and a flipped byte is caught.
What this does not catch is the disk itself rotting a byte without a write: ``--verify`` re-hashes every
file the command uses, whatever the record says.

The record is a cache (:func:`jtcse.records.read_cache`): damaged, it is ignored with a one-line note and
the files are hashed again; a folder where it cannot be written only loses the memory, never the check.
"""

from __future__ import annotations

import hashlib
import json
import os
from contextlib import suppress
from pathlib import Path
from typing import Any

from jtcse.errors import JtcseError
from jtcse.fs import atomic_write_text, sha256_file
from jtcse.records import SHA256, Const, Int, MapOf, Obj, Str, read_cache

FORMAT = "jtcse-verified"
_STAT_KEYS = ("size", "mtime_ns", "ctime_ns", "ino", "dev")
_SPEC = Obj(
    {
        "format": Const(FORMAT),
        "folder": Str(),
        "files": MapOf(Obj({"sha256": Str(pattern=SHA256), **{key: Int(0) for key in _STAT_KEYS}})),
    }
)


def memo_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "jtcse" / "verified"


def _stat_of(path: Path) -> dict[str, int]:
    st = path.stat()
    return {
        "size": st.st_size,
        "mtime_ns": st.st_mtime_ns,
        "ctime_ns": st.st_ctime_ns,
        "ino": st.st_ino,
        "dev": st.st_dev,
    }


class FileChecks:
    """The files of one folder, each checked against its recorded SHA-256 once (see the module doc).

    ``rehash``: ignore what earlier processes remembered (``--verify``); ``hashed`` counts the files this
    object actually read (the tests and the bench check that an unchanged file is not read again)."""

    def __init__(self, folder: str | Path, *, rehash: bool = False) -> None:
        self.folder = Path(folder).resolve()
        self.rehash = rehash
        self.hashed = 0
        self._ok: set[str] = set()  # verified by this process
        self._memo: dict[str, Any] | None = None
        key = hashlib.sha256(str(self.folder).encode("utf-8", "surrogateescape")).hexdigest()[:24]
        self.memo_file = memo_dir() / f"{key}.json"

    def _files(self) -> dict[str, Any]:
        if self._memo is None:
            record = None if self.rehash else read_cache(self.memo_file, _SPEC, what="verified-files record")
            mine = record is not None and record["folder"] == str(self.folder)  # not a hash collision
            self._memo = dict(record["files"]) if record is not None and mine else {}
        return self._memo

    def check(self, name: str, sha256: str, *, recorded_in: str, fix: str) -> None:
        """Refuse ``name`` (one line naming it) unless its bytes hash to ``sha256``; free when this process
        or an earlier one verified the file as it is now."""
        self.check_all([(name, sha256)], recorded_in=recorded_in, fix=fix)

    def check_all(self, files: list[tuple[str, str]], *, recorded_in: str, fix: str) -> None:
        """:meth:`check` of each ``(name, sha256)``; what was hashed is remembered in one write."""
        learned = False
        for name, sha256 in files:
            if name not in self._ok:
                learned |= self._check_one(name, sha256, recorded_in, fix)
        if learned:
            self._save()

    def _check_one(self, name: str, sha256: str, recorded_in: str, fix: str) -> bool:
        path = self.folder / name
        try:
            before = _stat_of(path)
        except OSError as exc:
            raise JtcseError(f"{path}: missing or unreadable ({exc.strerror or exc}); {fix}") from exc
        if self._files().get(name) == {"sha256": sha256, **before}:
            self._ok.add(name)
            return False
        self.hashed += 1
        if sha256_file(path) != sha256:
            raise JtcseError(
                f"{path}: checksum differs from {recorded_in} (truncated or damaged or replaced since it was "
                f"written); {fix}"
            )
        self._ok.add(name)
        try:
            if _stat_of(path) != before:  # written while it was being hashed: verified, not remembered
                return False
        except OSError:
            return False
        self._files()[name] = {"sha256": sha256, **before}
        return True

    def remember(self, name: str, sha256: str) -> None:
        """Record ``name`` as verified with ``sha256`` (a writer that just hashed what it wrote)."""
        self._files()[name] = {"sha256": sha256, **_stat_of(self.folder / name)}
        self._ok.add(name)
        self._save()

    def _save(self) -> None:
        record = {"format": FORMAT, "folder": str(self.folder), "files": self._files()}
        with suppress(OSError, JtcseError):  # no place to remember: the next process hashes again
            self.memo_file.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.memo_file, json.dumps(record, indent=1) + "\n")
