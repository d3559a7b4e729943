"""The training loop: ``train(config)``.

One step: take the next batch of the seeded epoch order (``data.batching``: random or length-bucketed),
tokenise it into ``2B`` rows ``[x0, x0, x1, x1, ...]`` padded to the batch's longest sentence (encoded in
length-sorted sub-batches, ``train.length_sorted_sub_batch``), run the task's forward pass and objective,
stop on a non-finite loss, step AdamW and the LR schedule. Every ``log_every`` steps a metrics line; every
``eval.every`` steps the STS-B dev Spearman of the inference embedding, and when it improves the model is
exported to the output directory; every ``save_every`` steps (and at the end) the resumable checkpoint.

Output directory::

    OUT/
      jtcse.json + model files     the best model by STS-B dev (simcse: an HF model dir; jtcse/tncse:
                                   tower_a/, tower_b/), or the final state when dev evaluation is off
      train_config.yaml            the resolved config (rerun with: jtcse train OUT/train_config.yaml)
      metrics.jsonl                see jtcse.training.metrics
      environment.json             versions, device, threads, command line (one entry per start/resume)
      checkpoint/state.pt          the last state, for --resume (see jtcse.training.checkpoint)
      tensorboard/                 when train.tensorboard = true
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import shutil
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
from torch import nn

from jtcse.data.batching import PairTokenizer, pack_batches, plan_epoch, unpack_batches
from jtcse.data.corpus import Corpus, load_corpus, resolve_corpus_path
from jtcse.errors import JtcseError
from jtcse.fs import atomic_write_text
from jtcse.training import distributed
from jtcse.training.checkpoint import CHECKPOINT_DIR, checkpoint_path, load_checkpoint, save_checkpoint
from jtcse.training.config import RESOLVED_CONFIG_NAME, Config, config_from_dict, dump_yaml, resolve
from jtcse.training.metrics import METRICS_FILE, MetricsLog, require_tensorboard, truncate_after
from jtcse.training.optim import adamw
from jtcse.training.precision import resolve_pad_multiple, resolve_precision
from jtcse.training.seeding import capture_rng_state, restore_rng_state, seed_everything
from jtcse.training.step import StepRunner
from jtcse.training.sub_batching import resolve_sub_batch
from jtcse.training.tasks import build_task

ENVIRONMENT_FILE = "environment.json"

# Keys that may change between a run and its --resume without changing the loss curve.
RESUMABLE_CHANGES = frozenset(
    {
        "output_dir",
        "data.data_dir",
        "train.stop_after",
        "train.progress",
        "train.tensorboard",
        "train.threads",
        "train.device",
        "train.log_every",
        "train.save_every",
        "eval.batch_size",
        # speed/memory knobs: the same objective (other float rounding; grad caching: other dropout draws)
        "data.pad_to_multiple_of",
        "train.cudnn_attention",
        "train.grad_cache_chunk",
        "train.length_sorted_sub_batch",  # issue 10: same batch for the loss, other dropout draws
    }
)


@dataclass
class TrainResult:
    output_dir: Path
    step: int
    total_steps: int
    best_dev: float | None
    best_step: int | None
    stopped_early: bool


def train(
    config: Config,
    *,
    resume: bool = False,
    on_step_end: Callable[[int], None] | None = None,
) -> TrainResult:
    """Train as ``config`` says; with ``resume``, continue from ``OUT/checkpoint``.

    ``on_step_end(step)`` is called after each step's logging, evaluation and checkpointing (tests use it to
    interrupt a run at a chosen step).
    """
    out = Path(config.output_dir)
    ckpt_file = checkpoint_path(out)
    saved: dict[str, Any] | None = None
    if resume:
        saved = load_checkpoint(ckpt_file)
        _check_resumable(config, saved)
    elif ckpt_file.exists():
        raise JtcseError(
            f"{out}: holds a checkpoint of an earlier run; pass --resume to continue it, or choose another "
            "--output-dir"
        )

    dist_ctx, device = _setup_device(config)  # joins the process group under torchrun
    seed_everything(config.seed, deterministic=config.train.deterministic)
    corpus = _load_corpus(config)
    if config.eval.every:
        _check_dev_data(config)  # fail now, not at the first evaluation
    if config.train.tensorboard:
        require_tensorboard()
    task = build_task(config).to(device)  # may fill in method-dependent values (tncse dropout)
    if dist_ctx.enabled:  # ranks start identical but draw their own dropout masks (Python's random is shared)
        torch.manual_seed(distributed.rank_seed(config.seed, dist_ctx.rank))
    pad_multiple = resolve_pad_multiple(config.data.pad_to_multiple_of, device)
    # A task that needs more than its tokenizer's duplicated rows (distill: the teacher's own tokens) brings
    # its own ``collate(sentences) -> {name: tensor}``.
    pairs = getattr(task, "collate", None) or PairTokenizer(
        task.tokenizer, config.data.max_len, pad_to_multiple_of=pad_multiple or None
    )
    lengths = np.asarray(corpus.char_lengths())

    def epoch_order(epoch: int) -> list[np.ndarray]:
        batches = plan_epoch(
            lengths,
            config.train.batch_size,
            seed=config.seed,
            epoch=epoch,
            batching=config.data.batching,  # issue 10
            bucket_window=config.data.bucket_window,
            drop_last=config.data.drop_last,
        )
        return distributed.drop_unshardable(batches, dist_ctx.world_size)

    order = epoch_order(0)
    if not order:
        raise JtcseError(
            f"{corpus.path}: {len(corpus)} sentence(s), fewer than one batch of {config.train.batch_size} "
            "with data.drop_last = true"
        )
    total_steps = config.train.max_steps or config.train.epochs * len(order)
    warmup = config.train.warmup_steps or int(config.train.warmup_ratio * total_steps)
    optimizer = _optimizer(task, config)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, _lr_lambda(config.train.schedule, warmup, total_steps)
    )
    precision_setup = resolve_precision(
        config.train.precision, device, cudnn_attention=config.train.cudnn_attention
    )
    if precision_setup.notice:
        _say(f"jtcse train: {precision_setup.notice}")
    precision, autocast, scaler = precision_setup.name, precision_setup.autocast, precision_setup.scaler

    step, epoch, batch_in_epoch = 0, 0, 0
    best_dev: float | None = None
    best_step: int | None = None
    elapsed_before = 0.0
    last_ckpt_step: int | None = None
    if saved is not None:
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
        step, epoch, batch_in_epoch = saved["step"], saved["epoch"], saved["batch_in_epoch"]
        order = unpack_batches(saved["order"], saved["order_offsets"])
        best_dev, best_step = saved["best_dev"], saved["best_step"]
        elapsed_before = saved["elapsed_s"]
        last_ckpt_step = step
        _restore_rng(saved, config, dist_ctx)
        if dist_ctx.is_main:
            truncate_after(out / METRICS_FILE, step)
    elif dist_ctx.is_main:
        out.mkdir(parents=True, exist_ok=True)
        (out / METRICS_FILE).unlink(missing_ok=True)  # a run that died before its first checkpoint
        atomic_write_text(out / RESOLVED_CONFIG_NAME, dump_yaml(config))
    if dist_ctx.is_main:
        _record_environment(
            out,
            config,
            device,
            resumed_at=step if saved is not None else None,
            extra={
                "processes": dist_ctx.describe(),
                "precision": precision_setup.describe(),
                "pad_to_multiple_of": pad_multiple,
                "grad_cache_chunk": config.train.grad_cache_chunk,
                "length_sorted_sub_batch": resolve_sub_batch(config.train.length_sorted_sub_batch, device),
            },
        )
    # after loading the state: under DDP, wrapping broadcasts rank 0's parameters
    runner = StepRunner(
        task,
        device,
        precision_setup,
        grad_cache_chunk=config.train.grad_cache_chunk,
        method=config.method,
        length_sorted_sub_batch=resolve_sub_batch(config.train.length_sorted_sub_batch, device),  # issue 10
        pad_multiple=pad_multiple,
    )

    _say(
        f"jtcse train: {config.method} on {_describe_device(device)}"
        + (f" x {dist_ctx.world_size} processes ({dist_ctx.backend})" if dist_ctx.enabled else "")
        + f", {precision}; "
        f"{len(corpus)} sentences ({corpus.stats.summary()}) from {corpus.path}; "
        f"{total_steps} steps of {config.train.batch_size}"
        + (f" (grad cache: chunks of {chunk})" if (chunk := config.train.grad_cache_chunk) else "")
        + f" -> {out}"
        + (f"; resuming at step {step}" if saved else "")
    )
    if step >= total_steps:
        _say(f"jtcse train: {out} is already complete ({step} steps)")
        return TrainResult(out, step, total_steps, best_dev, best_step, stopped_early=False)

    def save_state() -> None:
        nonlocal last_ckpt_step
        rng_states = distributed.gather_objects(capture_rng_state())  # every rank's dropout stream
        if not dist_ctx.is_main:
            last_ckpt_step = step
            return
        flat, offsets = pack_batches(order)
        save_checkpoint(
            ckpt_file,
            {
                "model": task.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict() if scaler is not None else {},
                "rng": rng_states[0],
                **({"rng_per_rank": rng_states} if dist_ctx.enabled else {}),
                "step": step,
                "epoch": epoch,
                "batch_in_epoch": batch_in_epoch,
                "order": flat,
                "order_offsets": offsets,
                "best_dev": best_dev,
                "best_step": best_step,
                "elapsed_s": elapsed_before + (time.perf_counter() - started),
                "config": config.to_dict(),
                "corpus_fingerprint": corpus.fingerprint,
                "corpus_sentences": len(corpus),
            },
        )
        atomic_write_text(out / CHECKPOINT_DIR / RESOLVED_CONFIG_NAME, dump_yaml(config))
        last_ckpt_step = step

    started = time.perf_counter()
    # sentences/s counts training only: time spent on dev evaluation and checkpoints is taken out
    window_start, window_sentences, paused = started, 0, 0.0
    stopped_early = False
    from tqdm import tqdm

    bar = tqdm(
        total=total_steps,
        initial=step,
        disable=not config.train.progress or not dist_ctx.is_main,
        unit="step",
        dynamic_ncols=True,
        file=sys.stderr,
    )
    task.train()
    with (
        (
            MetricsLog(out, tensorboard=config.train.tensorboard)
            if dist_ctx.is_main
            else distributed.NoMetrics()
        ) as metrics,
        _graceful_stop() as stop_requested,
        _quiet_transformers(),
    ):
        while step < total_steps:
            if batch_in_epoch >= len(order):
                epoch, batch_in_epoch = epoch + 1, 0
                order = epoch_order(epoch)
            indices = order[batch_in_epoch]
            if len(indices) < dist_ctx.world_size:  # only after resuming on more processes than before
                batch_in_epoch += 1
                continue
            mine = dist_ctx.local_part(indices)  # this rank's slice of the global batch (one process: all)
            batch = {
                k: v.to(device, non_blocking=True)
                for k, v in pairs([corpus.sentences[i] for i in mine]).items()
            }
            lr = scheduler.get_last_lr()[0]

            optimizer.zero_grad(set_to_none=True)
            # forward + backward (DDP / grad cache); the terms are the global batch's, the same on every rank
            terms = runner(batch, dist_ctx.shard_sizes(len(indices)))
            loss = terms["loss"]
            if not torch.isfinite(loss):
                bar.close()
                values = ", ".join(f"{k}={v.item():.4g}" for k, v in terms.items())
                kept = (
                    f"the last good checkpoint (step {last_ckpt_step}) is kept in {ckpt_file.parent}"
                    if last_ckpt_step is not None
                    else "no checkpoint was written yet"
                )
                raise JtcseError(
                    f"step {step + 1}: the loss is not finite ({values}); training stopped and {kept}; "
                    "lower train.lr (or check the data) and start again"
                )
            if scaler is not None:
                scaler.unscale_(optimizer)
            if config.train.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(task.parameters(), config.train.grad_clip)
            if scaler is not None:
                scaler.step(optimizer)
                scaler.update()
            else:
                optimizer.step()
            scheduler.step()
            step += 1
            batch_in_epoch += 1
            window_sentences += len(indices)
            values = {k: v.item() for k, v in terms.items()}

            now = time.perf_counter()
            speed = window_sentences / max(now - window_start - paused, 1e-9)
            bar.set_postfix(
                {**{k: f"{v:.4f}" for k, v in values.items()}, "sent/s": f"{speed:.0f}"}, refresh=False
            )
            bar.update(1)
            if step % config.train.log_every == 0 or step == total_steps:
                metrics.log(
                    {
                        "step": step,
                        "epoch": epoch,
                        **values,
                        "lr": lr,
                        **({"loss_scale": scaler.get_scale()} if scaler is not None else {}),
                        "sentences_per_s": speed,
                        "elapsed_s": elapsed_before + now - started,
                    }
                )
                window_start, window_sentences, paused = now, 0, 0.0

            every = config.eval.every
            # issue 10: the official cadence (multiples of eval.every); the last step only when asked
            final_eval = config.eval.at_final_step and step == total_steps
            if every and (step % every == 0 or final_eval):
                eval_start = time.perf_counter()
                # rank 0 evaluates; the others wait for its score
                score = distributed.broadcast_object(
                    _dev_score(task, config, device, autocast) if dist_ctx.is_main else None
                )
                improved = math.isfinite(score) and (best_dev is None or score > best_dev)
                if improved:
                    best_dev, best_step = score, step
                    _export(task, out, config, {"best_step": step, "dev_stsb": score})
                eval_took = time.perf_counter() - eval_start
                paused += eval_took
                metrics.log(
                    {
                        "step": step,
                        "dev_stsb": score,
                        "best_dev_stsb": best_dev,
                        "best_step": best_step,
                        "eval_s": eval_took,
                        "elapsed_s": elapsed_before + time.perf_counter() - started,
                    }
                )
                best_text = f"{best_dev:.2f}" if best_dev is not None else "-"
                bar.set_description(f"dev {score:.2f} (best {best_text})", refresh=False)
            if step == total_steps and best_step is None:  # no evaluation chose a state: the final one
                _export(task, out, config, {"final_step": step})

            stop_now = step == config.train.stop_after or distributed.any_across_ranks(
                stop_requested(), device
            )
            save_every = config.train.save_every
            if step == total_steps or stop_now or (save_every and step % save_every == 0):
                save_start = time.perf_counter()
                save_state()
                paused += time.perf_counter() - save_start
            if on_step_end is not None:
                on_step_end(step)
            if stop_now and step < total_steps:
                stopped_early = True
                break
    bar.close()
    if (out / "jtcse.json").exists():
        _write_card(out)  # the whole curve, not just up to the best step
    distributed.barrier()  # rank 0's last checkpoint is on disk before any rank returns
    if stopped_early:
        _say(
            f"jtcse train: stopped after step {step}; continue with --resume "
            f"(checkpoint in {ckpt_file.parent})"
        )
    elif best_dev is not None:
        _say(f"jtcse train: done; best STS-B dev {best_dev:.2f} at step {best_step}; model in {out}")
    else:
        _say(f"jtcse train: done; final model in {out}")
    return TrainResult(out, step, total_steps, best_dev, best_step, stopped_early)


def load_for_resume(output_dir: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """The config stored in ``OUT/checkpoint`` (``jtcse train --resume --output-dir OUT``, no CONFIG)."""
    from jtcse.training.config import apply_override

    saved = load_checkpoint(checkpoint_path(output_dir))
    config = config_from_dict(saved["config"], origin=str(checkpoint_path(output_dir)))
    for item in overrides:
        apply_override(config, item)
    config.output_dir = str(output_dir)
    return resolve(config)


# ---------------------------------------------------------------------------------------------- pieces
def _check_resumable(config: Config, saved: dict[str, Any]) -> None:
    before = config_from_dict(saved["config"]).flat()
    now = config.flat()
    if config.method == "tncse" and "model.dropout" not in config.explicit:
        now["model.dropout"] = before.get("model.dropout")  # filled in from the model, as it was then
    changed = [k for k in now if k not in RESUMABLE_CHANGES and now[k] != before.get(k)]
    if changed:
        diffs = "; ".join(f"{k} = {now[k]!r} (checkpoint: {before.get(k)!r})" for k in changed)
        raise JtcseError(
            f"--resume: the config differs from the checkpoint's in {diffs}; resume with the same settings "
            f"(only {', '.join(sorted(RESUMABLE_CHANGES))} may change)"
        )


def _setup_device(config: Config) -> tuple[distributed.DistContext, torch.device]:
    if config.train.threads > 0:
        torch.set_num_threads(config.train.threads)
    dist_ctx, device, notices = distributed.init_distributed(config.train.device)
    for notice in notices:
        _say(f"jtcse train: {notice}")
    return dist_ctx, device


def _restore_rng(saved: dict[str, Any], config: Config, dist_ctx: distributed.DistContext) -> None:
    """The checkpoint's RNG states: each rank its own when the world size is the one it was saved with."""
    per_rank = saved.get("rng_per_rank")
    if dist_ctx.enabled and per_rank is not None and len(per_rank) == dist_ctx.world_size:
        restore_rng_state(per_rank[dist_ctx.rank])
        return
    restore_rng_state(saved["rng"])  # Python's random (the JTCSE direction) continues on every rank
    saved_world = len(per_rank) if per_rank is not None else 1
    if dist_ctx.world_size != saved_world:
        _say(
            f"jtcse train: the checkpoint was written by {saved_world} process(es), this run has "
            f"{dist_ctx.world_size}: the data order and the objective continue, the dropout draws do not"
        )
        if dist_ctx.enabled:
            torch.manual_seed(distributed.rank_seed(config.seed + saved["step"], dist_ctx.rank))


