"""Issue 26, point 2: a flipped byte in a shard or in an index's rerank.npy is refused by the search (one
line naming the file), and a file that did not change is not hashed again by the next process."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("faiss")

from jtcse.corpus_scale.index import VectorIndex, build_index
from jtcse.corpus_scale.verified import FileChecks
from jtcse.errors import JtcseError, JtcseWarning
from test_corpus_scale_index import clustered, vectors_folder


@pytest.fixture(autouse=True)
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def flip_byte(file: Path, offset: int | None = None, *, keep_mtime: bool = False) -> None:
    """One bit changed in place (same size, same inode); ``keep_mtime``: its mtime put back too."""
    st = file.stat()
    data = bytearray(file.read_bytes())
    at = len(data) // 2 if offset is None else offset
    data[at] ^= 0x10
    with open(file, "r+b") as fh:
        fh.write(data)
    if keep_mtime:
        os.utime(file, ns=(st.st_atime_ns, st.st_mtime_ns))


def hashed(index: VectorIndex) -> int:
    assert index.checks is not None
    return index.checks.hashed + (index.vectors.checks.hashed if index.vectors is not None else 0)


@pytest.fixture
def compressed(tmp_path: Path) -> tuple[Path, Path, np.ndarray]:
    vectors = clustered(1500)
    folder = vectors_folder(tmp_path, vectors)
    out, _ = build_index(folder, kind="ivfsq8", nlist=8, rerank=50)
    return folder, out, vectors


@pytest.mark.parametrize("keep_mtime", [False, True])
def test_a_flipped_byte_in_a_shard_is_refused_by_the_search(
    compressed: tuple[Path, Path, np.ndarray], keep_mtime: bool
) -> None:
    folder, out, vectors = compressed
    index = VectorIndex.load(out)
    _, rows = index.search_vectors(vectors[700:701], 5)
    assert rows[0, 0] == 700 and hashed(index) == 0  # jtcse index verified and remembered every file
    flip_byte(folder / "shard-00001.npy", keep_mtime=keep_mtime)  # rows 500..999; ctime changes regardless
    index = VectorIndex.load(out)
    with pytest.raises(JtcseError) as refused:
        index.search_vectors(vectors[700:701], 5)
    message = str(refused.value)
    assert message.startswith(f"{folder / 'shard-00001.npy'}: checksum differs from manifest.json")
    assert "re-encode with jtcse encode" in message and "\n" not in message


def test_a_flipped_byte_in_the_rerank_copy_is_refused(tmp_path: Path) -> None:
    vectors = clustered(1500)
    folder = vectors_folder(tmp_path, vectors)
    out, _ = build_index(folder, kind="ivfsq8", nlist=8, rerank_copy=True)
    index = VectorIndex.load(out)
    assert index.rerank_copy is not None and hashed(index) == 0
    flip_byte(out / "rerank.npy")
    with pytest.raises(JtcseError, match=r"rerank\.npy: checksum differs from index\.json .*rebuild"):
        VectorIndex.load(out)


def test_unchanged_files_are_not_hashed_again_and_verify_rehashes(
    compressed: tuple[Path, Path, np.ndarray],
) -> None:
    folder, out, vectors = compressed
    (Path(os.environ["XDG_CACHE_HOME"]) / "jtcse").rename(folder.parent / "memo-moved")  # as if a new user
    first = VectorIndex.load(out)
    first.search_vectors(vectors[:3], 5)  # touches the shards of rows 0..2 (shard 0) and their candidates
    assert hashed(first) >= 3  # index.faiss, rows.npy and at least shard 0
    second = VectorIndex.load(out)
    second.search_vectors(vectors[:3], 5)
    assert hashed(second) == 0
    forced = VectorIndex.load(out, rehash=True)  # jtcse search --verify
    forced.search_vectors(vectors[:3], 5)
    assert forced.checks is not None and forced.checks.hashed == 2
    assert forced.vectors is not None and forced.vectors.checks.hashed >= 1


def test_a_damaged_memory_is_a_note_and_the_files_are_hashed_again(tmp_path: Path) -> None:
    folder = tmp_path / "f"
    folder.mkdir()
    (folder / "a.bin").write_bytes(b"x" * 100)
    digest = "09ecb6ebc8bcefc733f6f2ec44f791abeed6a99edf0cc31519637898aebd52d8"  # sha256 of 100 x "x"
    FileChecks(folder).check("a.bin", digest, recorded_in="test", fix="")
    memo = FileChecks(folder).memo_file
    memo.write_text('{"format": "jtcse-verified", "folder": 3, "files": {}}')
    again = FileChecks(folder)
    with pytest.warns(JtcseWarning, match=r"damaged verified-files record \(field folder: expected a string"):
        again.check("a.bin", digest, recorded_in="test", fix="")
    assert again.hashed == 1
    with pytest.raises(JtcseError, match=r"a\.bin: checksum differs from test"):
        FileChecks(folder).check("a.bin", "0" * 64, recorded_in="test", fix="")
