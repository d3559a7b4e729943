"""The training config: a TOML or YAML file, ``--set section.key=value`` overrides, method defaults.

A config has a few top-level keys (``method``, ``seed``, ``output_dir``) and six sections, ``model``,
``data``, ``train``, ``loss``, ``eval`` and ``distill`` (read only by ``method = "distill"``); every key
is listed, with its meaning, in the dataclasses below and in ``configs/*.toml``. Loading a config:

1. read the file (``.toml`` with tomllib/tomli; ``.yaml``/``.yml``/``.json`` with ``yaml.safe_load``);
2. apply ``--set key=value`` overrides, each value parsed to the key's type (``true``/``false`` for
   booleans, ``none``/``null`` for an optional value);
3. fill the keys the user did not set with the **method defaults** (:data:`METHOD_DEFAULTS`): SimCSE's for
   ``simcse``, the official JTCSE code's for ``jtcse``, TNCSE's for ``tncse``, CACSE's distillation recipe
   for ``distill`` (method.md §4.2);
4. validate (choices, ranges). Every problem is a one-line :class:`JtcseError` naming the key; an unknown
   key lists the valid ones.

A default that depends on the model itself (TNCSE's dropout, by backbone family) is filled in by
:func:`resolve_for_model` once the model exists (the trainer calls it first thing; a study plans a run before
its start checkpoint is trained). Nothing else changes a config afterwards.

The resolved config (every key, defaults filled in) is written as ``train_config.yaml`` in the output
directory, and ``jtcse train OUT/train_config.yaml`` reruns the same training. :func:`check_resumable` says
which keys may differ between a run and its ``--resume`` (:data:`RESUMABLE_CHANGES`).
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import json
import math
import sys
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jtcse.data.batching import BATCHINGS
from jtcse.errors import JtcseError

METHODS = ("simcse", "jtcse", "tncse", "distill")
TWIN_METHODS = ("jtcse", "tncse")
TRAIN_POOLERS = ("cls", "cls_before_pooler", "avg", "avg_first_last")
CA_MODES = ("side_all", "side_last", "in_stream")
CA_PLACEMENTS = ("end", "start")
DIRECTIONS = ("random", "a_to_b", "b_to_a")
SCHEDULES = ("linear", "constant")
PRECISIONS = ("fp32", "bf16", "fp16")
BAD_UTF8_POLICIES = ("skip", "error")
SECTIONS = ("model", "data", "train", "loss", "eval", "distill")
STUDENT_INITS = ("base", "tower_a", "tower_b")
SIMCSE_FORMS = ("one_sided", "interleaved")

# TNCSE's twin-tower dropout (attention and hidden), by backbone family [TN-code model_dual.py].
TNCSE_DROPOUT = {"bert": 0.00025, "roberta": 0.0175}


@dataclass
class ModelConfig:
    base: str = "minilm"
    """simcse: the encoder to train. jtcse/tncse: the checkpoint for a tower whose own key is empty."""
    tower_a: str = ""
    """jtcse/tncse: tower A (a stage-1 output dir, an HF dir or hub id); empty = ``base``."""
    tower_b: str = ""
    """jtcse/tncse: tower B; empty = the same checkpoint as tower A (the towers then start identical and
    differ only through their dropout masks, which are separate draws of the seeded RNG)."""
    pooler: str = "cls"
    """simcse: ``cls`` = CLS state + an MLP used only in training (SimCSE's ``--mlp_only_train``; inference
    uses ``cls_before_pooler``), ``cls_before_pooler``, ``avg`` or ``avg_first_last`` (no MLP)."""
    dropout: float | None = None
    """Attention and hidden dropout of the encoder(s); none = keep the checkpoint's own value."""
    num_ca_layers: int = 6
    """jtcse: equally spaced cross-attention layers (must divide the encoder's layer count; 0 = none)."""
    ca_mode: str = "side_all"
    """jtcse: ``side_all`` | ``side_last`` | ``in_stream`` (method.md §1.2) [inferred]."""
    ca_placement: str = "end"
    """jtcse: ``end`` = after layers s, 2s, ..., L (the last layer always has CA); ``start`` = 1, 1+s, ..."""
    cross_attention: bool = True
    """jtcse: run the cross-attention branch at all (tncse: off)."""


