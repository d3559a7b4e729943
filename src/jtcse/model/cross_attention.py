"""Cross-attention (CA) between two BERT/RoBERTa towers, built on the standard Hugging Face modules.

At a CA layer ``l`` tower A's own attention probabilities are applied to tower B's values (method.md §1.2)::

    P_A = softmax(Q_A K_A^T / sqrt(d_h) + mask)      (per head, A's projections, the usual padding mask)
    X_A = P_A V_B  ->  A's attention-output sublayer (dense, dropout, + A's layer input, LayerNorm) -> A's FFN

and symmetrically for B. No new parameters. Two ways to use it:

* **side branch** (``side_all`` / ``side_last``): the towers run their normal, unmodified forward passes;
  hooks on the CA layers record the layer input and the Q/K/V projections the layer computes anyway, and
  afterwards the CA state of the CLS row alone is computed (one ``[N, heads, 1, L]`` product per CA layer
  and tower). The main streams stay pure self-attention, so training and inference see the same towers.
* **in-stream** (``in_stream``): the two towers are stepped layer by layer in lock-step and at CA layers the
  cross-attended output replaces self-attention in the main stream (:func:`run_in_stream`).

Everything here is a plain function of the towers' modules: ``embeddings``,
``encoder.layer[i].attention.self.{query,key,value}``, ``attention.output``, ``intermediate``, ``output``.
It works with transformers 4.40+ and 5.x.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal, cast, get_args

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from jtcse.errors import JtcseError

CaMode = Literal["side_all", "side_last", "in_stream"]
CA_MODES: tuple[CaMode, ...] = get_args(CaMode)
CaPlacement = Literal["end", "start"]
CA_PLACEMENTS: tuple[CaPlacement, ...] = get_args(CaPlacement)
# attention implementations whose layer calls accept the masks built by :func:`layer_attention_mask`
IN_STREAM_ATTENTION = ("eager", "sdpa")


# ------------------------------------------------------------------------------------------- layer positions
def valid_ca_counts(num_layers: int) -> list[int]:
    """Numbers of CA layers that divide ``num_layers`` evenly (0 = no cross-attention)."""
    return [0] + [n for n in range(1, num_layers + 1) if num_layers % n == 0]


def ca_layer_indices(num_layers: int, num_ca_layers: int, placement: CaPlacement = "end") -> list[int]:
    """0-based indices of the CA layers: equally spaced with stride ``s = num_layers / num_ca_layers``.

    ``end`` (default): after layers ``s, 2s, ..., L`` (1-indexed), so the last layer always has CA
    (L=12, n=6 -> 1-indexed 2,4,...,12). ``start``: layers ``1, 1+s, ...``.
    """
    if placement not in CA_PLACEMENTS:
        raise JtcseError(f"ca_placement {placement!r}: must be one of {', '.join(CA_PLACEMENTS)}")
    valid = valid_ca_counts(num_layers)
    if isinstance(num_ca_layers, bool) or not isinstance(num_ca_layers, int) or num_ca_layers not in valid:
        raise JtcseError(
            f"num_ca_layers {num_ca_layers!r}: must divide the {num_layers} encoder layers; "
            f"valid values: {', '.join(map(str, valid))}"
        )
    if num_ca_layers == 0:
        return []
    stride = num_layers // num_ca_layers
    first = stride - 1 if placement == "end" else 0
    return list(range(first, num_layers, stride))


# ------------------------------------------------------------------------------------------- tower structure
def encoder_layers(tower: nn.Module) -> nn.ModuleList:
    return tower.encoder.layer  # type: ignore[union-attr,return-value]


def check_tower_structure(tower: nn.Module, name: str) -> None:
    """Fail with one line unless ``tower`` has the BERT/RoBERTa modules the CA code uses."""
    config = getattr(tower, "config", None)
    kind = getattr(config, "model_type", type(tower).__name__)
    needed = (
        "embeddings",
        "encoder.layer[i].attention.self.{query,key,value}",
        "attention.output",
        "intermediate",
        "output",
        "pooler",
    )
    problem = None
    layers = getattr(getattr(tower, "encoder", None), "layer", None)
    if (
        getattr(tower, "embeddings", None) is None
        or not isinstance(layers, nn.ModuleList)
        or len(layers) == 0
    ):
        problem = "no embeddings / encoder.layer"
    elif getattr(tower, "pooler", None) is None:
        problem = "no pooler (load it with AutoModel, which adds one)"
    else:
        for layer in layers:
            attn = getattr(layer, "attention", None)
            self_attn = getattr(attn, "self", None)
            if not all(isinstance(getattr(self_attn, p, None), nn.Linear) for p in ("query", "key", "value")):
                problem = "attention.self has no query/key/value Linear modules"
            elif not all(
                hasattr(x, m) for x, m in ((attn, "output"), (layer, "intermediate"), (layer, "output"))
            ):
                problem = "a layer lacks attention.output / intermediate / output"
            if problem:
                break
    if problem is None and getattr(config, "position_embedding_type", "absolute") not in (None, "absolute"):
        kind_of_positions = getattr(config, "position_embedding_type", None)
        problem = f"position_embedding_type {kind_of_positions!r} (only 'absolute' is supported)"
    if problem:
        raise JtcseError(
            f"{name} (model type {kind}) is not a BERT/RoBERTa-style encoder: {problem}; "
            f"twin towers need {', '.join(needed)}"
        )


def _head_geometry(layer: nn.Module) -> tuple[int, int, float]:
    self_attn = layer.get_submodule("attention.self")
    heads = int(cast(int, self_attn.num_attention_heads))
    head_size = int(cast(int, self_attn.attention_head_size))
    return heads, head_size, head_size**-0.5


def _projections(layer: nn.Module) -> tuple[nn.Module, nn.Module, nn.Module]:
    """The query, key and value Linear modules of a BERT layer's self-attention."""
    self_attn = layer.get_submodule("attention.self")
    return self_attn.get_submodule("query"), self_attn.get_submodule("key"), self_attn.get_submodule("value")


