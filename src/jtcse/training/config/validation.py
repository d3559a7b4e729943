"""Filling method defaults in and checking a config: choices (from the keys' types), ranges, settings under
which training cannot learn."""

from __future__ import annotations

import math

from jtcse.errors import JtcseError
from jtcse.model.pooling import POOLERS
from jtcse.training.config.defaults import METHOD_DEFAULTS
from jtcse.training.config.schema import METHODS, Config, StudentInit, choices, key_types


def resolve(config: Config) -> Config:
    """Fill method defaults into keys the user did not set, then validate. Returns ``config``."""
    if config.method not in METHODS:
        raise JtcseError(f"method: unknown method {config.method!r}; choose one of {', '.join(METHODS)}")
    for key, value in METHOD_DEFAULTS[config.method].items():
        if key not in config.explicit:
            section, _, name = key.rpartition(".")
            setattr(getattr(config, section) if section else config, name, value)
    if not config.output_dir:
        config.output_dir = f"runs/{config.method}"
    validate(config)
    return config


def validate(config: Config) -> None:
    def choice(key: str, options: tuple[str, ...]) -> None:
        value = config.get(key)
        if value not in options:
            raise JtcseError(f"{key}: {value!r} is not one of {', '.join(options)}")

    def at_least(key: str, low: float) -> None:
        value = config.get(key)
        if value is not None and value < low:
            raise JtcseError(f"{key}: must be >= {low}, got {value}")

    for key, tp in key_types().items():
        options = choices(tp)
        # method: checked by resolve; distill.*: only when distilling (_validate_distill)
        if options is not None and key != "method" and not key.startswith("distill."):
            choice(key, options)
    for key in ("data.max_len", "data.bucket_window", "train.batch_size", "train.epochs", "train.log_every"):
        at_least(key, 1)
    for key in (
        "model.num_ca_layers",
        "data.max_sentences",
        "data.pad_to_multiple_of",
        "data.max_chars",
        "train.max_steps",
        "train.stop_after",
        "train.warmup_steps",
        "train.weight_decay",
        "train.grad_clip",
        "train.threads",
        "train.save_every",
        "train.grad_cache_chunk",
        "train.length_sorted_sub_batch",
        "eval.every",
        "eval.dev_max_len",
        "loss.nce",
        "loss.icnce",
        "loss.icnce_ca",
        "loss.ictm",
    ):
        at_least(key, 0)
    at_least("eval.batch_size", 1)
    if not 0.0 <= config.train.warmup_ratio < 1.0:
        raise JtcseError(f"train.warmup_ratio: must be in [0, 1), got {config.train.warmup_ratio}")
    if not config.train.lr > 0:
        raise JtcseError(f"train.lr: must be > 0, got {config.train.lr}")
    if not config.loss.temperature > 0:
        raise JtcseError(f"loss.temperature: must be > 0, got {config.loss.temperature}")
    _check_can_learn(config)
    if config.model.dropout is not None and not 0.0 <= config.model.dropout < 1.0:
        raise JtcseError(f"model.dropout: must be in [0, 1) or none, got {config.model.dropout}")
    if config.loss.small_cos_floor is not None and not config.loss.small_cos_floor > 0:
        raise JtcseError(f"loss.small_cos_floor: must be > 0 or none, got {config.loss.small_cos_floor}")
    if config.method == "distill":
        _validate_distill(config)
    weights = [config.loss.nce] + (
        [config.loss.icnce, config.loss.icnce_ca, config.loss.ictm] if config.is_twin else []
    )
    # distill's loss is weighted by distill.k, not by the loss.* weights
    if config.method != "distill" and not any(w > 0 for w in weights):
        raise JtcseError("loss: every loss term has weight 0; nothing to train")


# cos/T with T outside this range: logits of 1000+ (overflow, one-hot softmax) or a flat softmax (no signal);
# published settings use 0.01-0.1
TEMPERATURE_RANGE = (1e-3, 10.0)


def _check_can_learn(config: Config) -> None:
    """Settings under which training runs but cannot learn: non-finite numbers, no in-batch negatives,
    a temperature that saturates the softmax."""
    for key in (
        "train.lr",
        "train.weight_decay",
        "train.grad_clip",
        "train.warmup_ratio",
        "loss.temperature",
    ):
        value = config.get(key)
        if isinstance(value, float) and not math.isfinite(value):
            raise JtcseError(f"{key}: must be a finite number, got {value}")
    if config.train.batch_size < 2:
        raise JtcseError(
            f"train.batch_size: must be >= 2, got {config.train.batch_size}; the contrastive loss takes its "
            "negatives from the other sentences of the batch, so with one there is nothing to learn"
        )
    low, high = TEMPERATURE_RANGE
    if not low <= config.loss.temperature <= high:
        raise JtcseError(
            f"loss.temperature: {config.loss.temperature:g} is outside [{low:g}, {high:g}]: the logits cos/T "
            f"would reach {1 / config.loss.temperature:.3g}, where the loss saturates and nothing is learned "
            "(SimCSE uses 0.05)"
        )


def _validate_distill(config: Config) -> None:
    settings = config.distill
    if not settings.teacher.strip():
        raise JtcseError(
            "distill.teacher: not set; name the frozen teacher (a jtcse twin-tower or ensemble dir, "
            "or a model)"
        )
    if settings.teacher_pooler and settings.teacher_pooler not in POOLERS:
        raise JtcseError(
            f"distill.teacher_pooler: {settings.teacher_pooler!r} is not one of {', '.join(POOLERS)} "
            "(or empty for the teacher's own)"
        )
    student_inits = choices(StudentInit) or ()
    if settings.student_init not in student_inits:
        raise JtcseError(
            f"distill.student_init: {settings.student_init!r} is not one of {', '.join(student_inits)}"
        )
    if not 0.0 <= settings.k <= 1.0:
        raise JtcseError(f"distill.k: must be in [0, 1], got {settings.k}")
    if config.model.pooler == "cls":
        raise JtcseError(
            "model.pooler: 'cls' (a training-only MLP head) does not suit distillation, where the student's "
            "vector itself must match the teacher's; use cls_before_pooler, avg or avg_first_last"
        )