@dataclass
class DataConfig:
    corpus: str = "wiki"
    """A text file, one sentence per line, or ``wiki`` = the wiki1m corpus from the data directory."""
    data_dir: str = ""
    """Where ``wiki`` and the STS-B dev set are looked up; empty = the usual order (jtcse.data.paths)."""
    max_sentences: int = 0
    """Use only the first N sentences (after blank lines and duplicates are dropped); 0 = all."""
    dedup: bool = False
    """Drop repeated sentences (exact match after stripping), keeping the first."""
    max_len: int = 32
    """Tokens per sentence (truncation); batches are padded only to their longest sentence."""
    max_chars: int = 0
    """Characters kept per line before tokenising (bounds the cost of huge lines); 0 = 20 * max_len."""
    on_bad_utf8: str = "skip"
    """A line that is not valid UTF-8: ``skip`` (counted, warned with its line number) or ``error``."""
    batching: str = "random"
    """``random``: a uniform shuffle per epoch cut into batches, the official distribution
    (``DataLoader(shuffle=True)`` / SimCSE's RandomSampler) [inferred default for every method].
    ``length_bucketed``: batches of similar-length sentences (``bucket_window``), less padding but other
    in-batch negatives, hence another contrastive task (jtcse.data.batching)."""
    bucket_window: int = 50
    """``length_bucketed`` only: this many batches' worth of shuffled sentences are sorted by length and cut
    into batches, and the batches are shuffled; 1 = plain shuffled batches."""
    drop_last: bool = False
    """Drop the last batch of an epoch when it has fewer than ``batch_size`` sentences."""
    pad_to_multiple_of: int | None = None
    """Pad each batch to a multiple of N tokens (fewer distinct shapes for GPU kernels); 0 = to the longest
    sentence exactly; none = 8 on CUDA, 0 elsewhere (jtcse.training.precision; an unverified GPU default)."""


@dataclass
class TrainConfig:
    lr: float = 3e-5
    batch_size: int = 64
    """Sentences per step (each is encoded twice, so the model sees 2x rows)."""
    epochs: int = 1
    max_steps: int = 0
    """> 0: train this many steps (over as many epochs as needed) and size the LR schedule to it."""
    stop_after: int = 0
    """> 0: stop after this step with a checkpoint, as if interrupted; ``--resume`` continues. The LR schedule
    and data order are those of the full run."""
    warmup_steps: int = 0
    warmup_ratio: float = 0.0
    """Warm-up as a fraction of the total steps (used when warmup_steps is 0)."""
    weight_decay: float = 0.0
    weight_decay_all: bool = False
    """true: weight decay on every parameter (``AdamW(model.parameters())``, as the official JTCSE and CACSE
    code); false: biases and LayerNorm weights exempt (the HF Trainer, hence SimCSE)."""
    schedule: str = "linear"
    """``linear`` (decay to 0, HF Trainer's default, as SimCSE) or ``constant`` (the official JTCSE code)."""
    grad_clip: float = 1.0
    """Max gradient norm; 0 = no clipping (HF Trainer clips at 1.0; the official JTCSE code does not clip)."""
    precision: str = "fp32"
    """``fp32`` | ``bf16`` | ``fp16`` (autocast; CUDA only, fp32 elsewhere with a warning; fp16 adds a
    gradient scaler, bf16 becomes fp16 on a GPU without bf16). See jtcse.training.precision."""
    cudnn_attention: bool = False
    """Let attention use PyTorch's cuDNN SDPA kernel under bf16/fp16 on CUDA; off by default because it
    builds a kernel graph per new batch shape (suspected cause of slow bf16 runs; unverified)."""
    length_sorted_sub_batch: int | None = None
    """> 0: a batch's sentences are *encoded* in length-sorted sub-batches of this many sentences, each
    padded to its own longest row, and the vectors are put back in batch order before the loss: the loss
    and its in-batch negatives are the batch's, only padding is saved (jtcse.training.sub_batching).
    0 = one pass padded to the batch's longest sentence; none = 8 on a CPU (bench/train_step.py), 32 on a
    GPU [unmeasured]. One process only (under torchrun: one pass); a grad-cached step (``grad_cache_chunk``)
    chunks its own way. Pays off on ``random`` batches; ``length_bucketed`` ones have little padding."""
    grad_cache_chunk: int = 0
    """> 0: gradient caching, embedding the batch in chunks of this many sentences (the loss still sees the
    whole batch; less memory, about +1/3 compute; dropout masks replayed). 0 = one pass per step."""
    device: str = "auto"
    """``auto`` (CUDA when available, else CPU), ``cpu``, ``cuda``, ``cuda:1``, ``mps``. Under torchrun
    (WORLD_SIZE > 1) each process uses cuda:LOCAL_RANK (auto/cuda) or the CPU (cpu)."""
    threads: int = 0
    """CPU threads for torch; 0 = torch's default (the physical cores)."""
    deterministic: bool = True
    """cuDNN deterministic mode, as the official code (no effect on CPU, which is deterministic)."""
    log_every: int = 10
    """Write a metrics.jsonl line every N steps (and at the last step)."""
    save_every: int = 100
    """Write the resumable checkpoint every N steps (and at the end); 0 = only at the end."""
    progress: bool = True
    """Show a tqdm progress bar."""
    tensorboard: bool = False
    """Also log to TensorBoard (OUT/tensorboard; needs the tensorboard package)."""


