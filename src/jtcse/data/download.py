"""Fetch the evaluation data (and the training corpus) into a data directory, verified.

What to fetch comes from ``manifest.json`` beside this module (rebuilt by ``tools/make_manifest.py`` from the
shared data's ``SOURCES.md``): one entry per file with its place under the data directory, its size, its
sha256 and a pinned origin URL (a GitHub commit, so the bytes cannot change under us). The wiki1m corpus has
no published checksum; it is fetched unverified, and said so. SentEval's transfer-task files (group
``transfer``, in SentEval's layout ``downstream/MR/rt-polarity.pos`` ...) are in ``transfer_manifest.json``.

``base_url`` (or ``$JTCSE_DATA_URL``) replaces every origin by a mirror laid out like a data directory:
``<base_url>/sts/STS12/senteval/STS.input.MSRpar.txt``. ``file://`` URLs and plain local paths work too, so a
copy of the data on disk (or a loopback server in tests) can stand in for the network.

Every file is written atomically: bytes go to a temporary file beside the target, are checked (size, sha256),
and only then renamed into place. A failed or mismatching download leaves no partial file behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jtcse.errors import JtcseError
from jtcse.fs import sha256_file

URL_ENV = "JTCSE_DATA_URL"
MANIFEST_PATH = Path(__file__).with_name("manifest.json")
TRANSFER_MANIFEST_PATH = Path(__file__).with_name("transfer_manifest.json")
GROUPS = ("sts", "wiki", "transfer")
WHAT_CHOICES = ("sts", "wiki", "transfer", "all")
_CHUNK = 1 << 16
_TIMEOUT_S = 60


@dataclass(frozen=True)
class ManifestEntry:
    path: str  # relative to the data directory, "/"-separated
    group: str  # "sts", "wiki" or "transfer"
    size: int | None
    sha256: str | None  # None: no published checksum, fetched unverified
    url: str  # pinned origin
    licence: str = ""


def load_manifest(what: str = "all") -> list[ManifestEntry]:
    """Entries of the packaged manifests for ``what`` (``sts``, ``wiki``, ``transfer`` or ``all``)."""
    groups = _groups(what)
    entries = []
    for path in (MANIFEST_PATH, TRANSFER_MANIFEST_PATH):
        raw = json.loads(path.read_text(encoding="utf-8"))
        entries += [ManifestEntry(**item) for item in raw["files"]]
    return [entry for entry in entries if entry.group in groups]


def missing_files(dest: str | Path, what: str = "sts") -> list[ManifestEntry]:
    """Manifest entries for ``what`` that are absent from ``dest`` (presence only; no hashing)."""
    dest = Path(dest)
    return [entry for entry in load_manifest(what) if not (dest / entry.path).is_file()]


def entry_url(entry: ManifestEntry, base_url: str | None = None) -> str:
    """Where to fetch ``entry``: its pinned origin, or ``<base>/<path>`` under a mirror."""
    base = base_url if base_url is not None else os.environ.get(URL_ENV) or None
    if not base:
        return entry.url
    return f"{_as_url(base).rstrip('/')}/{urllib.parse.quote(entry.path)}"


def download_data(
    dest: str | Path,
    *,
    what: str = "sts",
    base_url: str | None = None,
    show_progress: bool = True,
    entries: Sequence[ManifestEntry] | None = None,
) -> list[Path]:
    """Make ``dest`` hold every manifest file of ``what``; return the paths fetched now.

    Files already present with the right checksum are kept; a present file with a wrong checksum is fetched
    again and replaced. Raises :class:`JtcseError` (one line) when a fetch fails or a checksum mismatches.
    ``entries`` replaces the packaged manifest (``what`` is then ignored).
    """
    dest = Path(dest).expanduser()
    wanted = load_manifest(what) if entries is None else list(entries)
    todo = [entry for entry in wanted if not _is_good(dest / entry.path, entry)]
    if not todo:
        return []
    from tqdm.auto import tqdm  # only needed when something is fetched

    known = [entry.size for entry in todo]
    total = sum(s for s in known if s is not None) if all(s is not None for s in known) else None
    fetched: list[Path] = []
    with tqdm(
        total=total,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        desc=f"jtcse data ({what})",
        disable=not show_progress,
    ) as bar:
        for entry in todo:
            bar.set_postfix_str(entry.path.rsplit("/", 1)[-1], refresh=False)
            target = dest / entry.path
            fetch_file(entry_url(entry, base_url), target, sha256=entry.sha256, size=entry.size, progress=bar)
            fetched.append(target)
    return fetched


def fetch_file(
    url: str,
    target: str | Path,
    *,
    sha256: str | None = None,
    size: int | None = None,
    progress: Any = None,
) -> Path:
    """Download ``url`` to ``target`` atomically, checking ``size`` and ``sha256`` when given.

    ``progress`` is an optional tqdm bar advanced by the bytes received (its total grows by the
    Content-Length when it has none).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    temp: Path | None = None
    try:
        with tempfile.NamedTemporaryFile(
            dir=target.parent, prefix=f".{target.name}.", suffix=".part", delete=False
        ) as handle:
            temp = Path(handle.name)
            digest, received = _stream(url, handle, progress)
        if size is not None and received != size:
            raise JtcseError(
                f"download of {url}: got {received} bytes, expected {size}; nothing written to {target}"
            )
        if sha256 is not None and digest != sha256:
            raise JtcseError(
                f"download of {url}: sha256 mismatch (expected {sha256}, got {digest}); "
                f"nothing written to {target}"
            )
        os.replace(temp, target)
    finally:
        if temp is not None:
            temp.unlink(missing_ok=True)  # gone already after a successful rename
    return target


def _stream(url: str, handle: Any, progress: Any) -> tuple[str, int]:
    """Copy ``url`` into the open file ``handle``; return (sha256 hex digest, bytes received)."""
    digest = hashlib.sha256()
    received = 0
    try:
        with urllib.request.urlopen(url, timeout=_TIMEOUT_S) as response:
            length = response.headers.get("Content-Length")
            if progress is not None and progress.total is None and length and length.isdigit():
                progress.total = int(length)
                progress.refresh()
            for chunk in iter(lambda: response.read(_CHUNK), b""):
                handle.write(chunk)
                digest.update(chunk)
                received += len(chunk)
                if progress is not None:
                    progress.update(len(chunk))
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise JtcseError(f"download failed: {url}: {reason}") from exc
    return digest.hexdigest(), received


def _is_good(path: Path, entry: ManifestEntry) -> bool:
    if not path.is_file():
        return False
    if entry.size is not None and path.stat().st_size != entry.size:
        return False
    return entry.sha256 is None or sha256_file(path) == entry.sha256


def _groups(what: str) -> Sequence[str]:
    if what == "all":
        return GROUPS
    if what in GROUPS:
        return (what,)
    raise JtcseError(f"--what {what}: unknown; choose from {', '.join(WHAT_CHOICES)}")


def _as_url(base: str) -> str:
    """Accept a URL or a local directory (made a file:// URL)."""
    if "://" in base:
        return base
    return Path(base).expanduser().resolve().as_uri()