def _split_heads(x: Tensor, heads: int, head_size: int) -> Tensor:
    """[N, L, H] -> [N, heads, L, d]"""
    return x.reshape(x.shape[0], x.shape[1], heads, head_size).transpose(1, 2)


def _merge_heads(x: Tensor) -> Tensor:
    """[N, heads, L, d] -> [N, L, heads * d]"""
    n, h, length, d = x.shape
    return x.transpose(1, 2).reshape(n, length, h * d)


def additive_mask(attention_mask: Tensor, dtype: torch.dtype) -> Tensor:
    """[N, L] 0/1 padding mask -> [N, 1, 1, L] additive mask (0 keep, dtype-min drop), as BERT's eager."""
    keep = attention_mask[:, None, None, :].to(dtype)
    return (1.0 - keep) * torch.finfo(dtype).min


def cross_attend(
    layer: nn.Module, query: Tensor, key: Tensor, value_other: Tensor, attention_mask: Tensor
) -> Tensor:
    """``softmax(Q K^T / sqrt(d) + mask) V_other`` per head, with ``layer``'s attention-probs dropout.

    ``query`` [N, Lq, H], ``key`` / ``value_other`` [N, L, H] (projection outputs), ``attention_mask``
    [N, L] 0/1.
    Returns the merged heads [N, Lq, H], ready for ``layer.attention.output``.
    """
    heads, head_size, scaling = _head_geometry(layer)
    q = _split_heads(query, heads, head_size)
    k = _split_heads(key, heads, head_size)
    v = _split_heads(value_other, heads, head_size)
    scores = torch.matmul(q, k.transpose(-1, -2)) * scaling
    scores = scores + additive_mask(attention_mask, scores.dtype)
    probs = torch.softmax(scores, dim=-1)
    dropout = getattr(layer.get_submodule("attention.self"), "dropout", None)
    p = dropout.p if isinstance(dropout, nn.Dropout) else 0.0
    probs = F.dropout(probs, p=p, training=layer.training)
    return _merge_heads(torch.matmul(probs.to(v.dtype), v))