def _describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return f"{device} ({torch.get_num_threads()} threads)"


def _load_corpus(config: Config) -> Corpus:
    path = resolve_corpus_path(config.data.corpus, config.data.data_dir or None)
    return load_corpus(
        path,
        max_chars=config.data.max_chars or 20 * config.data.max_len,
        dedup=config.data.dedup,
        max_sentences=config.data.max_sentences,
        on_bad_utf8=config.data.on_bad_utf8,
    )


def _check_dev_data(config: Config) -> None:
    from jtcse.data.paths import resolve_data_dir

    try:
        resolve_data_dir(config.data.data_dir or None, need="sts")
    except JtcseError as exc:
        raise JtcseError(f"{exc} (STS-B dev for eval.every; set eval.every = 0 to train without it)") from exc


def _optimizer(task: nn.Module, config: Config) -> torch.optim.Optimizer:
    params = [(n, p) for n, p in task.named_parameters() if p.requires_grad]
    decay = config.train.weight_decay
    if config.train.weight_decay_all:  # issue 10 (was: config.is_twin)
        # the official JTCSE and CACSE code: AdamW(model.parameters(), lr, weight_decay=0.01), every parameter
        groups: list[dict[str, Any]] = [{"params": [p for _, p in params], "weight_decay": decay}]
    else:
        # the HF Trainer (SimCSE): no decay on biases and LayerNorm weights
        def no_decay(name: str) -> bool:
            return name.endswith("bias") or "LayerNorm" in name or "layer_norm" in name

        groups = [
            {"params": [p for n, p in params if not no_decay(n)], "weight_decay": decay},
            {"params": [p for n, p in params if no_decay(n)], "weight_decay": 0.0},
        ]
    return adamw(groups, config.train.lr)  # issue 10: fused where available (jtcse.training.optim)


