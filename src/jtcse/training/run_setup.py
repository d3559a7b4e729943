"""Everything a training run fixes before its first step: the config completed from the model, the checkpoint
to resume, device and processes, seeds, corpus, task, epoch plan, precision, the prepared output directory."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from jtcse.data.batching import plan_epoch
from jtcse.data.corpus import TrainingCorpus, load_corpus, resolve_corpus_path
from jtcse.errors import JtcseError
from jtcse.training import distributed, run_dir
from jtcse.training.checkpoint import RESUME_SPEC, checkpoint_path, load_checkpoint, recover_output_dir
from jtcse.training.config import Config, check_resumable, resolve_for_model
from jtcse.training.distributed import say
from jtcse.training.metrics import require_tensorboard
from jtcse.training.optimization import build_optimizer, build_scheduler
from jtcse.training.precision import Precision, resolve_precision
from jtcse.training.seeding import seed_everything
from jtcse.training.state import TrainState, restore_rng, saved_config
from jtcse.training.sub_batching import resolve_sub_batch
from jtcse.training.tasks import Task, build_task


@dataclass(frozen=True)
class EpochPlan:
    """Each epoch's batches, seeded (:func:`plan_epoch`: ``data.batching`` random or length-bucketed), only
    batches every process gets a share of."""

    lengths: np.ndarray
    config: Config
    world_size: int

    def __call__(self, epoch: int) -> list[np.ndarray]:
        data = self.config.data
        batches = plan_epoch(
            self.lengths,
            self.config.train.batch_size,
            seed=self.config.seed,
            epoch=epoch,
            batching=data.batching,
            bucket_window=data.bucket_window,
            drop_last=data.drop_last,
        )
        return distributed.drop_unshardable(batches, self.world_size)


@dataclass
class Run:
    """What a run fixes before its first step; the loop reads it and never changes it."""

    config: Config
    out: Path
    dist: distributed.DistContext
    device: torch.device
    corpus: TrainingCorpus
    task: Task
    plan: EpochPlan
    total_steps: int
    precision: Precision

    @property
    def checkpoint(self) -> Path:
        return checkpoint_path(self.out)


def start_run(config: Config, resume: bool) -> tuple[Run, TrainState, int | None]:
    """Everything before the first step: the run, its state (step 0 or the checkpoint's), the output
    directory prepared and this start recorded. Also returns the step a resumed run continues from."""
    config = resolve_for_model(config)
    recover_output_dir(Path(config.output_dir))  # temporaries and staging left by a crashed earlier run
    saved = _checkpoint_to_resume(config, resume)
    run = _setup(config)
    state = _initial_state(run, saved)
    resumed_at = state.step if saved is not None else None
    run_dir.prepare(run.out, config, resumed_at=resumed_at)
    run_dir.record_environment(run.out, config, run.device, resumed_at=resumed_at, extra=_environment(run))
    say(_start_line(run, resumed_at))
    return run, state, resumed_at


def _checkpoint_to_resume(config: Config, resume: bool) -> dict[str, Any] | None:
    """The checkpoint ``--resume`` continues (its config checked against this one); None for a fresh run,
    which must not overwrite another run's checkpoint."""
    path = checkpoint_path(config.output_dir)
    if resume:
        saved = load_checkpoint(path, spec=RESUME_SPEC)
        check_resumable(config, saved_config(saved))
        return saved
    if path.exists():
        raise JtcseError(
            f"{config.output_dir}: holds a checkpoint of an earlier run; pass --resume to continue it, or "
            "choose another --output-dir"
        )
    return None


def _setup(config: Config) -> Run:
    """Device (joining the process group under torchrun), seeds, corpus, task, epoch plan, precision."""
    if config.train.threads > 0:
        torch.set_num_threads(config.train.threads)
    dist_ctx, device, notices = distributed.init_distributed(config.train.device)
    for notice in notices:
        say(f"jtcse train: {notice}")
    seed_everything(config.seed, deterministic=config.train.deterministic)
    corpus = _load_corpus(config)
    if config.eval.every:
        _check_dev_data(config)  # fail now, not at the first evaluation
    if config.train.tensorboard:
        require_tensorboard()
    task = build_task(config).to(device)
    if dist_ctx.enabled:  # ranks start identical but draw their own dropout masks (Python's random is shared)
        torch.manual_seed(distributed.rank_seed(config.seed, dist_ctx.rank))
    plan = EpochPlan(np.asarray(corpus.char_lengths()), config, dist_ctx.world_size)
    first_epoch = len(plan(0))
    if not first_epoch:
        raise JtcseError(
            f"{corpus.path}: {len(corpus)} sentence(s), fewer than one batch of {config.train.batch_size} "
            "with data.drop_last = true"
        )
    total_steps = config.train.max_steps or config.train.epochs * first_epoch
    precision = resolve_precision(
        config.train.precision, device, cudnn_attention=config.train.cudnn_attention
    )
    if precision.notice:
        say(f"jtcse train: {precision.notice}")
    out = Path(config.output_dir)
    return Run(config, out, dist_ctx, device, corpus, task, plan, total_steps, precision)


def _initial_state(run: Run, saved: dict[str, Any] | None) -> TrainState:
    """Step 0 of a fresh run, or the checkpoint's state with its RNG streams (the last thing restored)."""
    optimizer = build_optimizer(run.task, run.config)
    scheduler = build_scheduler(optimizer, run.config, run.total_steps)
    objects = {
        "task": run.task,
        "optimizer": optimizer,
        "scheduler": scheduler,
        "scaler": run.precision.scaler,
    }
    if saved is None:
        return TrainState(**objects, order=run.plan(0))
    state = TrainState.from_checkpoint(saved, corpus=run.corpus, **objects)
    notice = restore_rng(saved, run.config)
    if notice:
        say(f"jtcse train: {notice}")
    return state


def _load_corpus(config: Config) -> TrainingCorpus:
    path = resolve_corpus_path(config.data.corpus, config.data.data_dir or None)
    return load_corpus(
        path,
        max_chars=config.data.max_chars or 20 * config.data.max_len,
        dedup=config.data.dedup,
        max_sentences=config.data.max_sentences,
        on_bad_utf8=config.data.on_bad_utf8,
        min_sentences=2,  # one sentence has no in-batch negatives (loss 0, nothing learned)
    )


def _check_dev_data(config: Config) -> None:
    from jtcse.data.paths import resolve_data_dir

    try:
        resolve_data_dir(config.data.data_dir or None, need="sts")
    except JtcseError as exc:
        raise JtcseError(f"{exc} (STS-B dev for eval.every; set eval.every = 0 to train without it)") from exc


def _environment(run: Run) -> dict[str, Any]:
    """What environment.json records of this run besides versions and the device."""
    return {
        "processes": run.dist.describe(),
        "precision": run.precision.describe(),
        "pad_to_multiple_of": run.task.pad_to_multiple_of,
        "grad_cache_chunk": run.config.train.grad_cache_chunk,
        "length_sorted_sub_batch": resolve_sub_batch(run.config.train.length_sorted_sub_batch, run.device),
    }


def _start_line(run: Run, resumed_at: int | None) -> str:
    config, dist_ctx, corpus = run.config, run.dist, run.corpus
    chunk = config.train.grad_cache_chunk
    return (
        f"jtcse train: {config.method} on {run_dir.describe_device(run.device)}"
        + (f" x {dist_ctx.world_size} processes ({dist_ctx.backend})" if dist_ctx.enabled else "")
        + f", {run.precision.name}; "
        f"{len(corpus)} sentences ({corpus.stats.summary()}) from {corpus.path}; "
        f"{run.total_steps} steps of {config.train.batch_size}"
        + (f" (grad cache: chunks of {chunk})" if chunk else "")
        + f" -> {run.out}"
        + (f"; resuming at step {resumed_at}" if resumed_at is not None else "")
    )
