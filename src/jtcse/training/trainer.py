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
:mod:`.tasks`, AdamW and the schedule :mod:`.optimization`, the dev score :mod:`jtcse.evaluation.dev`, what a
run fixes before its first step :mod:`.run_setup`, the bar, metrics log and Ctrl-C flag :mod:`.loop_context`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import torch
from tqdm import tqdm

from jtcse.errors import JtcseError
from jtcse.run_files import DEV_SCORE
from jtcse.training import distributed, run_dir
from jtcse.training.checkpoint import RESUME_SPEC, checkpoint_path, load_checkpoint
from jtcse.training.config import Config, apply_override, resolve
from jtcse.training.distributed import say
from jtcse.training.loop_context import MetricsSink, loop_context
from jtcse.training.metrics import Throughput
from jtcse.training.run_setup import EpochPlan, Run, start_run
from jtcse.training.state import TrainState, saved_config, write_checkpoint
from jtcse.training.step import StepExecutor
from jtcse.training.sub_batching import resolve_sub_batch


@dataclass
class TrainResult:
    """What :func:`train` returns: the run directory, the last step trained and the run's planned total, the
    best STS-B dev score and its step (None when no evaluation ran), and whether the run stopped before its
    last step (``train.stop_after`` or Ctrl-C; ``--resume`` continues it)."""

    output_dir: Path
    step: int
    total_steps: int
    best_dev: float | None
    best_step: int | None
    stopped_early: bool
    halted: bool = False
    """``on_evaluate`` asked to stop (a sweep's pruner): no checkpoint was written for this stop."""


def train(
    config: Config,
    *,
    resume: bool = False,
    on_step_end: Callable[[int], None] | None = None,
    on_evaluate: Callable[[int, float], bool] | None = None,
) -> TrainResult:
    """Train as ``config`` says; with ``resume``, continue from ``OUT/checkpoint``.

    ``on_step_end(step)`` is called after each step's logging, evaluation and checkpointing (tests use it to
    interrupt a run at a chosen step). ``on_evaluate(step, dev_score)`` is called after each STS-B dev
    evaluation (``eval.every``); returning True stops the run there, without a checkpoint, and the result
    says ``halted`` (``jtcse sweep``'s pruner). ``OUT`` is locked for the run: a second writer stops with
    one line.
    """
    run_dir.check_run_dir(config)
    with run_dir.writer_lock(Path(config.output_dir)):
        return _train(config, resume, _Hooks(on_step_end, on_evaluate))


@dataclass(frozen=True)
class _Hooks:
    """The caller's callbacks into the loop (see :func:`train`)."""

    on_step_end: Callable[[int], None] | None = None
    on_evaluate: Callable[[int, float], bool] | None = None

    def halt(self, step: int, score: float, last: int) -> bool:
        """Whether ``on_evaluate`` stops the run after this evaluation (never at the last step: it ended)."""
        return self.on_evaluate is not None and bool(self.on_evaluate(step, score)) and step < last


def _train(config: Config, resume: bool, hooks: _Hooks) -> TrainResult:
    """:func:`train` inside the run directory's lock."""
    # -- setup: the config completed from the model, the checkpoint to resume, data, model, optimizer, OUT/
    run, state, resumed_at = start_run(config, resume)
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
    meter, last_saved, stopped_early, halted = Throughput(), resumed_at, False, False
    run.task.train()
    with loop_context(run, state.step) as (bar, metrics, stop_requested):
        state.start_clock()
        while state.step < run.total_steps:
            # next batch: this process's share of the global batch, tokenised, on the device
            indices = _next_batch(state, run.plan, run.dist.world_size)
            batch = _collate(run, indices)
            lr = float(state.scheduler.get_last_lr()[0])

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
                score, took = _evaluate(run, state, metrics, bar)
                meter.pause(took)
                if hooks.halt(state.step, score, run.total_steps):
                    halted = True
                    break
            if state.step == run.total_steps and state.best_step is None:  # no evaluation chose a state
                run_dir.export_model(run.task, run.out, {"final_step": state.step})

            # maybe checkpoint: every save_every steps, at the end, and when asked to stop (train.stop_after,
            # Ctrl-C on any process)
            stop_now = _stop_now(state.step, settings.stop_after, stop_requested, run.device)
            save_due = settings.save_every and state.step % settings.save_every == 0
            if stop_now or save_due or state.step == run.total_steps:
                meter.pause(_save(run, state))
                last_saved = state.step
            if hooks.on_step_end is not None:
                hooks.on_step_end(state.step)
            if stop_now and state.step < run.total_steps:
                stopped_early = True
                break

    # -- finish: the card with the whole curve, not just up to the best step
    run_dir.write_card(run.out)
    distributed.barrier()  # rank 0's last checkpoint is on disk before any rank returns
    say(_end_line(run, state, stopped_early, halted))
    return _result(run, state, stopped_early=stopped_early, halted=halted)


def load_for_resume(output_dir: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """The config stored in ``OUT/checkpoint`` (``jtcse train --resume --output-dir OUT``, no CONFIG)."""
    path = checkpoint_path(output_dir)
    config = saved_config(load_checkpoint(path, spec=RESUME_SPEC), origin=str(path))
    for item in overrides:
        apply_override(config, item)
    config.output_dir = str(output_dir)
    return resolve(config)


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


def _evaluate(run: Run, state: TrainState, metrics: MetricsSink, bar: tqdm[NoReturn]) -> tuple[float, float]:
    """The dev score (rank 0 evaluates, the others wait for its score); the model is exported when it
    improves. Returns the score and the seconds it took."""
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
    assert score is not None  # rank 0's score
    if math.isfinite(score) and (state.best_dev is None or score > state.best_dev):
        state.best_dev, state.best_step = score, state.step
        run_dir.export_model(run.task, run.out, {"best_step": state.step, DEV_SCORE: score})
    took = time.perf_counter() - started
    record = {DEV_SCORE: score, f"best_{DEV_SCORE}": state.best_dev, "best_step": state.best_step}
    metrics.log({"step": state.step, **record, "eval_s": took, "elapsed_s": state.elapsed()})
    best = f"{state.best_dev:.2f}" if state.best_dev is not None else "-"
    bar.set_description(f"dev {score:.2f} (best {best})", refresh=False)
    return score, took


def _save(run: Run, state: TrainState) -> float:
    """The resumable checkpoint; returns the seconds it took."""
    started = time.perf_counter()
    write_checkpoint(run.checkpoint, state, config=run.config, corpus=run.corpus)
    return time.perf_counter() - started


# ---------------------------------------------------------------------------------------------- reporting
def _already_complete(run: Run, state: TrainState) -> TrainResult:
    say(f"jtcse train: {run.out} is already complete ({state.step} steps)")
    return _result(run, state, stopped_early=False)


def _result(run: Run, state: TrainState, *, stopped_early: bool, halted: bool = False) -> TrainResult:
    return TrainResult(
        run.out, state.step, run.total_steps, state.best_dev, state.best_step, stopped_early, halted
    )


def _end_line(run: Run, state: TrainState, stopped_early: bool, halted: bool) -> str:
    if halted:
        return f"jtcse train: halted after step {state.step} (on_evaluate); best model so far in {run.out}"
    if stopped_early:
        return (
            f"jtcse train: stopped after step {state.step}; continue with --resume "
            f"(checkpoint in {run.checkpoint.parent})"
        )
    if state.best_dev is not None:
        best = f"best STS-B dev {state.best_dev:.2f} at step {state.best_step}"
        return f"jtcse train: done; {best}; model in {run.out}"
    return f"jtcse train: done; final model in {run.out}"