@dataclass
class LossConfig:
    temperature: float = 0.05
    nce: float = 1.0
    """Weight of L_nce (each tower's SimCSE InfoNCE); 0 turns it off."""
    icnce: float = 1.0
    """jtcse: weight of the inter-tower InfoNCE on the CLS states; 0 turns it off."""
    icnce_ca: float = 1.0
    """jtcse: weight of the inter-tower InfoNCE on the cross-attention outputs; 0 turns it off."""
    ictm: float = 1.0
    """jtcse: weight of the tensor-modulus constraint (A->B + B->A); 0 turns it off."""
    direction: str = "random"
    """jtcse: ICNCE direction: ``random`` (drawn per step from Python's seeded ``random``, as the official
    code), ``a_to_b`` (TNCSE) or ``b_to_a``."""
    simcse_form: str = "one_sided"
    """simcse: ``one_sided`` = Princeton's SimCSE: the B first dropout copies scored against the B second
    copies, a B x B cross-entropy (B - 1 negatives per row); ``interleaved`` = the 2B x 2B InfoNCE with both
    copies as anchors (2B - 2 negatives), the form of the JTCSE towers' own term (loss.nce of jtcse/tncse is
    always interleaved, as the official model_dual.py)."""
    small_cos_floor: float | None = 1e-4
    """Modulus constraint: cosines in [0, floor) are replaced by the constant floor; none = the official code
    exactly (a zero cosine gives inf)."""


@dataclass
class EvalConfig:
    every: int = 125
    """STS-B dev Spearman every N steps; the best state is the output model (the official cadence: only at
    multiples of N). 0 = no dev evaluation: the output model is the final state, as it is when no
    evaluation ran at all (fewer than N steps)."""
    at_final_step: bool = False
    """Also evaluate at the last step (which the official scripts never do), so the final state can be
    the one selected."""
    dev_max_len: int = 64
    """Truncation of the dev sentences (the official in-loop loader truncates to 64); 0 = none."""
    batch_size: int = 128


@dataclass
class DistillConfig:
    """``method = "distill"`` (D, UC-D; method.md §4.2): a single-tower student (``model.base``, its pooler
    ``model.pooler``, its dropout ``model.dropout``) learns from a frozen teacher."""

    teacher: str = ""
    """The frozen teacher: a jtcse twin-tower dir (D), a jtcse ensemble dir (UC-D), or any encoder
    ``jtcse.Encoder`` loads (a jtcse or Hugging Face dir, a short name, a hub id). It reads the sentences with
    its own tokenizer(s), truncated at ``data.max_len``."""
    teacher_pooler: str = ""
    """Override the teacher's poolers; empty = its own (``jtcse.json``, else the sentence-transformers
    pooling, else ``cls_before_pooler``)."""
    k: float = 0.01
    """loss = k * interleaved InfoNCE + (1 - k) * L1(student, teacher). D: 0.01; UC-D: 0.1."""
    student_init: str = "base"
    """Where the student starts: ``base`` = ``model.base``; ``tower_a`` / ``tower_b`` = that tower of the
    twin-tower teacher (or of the twin tower inside an ensemble teacher)."""


