"""Encode a batch in length-sorted sub-batches: less padding, the same batch for the loss.

``train.length_sorted_sub_batch = K``: the batch's sentences are ordered by token length, cut into
sub-batches of K sentences, each sub-batch is trimmed to its own longest row and embedded *with* its autograd
graph, and the vectors are put back in the batch's order before the loss. The loss therefore sees exactly the
batch the epoch order drew (a ``random`` batch keeps its in-batch negatives of every length); only padding
columns are skipped. This is the chunking of :mod:`jtcse.training.grad_cache` without the graph-free first
pass: no extra compute, activation memory as for the whole batch.

Why it is exact up to float rounding: the encoders are row-wise (a row attends only to its own unpadded
tokens; the twin tower's cross-attention pairs row i of tower A with row i of tower B) and padding columns
are masked, so a row's vectors do not depend on which rows share its pass nor on how many padding columns
follow it. Dropout draws differ (other tensor shapes), so with dropout on the step is the same objective
with other masks (tests/test_sub_batching.py checks equality with dropout off).

Token tensors are found by name: for every ``<prefix>attention_mask`` in the batch, the keys
``<prefix>input_ids``, ``<prefix>token_type_ids``, ``<prefix>position_ids`` and the mask itself are trimmed to
the last column that any row of the sub-batch uses (so left padding is never cut); every other tensor is only
sliced by rows. The sort key is the main ``attention_mask``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

Batch = dict[str, Tensor]
TOKEN_KEYS = ("input_ids", "attention_mask", "token_type_ids", "position_ids")
# train.length_sorted_sub_batch = none: small sub-batches cost a CPU little (its matrix products stay
# efficient at 16 rows) and save most padding; a GPU needs larger ones to stay busy [unmeasured on GPU].
DEFAULT_SUB_BATCH = {"cpu": 8, "cuda": 32}


def resolve_sub_batch(value: int | None, device: torch.device) -> int:
    """``train.length_sorted_sub_batch`` on ``device``: the value itself, or the device's default for none."""
    if value is not None:
        return value
    return DEFAULT_SUB_BATCH.get(device.type, DEFAULT_SUB_BATCH["cuda"])


def sentence_rows(sentences: Tensor, rows_per_sentence: int) -> Tensor:
    """Row indices of ``sentences`` in a sentence-major layout with ``rows_per_sentence`` rows each."""
    offsets = torch.arange(rows_per_sentence, device=sentences.device)
    return (sentences[:, None] * rows_per_sentence + offsets).reshape(-1)


def _rows_per_sentence(value: Tensor, n_sentences: int, key: str) -> int:
    rows, rest = divmod(value.shape[0], n_sentences)
    if rest or rows < 1:
        raise ValueError(f"sub-batching: {key!r} has {value.shape[0]} rows for {n_sentences} sentences")
    return rows


def _used_columns(mask: Tensor, pad_multiple: int) -> int:
    """1 + the last column any row attends to, rounded up to ``pad_multiple`` (capped at the width)."""
    width = mask.shape[1]
    used = mask.any(dim=0).nonzero()
    last = int(used.max()) + 1 if used.numel() else 1
    if pad_multiple > 1:
        last = -(-last // pad_multiple) * pad_multiple
    return min(last, width)


def _trim(part: Batch, pad_multiple: int) -> Batch:
    out = dict(part)
    for key in part:
        if not key.endswith("attention_mask"):
            continue
        prefix = key[: -len("attention_mask")]
        keep = _used_columns(part[key], pad_multiple)
        for name in TOKEN_KEYS:
            full = prefix + name
            if full in part and part[full].dim() >= 2 and part[full].shape[1] == part[key].shape[1]:
                out[full] = part[full][:, :keep]
    return out


def length_sorted_split(
    batch: Batch, n_sentences: int, sub_batch: int, *, pad_multiple: int = 0
) -> tuple[list[Batch], Tensor]:
    """``(sub-batches, order)``: sub-batch k holds sentences ``order[k*K:(k+1)*K]``, shortest first, each
    trimmed to its longest row; ``order`` is a permutation of the batch's sentence indices."""
    if sub_batch < 1:
        raise ValueError(f"sub_batch must be >= 1, got {sub_batch}")
    per_sentence = {key: _rows_per_sentence(value, n_sentences, key) for key, value in batch.items()}
    mask = batch["attention_mask"]
    lengths = mask[:: per_sentence["attention_mask"]].sum(dim=1)  # a sentence's rows are copies
    order = torch.argsort(lengths.cpu(), stable=True)
    parts = []
    for start in range(0, n_sentences, sub_batch):
        chosen = order[start : start + sub_batch]
        part = {}
        for key, value in batch.items():
            part[key] = value[sentence_rows(chosen, per_sentence[key]).to(value.device)]
        parts.append(_trim(part, pad_multiple))
    return parts, order


def embed_length_sorted(
    embed: Callable[[Batch], dict[str, Tensor]],
    batch: Batch,
    n_sentences: int,
    sub_batch: int,
    *,
    pad_multiple: int = 0,
) -> dict[str, Tensor]:
    """``embed(batch)`` computed sub-batch by sub-batch (see the module doc), rows in the batch's order."""
    if sub_batch >= n_sentences:
        return embed(batch)
    parts, order = length_sorted_split(batch, n_sentences, sub_batch, pad_multiple=pad_multiple)
    outputs = [embed(part) for part in parts]
    inverse = torch.argsort(order)  # sentence i sits at position inverse[i] of the sorted order
    vectors = {}
    for key in outputs[0]:
        stacked = torch.cat([out[key] for out in outputs])
        rows = _rows_per_sentence(stacked, n_sentences, key)
        vectors[key] = stacked[sentence_rows(inverse, rows).to(stacked.device)]
    return vectors
