"""What each rank runs in tests/test_distributed.py (``launch``), or ``torchrun --nproc_per_node 2
tests/ddp_worker.py WORKDIR`` by hand.

One launch (starting processes is the slow part) runs every multi-process check and leaves the results in
WORKDIR for the test process to compare against single-process references:

* ``step_<scenario>_rank<r>.pt``: the loss terms and parameter gradients of one training step of
  :class:`jtcse.training.step.StepExecutor` on this rank's slice of a fixed global batch (dropout off);
* runs of ``jtcse train`` through the CLI (``jtcse.cli.main.main``, what ``python -m jtcse`` calls) under
  the launcher's environment: ``straight/`` unbroken, ``broken/`` stopped after step 3 and resumed.

WORKDIR/scenarios.json (written by the test) names the models and the CLI config.
"""

from __future__ import annotations

import json
import os
import random
import socket
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from jtcse.training import distributed
from jtcse.training.config import config_from_dict, resolve
from jtcse.training.precision import resolve_precision
from jtcse.training.seeding import seed_everything
from jtcse.training.step import StepExecutor
from jtcse.training.tasks import Task, build_task
from train_fixtures import WORDS

DIRECTION_SEED = 5  # Python's random, for the JTCSE direction draw (the same on every rank)


def sentences(n: int, seed: int = 3) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 12))) for _ in range(n)]


def step_config(raw: dict[str, Any]) -> Any:
    return resolve(config_from_dict(raw))


def fresh_task(raw: dict[str, Any]) -> Task:
    """The task with the initial weights every process gets from the seed (dropout off in the configs)."""
    config = step_config(raw)
    seed_everything(config.seed)
    task = build_task(config)
    task.train()
    return task


def make_batch(task: Task, texts: list[str]) -> dict[str, torch.Tensor]:
    """What the trainer tokenises: the task's ``collate`` (interleaved pairs; distill: one row + teacher)."""
    return task.collate(texts)


def gradients(task: torch.nn.Module) -> dict[str, torch.Tensor | None]:
    return {
        name: (p.grad.detach().clone() if p.grad is not None else None)
        for name, p in task.named_parameters()
        if p.requires_grad
    }


def distributed_step(raw: dict[str, Any], texts: list[str], grad_cache_chunk: int = 0) -> dict[str, Any]:
    """One step on this rank's slice of ``texts`` (the global batch); terms and averaged gradients."""
    task = fresh_task(raw)
    ctx = distributed.current()
    mine = ctx.local_part(np.arange(len(texts)))
    batch = make_batch(task, [texts[i] for i in mine])
    device = torch.device("cpu")
    step = StepExecutor(task, device, resolve_precision("fp32", device), grad_cache_chunk=grad_cache_chunk)
    random.seed(DIRECTION_SEED)
    terms = step(batch, ctx.shard_sizes(len(texts)))
    return {"terms": {k: float(v) for k, v in terms.items()}, "grads": gradients(task), "rows": len(mine)}


def run_cli(argv: list[str]) -> int:
    from jtcse.cli.main import main

    try:
        main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def main(workdir: Path) -> None:
    plan = json.loads((workdir / "scenarios.json").read_text())
    torch.set_num_threads(1)  # as torchrun's OMP_NUM_THREADS=1: 2 ranks on a small shared CPU
    ctx, _, _ = distributed.init_distributed("cpu")
    assert ctx.world_size == 2 and ctx.backend == "gloo", ctx
    for name, spec in plan["steps"].items():
        result = distributed_step(
            spec["config"], sentences(spec["sentences"]), spec.get("grad_cache_chunk", 0)
        )
        torch.save(result, workdir / f"step_{name}_rank{ctx.rank}.pt")

    cli = plan["cli"]
    codes = [
        run_cli(["train", cli["config"], "--output-dir", str(workdir / "straight")]),
        run_cli(
            ["train", cli["config"], "--output-dir", str(workdir / "broken"), "--set", "train.stop_after=3"]
        ),
        run_cli(["train", "--resume", "--output-dir", str(workdir / "broken")]),
    ]
    (workdir / f"cli_codes_rank{ctx.rank}.json").write_text(json.dumps(codes))


def _child(local_rank: int, world_size: int, port: int, workdir: str) -> None:
    """A rank started by :func:`launch`: the environment torchrun would set, output to WORKDIR/rank<r>.log."""
    os.environ.update(
        RANK=str(local_rank),
        LOCAL_RANK=str(local_rank),
        WORLD_SIZE=str(world_size),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )
    log = open(Path(workdir) / f"rank{local_rank}.log", "w", encoding="utf-8")  # noqa: SIM115
    os.dup2(log.fileno(), 1)
    os.dup2(log.fileno(), 2)
    sys.stdout = sys.stderr = log
    try:
        main(Path(workdir))
    finally:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()
        log.flush()


def launch(workdir: Path, world_size: int = 2, timeout: float = 300.0) -> None:
    """Run :func:`main` on ``world_size`` local processes, as torchrun would, and wait for them.

    Forked when CUDA is not initialised here (the children inherit the imported modules: no start-up
    cost), spawned otherwise. A child's exception is raised here; a hang past ``timeout`` kills them all.
    """
    import torch.multiprocessing as mp

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    method = "spawn" if torch.cuda.is_initialized() else "fork"
    context = mp.start_processes(
        _child, args=(world_size, port, str(workdir)), nprocs=world_size, join=False, start_method=method
    )
    deadline = time.monotonic() + timeout
    while not context.join(timeout=1.0):
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            raise TimeoutError(f"the {world_size} ranks did not finish within {timeout:.0f} s")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