def finish_layer(layer: nn.Module, attended: Tensor, layer_input: Tensor) -> Tensor:
    """The rest of a BERT layer after the attention product: output sublayer (residual) and FFN."""
    attention_output = layer.get_submodule("attention.output")(attended, layer_input)
    output = layer.get_submodule("output")(
        layer.get_submodule("intermediate")(attention_output), attention_output
    )
    return cast(Tensor, output)


# --------------------------------------------------------------------------------------------- side branch
@dataclass
class LayerTap:
    """What a CA layer computed in a tower's ordinary forward pass."""

    layer_input: Tensor | None = None  # [N, L, H]
    query_cls: Tensor | None = None  # [N, 1, H] (only the CLS row of Q is ever needed)
    key: Tensor | None = None  # [N, L, H]
    value: Tensor | None = None  # [N, L, H]

    def complete(self) -> bool:
        return all(t is not None for t in (self.layer_input, self.query_cls, self.key, self.value))


@contextmanager
def tap_layers(tower: nn.Module, indices: Sequence[int]) -> Iterator[dict[int, LayerTap]]:
    """Record the layer input and Q/K/V projections of ``tower``'s layers ``indices`` during one forward pass.

    The hooks exist only inside the ``with`` block and are removed even when the forward raises. They record
    only on the thread that opened the block and only the first call of each module (a nested or concurrent
    forward of the same tower on another thread is left alone). Works under ``torch.no_grad()`` and with any
    attention implementation, because only the ``nn.Linear`` projections and the layer call are observed.
    """
    owner = threading.get_ident()
    layers = encoder_layers(tower)
    taps = {i: LayerTap() for i in indices}
    handles: list[Any] = []

    def mine(tap: LayerTap, field: str) -> bool:
        return threading.get_ident() == owner and getattr(tap, field) is None

    def on_layer(tap: LayerTap):
        def hook(_module: nn.Module, args: tuple, kwargs: dict) -> None:
            if mine(tap, "layer_input"):
                tap.layer_input = args[0] if args else kwargs["hidden_states"]

        return hook

    def on_projection(tap: LayerTap, field: str):
        def hook(_module: nn.Module, _args: tuple, output: Tensor) -> None:
            if mine(tap, field):
                setattr(tap, field, output[:, :1] if field == "query_cls" else output)

        return hook

    try:
        for i, tap in taps.items():
            layer = layers[i]
            self_attn = layer.get_submodule("attention.self")
            handles.append(layer.register_forward_pre_hook(on_layer(tap), with_kwargs=True))
            for name, field in (("query", "query_cls"), ("key", "key"), ("value", "value")):
                handles.append(self_attn.get_submodule(name).register_forward_hook(on_projection(tap, field)))
        yield taps
    finally:
        for handle in handles:
            handle.remove()


def _projections_with_grad(layer: nn.Module, tap: LayerTap) -> tuple[Tensor, Tensor, Tensor]:
    """The tapped (Q_cls, K, V), recomputed from the layer input when they lost their graph.

    Reentrant gradient checkpointing runs the layer under ``no_grad``; the recorded projections then carry no
    gradient and would silently cut CA out of training. Recomputing them from the (graph-connected) layer
    input is exact and costs two [N, L, H] projections, only in that case.
    """
    assert tap.query_cls is not None and tap.key is not None and tap.value is not None
    assert tap.layer_input is not None
    if torch.is_grad_enabled() and tap.layer_input.requires_grad and not tap.key.requires_grad:
        query, key, value = _projections(layer)
        h = tap.layer_input
        return query(h[:, :1]), key(h), value(h)
    return tap.query_cls, tap.key, tap.value