@dataclass
class Config:
    method: str = "simcse"
    seed: int = 42
    output_dir: str = ""
    """Where everything goes; empty = runs/<method>. The CLI's --output-dir overrides it."""
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
    explicit: set[str] = field(default_factory=set, repr=False, compare=False, metadata={"internal": True})
    """Keys the user set (file or --set); method defaults fill only the others."""

    # -- views -------------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in _schema_fields(Config):
            value = getattr(self, f.name)
            out[f.name] = (
                dataclasses.asdict(value)
                if dataclasses.is_dataclass(value) and not isinstance(value, type)
                else value
            )
        return out

    def flat(self) -> dict[str, Any]:
        """``{"train.lr": 3e-05, ...}`` for every key."""
        flat: dict[str, Any] = {}
        for key, value in self.to_dict().items():
            if isinstance(value, dict):
                flat.update({f"{key}.{k}": v for k, v in value.items()})
            else:
                flat[key] = value
        return flat

    def get(self, key: str) -> Any:
        section, _, name = key.rpartition(".")
        return getattr(getattr(self, section) if section else self, name)

    @property
    def is_twin(self) -> bool:
        return self.method in TWIN_METHODS


# Method defaults for the keys the user did not set. simcse: SimCSE's unsup run_unsup_example.sh with the
# HF Trainer defaults; jtcse: the official train_jtcse_bert.py; tncse: TNCSE's train_dual.py.
METHOD_DEFAULTS: dict[str, dict[str, Any]] = {
    "simcse": {
        "data.max_len": 32,
        "train.lr": 3e-5,
        "train.weight_decay": 0.0,
        "train.schedule": "linear",
        "train.grad_clip": 1.0,
        "eval.every": 125,
    },
    "jtcse": {
        "model.dropout": 0.1,
        "data.max_len": 64,
        "train.lr": 1.3e-6,
        "train.weight_decay": 0.01,
        "train.schedule": "constant",
        "train.weight_decay_all": True,
        "train.grad_clip": 0.0,
        "eval.every": 100,
        "loss.direction": "random",
    },
    "tncse": {
        "model.cross_attention": False,
        "data.max_len": 64,
        "train.lr": 1e-6,
        "train.weight_decay": 0.01,
        "train.schedule": "constant",
        "train.weight_decay_all": True,
        "train.grad_clip": 0.0,
        "eval.every": 100,
        "loss.icnce_ca": 0.0,
        "loss.direction": "a_to_b",
        # model.dropout: TNCSE_DROPOUT by backbone family, filled in by resolve_for_model.
    },
    # CACSE's distillation recipe (method.md §4.2) for JTCSE-D; UC-D sets dropout 0.015, k 0.1, lr 8.5e-6 in
    # its config. CACSE's distillation script: AdamW(model.parameters(), lr) (torch's weight decay 0.01 on
    # every parameter), no clipping, no schedule.
    "distill": {
        "model.pooler": "cls_before_pooler",
        "model.dropout": 0.1,
        "data.max_len": 64,
        "train.lr": 1e-5,
        "train.batch_size": 128,
        "train.epochs": 1,
        "train.weight_decay": 0.01,
        "train.weight_decay_all": True,
        "train.schedule": "constant",
        "train.grad_clip": 0.0,
        "eval.every": 100,
        "distill.k": 0.01,
    },
}


# -- loading -------------------------------------------------------------------------------------------------
def load_config(
    path: str | Path | None,
    overrides: list[str] | tuple[str, ...] = (),
    *,
    base: dict[str, Any] | None = None,
) -> Config:
    """Read ``path`` (or start from ``base``/the defaults when ``path`` is None), apply ``key=value``
    overrides, fill method defaults, validate."""
    raw = read_config_file(Path(path)) if path is not None else dict(base or {})
    origin = str(path) if path is not None else "config"
    config = config_from_dict(raw, origin=origin)
    for item in overrides:
        apply_override(config, item)
    return resolve(config)


