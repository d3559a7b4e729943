"""The dev score of a model being trained: STS-B dev Spearman x100 of its inference embedding, computed in
memory (nothing saved), for model selection during training (:func:`jtcse.evaluation.sts.stsb_dev_score`)."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import torch
from torch import Tensor, nn

from jtcse.evaluation.sts import stsb_dev_score

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

_INPUT_KEYS = ("input_ids", "attention_mask", "token_type_ids")


def encode_in_batches(
    embed: Callable[[dict[str, Tensor]], Tensor],
    tokenizer: PreTrainedTokenizerBase,
    sentences: list[str],
    *,
    batch_size: int,
    max_length: int | None,
    device: torch.device,
    autocast: Callable[[], Any] = contextlib.nullcontext,
) -> np.ndarray:
    """``embed`` of every sentence as float32 rows ``[n, dim]``, in the order given.

    Longest first (by characters), so each batch pads to a similar length; the rows go back to their places
    at the end. ``max_length``: truncation (None: none).
    """
    order = sorted(range(len(sentences)), key=lambda i: -len(sentences[i]))
    chunks = []
    for start in range(0, len(order), batch_size):
        texts = [sentences[i] for i in order[start : start + batch_size]]
        enc = tokenizer(
            texts, padding=True, truncation=max_length is not None, max_length=max_length, return_tensors="pt"
        )
        with autocast():
            chunks.append(embed({k: enc[k].to(device) for k in _INPUT_KEYS if k in enc}).float().cpu())
    stacked = torch.cat(chunks).numpy()
    rows = np.empty_like(stacked)
    rows[np.asarray(order)] = stacked
    return rows


@torch.no_grad()
def training_dev_score(
    model: nn.Module,
    *,
    batch_size: int,
    max_length: int | None,
    device: torch.device,
    data_dir: str | Path | None = None,
    autocast: Callable[[], Any] = contextlib.nullcontext,
) -> float:
    """STS-B dev Spearman x100 of ``model.embed`` on ``model.tokenizer``'s tokens (a training task), in eval
    mode (dropout off; the mode is restored after) and without gradients."""
    encode = functools.partial(
        encode_in_batches,
        cast(Callable[[dict[str, Tensor]], Tensor], model.embed),  # a training Task (a higher layer)
        cast("PreTrainedTokenizerBase", model.tokenizer),
        batch_size=batch_size,
        max_length=max_length,
        device=device,
        autocast=autocast,
    )
    was_training = model.training
    model.eval()
    try:
        return float(stsb_dev_score(encode, data_dir))
    finally:
        model.train(was_training)
