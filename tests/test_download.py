"""Downloading and verifying data, against a loopback HTTP server and file:// mirrors (never the network)."""

from __future__ import annotations

import functools
import hashlib
import http.server
import importlib.util
import json
import re
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from jtcse.cli.main import main
from jtcse.data import paths
from jtcse.data.download import (
    MANIFEST_PATH,
    URL_ENV,
    ManifestEntry,
    download_data,
    entry_url,
    fetch_file,
    load_manifest,
    missing_files,
)
from jtcse.data.sts import SICK_FILES, STS_YEAR_SUBSETS, STSB_FILES
from jtcse.errors import JtcseError

REPO_ROOT = Path(__file__).resolve().parents[1]


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # keep pytest output clean
        pass


@pytest.fixture
def mirror(tmp_path: Path) -> Path:
    """A small data-directory-shaped folder with made-up files."""
    root = tmp_path / "mirror"
    (root / "sts" / "TOY" / "senteval").mkdir(parents=True)
    (root / "sts" / "TOY" / "senteval" / "a.txt").write_bytes(b"first synthetic file\n")
    (root / "sts" / "TOY" / "senteval" / "b c.txt").write_bytes(
        b"second one, with a space in its name\n" * 50
    )
    return root


@pytest.fixture
def loopback(mirror: Path) -> Iterator[str]:
    """An HTTP server on 127.0.0.1 serving ``mirror``; yields its base URL."""
    handler = functools.partial(QuietHandler, directory=str(mirror))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def entries_for(mirror: Path) -> list[ManifestEntry]:
    found = []
    for path in sorted(mirror.rglob("*.txt")):
        data = path.read_bytes()
        relative = path.relative_to(mirror).as_posix()
        digest = hashlib.sha256(data).hexdigest()
        found.append(ManifestEntry(relative, "sts", len(data), digest, f"https://example.invalid/{relative}"))
    return found


def leftovers(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.endswith(".part")]


def test_fetch_over_loopback_http(tmp_path: Path, mirror: Path, loopback: str) -> None:
    source = mirror / "sts" / "TOY" / "senteval" / "a.txt"
    target = tmp_path / "out" / "deep" / "a.txt"
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    fetch_file(f"{loopback}/sts/TOY/senteval/a.txt", target, sha256=digest, size=source.stat().st_size)
    assert target.read_bytes() == source.read_bytes()
    assert leftovers(tmp_path / "out") == []


def test_checksum_mismatch_leaves_nothing(tmp_path: Path, loopback: str) -> None:
    target = tmp_path / "out" / "a.txt"
    with pytest.raises(JtcseError, match=r"sha256 mismatch \(expected 0{64}, got [0-9a-f]{64}\)"):
        fetch_file(f"{loopback}/sts/TOY/senteval/a.txt", target, sha256="0" * 64)
    assert not target.exists()
    assert leftovers(tmp_path / "out") == []


def test_size_mismatch_and_http_error(tmp_path: Path, loopback: str) -> None:
    target = tmp_path / "out" / "a.txt"
    with pytest.raises(JtcseError, match="got 21 bytes, expected 5"):
        fetch_file(f"{loopback}/sts/TOY/senteval/a.txt", target, size=5)
    with pytest.raises(JtcseError, match=r"^download failed: http://127\.0\.0\.1:\d+/missing\.txt: "):
        fetch_file(f"{loopback}/missing.txt", target)
    assert not target.exists()
    assert leftovers(tmp_path / "out") == []


def test_download_data_from_a_mirror_then_skips_good_files(
    tmp_path: Path, mirror: Path, loopback: str
) -> None:
    entries = entries_for(mirror)
    dest = tmp_path / "dest"
    fetched = download_data(dest, base_url=loopback, entries=entries, show_progress=False)
    assert sorted(p.relative_to(dest).as_posix() for p in fetched) == [e.path for e in entries]
    for entry in entries:
        assert (dest / entry.path).read_bytes() == (mirror / entry.path).read_bytes()
    assert download_data(dest, base_url=loopback, entries=entries, show_progress=False) == []
    # A damaged local copy is fetched again.
    (dest / entries[0].path).write_bytes(b"damaged")
    assert download_data(dest, base_url=loopback, entries=entries, show_progress=False) == [
        dest / entries[0].path
    ]
    assert (dest / entries[0].path).read_bytes() == (mirror / entries[0].path).read_bytes()


def test_download_data_mismatch_from_file_mirror(tmp_path: Path, mirror: Path) -> None:
    entries = entries_for(mirror)
    (mirror / entries[1].path).write_bytes(b"tampered after the manifest was made\n")
    dest = tmp_path / "dest"
    with pytest.raises(JtcseError, match="nothing written to"):
        download_data(dest, base_url=mirror.as_uri(), entries=entries, show_progress=False)
    assert not (dest / entries[1].path).exists()
    assert leftovers(dest) == []


