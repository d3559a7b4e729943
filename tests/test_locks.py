"""One writer per output folder: a second `jtcse train` / `jtcse encode` / `jtcse index` of the same folder
stops at once with one line naming the holder (exit 2) and the first finishes unharmed; a writer of any of
the three killed with -9 leaves a lock that the next run takes over. The writers are real processes; the
first one is paused (SIGSTOP) while it holds the lock, so the second one meets it whatever the machine's
load."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from jtcse.corpus_scale.encode import ShardOptions, encode_to_shards
from jtcse.encoder import Encoder
from jtcse.errors import JtcseError, JtcseWarning
from jtcse.locks import LOCK_NAME, output_lock
from train_fixtures import tiny_config

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="fcntl.flock and SIGSTOP are POSIX")


def _start(args: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "jtcse", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _run(args: list[str]) -> tuple[int, str]:
    proc = subprocess.run([sys.executable, "-m", "jtcse", *args], capture_output=True, text=True, timeout=300)
    return proc.returncode, proc.stderr


def _paused_while_holding(proc: subprocess.Popen[str], folder: Path, timeout: float = 240.0) -> None:
    """Wait until ``proc`` holds ``folder``'s lock (its pid recorded in the lock file), then pause it."""
    lock = folder / LOCK_NAME
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if json.loads(lock.read_text(encoding="utf-8")).get("pid") == proc.pid:
                os.kill(proc.pid, signal.SIGSTOP)
                return
        except (OSError, ValueError):
            pass
        if proc.poll() is not None:
            pytest.fail(f"the first writer ended before it was seen holding the lock: {proc.communicate()}")
        time.sleep(0.005)
    proc.kill()
    pytest.fail("the first writer never took the lock")


def _second_is_refused(first: subprocess.Popen[str], folder: Path, args: list[str]) -> None:
    _paused_while_holding(first, folder)
    try:
        code, err = _run(args)
    finally:
        os.kill(first.pid, signal.SIGCONT)
    lines = err.strip().splitlines()
    assert code == 2 and lines[-1].startswith("jtcse: error: "), err
    assert (
        "Traceback" not in err and f"another jtcse process is writing here (pid {first.pid} on" in lines[-1]
    )
    _, first_err = first.communicate(timeout=300)
    assert first.returncode == 0, first_err
    assert not (folder / LOCK_NAME).exists()  # released


def test_two_trainings_of_one_output_dir(tmp_path: Path, tiny_bert_dir: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps(tiny_config(tmp_path, tiny_bert_dir)), encoding="utf-8")
    out = tmp_path / "run"
    first = _start(["train", str(config)])
    _second_is_refused(first, out, ["train", str(config)])
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text(encoding="utf-8").splitlines()]
    steps = [r["step"] for r in rows if "loss" in r]
    assert steps == sorted(set(steps)) and steps[-1] == max(steps)  # one run's rows, none twice
    assert np.isfinite(Encoder(out, device="cpu").encode(["the model loads"])).all()


def _killed_while_holding(args: list[str], folder: Path) -> int:
    """Start a writer, kill it with -9 while it holds ``folder``'s lock; the lock file stays behind."""
    killed = _start(args)
    _paused_while_holding(killed, folder)
    killed.kill()
    killed.wait(timeout=60)
    assert json.loads((folder / LOCK_NAME).read_text(encoding="utf-8"))["pid"] == killed.pid
    return killed.pid


def _takes_over(args: list[str], folder: Path, dead_pid: int) -> None:
    code, err = _run(args)
    assert code == 0, err
    assert f"taking over the lock of pid {dead_pid} on {socket.gethostname()}" in err
    assert not (folder / LOCK_NAME).exists()


def test_a_training_killed_with_9_is_taken_over(tmp_path: Path, tiny_bert_dir: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps(tiny_config(tmp_path, tiny_bert_dir)), encoding="utf-8")
    out = tmp_path / "run"
    dead = _killed_while_holding(["train", str(config)], out)
    _takes_over(["train", str(config)], out, dead)
    assert np.isfinite(Encoder(out, device="cpu").encode(["the model loads"])).all()


def _sentences(path: Path, lines: int) -> Path:
    rng = np.random.default_rng(0)
    words = ["man", "woman", "dog", "plays", "guitar", "runs", "field", "park", "music", "rain"]
    path.write_text("".join(" ".join(rng.choice(words, 6)) + "\n" for _ in range(lines)), encoding="utf-8")
    return path


def test_two_encodings_of_one_folder_and_a_kill_9(tmp_path: Path, tiny_bert_dir: Path) -> None:
    text = _sentences(tmp_path / "in.txt", 4000)
    model = ["--model", str(tiny_bert_dir), "--device", "cpu", "--threads", "1"]

    def encode(out: Path) -> list[str]:
        return [
            "encode",
            *model,
            "--input",
            str(text),
            "--output",
            str(out),
            "--shard-size",
            "500",
            "--no-progress",
        ]

    out = tmp_path / "vecs"
    first = _start(encode(out))
    _second_is_refused(first, out, [*encode(out), "--resume"])
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["complete"] and manifest["lines"] == 4000

    again = tmp_path / "vecs2"  # kill -9 while holding: the lock file stays, the next run takes it over
    dead = _killed_while_holding(encode(again), again)
    _takes_over([*encode(again), "--resume"], again, dead)
    assert json.loads((again / "manifest.json").read_text(encoding="utf-8"))["complete"]


