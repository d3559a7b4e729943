"""Loading one encoder for inference: tokenizer + ``AutoModel`` from a resolved path, device choice, limits.

Every failure a user can cause (unknown hub id while offline, a directory without model files, a device this
machine lacks) becomes a one-line :class:`JtcseError`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModel, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from jtcse.console import quiet_libraries
from jtcse.errors import JtcseError, first_line

# RoBERTa-style embeddings number positions from padding_idx + 1, so that many position slots are unusable.
_OFFSET_POSITION_TYPES = (
    "roberta",
    "xlm-roberta",
    "xlm-roberta-xl",
    "camembert",
    "data2vec-text",
    "longformer",
)
# Tokenizers without a known limit report a huge sentinel (transformers' VERY_LARGE_INTEGER).
_NO_LIMIT = 10**8

# a tokenizer folder holds at least one of these (or a sentencepiece *.model)
_VOCABULARY_FILES = ("tokenizer.json", "vocab.txt", "vocab.json")

# sentence-transformers pooling modes that map onto a jtcse pooler
_ST_MODES = {"mean": "avg", "cls": "cls_before_pooler"}


def select_device(device: str | torch.device | None = None, *, option: str = "--device") -> torch.device:
    """CUDA when present, else CPU; an explicit device must exist on this machine (else one line naming
    ``option``, the flag or setting that chose it)."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise JtcseError(f"{option} {device}: not a device name (cpu, cuda, cuda:N, mps)") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise JtcseError(f"{option} {device}: CUDA is not available on this machine")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise JtcseError(f"{option} {device}: only {torch.cuda.device_count()} CUDA device(s) here")
    try:  # catches the remaining cases (mps without Metal, a torch built without that backend, ...)
        torch.empty(1, device=dev)
    except (RuntimeError, AssertionError) as exc:
        raise JtcseError(f"{option} {device}: not usable here ({first_line(exc)})") from exc
    return dev


def load_tokenizer(path: str, *, label: str) -> PreTrainedTokenizerBase:
    """``AutoTokenizer.from_pretrained(path)``; a failure is one line starting with ``label`` (the option or
    config key that named the model, e.g. ``--model X`` or ``model.base = 'X'``). A local folder without
    vocabulary files is a failure too (transformers 5 would build a tokenizer that knows only the special
    tokens and turns every word into [UNK])."""
    folder = Path(path)
    if folder.is_dir() and not has_tokenizer_files(folder):
        raise JtcseError(f"{label}: no tokenizer files in {path} (no {', '.join(_VOCABULARY_FILES)})")
    try:
        with quiet_libraries():
            return AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError, KeyError) as exc:
        raise JtcseError(f"{label}: cannot load a tokenizer ({first_line(exc)})") from exc


def has_tokenizer_files(folder: str | Path) -> bool:
    """Whether a local model folder holds a vocabulary (tokenizer.json, vocab.txt, vocab.json or a
    sentencepiece ``*.model``); the published JTCSE towers hold weights only."""
    folder = Path(folder)
    return any((folder / name).is_file() for name in _VOCABULARY_FILES) or any(folder.glob("*.model"))


def load_hf_encoder(path: str, *, label: str, dropout: float | None = None, **kwargs: Any) -> Any:
    """``AutoModel.from_pretrained(path, **kwargs)`` (its return value as is); a failure is one line starting
    with ``label``. ``dropout`` overrides the hidden and attention dropout (None: the checkpoint's own). The
    one place jtcse loads a Hugging Face encoder."""
    if dropout is not None:
        kwargs = {**kwargs, "hidden_dropout_prob": dropout, "attention_probs_dropout_prob": dropout}
    try:
        with quiet_libraries():  # no "Loading weights" bar between jtcse's lines (unless --verbose)
            return AutoModel.from_pretrained(path, **kwargs)
    except (OSError, ValueError, KeyError) as exc:
        raise JtcseError(f"{label}: cannot load a Hugging Face model ({first_line(exc)})") from exc


def load_member(
    path: str, device: torch.device, tokenizer_path: str | None = None
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase, set[str]]:
    """Tokenizer and float32 ``AutoModel`` in eval mode on ``device``, and the checkpoint's missing keys.
    The tokenizer comes from ``tokenizer_path`` when given (a member whose folder holds weights only), else
    from ``path``."""
    if tokenizer_path is None:
        tokenizer = load_tokenizer(path, label=f"--model {path}")
    else:
        tokenizer = load_tokenizer(tokenizer_path, label=f"--model {path}: tokenizer {tokenizer_path}")
    model, info = load_hf_encoder(path, label=f"--model {path}", output_loading_info=True)
    # float32 whatever the checkpoint's dtype: the reference numbers are float32, and CPUs are slow in half.
    model = model.to(device=device, dtype=torch.float32).eval()
    return model, tokenizer, set(info.get("missing_keys", ()))


