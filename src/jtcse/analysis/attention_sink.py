"""Attention-sink diagnostic: how much attention [CLS] receives, and how large its state is, layer by layer.

JTCSE motivates its cross-attention with "attention sinking": in BERT-like encoders the tokens' attention
drains into a few sink tokens, starving [CLS] of the sentence's semantics. The paper reads this through
``E_CLS``, the norm of the CLS hidden state relative to the other tokens' norms, and claims that
cross-attention raises it.
This module measures two per-layer quantities on a corpus:

``cls_attention_mass`` (layers 1..L)
    The attention probability the query tokens put on the [CLS] key (position 0), averaged over heads and over
    the sentence's real query tokens, **excluding [CLS] itself as a query** (its attention to itself is not
    mass received from the sentence; ``include_cls_query=True`` counts it). Padding keys already get zero
    probability from the masked softmax, so nothing is renormalised. Layer 0 (embeddings) has no attention.
``e_cls`` (layers 0..L; 0 = the embedding output ``hidden_states[0]``)
    ``||h_CLS|| / mean_t ||h_t||`` over the sentence's other real tokens (padding excluded, [SEP] included).

Both are computed per sentence, then averaged over sentences (each sentence weighs the same, whatever its
length); the report also keeps the standard deviation over sentences. [CLS] is taken to be position 0, so
inputs are right-padded; a tokenizer that does not put its CLS/BOS token first is rejected.

Attention probabilities need the eager attention path (SDPA and flash kernels return none), so models are
loaded with ``attn_implementation="eager"``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from jtcse.errors import JtcseError
from jtcse.model.format import is_jtcse_dir, read_spec, resolve_member_path
from jtcse.model.names import resolve_model

TOWERS = ("a", "b", "both")
DEFAULT_MAX_LENGTH = 64  # the training length of the SimCSE family (max_len = 64)


# --------------------------------------------------------------------------- pure metrics


def cls_attention_mass(
    attentions: Sequence[Tensor], attention_mask: Tensor, *, include_cls_query: bool = False
) -> Tensor:
    """Per sentence and layer, the mean attention the query tokens put on the [CLS] key: [B, L] float64.

    ``attentions``: one [B, heads, T, T] probability tensor per layer (``output_attentions=True``);
    ``attention_mask``: [B, T], 1 for real tokens. A sentence without any counted query token gets NaN.
    """
    query_mask = attention_mask.to(torch.bool).clone()
    if not include_cls_query:
        query_mask[:, 0] = False
    weights = query_mask.to(torch.float64)
    counts = weights.sum(dim=1)
    per_layer = []
    for probs in attentions:
        to_cls = probs[..., 0].to(torch.float64).mean(dim=1)  # [B, T]: head-averaged mass on key 0
        per_layer.append((to_cls * weights).sum(dim=1) / counts)
    result = torch.stack(per_layer, dim=1)
    return torch.where(counts[:, None] > 0, result, torch.full_like(result, math.nan))


def cls_norm_ratio(hidden_states: Sequence[Tensor], attention_mask: Tensor) -> Tensor:
    """Per sentence and layer, ``||h_CLS|| / mean ||h_t||`` over the other real tokens: [B, layers + 1].

    ``hidden_states``: [B, T, H] tensors (``output_hidden_states=True`` gives the embedding output first).
    A sentence with no token besides [CLS] gets NaN.
    """
    others = attention_mask.to(torch.bool).clone()
    others[:, 0] = False
    weights = others.to(torch.float64)
    counts = weights.sum(dim=1)
    per_layer = []
    for states in hidden_states:
        norms = states.to(torch.float64).norm(dim=-1)  # [B, T]
        mean_other = (norms * weights).sum(dim=1) / counts
        per_layer.append(norms[:, 0] / mean_other)
    result = torch.stack(per_layer, dim=1)
    return torch.where(counts[:, None] > 0, result, torch.full_like(result, math.nan))


# --------------------------------------------------------------------------- report


def _stats(values: np.ndarray) -> tuple[list[float | None], list[float | None]]:
    """Column means and standard deviations over sentences, NaN ignored; None where nothing is defined."""
    means, stds = [], []
    for column in values.T:
        finite = column[np.isfinite(column)]
        means.append(float(finite.mean()) if finite.size else None)
        stds.append(float(finite.std()) if finite.size else None)
    return means, stds


@dataclass
class SeriesDiagnosis:
    """The two curves of one model (or tower). Index ``i`` of each list is layer ``i``; 0 = embeddings."""

    label: str
    source: str
    tower: str | None
    cls_attention_mass: list[float | None]  # layer 0 is None: the embedding layer has no attention
    cls_attention_mass_std: list[float | None]
    e_cls: list[float | None]
    e_cls_std: list[float | None]
    n_sentences: int
    mean_tokens: float
    seconds: float

    @property
    def num_layers(self) -> int:
        """Transformer layers (rows minus the embedding row)."""
        return len(self.e_cls) - 1


@dataclass
class DiagnoseReport:
    series: list[SeriesDiagnosis]
    settings: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def merge(cls, reports: Sequence[DiagnoseReport]) -> DiagnoseReport:
        """Side by side (e.g. before and after training); labels made unique, settings from the first."""
        series: list[SeriesDiagnosis] = []
        seen: set[str] = set()
        for report in reports:
            for item in report.series:
                label, n = item.label, 2
                while label in seen:
                    label, n = f"{item.label}#{n}", n + 1
                seen.add(label)
                series.append(SeriesDiagnosis(**{**asdict(item), "label": label}))
        return cls(series=series, settings=dict(reports[0].settings) if reports else {})

    def to_json(self) -> dict[str, Any]:
        return {
            "metrics": {
                "cls_attention_mass": "head- and query-averaged attention probability on the [CLS] key "
                "(layer 0: none)",
                "e_cls": "||h_CLS|| / mean ||h_t|| over the other non-padding tokens (layer 0: embeddings)",
            },
            "settings": self.settings,
            "series": [asdict(s) for s in self.series],
        }

    def format_table(self) -> str:
        """Fixed-width text table: one row per layer, two columns (attention mass, E_CLS) per series."""
        header = ["layer"]
        for s in self.series:
            header += [f"{s.label} cls_attn", f"{s.label} e_cls"]
        rows = []
        for layer in range(max((s.num_layers for s in self.series), default=-1) + 1):
            row = [str(layer)]
            for s in self.series:
                if layer > s.num_layers:
                    row += ["", ""]
                    continue
                row += [_fmt(s.cls_attention_mass[layer]), _fmt(s.e_cls[layer])]
            rows.append(row)
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        lines = ["  ".join(cell.rjust(w) for cell, w in zip(r, widths, strict=True)) for r in [header, *rows]]
        return "\n".join(lines)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


# --------------------------------------------------------------------------- models


@dataclass(frozen=True)
class ModelSource:
    """One encoder to diagnose: its display label, its ``from_pretrained`` path and, for a twin, its tower."""

    label: str
    path: str
    tower: str | None = None


def model_sources(model: str | Path, *, tower: str = "both", label: str | None = None) -> list[ModelSource]:
    """The encoders behind a model argument: a short name / HF dir / hub id is one; a twin has two towers.

    ``tower`` picks ``a``, ``b`` or ``both`` of a twin tower; for any other model only ``both`` is accepted.
    Ensemble members are diagnosed one by one (each must be a plain Hugging Face model).
    """
    if tower not in TOWERS:
        raise JtcseError(f"--tower {tower}: choose one of {', '.join(TOWERS)}")
    resolved = resolve_model(model)
    label = label or _short_label(str(model))
    if not is_jtcse_dir(resolved):
        _no_tower(tower, model, "a plain Hugging Face model")
        return [ModelSource(label, resolved)]
    spec = read_spec(resolved)
    if spec.kind == "twin":
        if len(spec.members) != 2:
            raise JtcseError(
                f"{Path(resolved) / 'jtcse.json'}: a twin needs 2 members, found {len(spec.members)}"
            )
        towers = {"a": spec.members[0], "b": spec.members[1]}
        chosen = ("a", "b") if tower == "both" else (tower,)
        return [
            ModelSource(f"{label}:{name}", _plain_member(resolved, towers[name]), name) for name in chosen
        ]
    _no_tower(tower, model, f"a '{spec.kind}' jtcse model")
    if spec.kind == "single":
        return [ModelSource(label, _plain_member(resolved, spec.members[0]))]
    return [ModelSource(f"{label}:{m.path}", _plain_member(resolved, m)) for m in spec.members]


def _no_tower(tower: str, model: str | Path, what: str) -> None:
    if tower != "both":
        raise JtcseError(f"--tower {tower}: model {model} is {what}, not a twin tower; leave --tower out")


def _plain_member(model_dir: str, member: Any) -> str:
    path = resolve_member_path(model_dir, member)
    if is_jtcse_dir(path) and Path(path).resolve() != Path(model_dir).resolve():
        raise JtcseError(f"{model_dir}: member {member.path} is itself a jtcse model; diagnose it directly")
    return path


def _short_label(text: str) -> str:
    """The last two path components at most: readable in a table, still tells runs apart."""
    parts = Path(text).parts
    return "/".join(parts[-2:]) if len(parts) > 2 else text.rstrip("/")


def load_eager(path: str, device: torch.device) -> tuple[Any, Any]:
    """Tokenizer and model, with the eager attention path so that attention probabilities are returned."""
    from jtcse.model.loading import load_hf_encoder, load_tokenizer

    tokenizer = load_tokenizer(path, label=f"--model {path}")
    model = load_hf_encoder(path, label=f"--model {path}", attn_implementation="eager")
    return model.to(device=device, dtype=torch.float32).eval(), tokenizer


# --------------------------------------------------------------------------- the diagnostic


def diagnose(
    model_or_dir: Any,
    sentences: Sequence[str],
    *,
    tokenizer: Any = None,
    tower: str = "both",
    label: str | None = None,
    batch_size: int = 32,
    max_length: int | None = DEFAULT_MAX_LENGTH,
    device: str | torch.device | None = None,
    include_cls_query: bool = False,
    show_progress: bool = False,
) -> DiagnoseReport:
    """Measure both curves for a model argument (short name, HF dir, hub id, jtcse dir) or a loaded model.

    A loaded ``PreTrainedModel`` needs its ``tokenizer``; it must use eager attention (or support
    ``set_attn_implementation``), and its training mode and attention implementation are restored afterwards.
    """
    from jtcse.model.loading import select_device

    sentences = list(sentences)
    if not sentences:
        raise JtcseError("no sentences to diagnose")
    if batch_size < 1:
        raise JtcseError(f"--batch-size {batch_size}: must be >= 1")
    dev = select_device(device)
    settings = {
        "n_sentences": len(sentences),
        "max_length": max_length,
        "batch_size": batch_size,
        "include_cls_query": include_cls_query,
        "device": str(dev),
    }
    if isinstance(model_or_dir, torch.nn.Module):
        if tokenizer is None:
            raise ValueError("diagnose(model, ...) with a loaded model needs its tokenizer")
        name = label or str(getattr(model_or_dir.config, "name_or_path", "") or "model")
        series = _diagnose_loaded(
            model_or_dir, tokenizer, sentences, ModelSource(name, name), settings, show_progress
        )
        return DiagnoseReport([series], settings)
    results = []
    for source in model_sources(model_or_dir, tower=tower, label=label):
        model, tok = load_eager(source.path, dev)
        results.append(_diagnose_loaded(model, tok, sentences, source, settings, show_progress))
        del model
    return DiagnoseReport(results, settings)


def _diagnose_loaded(
    model: Any,
    tokenizer: Any,
    sentences: list[str],
    source: ModelSource,
    settings: dict[str, Any],
    progress: bool,
) -> SeriesDiagnosis:
    from tqdm.auto import tqdm

    restore_impl = _ensure_eager(model)
    was_training = model.training
    old_padding_side = tokenizer.padding_side
    tokenizer.padding_side = "right"  # [CLS] must sit at position 0
    device = next(model.parameters()).device
    first_ids = {i for i in (tokenizer.cls_token_id, tokenizer.bos_token_id) if i is not None}
    # Shortest first: less padding per batch; the metrics are per sentence, so order does not matter.
    order = sorted(range(len(sentences)), key=lambda i: len(sentences[i]))
    batch_size = settings["batch_size"]
    attn_rows, ratio_rows, token_counts = [], [], []
    start = time.perf_counter()
    model.eval()
    try:
        batches = range(0, len(order), batch_size)
        for begin in tqdm(batches, desc=f"diagnose {source.label}", unit="batch", disable=not progress):
            batch = [sentences[i] for i in order[begin : begin + batch_size]]
            attn, ratio, tokens = _read_batch(model, tokenizer, batch, source, settings, first_ids, device)
            attn_rows.append(attn)
            ratio_rows.append(ratio)
            token_counts.append(tokens)
    finally:
        tokenizer.padding_side = old_padding_side
        model.train(was_training)
        restore_impl()
    attn_mean, attn_std = _stats(torch.cat(attn_rows).numpy())
    ratio_mean, ratio_std = _stats(torch.cat(ratio_rows).numpy())
    return SeriesDiagnosis(
        label=source.label,
        source=source.path,
        tower=source.tower,
        cls_attention_mass=[None, *attn_mean],
        cls_attention_mass_std=[None, *attn_std],
        e_cls=ratio_mean,
        e_cls_std=ratio_std,
        n_sentences=len(sentences),
        mean_tokens=float(torch.cat(token_counts).double().mean()),
        seconds=round(time.perf_counter() - start, 3),
    )


def _read_batch(
    model: Any,
    tokenizer: Any,
    batch: list[str],
    source: ModelSource,
    settings: dict[str, Any],
    first_ids: set[int],
    device: Any,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One batch's per-sentence [CLS] attention mass and E_CLS per layer, and token counts (on the CPU)."""
    max_length = settings["max_length"]
    encoded = tokenizer(
        batch, padding=True, truncation=max_length is not None, max_length=max_length, return_tensors="pt"
    )
    encoded = {k: v.to(device) for k, v in encoded.items()}
    if first_ids and not set(encoded["input_ids"][:, 0].tolist()) <= first_ids:
        raise JtcseError(f"{source.path}: the tokenizer does not put a [CLS]/<s> token first")
    with torch.inference_mode():
        out = model(**encoded, output_attentions=True, output_hidden_states=True, return_dict=True)
    if not out.attentions or out.attentions[0] is None:
        raise JtcseError(f"{source.path}: the model returned no attention probabilities")
    mask = encoded["attention_mask"]
    attn = cls_attention_mass(out.attentions, mask, include_cls_query=settings["include_cls_query"])
    return attn.cpu(), cls_norm_ratio(out.hidden_states, mask).cpu(), mask.sum(dim=1).cpu()


def _ensure_eager(model: Any) -> Any:
    """Switch a loaded model to eager attention if needed; returns a callable that undoes the switch."""
    current = getattr(model.config, "_attn_implementation", "eager")
    if current in (None, "eager"):
        return lambda: None
    if not hasattr(model, "set_attn_implementation"):  # transformers before the runtime switch existed
        raise ValueError(
            f"the model uses {current!r} attention, which returns no probabilities; "
            "load it with attn_implementation='eager'"
        )
    model.set_attn_implementation("eager")
    return lambda: model.set_attn_implementation(current)
