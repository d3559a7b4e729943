"""Data-parallel training on 2 CPU processes (gloo) against one process.

The multi-process work happens in one launch of 2 ranks with torchrun's environment variables
(tests/ddp_worker.py; forked, so they skip the import start-up that dominates the cost); each test below
compares one of its results with a single-process reference computed here. The literal
``torchrun --nproc_per_node 2 -m jtcse train CONFIG`` runs in a slow-marked test.
"""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from ddp_worker import DIRECTION_SEED, fresh_task, gradients, launch, make_batch, sentences
from jtcse.errors import JtcseError
from jtcse.training import distributed
from jtcse.training.checkpoint import checkpoint_path, load_checkpoint
from jtcse.training.metrics import read_metrics, without_timing
from train_fixtures import tiny_config

TESTS = Path(__file__).resolve().parent
ATOL = 1e-5


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _torchrun(args: list[str], *, cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    env.pop("WORLD_SIZE", None)
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        "--master_addr=127.0.0.1",
        f"--master_port={_free_port()}",
        *args,
    ]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def _step_configs(tmp: Path, tiny_a: Path, tiny_b: Path) -> dict[str, dict]:
    no_dropout = {"dropout": 0.0}
    simcse = tiny_config(tmp, tiny_a, model=no_dropout)
    twin = tiny_config(
        tmp, tiny_a, method="jtcse", model={**no_dropout, "tower_a": str(tiny_a), "tower_b": str(tiny_b)}
    )
    return {
        "simcse": {"config": simcse, "sentences": 8},
        "jtcse": {"config": twin, "sentences": 8},
        # 7 sentences: ranks hold 4 and 3; the gather pads and trims, the local modulus term is weighted
        "jtcse_uneven": {"config": twin, "sentences": 7},
        "jtcse_grad_cache": {"config": twin, "sentences": 8, "grad_cache_chunk": 2},
        # distillation through the same contract: one row per sentence, a frozen teacher (any encoder)
        "distill": {
            "config": tiny_config(
                tmp, tiny_a, method="distill", model=no_dropout, distill={"teacher": str(tiny_b)}
            ),
            "sentences": 7,
        },
    }


@pytest.fixture(scope="module")
def ddp_session(tmp_path_factory, tiny_bert_dir, tiny_bert_dir_b):
    """Run tests/ddp_worker.py on 2 processes once; return its work directory and plan."""
    work = tmp_path_factory.mktemp("ddp")
    cli_raw = tiny_config(
        work,
        tiny_bert_dir,
        method="jtcse",
        model={"tower_b": str(tiny_bert_dir_b)},  # dropout on (0.1): each rank its own masks
        train={"grad_cache_chunk": 2},  # 4 sentences per rank in chunks of 2
        eval={"every": 3},
    )
    cli_config = work / "ddp.yaml"
    cli_config.write_text(yaml.safe_dump(cli_raw), encoding="utf-8")
    plan = {"steps": _step_configs(work, tiny_bert_dir, tiny_bert_dir_b), "cli": {"config": str(cli_config)}}
    (work / "scenarios.json").write_text(json.dumps(plan), encoding="utf-8")
    launch(work, world_size=2)
    return work, plan


def _single_process_step(raw: dict, n_sentences: int) -> dict:
    task = fresh_task(raw)
    batch = make_batch(task, sentences(n_sentences))
    random.seed(DIRECTION_SEED)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: extra threads only spin
    try:
        terms = task.losses(batch)
        terms["loss"].backward()
    finally:
        torch.set_num_threads(threads)
    return {"terms": {k: float(v.detach()) for k, v in terms.items()}, "grads": gradients(task)}


def _assert_same_step(reference: dict, result: dict) -> None:
    assert result["terms"].keys() == reference["terms"].keys()
    for key, value in reference["terms"].items():
        assert result["terms"][key] == pytest.approx(value, abs=ATOL), key
    assert result["grads"].keys() == reference["grads"].keys()
    unused = {n for n, g in reference["grads"].items() if g is None}
    assert {n for n, g in result["grads"].items() if g is None} == unused  # AdamW treats None != zeros
    worst = max(
        (float((result["grads"][n] - g).abs().max()), n)
        for n, g in reference["grads"].items()
        if g is not None
    )
    assert worst[0] <= ATOL, f"largest gradient difference {worst[0]:.2e} in {worst[1]}"


