"""The training loop: ``train(config)``.

One step: take the next batch of the seeded epoch order (``data.batching``: random, the official order, or
length-bucketed), tokenise it with the task's ``collate`` (``2B`` rows ``[x0, x0, x1, x1, ...]`` for
SimCSE and the twin tower), run the task's forward pass (in length-sorted sub-batches, each padded to its own
longest row: ``train.length_sorted_sub_batch``) and objective, stop on a non-finite loss, step AdamW and the
LR schedule. Every ``log_every`` steps a metrics line; every ``eval.every`` steps the STS-B dev Spearman of
the inference embedding, and when it improves the model is exported to the output directory; every
``save_every`` steps (and at the end) the resumable checkpoint.

Where things live: the run directory's files :mod:`jtcse.run_files` (written by :mod:`.run_dir`), what a
checkpoint holds :mod:`.state`, a step's forward/backward :mod:`.step`, what each method computes
:mod:`.tasks`, AdamW and the schedule :mod:`.optimization`, the dev score :mod:`jtcse.evaluation.dev`.
"""

from __future__ import annotations

import contextlib
import math
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from jtcse.data.batching import plan_epoch
from jtcse.data.corpus import TrainingCorpus, load_corpus, resolve_corpus_path
from jtcse.errors import JtcseError
from jtcse.run_files import DEV_SCORE
from jtcse.training import distributed, run_dir
from jtcse.training.checkpoint import checkpoint_path, load_checkpoint, recover_output_dir
from jtcse.training.config import Config, apply_override, check_resumable, resolve, resolve_for_model
from jtcse.training.metrics import MetricsLog, Throughput, require_tensorboard
from jtcse.training.optimization import build_optimizer, build_scheduler
from jtcse.training.precision import Precision, resolve_precision
from jtcse.training.seeding import seed_everything
from jtcse.training.state import TrainState, restore_rng, saved_config, write_checkpoint
from jtcse.training.step import StepExecutor
from jtcse.training.sub_batching import resolve_sub_batch
from jtcse.training.tasks import Task, build_task


@dataclass
class TrainResult:
    output_dir: Path
    step: int
    total_steps: int
    best_dev: float | None
    best_step: int | None
    stopped_early: bool


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


def train(
    config: Config,
    *,
    resume: bool = False,
    on_step_end: Callable[[int], None] | None = None,
) -> TrainResult:
    """Train as ``config`` says; with ``resume``, continue from ``OUT/checkpoint``.

    ``on_step_end(step)`` is called after each step's logging, evaluation and checkpointing (tests use it to
    interrupt a run at a chosen step). ``OUT`` is locked for the run: a second writer stops with one line.
    """
    with run_dir.writer_lock(Path(config.output_dir)):
        return _train(config, resume, on_step_end)


def _train(config: Config, resume: bool, on_step_end: Callable[[int], None] | None) -> TrainResult:
    """:func:`train` inside the run directory's lock."""
    # -- setup: the config completed from the model, the checkpoint to resume, data, model, optimizer, OUT/
    run, state, resumed_at = _start(config, resume)
    settings, every = run.config.train, run.config.eval.every
    # after loading the state: under DDP, wrapping broadcasts rank 0's parameters
    forward_backward = StepExecutor(
        run.task,
        run.device,
        run.precision,
        grad_cache_chunk=settings.grad_cache_chunk,
        length_sorted_sub_batch=resolve_sub_batch(settings.length_sorted_sub_batch, run.device),
        pad_multiple=run.task.pad_to_multiple_of,
    )
    if state.step >= run.total_steps:
        return _already_complete(run, state)

    # -- the loop: one step per batch; log, evaluate and checkpoint when due
    meter, last_saved, stopped_early = Throughput(), resumed_at, False
    run.task.train()
    with _loop_context(run, state.step) as (bar, metrics, stop_requested):
        state.start_clock()
        while state.step < run.total_steps:
            # next batch: this process's share of the global batch, tokenised, on the device
            indices = _next_batch(state, run.plan, run.dist.world_size)
            batch = _collate(run, indices)
            lr = state.scheduler.get_last_lr()[0]

            # step: forward + backward (DDP / grad cache: the global batch's terms), finite check, AdamW
            state.optimizer.zero_grad(set_to_none=True)
            terms = forward_backward(batch, run.dist.shard_sizes(len(indices)))
            _stop_unless_finite(terms, state.step + 1, last_saved, run.checkpoint.parent)
            state.apply_gradients(settings.grad_clip)
            state.step += 1
            state.batch_in_epoch += 1
            meter.add(len(indices))

            # log: the progress bar every step, metrics.jsonl every log_every steps and at the end
            values = {k: v.item() for k, v in terms.items()}
            speed = meter.rate()
            _show_step(bar, values, speed)
            if _due(state.step, settings.log_every, run.total_steps):
                metrics.log(_train_record(state, values, lr, speed))
                meter.reset()

            # maybe evaluate: every eval.every steps and at the end, exporting the best model so far
            if _eval_due(state.step, every, run.total_steps, run.config.eval.at_final_step):
                meter.pause(_evaluate(run, state, metrics, bar))
            if state.step == run.total_steps and state.best_step is None:  # no evaluation chose a state
                run_dir.export_model(run.task, run.out, {"final_step": state.step})

            # maybe checkpoint: every save_every steps, at the end, and when asked to stop (train.stop_after,
            # Ctrl-C on any process)
            stop_now = _stop_now(state.step, settings.stop_after, stop_requested, run.device)
            save_due = settings.save_every and state.step % settings.save_every == 0
            if stop_now or save_due or state.step == run.total_steps:
                meter.pause(_save(run, state))
                last_saved = state.step
            if on_step_end is not None:
                on_step_end(state.step)
            if stop_now and state.step < run.total_steps:
                stopped_early = True
                break

    # -- finish: the card with the whole curve, not just up to the best step
    run_dir.write_card(run.out)
    distributed.barrier()  # rank 0's last checkpoint is on disk before any rank returns
    _say(_end_line(run, state, stopped_early))
    return _result(run, state, stopped_early=stopped_early)