class _RandomEncoder:
    dim = 64

    def encode(self, sentences: list[str], **_: object) -> np.ndarray:
        return np.random.default_rng(len(sentences)).standard_normal((len(sentences), self.dim)).astype("f4")


def test_two_index_builds_of_one_folder_and_a_kill_9(tmp_path: Path) -> None:
    pytest.importorskip("faiss")
    text = _sentences(tmp_path / "in.txt", 40_000)
    vectors = tmp_path / "vecs"
    encode_to_shards(_RandomEncoder(), text, vectors, ShardOptions(shard_size=10_000, progress=False))
    index = tmp_path / "idx"

    def build(out: Path) -> list[str]:
        return ["index", "--vectors", str(vectors), "--kind", "hnsw", "--output", str(out), "--threads", "1"]

    args = build(index)
    first = _start(args)
    _second_is_refused(first, index, args)
    assert json.loads((index / "index.json").read_text(encoding="utf-8"))["count"] == 40_000

    again = tmp_path / "idx2"  # kill -9 while holding, then the same build again
    dead = _killed_while_holding(build(again), again)
    _takes_over(build(again), again, dead)
    assert json.loads((again / "index.json").read_text(encoding="utf-8"))["count"] == 40_000


def test_lock_in_process(tmp_path: Path) -> None:
    folder = tmp_path / "out"
    with output_lock(folder, what="--output") as lock:
        assert json.loads(lock.read_text(encoding="utf-8"))["pid"] == os.getpid()
        with (
            pytest.raises(
                JtcseError, match=rf"--output {folder}: another jtcse process .*pid {os.getpid()} on"
            ),
            output_lock(folder, what="--output"),
        ):
            pass
    assert not folder.exists()  # made by the lock and left empty: removed again

    folder.mkdir()
    (folder / LOCK_NAME).write_text(json.dumps({"host": "elsewhere-node7", "pid": 4242}), encoding="utf-8")
    foreign = rf"pid 4242 on elsewhere-node7.*delete {folder / LOCK_NAME}$"
    with pytest.raises(JtcseError, match=foreign), output_lock(folder, what="--output-dir"):
        pass
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    pid = int(dead.stdout)  # a finished process: its pid is free
    (folder / LOCK_NAME).write_text(json.dumps({"host": socket.gethostname(), "pid": pid}), encoding="utf-8")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with output_lock(folder, what="--output-dir"):
            pass
    assert [str(w.message) for w in caught if issubclass(w.category, JtcseWarning)] == [
        f"--output-dir {folder}: taking over the lock of pid {pid} on {socket.gethostname()}, which is gone"
    ]
    assert folder.is_dir() and not (folder / LOCK_NAME).exists()  # not made by the lock: kept


DAMAGED_HOLDERS = {
    "pid past os.kill's range": {"host": socket.gethostname(), "pid": 2**63},
    "negative pid": {"host": socket.gethostname(), "pid": -1},
    "pid zero (the process group)": {"host": socket.gethostname(), "pid": 0},
    "pid a string": {"host": socket.gethostname(), "pid": "12"},
    "host a list": {"host": ["a"], "pid": 12},
}


@pytest.mark.parametrize("damage", DAMAGED_HOLDERS)
def test_a_damaged_lock_record_is_one_line(
    tmp_path: Path, damage: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 26: a pid out of range was an OverflowError. With the flock free, nobody holds the lock: a
    note and the lock is taken over; without flock, one line naming the file and the field."""
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / LOCK_NAME).write_text(json.dumps(DAMAGED_HOLDERS[damage]), encoding="utf-8")
    note = rf"^{folder / LOCK_NAME}: damaged lock record \(field (pid|host)"
    with pytest.warns(JtcseWarning, match=note), output_lock(folder, what="--output"):
        pass
    (folder / LOCK_NAME).write_text(json.dumps(DAMAGED_HOLDERS[damage]), encoding="utf-8")
    monkeypatch.setattr("jtcse.locks._try_flock", lambda fd, path, what: False)  # a file system without
    refused = r"damaged lock record \(field .*delete .*\.jtcse\.lock$"
    with pytest.raises(JtcseError, match=refused), output_lock(folder, what="--output"):
        pass


def test_a_held_lock_with_a_damaged_record_names_the_damage(tmp_path: Path) -> None:
    folder = tmp_path / "out"
    with output_lock(folder, what="--output") as lock:
        lock.write_bytes(b'{"host": "h", "pid": 1e400}')  # in place: the same inode stays locked
        busy = r"another jtcse process .*holder record is damaged: field pid"
        with pytest.raises(JtcseError, match=busy), output_lock(folder, what="--output"):
            pass
