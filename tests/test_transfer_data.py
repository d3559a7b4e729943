"""SentEval's transfer data: the readers, the pinned manifest and the download into SentEval's layout."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from jtcse.cli.main import main
from jtcse.data import paths
from jtcse.data.download import download_data, load_manifest, missing_files
from jtcse.data.senteval import (
    BINARY_FILES,
    MRPC_FILES,
    SST2_FILES,
    TREC_FILES,
    read_binary,
    read_mrpc,
    read_sst2,
    read_trec,
)
from jtcse.errors import JtcseError
from transfer_toy import write_toy_transfer

PINNED = re.compile(r"^https://raw\.githubusercontent\.com/[\w.-]+/[\w.-]+/[0-9a-f]{40}/\S+$")


def test_readers_on_senteval_formats(tmp_path: Path) -> None:
    root = write_toy_transfer(tmp_path, n=5)
    mr = read_binary(root, "MR")
    assert len(mr) == 10 and mr.labels == [1] * 5 + [0] * 5
    subj = read_binary(root, "SUBJ")  # SentEval labels subj.objective 1
    first = (root / "downstream" / "SUBJ" / "subj.objective").read_text().splitlines()[0]
    assert subj.sentences[0] == first.strip() and subj.labels[0] == 1
    sst = read_sst2(root, "dev")
    assert len(sst) == 10 and set(sst.labels) == {0, 1} and not sst.sentences[0].endswith(" ")
    trec = read_trec(root, "train")
    assert len(trec) == 30 and set(trec.labels) == set(range(6))
    assert not trec.sentences[0].startswith("other")  # the fine class is dropped
    mrpc = read_mrpc(root, "test")  # header (with its byte-order mark) skipped
    assert len(mrpc) == 10 and mrpc.labels[:2] == [0, 1] and mrpc.first[1] == mrpc.second[1]


def test_whitespace_and_line_ends_as_senteval(tmp_path: Path) -> None:
    root = write_toy_transfer(tmp_path, n=2)
    down = root / "downstream"
    (down / "SST" / "binary" / "sentiment-test").write_bytes(b"a  good   film \t1\r\nbad \t0\r\n")
    sst = read_sst2(root, "test")
    assert sst.sentences == ["a good film", "bad"] and sst.labels == [1, 0]
    # The binary tasks split as str.splitlines (SentEval's read().splitlines()): a vertical tab ends a line.
    (down / "MR" / "rt-polarity.pos").write_bytes(b"one\x0btwo\nthree\n")
    assert read_binary(root, "MR").sentences[:3] == ["one", "two", "three"]


def test_malformed_lines_name_file_and_line(tmp_path: Path) -> None:
    root = write_toy_transfer(tmp_path, n=3)
    down = root / "downstream"
    sst = down / "SST" / "binary" / "sentiment-train"
    sst.write_text("fine film \t1\nno label here\n")
    with pytest.raises(JtcseError, match=r"sentiment-train:2: expected 'sentence<TAB>0\|1'"):
        read_sst2(root, "train")
    trec = down / "TREC" / "TREC_10.label"
    trec.write_text("NUM:dist How far ?\nWHAT:x is this ?\n")
    with pytest.raises(JtcseError, match=r"TREC_10.label:2: expected 'CLASS:fine question'"):
        read_trec(root, "test")
    mrpc = down / "MRPC" / "msr_paraphrase_train.txt"
    mrpc.write_text("Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n1\t1\t2\tonly one sentence\n")
    with pytest.raises(JtcseError, match=r"msr_paraphrase_train.txt:2: expected 'quality<TAB>id1"):
        read_mrpc(root, "train")
    (down / "CR" / "custrev.neg").write_text("")
    with pytest.raises(JtcseError, match=r"custrev.neg: empty"):
        read_binary(root, "CR")
    (down / "MPQA" / "mpqa.pos").unlink()
    with pytest.raises(JtcseError, match=r"mpqa.pos: missing; check the data directory"):
        read_binary(root, "MPQA")
    (down / "MR" / "rt-polarity.pos").write_bytes(b"ok\n\xff\xfe bytes\n")  # latin-1 reads any byte
    assert len(read_binary(root, "MR").sentences) == 2 + 3


def test_transfer_manifest_is_pinned_and_covers_the_readers() -> None:
    entries = {entry.path: entry for entry in load_manifest("transfer")}
    needed = [f"downstream/{task}/{name}" for task, names in BINARY_FILES.items() for name in names]
    needed += [
        f"downstream/{rel}" for files in (SST2_FILES, TREC_FILES, MRPC_FILES) for rel in files.values()
    ]
    assert sorted(needed) == sorted(entries)
    for entry in entries.values():
        assert entry.group == "transfer" and entry.licence
        assert entry.size and re.fullmatch(r"[0-9a-f]{64}", entry.sha256 or ""), entry.path
        assert PINNED.match(entry.url), entry.url
    assert not set(entries) & {entry.path for entry in load_manifest("sts")}
    assert set(entries) <= {entry.path for entry in load_manifest("all")}


def test_download_checks_every_transfer_file(tmp_path: Path) -> None:
    """A mirror with SentEval's layout but other bytes: the first file fails its checksum, nothing is kept."""
    mirror = write_toy_transfer(tmp_path / "mirror", n=3)
    dest = tmp_path / "dest"
    with pytest.raises(JtcseError, match=r"(sha256 mismatch|got \d+ bytes, expected \d+)"):
        download_data(dest, what="transfer", base_url=str(mirror), show_progress=False)
    assert not any(path.is_file() for path in dest.rglob("*"))
    assert len(missing_files(dest, "transfer")) == len(load_manifest("transfer"))


def test_data_dir_needs_downstream(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(JtcseError, match=r"has no downstream/ folder"):
        paths.resolve_data_dir(tmp_path, need="transfer")
    root = write_toy_transfer(tmp_path / "data", n=2)
    assert paths.resolve_data_dir(root, need="transfer") == root.resolve()
    with pytest.raises(SystemExit) as exit_info:
        main(["data", "where", "--need", "transfer", "--data-dir", str(root)])
    assert exit_info.value.code == 0 and capsys.readouterr().out.strip() == str(root.resolve())