def load_for_resume(output_dir: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """The config stored in ``OUT/checkpoint`` (``jtcse train --resume --output-dir OUT``, no CONFIG)."""
    path = checkpoint_path(output_dir)
    config = saved_config(load_checkpoint(path), origin=str(path))
    for item in overrides:
        apply_override(config, item)
    config.output_dir = str(output_dir)
    return resolve(config)


# ---------------------------------------------------------------------------------------------- setup
def _start(config: Config, resume: bool) -> tuple[Run, TrainState, int | None]:
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
    _say(_start_line(run, resumed_at))
    return run, state, resumed_at


def _checkpoint_to_resume(config: Config, resume: bool) -> dict[str, Any] | None:
    """The checkpoint ``--resume`` continues (its config checked against this one); None for a fresh run,
    which must not overwrite another run's checkpoint."""
    path = checkpoint_path(config.output_dir)
    if resume:
        saved = load_checkpoint(path)
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
        _say(f"jtcse train: {notice}")
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
        _say(f"jtcse train: {precision.notice}")
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
        _say(f"jtcse train: {notice}")
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


# ---------------------------------------------------------------------------------------------- one step
def _next_batch(state: TrainState, plan: EpochPlan, world_size: int) -> np.ndarray:
    """The next global batch's sentence indices, moving into the next epoch when this one is done."""
    while True:
        if state.batch_in_epoch >= len(state.order):
            state.epoch, state.batch_in_epoch = state.epoch + 1, 0
            state.order = plan(state.epoch)
        indices = state.order[state.batch_in_epoch]
        if len(indices) >= world_size:
            return indices
        state.batch_in_epoch += 1  # only after resuming on more processes than before


def _collate(run: Run, indices: np.ndarray) -> dict[str, torch.Tensor]:
    """This process's share of the global batch ``indices``, tokenised by the task, on the device."""
    batch = run.task.collate([run.corpus.sentences[i] for i in run.dist.local_part(indices)])
    return {k: v.to(run.device, non_blocking=True) for k, v in batch.items()}


def _stop_unless_finite(
    terms: dict[str, torch.Tensor], step: int, last_saved: int | None, kept: Path
) -> None:
    if torch.isfinite(terms["loss"]):
        return
    values = ", ".join(f"{k}={v.item():.4g}" for k, v in terms.items())
    where = (
        f"the last good checkpoint (step {last_saved}) is kept in {kept}"
        if last_saved is not None
        else "no checkpoint was written yet"
    )
    raise JtcseError(
        f"step {step}: the loss is not finite ({values}); training stopped and {where}; "
        "lower train.lr (or check the data) and start again"
    )


def _stop_now(step: int, stop_after: int, stop_requested: Callable[[], bool], device: torch.device) -> bool:
    """``train.stop_after`` reached, or Ctrl-C on any process (every rank stops at the same step)."""
    return step == stop_after or distributed.any_across_ranks(stop_requested(), device)


def _eval_due(step: int, every: int, last: int, at_last: bool) -> bool:
    """The official cadence: every ``every`` steps (never when 0); at step ``last`` only when asked
    (``eval.at_final_step``), since the official scripts never select the final state by itself."""
    return bool(every) and (step % every == 0 or (at_last and step == last))


def _due(step: int, every: int, last: int) -> bool:
    """Every ``every`` steps (never when 0) and at step ``last``."""
    return bool(every) and (step % every == 0 or step == last)


def _train_record(state: TrainState, values: dict[str, float], lr: float, speed: float) -> dict[str, Any]:
    return {
        "step": state.step,
        "epoch": state.epoch,
        **values,
        "lr": lr,
        **({"loss_scale": state.scaler.get_scale()} if state.scaler is not None else {}),
        "sentences_per_s": speed,
        "elapsed_s": state.elapsed(),
    }


def _show_step(bar: tqdm, values: dict[str, float], speed: float) -> None:
    bar.set_postfix({**{k: f"{v:.4f}" for k, v in values.items()}, "sent/s": f"{speed:.0f}"}, refresh=False)
    bar.update(1)


def _evaluate(run: Run, state: TrainState, metrics: Any, bar: Any) -> float:
    """The dev score (rank 0 evaluates, the others wait for its score); the model is exported when it
    improves. Returns the seconds it took."""
    from jtcse.evaluation.dev import training_dev_score

    started = time.perf_counter()
    score = None
    if run.dist.is_main:
        score = training_dev_score(
            run.task,
            batch_size=run.config.eval.batch_size,
            max_length=run.config.eval.dev_max_len or None,
            device=run.device,
            data_dir=run.config.data.data_dir or None,
            autocast=run.precision.autocast,
        )
    score = distributed.broadcast_object(score)
    if math.isfinite(score) and (state.best_dev is None or score > state.best_dev):
        state.best_dev, state.best_step = score, state.step
        run_dir.export_model(run.task, run.out, {"best_step": state.step, DEV_SCORE: score})
    took = time.perf_counter() - started
    record = {DEV_SCORE: score, f"best_{DEV_SCORE}": state.best_dev, "best_step": state.best_step}
    metrics.log({"step": state.step, **record, "eval_s": took, "elapsed_s": state.elapsed()})
    best = f"{state.best_dev:.2f}" if state.best_dev is not None else "-"
    bar.set_description(f"dev {score:.2f} (best {best})", refresh=False)
    return took


def _save(run: Run, state: TrainState) -> float:
    """The resumable checkpoint; returns the seconds it took."""
    started = time.perf_counter()
    write_checkpoint(run.checkpoint, state, config=run.config, corpus=run.corpus)
    return time.perf_counter() - started


# ---------------------------------------------------------------------------------------------- reporting
def _already_complete(run: Run, state: TrainState) -> TrainResult:
    _say(f"jtcse train: {run.out} is already complete ({state.step} steps)")
    return _result(run, state, stopped_early=False)


def _result(run: Run, state: TrainState, *, stopped_early: bool) -> TrainResult:
    return TrainResult(run.out, state.step, run.total_steps, state.best_dev, state.best_step, stopped_early)


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


def _end_line(run: Run, state: TrainState, stopped_early: bool) -> str:
    if stopped_early:
        return (
            f"jtcse train: stopped after step {state.step}; continue with --resume "
            f"(checkpoint in {run.checkpoint.parent})"
        )
    if state.best_dev is not None:
        best = f"best STS-B dev {state.best_dev:.2f} at step {state.best_step}"
        return f"jtcse train: done; {best}; model in {run.out}"
    return f"jtcse train: done; final model in {run.out}"


@contextlib.contextmanager
def _loop_context(run: Run, step: int) -> Iterator[tuple[tqdm, Any, Callable[[], bool]]]:
    """The progress bar, the metrics log (rank 0; the others log nowhere), the Ctrl-C flag, and quiet
    transformers progress bars, for the duration of the loop."""
    with contextlib.ExitStack() as stack:
        bar = stack.enter_context(
            tqdm(
                total=run.total_steps,
                initial=step,
                disable=not run.config.train.progress or not run.dist.is_main,
                unit="step",
                dynamic_ncols=True,
                file=sys.stderr,
            )
        )
        if run.dist.is_main:
            metrics: Any = stack.enter_context(MetricsLog(run.out, tensorboard=run.config.train.tensorboard))
        else:
            metrics = stack.enter_context(distributed.NoMetrics())
        stop_requested = stack.enter_context(_graceful_stop())
        stack.enter_context(_quiet_transformers())
        yield bar, metrics, stop_requested


@contextlib.contextmanager
def _graceful_stop() -> Iterator[Callable[[], bool]]:
    """First Ctrl-C: finish the current step, write a checkpoint, stop. Second Ctrl-C: abort at once."""
    requested = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield requested.is_set
        return

    def handler(signum: int, frame: Any) -> None:
        if requested.is_set():
            raise KeyboardInterrupt
        requested.set()
        _say("\njtcse train: stopping after this step (Ctrl-C again to abort without a checkpoint)")

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield requested.is_set
    finally:
        signal.signal(signal.SIGINT, previous)


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """No "Writing model shards" bars from transformers under our own bar while exporting."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def _say(message: str) -> None:
    if distributed.is_main_process():
        tqdm.write(message, file=sys.stderr)
