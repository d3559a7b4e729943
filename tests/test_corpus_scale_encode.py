"""Sharded encode: line planning, chunked == one-shot, kill mid-shard then --resume, refusals, a full disk,
and (slow) torchrun with 2 processes == 1 process, resumed with another process count."""

from __future__ import annotations

import errno
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from jtcse.cli.main import main
from jtcse.corpus_scale import ShardedVectors, ShardOptions, encode_to_shards
from jtcse.corpus_scale import lines as lines_module
from jtcse.corpus_scale.encode import rank_share
from jtcse.corpus_scale.lines import plan_lines, read_shard_lines
from jtcse.encoder import Encoder
from jtcse.tools.encode_file import read_lines

WORDS = [
    *["a", "man", "woman", "dog", "plays", "guitar", "runs", "across", "the", "snowy", "field"],
    *["park", "music", "rain", "sun", "cooks", "pasta"],
]


def corpus_text(n: int, seed: int = 0) -> str:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        if i % 7 == 3:
            rows.append(rng.choice(["", "   "]))  # blank lines: zero rows
        else:
            rows.append(" ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 9))))
    return "\n".join(rows) + "\n"


@pytest.fixture(scope="module")
def encoder(tiny_bert_dir: Path) -> Encoder:
    return Encoder(tiny_bert_dir, device="cpu")


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    path = tmp_path / "corpus.txt"
    path.write_text(corpus_text(45), encoding="utf-8")
    return path


def concatenated(folder: Path) -> np.ndarray:
    return np.concatenate([np.asarray(v) for _, v in ShardedVectors(folder).shards()])


def test_plan_and_shard_reading_equal_read_lines(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(lines_module, "_BLOCK", 5)  # newlines straddle many read blocks
    for trial in range(60):
        rng = random.Random(trial)
        text = "\n".join(rng.choice(["ab", "", " ", "héllo wörld", "x\r"]) for _ in range(rng.randint(1, 25)))
        text = ("\ufeff" if trial % 5 == 0 else "") + text + rng.choice(["", "\n"]) + "z"
        path = tmp_path / "t.txt"
        path.write_bytes(text.encode("utf-8"))
        want = read_lines(path)
        for size in (1, 2, 3, 7, 100):
            plan = plan_lines(path, size)
            assert plan.lines == len(want)
            assert [line for k in range(plan.shards) for line in read_shard_lines(plan, k)] == want


def test_ranks_split_the_remaining_shards_contiguously() -> None:
    for todo in ([], [3], list(range(9)), [0, 2, 5, 6, 7, 8, 11]):
        for world in (1, 2, 3, 5):
            parts = [rank_share(todo, rank, world) for rank in range(world)]
            assert [k for part in parts for k in part] == todo  # every shard once, in order
            assert max(map(len, parts)) - min(map(len, parts)) <= 1


def test_bad_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.txt"
    path.write_bytes(b"fine\nalso fine\nbroken \xff here\n")
    plan = plan_lines(path, 2)
    with pytest.raises(Exception, match=r"bad.txt:3: not valid UTF-8"):
        read_shard_lines(plan, 1)


@pytest.mark.parametrize("shard_format", ["npy", "safetensors"])
def test_chunked_equals_one_shot(encoder: Encoder, corpus: Path, tmp_path: Path, shard_format: str) -> None:
    out = tmp_path / "vecs"
    options = ShardOptions(shard_size=8, shard_format=shard_format, normalize=True, progress=False)
    result = encode_to_shards(encoder, corpus, out, options)
    assert result.complete and result.encoded == 6
    lines = read_lines(corpus)
    got = concatenated(out)
    assert got.shape == (45, encoder.dim) and got.dtype == np.float32
    blank = np.array([not line.strip() for line in lines])
    want = encoder.encode([line for line in lines if line.strip()], normalize=True)
    np.testing.assert_allclose(got[~blank], want, atol=1e-6)  # row i is line i + 1
    assert not got[blank].any()  # blank lines: zero rows
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["complete"] and manifest["lines"] == 45 and manifest["blank"] == int(blank.sum())
    assert manifest["dim"] == encoder.dim and manifest["normalize"] is True
    assert manifest["zero_vectors"] == 0
    assert manifest["model"]["members"][0]["pooler"] == encoder.members[0].pooler
    assert [(s["start"], s["stop"]) for s in manifest["shards"]] == [
        (k, min(k + 8, 45)) for k in range(0, 45, 8)
    ]
    ShardedVectors(out).verify()  # every sha256 matches


def _encode_cmd(model: Path, corpus: Path, out: Path, *extra: str) -> list[str]:
    return [
        "encode",
        "--model",
        str(model),
        "--device",
        "cpu",
        "--input",
        str(corpus),
        "--output",
        str(out),
        "--shard-size",
        "5",
        "--no-progress",
        *extra,
    ]


def _cli(argv: list[str], capsys) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    return int(exit_info.value.code or 0), capsys.readouterr().err


def _one_line_error(code: int, err: str, pattern: str) -> None:
    lines = [line for line in err.splitlines() if line.startswith("jtcse: error:")]
    assert code == 2 and len(lines) == 1 and pattern in lines[0], err
    assert "Traceback" not in err


def _wait_for(predicate, proc: subprocess.Popen, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc.poll() is not None:
            raise AssertionError(f"the run ended first: {proc.communicate()[1][-2000:]}")
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.05)


def test_kill_during_a_shard_write_then_resume(
    tiny_bert_dir: Path, corpus: Path, tmp_path: Path, capsys
) -> None:
    """SIGKILL while shard 2's bytes are in their temporary file; --resume gives the unbroken result."""
    out = tmp_path / "killed"
    env = {**os.environ, "JTCSE_TEST_PAUSE_SHARD": "2:120"}  # sleeps inside shard 2's write
    env.pop("WORLD_SIZE", None)
    argv = [sys.executable, "-m", "jtcse", *_encode_cmd(tiny_bert_dir, corpus, out, "--normalize")]
    proc = subprocess.Popen(argv, env=env, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(lambda: list(out.glob(".shard-00002.npy.*.tmp")), proc)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert (out / "shard-00001.json").is_file() and not (out / "shard-00002.json").exists()
    assert not json.loads((out / "manifest.json").read_text())["complete"]
    code, err = _cli(_encode_cmd(tiny_bert_dir, corpus, out, "--normalize"), capsys)
    _one_line_error(code, err, "pass --resume")  # an unfinished folder is never silently replaced
    code, err = _cli(_encode_cmd(tiny_bert_dir, corpus, out, "--normalize", "--resume"), capsys)
    assert code == 0 and "encoded 7 of 9 shards (2 were done before: resumed)" in err and "complete:" in err
    assert not list(out.glob(".*.tmp"))  # the killed write's temporary is gone
    unbroken = tmp_path / "unbroken"
    assert _cli(_encode_cmd(tiny_bert_dir, corpus, unbroken, "--normalize"), capsys)[0] == 0
    np.testing.assert_array_equal(concatenated(out), concatenated(unbroken))


def test_normalize_counts_and_warns_about_all_zero_vectors(
    tiny_bert_dir: Path, corpus: Path, tmp_path: Path, capsys
) -> None:
    """An ensemble of one model with weights 1 and -1 encodes every line to an exact zero vector: --normalize
    leaves those at zero, so the shards say so once (as the single-file output does) and the manifest counts
    them."""
    model, out = tmp_path / "cancel", tmp_path / "vecs"
    argv = [
        "ensemble",
        "--member",
        str(tiny_bert_dir),
        "--member",
        f"{tiny_bert_dir}:-1",
        "--output",
        str(model),
    ]
    assert _cli(argv, capsys)[0] == 0
    code, err = _cli(_encode_cmd(model, corpus, out, "--normalize"), capsys)
    nonblank = sum(1 for line in read_lines(corpus) if line.strip())
    warned = [line for line in err.splitlines() if line.startswith("jtcse: warning:")]
    assert code == 0 and warned == [
        f"jtcse: warning: --output {out}: unit length (except {nonblank} all-zero vector(s): left at zero)"
    ], err
    assert not concatenated(out).any()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["normalize"] is True and manifest["zero_vectors"] == nonblank
    single = tmp_path / "vecs.npy"  # the single-file output counts the same vectors (and the blank lines)
    argv = ["encode", "--model", str(model), "--input", str(corpus), "--output", str(single), "--normalize"]
    code, err = _cli([*argv, "--device", "cpu", "--no-progress"], capsys)
    assert code == 0 and f"(except {len(read_lines(corpus))} all-zero vector(s): left at zero)" in err


def test_refusals(tiny_bert_dir: Path, tiny_bert_dir_b: Path, corpus: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "vecs"
    assert _cli(_encode_cmd(tiny_bert_dir, corpus, out), capsys)[0] == 0
    code, err = _cli(_encode_cmd(tiny_bert_dir_b, corpus, out, "--resume"), capsys)
    _one_line_error(code, err, "encoded by another model")
    code, err = _cli(_encode_cmd(tiny_bert_dir, corpus, out, "--resume", "--normalize"), capsys)
    _one_line_error(code, err, "normalize = False, this run has True")
    other = tmp_path / "other.txt"
    other.write_text(corpus_text(45, seed=1), encoding="utf-8")
    code, err = _cli(_encode_cmd(tiny_bert_dir, other, out, "--resume"), capsys)
    _one_line_error(code, err, "encoded from another input")
    code, err = _cli(_encode_cmd(tiny_bert_dir, corpus, tmp_path / "v.npy", "--resume"), capsys)
    _one_line_error(code, err, "--resume: only for a folder --output")
    code, err = _cli(_encode_cmd(tiny_bert_dir, corpus, out, "--resume"), capsys)
    assert code == 0 and "encoded 0 of 9 shards" in err  # a finished folder: nothing to do
    code, err = _cli(_encode_cmd(tiny_bert_dir, tmp_path / "missing.txt", tmp_path / "new"), capsys)
    _one_line_error(code, err, "missing.txt: no such file")
    assert not (tmp_path / "new").exists()


def test_full_disk_leaves_no_folder(
    tiny_bert_dir: Path, corpus: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    def no_space(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", no_space)  # every atomic write fails as on a full disk
    out = tmp_path / "vecs"
    code, err = _cli(_encode_cmd(tiny_bert_dir, corpus, out), capsys)
    _one_line_error(code, err, "no space left")
    assert not out.exists() and list(tmp_path.iterdir()) == [corpus]


# ------------------------------------------------------------------------------------------ torchrun (slow)
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _torchrun(nproc: int, args: list[str], env_extra: dict[str, str] | None = None) -> subprocess.Popen:
    env = {**os.environ, **(env_extra or {})}
    env.pop("WORLD_SIZE", None)
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        f"--nproc_per_node={nproc}",
        "--master_addr=127.0.0.1",
        f"--master_port={_free_port()}",
        "-m",
        "jtcse",
        *args,
    ]
    return subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True, start_new_session=True)


@pytest.mark.slow
def test_torchrun_two_processes_equal_one_and_resume_with_three(
    tiny_bert_dir: Path, corpus: Path, tmp_path: Path, capsys
) -> None:
    single = tmp_path / "single"
    assert _cli(_encode_cmd(tiny_bert_dir, corpus, single, "--normalize"), capsys)[0] == 0
    two = tmp_path / "two"
    proc = _torchrun(2, _encode_cmd(tiny_bert_dir, corpus, two, "--normalize"))
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]
    assert "rank 0: encoded 5 of 9 shards" in err and "rank 1: encoded 4 of 9 shards" in err
    np.testing.assert_allclose(concatenated(two), concatenated(single), atol=1e-6)
    assert json.loads((two / "manifest.json").read_text())["complete"]

    # killed while rank 1 writes shard 6 (rank 0 has finished shards 0-4), resumed with 3 processes
    resumed = tmp_path / "resumed"
    proc = _torchrun(
        2, _encode_cmd(tiny_bert_dir, corpus, resumed, "--normalize"), {"JTCSE_TEST_PAUSE_SHARD": "6:120"}
    )
    try:
        _wait_for(
            lambda: list(resumed.glob(".shard-00006.npy.*.tmp")) and (resumed / "shard-00004.json").is_file(),
            proc,
        )
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert not json.loads((resumed / "manifest.json").read_text())["complete"]
    proc = _torchrun(3, _encode_cmd(tiny_bert_dir, corpus, resumed, "--normalize", "--resume"))
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]
    assert "(6 were done before: resumed)" in err and "complete:" in err
    np.testing.assert_allclose(concatenated(resumed), concatenated(single), atol=1e-6)
    assert not list(resumed.glob(".*.tmp"))


# ------------------------------------------------------------------------------ where vectors may go
def test_encode_output_is_checked_before_the_model_loads(
    corpus: Path, tmp_path: Path, capsys, read_only
) -> None:
    """Every case names a model that does not exist: the output's error comes first, nothing is written."""
    missing = tmp_path / "no-model"
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "photos.zip").write_bytes(b"zip")
    for extra in ((), ("--resume",)):
        code, err = _cli(_encode_cmd(missing, corpus, theirs, *extra), capsys)
        _one_line_error(
            code, err, f"--output {theirs}: exists and is not empty; choose a new or empty folder"
        )
    assert os.listdir(theirs) == ["photos.zip"]
    single = ["encode", "--model", str(missing), "--input"]
    named_npy = tmp_path / "lines.npy"  # a text file whose name says vectors: never written over
    named_npy.write_bytes(corpus.read_bytes())
    code, err = _cli([*single, str(named_npy), "--output", str(named_npy)], capsys)
    _one_line_error(code, err, f"--output {named_npy}: is the input --input {named_npy}")
    assert named_npy.read_bytes() == corpus.read_bytes()
    frozen = read_only(tmp_path / "frozen")
    code, err = _cli(_encode_cmd(missing, corpus, frozen), capsys)
    _one_line_error(code, err, f"--output {frozen}: cannot write in {frozen}: ")
    code, err = _cli([*single, str(corpus), "--output", str(frozen / "v.npy")], capsys)
    _one_line_error(code, err, f"--output {frozen / 'v.npy'}: cannot write in {frozen}: ")
    (tmp_path / "dir.npy").mkdir()
    code, err = _cli([*single, str(corpus), "--output", str(tmp_path / "dir.npy")], capsys)
    _one_line_error(code, err, "dir.npy: is a folder, not a file")
    assert os.listdir(frozen) == []