def model_type(path: str) -> str:
    """The ``model_type`` of a checkpoint's config (``bert``, ``roberta``, ...), without loading weights."""
    from transformers import AutoConfig

    try:
        with quiet_libraries():
            return str(AutoConfig.from_pretrained(path).model_type)
    except (OSError, ValueError, KeyError) as exc:
        raise JtcseError(f"{path}: cannot read the model's config ({first_line(exc)})") from exc


def position_offset(model: PreTrainedModel) -> int:
    """Position slots the model cannot use (RoBERTa reserves padding_idx + 1 of them)."""
    embeddings = getattr(model, "embeddings", None)
    padding_idx = getattr(embeddings, "padding_idx", None)
    if isinstance(padding_idx, int):
        return padding_idx + 1
    if getattr(model.config, "model_type", "") in _OFFSET_POSITION_TYPES:
        return int(getattr(model.config, "pad_token_id", 1) or 0) + 1
    return 0


def max_input_length(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, requested: int | None = None
) -> int | None:
    """Token limit for truncation: ``requested`` if given, never beyond what the model's positions allow.

    SentEval/SimCSE evaluation does not truncate, so by default only inputs that would otherwise crash the
    model (longer than its position table) are cut. ``None`` means no limit is known.
    """
    if requested is not None and (not isinstance(requested, int) or requested < 2):
        raise JtcseError(f"--max-length {requested}: must be an integer >= 2")
    limits = []
    tokenizer_limit = getattr(tokenizer, "model_max_length", None)
    if isinstance(tokenizer_limit, int) and 0 < tokenizer_limit < _NO_LIMIT:
        limits.append(tokenizer_limit)
    positions = getattr(model.config, "max_position_embeddings", None)
    if isinstance(positions, int) and positions > 0:
        limits.append(positions - position_offset(model))
    if requested is not None:
        limits.append(requested)
    return min(limits) if limits else None


def _read_json(file: Path) -> Any:
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise JtcseError(f"{file}: cannot read sentence-transformers config ({first_line(exc)})") from exc


def _st_file(path: str, name: str) -> Path | None:
    """A file of a sentence-transformers model: in a local directory, or on the hub when reachable."""
    local = Path(path) / name
    if Path(path).is_dir():
        return local if local.is_file() else None
    try:  # a hub id: best effort, silent when offline or absent
        from huggingface_hub import hf_hub_download

        return Path(hf_hub_download(path, name))
    except Exception:
        return None


def sentence_transformers_pooler(path: str) -> str | None:
    """The jtcse pooler matching a sentence-transformers ``Pooling`` module; None when there is none."""
    modules_file = _st_file(path, "modules.json")
    if modules_file is None:
        return None
    modules = _read_json(modules_file)
    modules = modules if isinstance(modules, list) else []
    pooling = next(
        (m for m in modules if isinstance(m, dict) and str(m.get("type", "")).endswith("Pooling")), None
    )
    folder = str(pooling.get("path", "") if pooling else "").strip("/")
    if not folder:  # no Pooling module, or one without its own folder: nothing to read
        return None
    config_file = _st_file(path, f"{folder}/config.json")
    if config_file is None:
        return None
    config = _read_json(config_file)
    if not isinstance(config, dict):
        return None
    mode = config.get("pooling_mode")
    if mode is None:  # the older format: one boolean per mode
        active = [
            key[len("pooling_mode_") :]
            for key, on in config.items()
            if key.startswith("pooling_mode_") and on
        ]
        active = ["mean" if m == "mean_tokens" else "cls" if m == "cls_token" else m for m in active]
        mode = active[0] if len(active) == 1 else active
    if isinstance(mode, list) and len(mode) == 1:
        mode = mode[0]
    if isinstance(mode, str) and mode in _ST_MODES:
        return _ST_MODES[mode]
    raise JtcseError(
        f"{config_file}: sentence-transformers pooling mode {mode!r} has no jtcse equivalent; "
        "pass --pooler (cls, cls_before_pooler, avg, avg_first_last)"
    )