def _lr_lambda(schedule: str, warmup: int, total: int) -> Callable[[int], float]:
    def factor(step: int) -> float:
        if step < warmup:
            return step / max(1, warmup)
        if schedule == "constant":
            return 1.0
        return max(0.0, (total - step) / max(1, total - warmup))

    return factor


@torch.no_grad()
def _dev_score(task: nn.Module, config: Config, device: torch.device, autocast: Callable[[], Any]) -> float:
    from jtcse.evaluation.sts import stsb_dev_score

    max_len = config.eval.dev_max_len or None

    def encode(sentences: list[str]) -> np.ndarray:
        # longest first, so each batch pads to a similar length; rows go back to their places at the end
        order = sorted(range(len(sentences)), key=lambda i: -len(sentences[i]))
        chunks = []
        size = config.eval.batch_size
        for start in range(0, len(order), size):
            texts = [sentences[i] for i in order[start : start + size]]
            enc = task.tokenizer(
                texts, padding=True, truncation=max_len is not None, max_length=max_len, return_tensors="pt"
            )
            keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc]
            with autocast():
                chunks.append(task.embed({k: enc[k].to(device) for k in keys}).float().cpu())
        stacked = torch.cat(chunks).numpy()
        rows = np.empty_like(stacked)
        rows[np.asarray(order)] = stacked
        return rows

    was_training = task.training
    task.eval()
    try:
        return float(stsb_dev_score(encode, config.data.data_dir or None))
    finally:
        task.train(was_training)


