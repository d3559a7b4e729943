"""What a ``--resume`` may change: the keys that leave the loss curve as it was."""

from __future__ import annotations

from jtcse.errors import JtcseError
from jtcse.training.config.schema import Config

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
        "train.length_sorted_sub_batch",  # the same batch for the loss, other dropout draws
    }
)


def check_resumable(config: Config, saved: Config) -> None:
    """Stop unless ``config`` (resolved, :func:`resolve_for_model` included) may continue the run of the
    checkpoint's ``saved`` config: only :data:`RESUMABLE_CHANGES` may differ."""
    before, now = saved.flat(), config.flat()
    changed = [k for k in now if k not in RESUMABLE_CHANGES and now[k] != before.get(k)]
    if changed:
        diffs = "; ".join(f"{k} = {now[k]!r} (checkpoint: {before.get(k)!r})" for k in changed)
        raise JtcseError(
            f"--resume: the config differs from the checkpoint's in {diffs}; resume with the same settings "
            f"(only {', '.join(sorted(RESUMABLE_CHANGES))} may change)"
        )