def read_config_file(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise JtcseError(f"{path}: no such config file")
    suffix = path.suffix.lower()
    try:
        if suffix == ".toml":
            if sys.version_info >= (3, 11):
                import tomllib
            else:  # pragma: no cover - Python 3.10
                import tomli as tomllib
            with path.open("rb") as fh:
                raw = tomllib.load(fh)
        elif suffix in (".yaml", ".yml", ".json"):
            import yaml

            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        else:
            raise JtcseError(f"{path}: unknown config format '{suffix}'; use .toml, .yaml/.yml or .json")
    except JtcseError:
        raise
    except UnicodeDecodeError as exc:
        raise JtcseError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except Exception as exc:  # tomllib.TOMLDecodeError, yaml.YAMLError: report, not a traceback
        raise JtcseError(f"{path}: cannot parse ({exc})") from exc
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise JtcseError(f"{path}: expected a table of keys at the top level")
    return raw


def config_from_dict(raw: dict[str, Any], *, origin: str = "config") -> Config:
    config = Config()
    for key, value in raw.items():
        if key in SECTIONS:
            if not isinstance(value, dict):
                raise JtcseError(f"{origin}: '{key}' must be a section (a table of keys), got {value!r}")
            for sub_key, sub_value in value.items():
                _set_key(config, f"{key}.{sub_key}", sub_value, origin=origin, from_text=False)
        else:
            _set_key(config, str(key), value, origin=origin, from_text=False)
    return config


def apply_override(config: Config, item: str) -> None:
    """Apply one ``--set key=value``."""
    key, sep, text = item.partition("=")
    if not sep or not key.strip():
        raise JtcseError(f"--set {item}: expected key=value, e.g. --set train.lr=2e-5")
    _set_key(config, key.strip(), text.strip(), origin="--set", from_text=True)


def valid_keys() -> list[str]:
    return list(Config().flat())


def _set_key(config: Config, key: str, value: Any, *, origin: str, from_text: bool) -> None:
    types_by_key = _key_types()
    if key not in types_by_key:
        close = difflib.get_close_matches(key, list(types_by_key), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise JtcseError(f"{origin}: unknown config key '{key}'{hint}; valid keys: {', '.join(types_by_key)}")
    coerced = _coerce(key, value, types_by_key[key], origin=origin, from_text=from_text)
    section, _, name = key.rpartition(".")
    setattr(getattr(config, section) if section else config, name, coerced)
    config.explicit.add(key)


def _key_types() -> dict[str, Any]:
    out: dict[str, Any] = {}
    hints = typing.get_type_hints(Config)
    for f in _schema_fields(Config):
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            sub_hints = typing.get_type_hints(tp)
            for sub in dataclasses.fields(tp):
                out[f"{f.name}.{sub.name}"] = sub_hints[sub.name]
        else:
            out[f.name] = tp
    return out


def _schema_fields(cls: type) -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(cls) if not f.metadata.get("internal")]


_NONE_WORDS = ("none", "null", "")
_TRUE_WORDS = ("true", "yes", "on", "1")
_FALSE_WORDS = ("false", "no", "off", "0")


def _coerce(key: str, value: Any, tp: Any, *, origin: str, from_text: bool) -> Any:
    optional = False
    args = typing.get_args(tp)
    if typing.get_origin(tp) in (typing.Union, types.UnionType) and type(None) in args:
        optional = True
        (tp,) = [a for a in args if a is not type(None)]
    name = tp.__name__
    bad = f"{origin}: {key} must be {'an' if name == 'int' else 'a'} {name}{' or none' if optional else ''}"
    if value is None:
        if optional:
            return None
        raise JtcseError(f"{bad}, got null")
    if from_text:
        text = str(value)
        if optional and text.lower() in _NONE_WORDS:
            return None
        if tp is bool:
            if text.lower() in _TRUE_WORDS:
                return True
            if text.lower() in _FALSE_WORDS:
                return False
            raise JtcseError(f"{bad} (true/false), got {text!r}")
        if tp is str:
            return text
        try:
            return int(text) if tp is int else float(text)
        except ValueError:
            raise JtcseError(f"{bad}, got {text!r}") from None
    # Values from a file are already typed; accept an int where a float is expected, nothing looser.
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if optional and isinstance(value, str) and value.lower() in _NONE_WORDS:
            return None
    elif tp is str and isinstance(value, str):
        return value
    raise JtcseError(f"{bad}, got {value!r}")


# -- method defaults and validation ----------------------------------------------------------------------
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

    choice("model.pooler", TRAIN_POOLERS)
    choice("model.ca_mode", CA_MODES)
    choice("model.ca_placement", CA_PLACEMENTS)
    choice("data.on_bad_utf8", BAD_UTF8_POLICIES)
    choice("train.schedule", SCHEDULES)
    choice("train.precision", PRECISIONS)
    choice("loss.direction", DIRECTIONS)
    choice("data.batching", BATCHINGS)
    choice("loss.simcse_form", SIMCSE_FORMS)
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
    if settings.teacher_pooler and settings.teacher_pooler not in TRAIN_POOLERS:
        raise JtcseError(
            f"distill.teacher_pooler: {settings.teacher_pooler!r} is not one of {', '.join(TRAIN_POOLERS)} "
            "(or empty for the teacher's own)"
        )
    if settings.student_init not in STUDENT_INITS:
        raise JtcseError(
            f"distill.student_init: {settings.student_init!r} is not one of {', '.join(STUDENT_INITS)}"
        )
    if not 0.0 <= settings.k <= 1.0:
        raise JtcseError(f"distill.k: must be in [0, 1], got {settings.k}")
    if config.model.pooler == "cls":
        raise JtcseError(
            "model.pooler: 'cls' (a training-only MLP head) does not suit distillation, where the student's "
            "vector itself must match the teacher's; use cls_before_pooler, avg or avg_first_last"
        )


# -- what the model decides, and what a resume may change ------------------------------------------------
def model_path(name: str, key: str) -> str:
    """``name`` (a config value naming a model) resolved for ``from_pretrained``; errors name ``key``."""
    from jtcse.integrity import check_model_folder
    from jtcse.model.format import is_jtcse_dir
    from jtcse.model.names import resolve_model

    try:
        path = resolve_model(name)
    except JtcseError as exc:
        reason = str(exc).removeprefix(f"--model {name}: ")
        raise JtcseError(f"{key} = {name!r}: {reason}") from exc
    if not is_jtcse_dir(path):  # an empty folder or a truncated .safetensors is one clear line
        check_model_folder(path, f"{key} =")
    return path


def tower_sources(config: Config) -> tuple[tuple[str, str], tuple[str, str]]:
    """``((source, key), (source, key))`` of towers A and B: an empty ``tower_a`` is ``base``, an empty
    ``tower_b`` is tower A's checkpoint; ``key`` is the config key an error about that tower names."""
    source_a = config.model.tower_a or config.model.base
    key_a = "model.tower_a" if config.model.tower_a else "model.base"
    if config.model.tower_b:
        return (source_a, key_a), (config.model.tower_b, "model.tower_b")
    return (source_a, key_a), (source_a, key_a)


def resolve_for_model(config: Config) -> Config:
    """A copy of ``config`` with the defaults that depend on the model filled in: TNCSE's dropout by the
    backbone family of tower A (:data:`TNCSE_DROPOUT`) unless ``model.dropout`` was set. Reads the model's
    config file, so it runs once the model exists: the trainer calls it before building anything."""
    config = copy.deepcopy(config)
    if config.method == "tncse" and "model.dropout" not in config.explicit:
        from jtcse.model.loading import model_type

        source, key = tower_sources(config)[0]
        kind = model_type(model_path(source, key))
        config.model.dropout = TNCSE_DROPOUT["roberta" if "roberta" in kind else "bert"]
    return config


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


def dump_yaml(config: Config) -> str:
    """The resolved config as YAML (loadable by ``jtcse train``)."""
    import yaml

    header = "# resolved jtcse training config: every key, method defaults filled in\n"
    return header + yaml.safe_dump(config.to_dict(), sort_keys=False)


def config_digest(config: Config) -> str:
    return json.dumps(config.to_dict(), sort_keys=True)