def side_cls_states(
    layer_a: nn.Module, tap_a: LayerTap, layer_b: nn.Module, tap_b: LayerTap, attention_mask: Tensor
) -> tuple[Tensor, Tensor]:
    """CLS rows [N, H] of the cross-attended layer outputs: A's probabilities on B's values, and B on A."""
    if not (tap_a.complete() and tap_b.complete()):
        raise RuntimeError(
            "cross-attention hooks did not see the layer run (was the tower's forward skipped?)"
        )
    q_a, k_a, v_a = _projections_with_grad(layer_a, tap_a)
    q_b, k_b, v_b = _projections_with_grad(layer_b, tap_b)
    x_a = cross_attend(layer_a, q_a, k_a, v_b, attention_mask)
    x_b = cross_attend(layer_b, q_b, k_b, v_a, attention_mask)
    assert tap_a.layer_input is not None and tap_b.layer_input is not None
    out_a = finish_layer(layer_a, x_a, tap_a.layer_input[:, :1])
    out_b = finish_layer(layer_b, x_b, tap_b.layer_input[:, :1])
    return out_a[:, 0], out_b[:, 0]


# --------------------------------------------------------------------------------------------- in-stream
def layer_attention_mask(tower: nn.Module, attention_mask: Tensor, dtype: torch.dtype) -> Tensor:
    """A 4-D mask that a tower's own layers accept when called directly, on transformers 4.40+ and 5.x.

    Eager attention adds the mask to the scores (additive float); SDPA takes a boolean keep-mask, which also
    stays valid under autocast (a float mask must match the query dtype there).
    """
    impl = getattr(tower.config, "_attn_implementation", None) or "eager"
    if impl not in IN_STREAM_ATTENTION:
        raise JtcseError(
            f"ca_mode in_stream: attention implementation {impl!r} is not supported; "
            f"load the towers with attn_implementation='eager' or 'sdpa'"
        )
    if impl == "sdpa":
        return attention_mask[:, None, None, :].bool()
    return additive_mask(attention_mask, dtype)


def _call_layer(layer: nn.Module, hidden: Tensor, mask: Tensor) -> Tensor:
    out = layer(hidden, attention_mask=mask)
    return out[0] if isinstance(out, tuple) else out  # 4.x layers return a tuple, 5.x a tensor


def run_in_stream(
    tower_a: nn.Module,
    tower_b: nn.Module,
    input_ids: Tensor,
    attention_mask: Tensor,
    token_type_ids: Tensor | None,
    indices: Sequence[int],
) -> tuple[Tensor, Tensor, list[Tensor], list[Tensor]]:
    """Step both towers in lock-step; at CA layers the cross-attended output replaces self-attention.

    Returns the last hidden states of A and B [N, L, H] and the CLS states right after each CA layer.
    Non-CA layers are the towers' own HF layer modules, called with a 4-D mask.
    """
    hidden_a = tower_a.get_submodule("embeddings")(input_ids=input_ids, token_type_ids=token_type_ids)
    hidden_b = tower_b.get_submodule("embeddings")(input_ids=input_ids, token_type_ids=token_type_ids)
    mask_a = layer_attention_mask(tower_a, attention_mask, hidden_a.dtype)
    mask_b = layer_attention_mask(tower_b, attention_mask, hidden_b.dtype)
    ca_set = set(indices)
    ca_a: list[Tensor] = []
    ca_b: list[Tensor] = []
    for i, (layer_a, layer_b) in enumerate(
        zip(encoder_layers(tower_a), encoder_layers(tower_b), strict=True)
    ):
        if i not in ca_set:
            hidden_a, hidden_b = (
                _call_layer(layer_a, hidden_a, mask_a),
                _call_layer(layer_b, hidden_b, mask_b),
            )
            continue
        q_a, k_a, v_a = (proj(hidden_a) for proj in _projections(layer_a))
        q_b, k_b, v_b = (proj(hidden_b) for proj in _projections(layer_b))
        x_a = cross_attend(layer_a, q_a, k_a, v_b, attention_mask)
        x_b = cross_attend(layer_b, q_b, k_b, v_a, attention_mask)
        hidden_a = finish_layer(layer_a, x_a, hidden_a)
        hidden_b = finish_layer(layer_b, x_b, hidden_b)
        ca_a.append(hidden_a[:, 0])
        ca_b.append(hidden_b[:, 0])
    return hidden_a, hidden_b, ca_a, ca_b
