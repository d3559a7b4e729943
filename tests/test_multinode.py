"""Multi-node under test: two torchrun agents on 127.0.0.1, one process each (``--nnodes 2
--nproc-per-node 1``, gloo), as two machines would run them, against one plain process. The exact command
lines are the ones docs/scaling.md shows: the static rendezvous (``--node-rank R --master-addr
--master-port``) and the elastic one (``--rdzv-backend c10d --rdzv-endpoint HOST:PORT``), the latter also
across a stop and a ``--resume``."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import yaml

from jtcse.corpus_scale.shards import ShardedVectors
from jtcse.training.metrics import read_metrics
from train_fixtures import tiny_config

pytestmark = pytest.mark.slow
TESTS = Path(__file__).resolve().parent
ATOL = 1e-5
TIMEOUT_S = 600


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env() -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    return {**env, "OMP_NUM_THREADS": "1"}


def static_nodes(port: int, node_rank: int) -> list[str]:
    """``torchrun --nnodes 2 --nproc-per-node 1 --node-rank R --master-addr 127.0.0.1 --master-port PORT``"""
    return [
        "--nnodes", "2", "--nproc-per-node", "1", "--node-rank", str(node_rank),
        "--master-addr", "127.0.0.1", "--master-port", str(port),
    ]  # fmt: skip


def elastic_nodes(port: int, node_rank: int) -> list[str]:
    """``torchrun --nnodes 2 --nproc-per-node 1 --rdzv-backend c10d --rdzv-endpoint 127.0.0.1:PORT``: the
    same on every node (ranks are handed out by the rendezvous; ``node_rank`` only names the log)."""
    del node_rank
    return [
        "--nnodes", "2", "--nproc-per-node", "1", "--rdzv-backend", "c10d",
        "--rdzv-endpoint", f"127.0.0.1:{port}", "--rdzv-id", "jtcse-test",
    ]  # fmt: skip


def two_nodes(
    nodes: Callable[[int, int], list[str]], jtcse_args: list[str], cwd: Path
) -> list[subprocess.CompletedProcess[str]]:
    """Both 'machines' at once: two torchrun agents of ``-m jtcse ARGS``; both must exit 0."""
    port = _free_port()
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "torch.distributed.run", *nodes(port, r), "-m", "jtcse", *jtcse_args],
            cwd=cwd,
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for r in (0, 1)
    ]
    done = []
    for proc in procs:
        out, err = proc.communicate(timeout=TIMEOUT_S)
        done.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    for node, result in enumerate(done):
        assert result.returncode == 0, f"node {node}: {result.stderr[-4000:]}"
    return done


def one_process(jtcse_args: list[str], cwd: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "jtcse", *jtcse_args], cwd=cwd, env=_env(), capture_output=True, text=True,
        timeout=TIMEOUT_S,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]


def _losses(run: Path) -> dict[int, float]:
    return {int(r["step"]): float(r["loss"]) for r in read_metrics(run / "metrics.jsonl") if "loss" in r}


def _processes(run: Path) -> list[int]:
    runs = json.loads((run / "environment.json").read_text(encoding="utf-8"))["runs"]
    return [int(r["processes"]["world_size"]) for r in runs]


def _assert_same_losses(run: Path, reference: Path, steps: int) -> None:
    got, want = _losses(run), _losses(reference)
    assert sorted(want) == list(range(1, steps + 1)) and sorted(got) == sorted(want)
    worst = max(abs(got[s] - want[s]) for s in want)
    assert worst <= ATOL, f"largest loss difference {worst:.2e} over {steps} steps"


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory, tiny_bert_dir: Path) -> Path:
    """SimCSE without dropout (ranks draw their own masks; without any, the runs must agree exactly)."""
    work = tmp_path_factory.mktemp("multinode")
    raw = tiny_config(work, tiny_bert_dir, model={"dropout": 0.0}, train={"epochs": 2}, eval={"every": 0})
    path = work / "config.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    one_process(["train", str(path), "--output-dir", str(work / "one")], cwd=work)
    return path


def test_train_on_two_nodes_equals_one_process(config: Path) -> None:
    work = config.parent
    two_nodes(static_nodes, ["train", str(config), "--output-dir", str(work / "static")], cwd=work)
    _assert_same_losses(work / "static", work / "one", steps=6)
    assert _processes(work / "static") == [2] and _processes(work / "one") == [1]
    assert (work / "static" / "jtcse.json").is_file() and not (work / "static" / ".jtcse.lock").exists()


def test_elastic_rendezvous_stops_and_resumes_on_the_same_curve(config: Path) -> None:
    work = config.parent
    out = work / "elastic"
    two_nodes(
        elastic_nodes, ["train", str(config), "--output-dir", str(out), "--set", "train.stop_after=3"], work
    )
    assert sorted(_losses(out)) == [1, 2, 3]
    two_nodes(elastic_nodes, ["train", "--resume", "--output-dir", str(out)], cwd=work)
    _assert_same_losses(out, work / "one", steps=6)
    assert _processes(out) == [2, 2]  # the first run and the resumed one


def test_encode_on_two_nodes_equals_one_process(tmp_path: Path, tiny_bert_dir: Path) -> None:
    rng = np.random.default_rng(0)
    words = ["man", "woman", "dog", "plays", "guitar", "runs", "field", "park", "music", "rain"]
    text = tmp_path / "in.txt"
    text.write_text("".join(" ".join(rng.choice(words, 5)) + "\n" if i % 7 else "\n" for i in range(230)))
    common = ["encode", "--model", str(tiny_bert_dir), "--device", "cpu", "--input", str(text)]
    common += ["--shard-size", "40", "--normalize", "--no-progress"]
    one_process([*common, "--output", str(tmp_path / "one")], cwd=tmp_path)
    nodes = two_nodes(static_nodes, [*common, "--output", str(tmp_path / "two")], cwd=tmp_path)
    assert "complete: 230 x 32 float32 vectors" in nodes[0].stderr + nodes[1].stderr
    one, two = ShardedVectors(tmp_path / "one"), ShardedVectors(tmp_path / "two")
    two.verify()
    assert one.rows == two.rows == 230
    for (first_a, a), (first_b, b) in zip(one.shards(), two.shards(), strict=True):
        assert first_a == first_b
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), atol=1e-6, rtol=0)