def _export(task: nn.Module, out: Path, config: Config, facts: dict[str, Any]) -> None:
    """Write the inference model into ``out``: built in a temporary folder, then moved in piece by piece
    (each file and tower folder replaced in one rename; ``jtcse.json`` last). Rank 0 only."""
    if not distributed.is_main_process():
        return
    staging = out / ".export.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    extra = {"train_config": RESOLVED_CONFIG_NAME, **facts}
    task.save_model(staging, extra)
    entries = sorted(staging.iterdir(), key=lambda p: p.name == "jtcse.json")
    for entry in entries:
        target = out / entry.name
        if entry.is_dir():
            old = out / f".old.{entry.name}"
            shutil.rmtree(old, ignore_errors=True)
            if target.exists():
                os.replace(target, old)
            os.replace(entry, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(entry, target)
    shutil.rmtree(staging, ignore_errors=True)
    _write_card(out)


def _write_card(out: Path) -> None:
    """The model card (README.md): config, data, training curve so far, STS table once evaluated."""
    from jtcse.model_card import is_generated_card, refresh_model_card

    if distributed.is_main_process() and is_generated_card(out):
        refresh_model_card(out)


def _record_environment(
    out: Path,
    config: Config,
    device: torch.device,
    *,
    resumed_at: int | None,
    extra: dict[str, Any] | None = None,
) -> None:
    import transformers

    from jtcse import __version__

    entry = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "resumed_at_step": resumed_at,
        "argv": sys.argv,
        "jtcse": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "numpy": np.__version__,
        "device": _describe_device(device),
        "cuda": torch.version.cuda,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "seed": config.seed,
        **(extra or {}),
    }
    path = out / ENVIRONMENT_FILE
    runs: list[Any] = []
    if path.is_file():
        with contextlib.suppress(ValueError):
            runs = json.loads(path.read_text(encoding="utf-8")).get("runs", [])
    atomic_write_text(path, json.dumps({"runs": [*runs, entry]}, indent=2) + "\n")


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
    if not distributed.is_main_process():
        return
    from tqdm import tqdm

    tqdm.write(message, file=sys.stderr)