@pytest.mark.parametrize("scenario", ["simcse", "jtcse", "jtcse_uneven", "jtcse_grad_cache", "distill"])
def test_two_processes_give_the_single_process_loss_and_gradients(ddp_session, scenario):
    work, plan = ddp_session
    spec = plan["steps"][scenario]
    reference = _single_process_step(spec["config"], spec["sentences"])
    ranks = [torch.load(work / f"step_{scenario}_rank{r}.pt", weights_only=True) for r in (0, 1)]
    assert [r["rows"] for r in ranks] == distributed.shard_sizes(spec["sentences"], 2)
    for result in ranks:  # every rank logs the global values and holds the same averaged gradients
        _assert_same_step(reference, result)
    if scenario == "jtcse":
        # the gradient is not trivially shared: the towers and cross-attention layers moved
        grads = reference["grads"]
        assert float(grads["twin.tower_b.encoder.layer.3.attention.self.key.weight"].abs().sum()) > 0
        assert reference["terms"]["ictm"] > 0 and reference["terms"]["icnce_ca"] > 0


def test_resume_under_ddp_continues_the_unbroken_curve(ddp_session):
    work, _ = ddp_session
    assert [json.loads((work / f"cli_codes_rank{r}.json").read_text()) for r in (0, 1)] == [[0, 0, 0]] * 2
    straight = read_metrics(work / "straight" / "metrics.jsonl")
    broken = read_metrics(work / "broken" / "metrics.jsonl")
    assert without_timing(broken) == without_timing(straight)  # dropout on: per-rank RNG states restored
    # rank 0 alone writes: one line per step and per evaluation
    assert [r["step"] for r in straight if "loss" in r] == [1, 2, 3, 4, 5, 6]
    assert [r["step"] for r in straight if "dev_stsb" in r] == [3, 6]
    state = load_checkpoint(checkpoint_path(work / "broken"))
    assert state["step"] == 6 and len(state["rng_per_rank"]) == 2
    assert not torch.equal(state["rng_per_rank"][0]["torch"], state["rng_per_rank"][1]["torch"])
    runs = json.loads((work / "straight" / "environment.json").read_text())["runs"]
    assert len(runs) == 1 and runs[0]["processes"] == {"world_size": 2, "rank": 0, "backend": "gloo"}
    assert runs[0]["grad_cache_chunk"] == 2
    logs = [(work / f"rank{r}.log").read_text(encoding="utf-8") for r in (0, 1)]
    assert logs[0].count("jtcse train: jtcse on cpu (1 threads) x 2 processes (gloo)") == 3  # one per run
    assert "jtcse train:" not in logs[1]  # rank 0 alone prints
    assert (work / "straight" / "jtcse.json").is_file()


@pytest.mark.slow
def test_torchrun_module_entry_point(tmp_path, tiny_bert_dir):
    """The documented command line itself: torchrun --nproc_per_node 2 -m jtcse train CONFIG."""
    raw = tiny_config(tmp_path, tiny_bert_dir, train={"epochs": 1}, eval={"every": 0})
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(raw), encoding="utf-8")
    proc = _torchrun(["-m", "jtcse", "train", str(config)], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-4000:]
    rows = [r for r in read_metrics(tmp_path / "run" / "metrics.jsonl") if "loss" in r]
    assert [r["step"] for r in rows] == [1, 2, 3]


# ---------------------------------------------------------------------------------------- one process
def test_shards_are_contiguous_and_cover_the_batch():
    indices = np.arange(10, 17)  # 7 sentences
    parts = [distributed.DistContext(rank=r, world_size=3).local_part(indices) for r in range(3)]
    assert [p.tolist() for p in parts] == [[10, 11, 12], [13, 14], [15, 16]]
    assert distributed.shard_sizes(8, 2) == [4, 4] and distributed.shard_sizes(1, 1) == [1]
    batches = [np.arange(8), np.arange(1)]
    assert len(distributed.drop_unshardable(batches, 2)) == 1
    assert len(distributed.drop_unshardable(batches, 1)) == 2


def test_ranks_draw_their_own_dropout_seeds():
    seeds = {distributed.rank_seed(42, r) for r in range(4)}
    assert len(seeds) == 4 and distributed.rank_seed(42, 0) == distributed.rank_seed(42, 0)


def test_plain_python_is_a_single_process(monkeypatch):
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    ctx, device, _ = distributed.init_distributed("cpu")
    assert ctx == distributed.DistContext() and not ctx.enabled and device.type == "cpu"
    assert distributed.is_main_process()


def test_device_choice_under_torchrun():
    assert distributed._rank_device("cpu", 1).type == "cpu"
    if not torch.cuda.is_available():
        assert distributed._rank_device("auto", 1).type == "cpu"
        with pytest.raises(JtcseError, match=r"train\.device = cuda: CUDA is not available"):
            distributed._rank_device("cuda", 0)
    with pytest.raises(JtcseError, match=r"train\.device = cuda:1: under torchrun each process uses"):
        distributed._rank_device("cuda:1", 0)
