"""What a checkpoint holds, live: :class:`TrainState`, the only writer and reader of the checkpoint's keys.

``OUT/checkpoint/state.pt`` (written atomically by :func:`jtcse.training.checkpoint.save_checkpoint`) holds:

* ``model``, ``optimizer``, ``scheduler``, ``scaler``: the state dicts of the trained task, AdamW, the LR
  schedule and the fp16 gradient scaler (``{}`` without one);
* ``rng``: rank 0's Python / numpy / torch RNG states; ``rng_per_rank``: every rank's, under DDP;
* ``step``, ``epoch``, ``batch_in_epoch``, ``order`` + ``order_offsets`` (that epoch's shuffled batches):
  where training is in the data;
* ``best_dev``, ``best_step``: the best STS-B dev score so far; ``elapsed_s``: training seconds so far;
* ``config``: the resolved config; ``corpus_fingerprint``, ``corpus_sentences``: what it trained on.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from jtcse.data.batching import pack_batches, unpack_batches
from jtcse.data.corpus import TrainingCorpus
from jtcse.errors import JtcseError
from jtcse.fs import atomic_write_text
from jtcse.run_files import CONFIG_FILE
from jtcse.training import distributed
from jtcse.training.checkpoint import save_checkpoint
from jtcse.training.config import Config, config_from_dict, dump_yaml
from jtcse.training.optimization import optimizer_step
from jtcse.training.seeding import capture_rng_state, restore_rng_state


@dataclass
class TrainState:
    """The trained objects and where training is; everything a resumed run needs to continue exactly."""

    task: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: Any | None
    """A ``torch.amp.GradScaler`` (fp16), else None."""
    order: list[np.ndarray]
    """This epoch's batches, each an array of sentence indices."""
    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    best_dev: float | None = None
    best_step: int | None = None
    elapsed_before: float = 0.0
    """Training seconds of the processes before this one (a resumed run)."""
    clock_start: float = field(default_factory=time.perf_counter)

    def apply_gradients(self, grad_clip: float) -> None:
        """The optimizer and LR-schedule step on the gradients the step left (:func:`optimizer_step`)."""
        optimizer_step(self.task.parameters(), self.optimizer, self.scheduler, self.scaler, grad_clip)

    def start_clock(self) -> None:
        self.clock_start = time.perf_counter()

    def elapsed(self) -> float:
        """Training seconds so far, earlier processes included."""
        return self.elapsed_before + (time.perf_counter() - self.clock_start)

    # ------------------------------------------------------------------------------ the checkpoint's keys
    def to_checkpoint(
        self, *, config: Config, corpus: TrainingCorpus, rng_states: list[dict[str, Any]], per_rank: bool
    ) -> dict[str, Any]:
        """The checkpoint's contents; ``rng_states``: every rank's RNG states (kept per rank when
        ``per_rank``, i.e. under DDP)."""
        flat, offsets = pack_batches(self.order)
        return {
            "model": self.task.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else {},
            "rng": rng_states[0],
            **({"rng_per_rank": rng_states} if per_rank else {}),
            "step": self.step,
            "epoch": self.epoch,
            "batch_in_epoch": self.batch_in_epoch,
            "order": flat,
            "order_offsets": offsets,
            "best_dev": self.best_dev,
            "best_step": self.best_step,
            "elapsed_s": self.elapsed(),
            "config": config.to_dict(),
            "corpus_fingerprint": corpus.fingerprint,
            "corpus_sentences": len(corpus),
        }

    @classmethod
    def from_checkpoint(
        cls,
        saved: dict[str, Any],
        *,
        corpus: TrainingCorpus,
        task: nn.Module,
        optimizer: torch.optim.Optimizer,
        scheduler: torch.optim.lr_scheduler.LRScheduler,
        scaler: Any | None,
    ) -> TrainState:
        """Load ``saved`` into the freshly built objects and return where training stood. The RNG states are
        restored separately (:func:`restore_rng`), as the last thing before the loop."""
        if saved["corpus_fingerprint"] != corpus.fingerprint:
            raise JtcseError(
                f"--resume: the corpus {corpus.path} is not the one the checkpoint was trained on "
                f"({len(corpus)} sentences now, {saved['corpus_sentences']} then); resume with the same data"
            )
        task.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        if scaler is not None and saved.get("scaler"):
            scaler.load_state_dict(saved["scaler"])
        return cls(
            task,
            optimizer,
            scheduler,
            scaler,
            order=unpack_batches(saved["order"], saved["order_offsets"]),
            step=saved["step"],
            epoch=saved["epoch"],
            batch_in_epoch=saved["batch_in_epoch"],
            best_dev=saved["best_dev"],
            best_step=saved["best_step"],
            elapsed_before=saved["elapsed_s"],
        )


def saved_config(saved: dict[str, Any], origin: str = "config") -> Config:
    """The resolved config a checkpoint was written with."""
    return config_from_dict(saved["config"], origin=origin)


def restore_rng(saved: dict[str, Any], config: Config) -> str | None:
    """The checkpoint's RNG states: each rank its own when the world size is the one it was saved with.
    Returns a notice when it is not (the dropout draws then differ from an unbroken run's)."""
    dist_ctx = distributed.current()
    per_rank = saved.get("rng_per_rank")
    if dist_ctx.enabled and per_rank is not None and len(per_rank) == dist_ctx.world_size:
        restore_rng_state(per_rank[dist_ctx.rank])
        return None
    restore_rng_state(saved["rng"])  # Python's random (the JTCSE direction) continues on every rank
    saved_world = len(per_rank) if per_rank is not None else 1
    if dist_ctx.world_size == saved_world:
        return None
    if dist_ctx.enabled:
        torch.manual_seed(distributed.rank_seed(config.seed + saved["step"], dist_ctx.rank))
    return (
        f"the checkpoint was written by {saved_world} process(es), this run has {dist_ctx.world_size}: the "
        "data order and the objective continue, the dropout draws do not"
    )


def write_checkpoint(path: Path, state: TrainState, *, config: Config, corpus: TrainingCorpus) -> None:
    """Save ``state`` to ``path`` (rank 0; every rank hands in its RNG states) and the config beside it."""
    rng_states = distributed.gather_objects(capture_rng_state())  # every rank's dropout stream
    if not distributed.is_main_process():
        return
    per_rank = distributed.current().enabled
    save_checkpoint(
        path, state.to_checkpoint(config=config, corpus=corpus, rng_states=rng_states, per_rank=per_rank)
    )
    atomic_write_text(path.parent / CONFIG_FILE, dump_yaml(config))