def test_entry_url_overrides(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    entry = ManifestEntry("sts/STS12/senteval/STS.gs.MSRpar.txt", "sts", 1, None, "https://origin.example/x")
    monkeypatch.delenv(URL_ENV, raising=False)
    assert entry_url(entry) == "https://origin.example/x"
    monkeypatch.setenv(URL_ENV, "http://127.0.0.1:9/base/")
    assert entry_url(entry) == "http://127.0.0.1:9/base/sts/STS12/senteval/STS.gs.MSRpar.txt"
    assert entry_url(entry, base_url=str(tmp_path)) == f"{tmp_path.as_uri()}/{entry.path}"


def test_manifest_covers_every_file_the_readers_need() -> None:
    sts = {entry.path: entry for entry in load_manifest("sts")}
    needed = [
        f"sts/{year}/senteval/STS.{kind}.{subset}.txt"
        for year, subsets in STS_YEAR_SUBSETS.items()
        for subset in subsets
        for kind in ("input", "gs")
    ]
    needed += [f"sts/STSB/senteval/{name}" for name in STSB_FILES.values()]
    needed += [f"sts/SICK/senteval/{name}" for name in SICK_FILES.values()]
    assert not [path for path in needed if path not in sts]
    pinned = re.compile(r"^https://raw\.githubusercontent\.com/[\w.-]+/[\w.-]+/[0-9a-f]{40}/\S+$")
    for entry in sts.values():
        assert entry.size and re.fullmatch(r"[0-9a-f]{64}", entry.sha256 or ""), entry.path
        assert pinned.match(entry.url), entry.url
    (wiki,) = load_manifest("wiki")
    assert wiki.path == "unsup/wiki1m_for_simcse.txt" and wiki.sha256 is None
    with pytest.raises(JtcseError, match="--what everything: unknown"):
        load_manifest("everything")


def test_make_manifest_tool_reproduces_the_packaged_manifest(tmp_path: Path, shared_data_dir: Path) -> None:
    spec = importlib.util.spec_from_file_location("make_manifest", REPO_ROOT / "tools" / "make_manifest.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    out = tmp_path / "manifest.json"
    assert tool.main([str(shared_data_dir / "SOURCES.md"), str(out)]) == 0
    assert json.loads(out.read_text()) == json.loads(MANIFEST_PATH.read_text())


def test_real_manifest_against_shared_copy(tmp_path: Path, shared_data_dir: Path) -> None:
    """The packaged checksums verify the shared files byte for byte (via a file:// mirror)."""
    dest = tmp_path / "dest"
    fetched = download_data(dest, what="sts", base_url=shared_data_dir.as_uri(), show_progress=False)
    assert len(fetched) == len(load_manifest("sts"))
    assert missing_files(dest, "sts") == []


def test_resolution_downloads_into_the_user_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shared_data_dir: Path
) -> None:
    monkeypatch.delenv(paths.DATA_ENV, raising=False)
    monkeypatch.delenv(paths.OFFLINE_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv(URL_ENV, str(shared_data_dir))  # a local path stands in for the network
    monkeypatch.setattr(paths, "shared_data_candidates", lambda: [])
    path, how = paths.locate_data_dir()
    assert path == tmp_path / "cache" / "jtcse" / "data"
    assert how == "per-user cache (downloaded now)"
    assert paths.locate_data_dir() == (path, "per-user cache")
    # A partial cache (a file lost) is completed on the next use.
    (path / "sts" / "STS16" / "senteval" / "STS.gs.headlines.txt").unlink()
    assert paths.locate_data_dir()[1] == "per-user cache (downloaded now)"


def test_cli_data_download_and_where(
    tmp_path: Path, mirror: Path, capsys: pytest.CaptureFixture[str], shared_data_dir: Path
) -> None:
    dest = tmp_path / "dest"
    with pytest.raises(SystemExit) as exit_info:
        main(["data", "download", "--dest", str(dest), "--base-url", str(shared_data_dir), "--quiet"])
    assert exit_info.value.code == 0
    assert f"{dest}: {len(load_manifest('sts'))} file(s) fetched" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        main(["data", "where", "--data-dir", str(dest)])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == str(dest.resolve())


def test_cli_data_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["data", "where", "--data-dir", str(tmp_path / "nowhere")])
    assert exit_info.value.code == 2
    assert (
        capsys.readouterr().err.strip()
        == f"jtcse: error: --data-dir {tmp_path / 'nowhere'}: no such directory"
    )
    with pytest.raises(SystemExit) as exit_info:
        main(
            [
                "data",
                "download",
                "--dest",
                str(tmp_path / "d"),
                "--base-url",
                str(tmp_path / "empty"),
                "--quiet",
            ]
        )
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("jtcse: error: download failed: file://") and "\n" not in err
    assert leftovers(tmp_path / "d") == []
    shutil.rmtree(tmp_path / "d", ignore_errors=True)
