"""Batches for contrastive training: a seeded epoch order and per-batch tokenisation.

Order (:func:`plan_epoch`), two kinds (``data.batching``):

* ``random`` (the official distribution: PyTorch's ``DataLoader(shuffle=True)`` / SimCSE's RandomSampler):
  one uniform permutation of all sentence indices per epoch, cut into consecutive batches. Every batch is a
  uniform sample of the corpus, so the in-batch negatives have every length;
* ``length_bucketed``: the same permutation, then windows of ``bucket_window`` batches are sorted by length
  and cut into batches, and the batches are shuffled. Batches then hold sentences of similar length, so
  dynamic padding wastes little, but the in-batch negatives all have about the anchor's length (another
  contrastive task). Lengths are character counts, a close proxy for token counts (correlation 0.95 on
  wiki1m) that needs no tokenisation up front.

Both draw from a generator seeded by ``(seed, epoch)`` only, never from the global RNG, so an epoch's order
is reproducible and a resumed run continues it exactly.

Tokenisation (:class:`PairTokenizer`): one tokenizer call per batch, padded to the batch's longest sentence
(or to ``max_len`` when asked, for comparisons), then every row repeated so the rows are
``[x0, x0, x1, x1, ...]``: the two dropout copies of each sentence go through the encoder in one pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal, get_args

import numpy as np
import torch
from torch import Tensor

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

Batching = Literal["random", "length_bucketed"]
BATCHINGS: tuple[Batching, ...] = get_args(Batching)


def plan_epoch(
    lengths: Sequence[int] | np.ndarray,
    batch_size: int,
    *,
    seed: int,
    epoch: int,
    batching: Batching = "random",
    bucket_window: int = 50,
    drop_last: bool = False,
) -> list[np.ndarray]:
    """The batches of one epoch, each an array of sentence indices (``batching``: see the module doc)."""
    if batch_size < 1 or bucket_window < 1:
        raise ValueError("batch_size and bucket_window must be >= 1")
    if batching not in BATCHINGS:
        raise ValueError(f"batching must be one of {', '.join(BATCHINGS)}, got {batching!r}")
    lengths = np.asarray(lengths)
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(lengths))
    batches: list[np.ndarray]
    if batching == "random":
        batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
        return [b for b in batches if len(b) == batch_size] if drop_last else batches
    window = batch_size * bucket_window
    batches = []
    for start in range(0, len(order), window):
        chunk = order[start : start + window]
        if bucket_window > 1:
            chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    if drop_last:
        batches = [b for b in batches if len(b) == batch_size]
    return [batches[i] for i in rng.permutation(len(batches))]


def pack_batches(batches: Sequence[np.ndarray]) -> tuple[Tensor, Tensor]:
    """``(flat indices, offsets)`` tensors for a checkpoint."""
    sizes = [len(b) for b in batches]
    flat = np.concatenate(batches) if batches else np.zeros(0, dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    return torch.from_numpy(flat.astype(np.int64)), torch.from_numpy(offsets.astype(np.int64))


def unpack_batches(flat: Tensor, offsets: Tensor) -> list[np.ndarray]:
    flat_np, off = flat.numpy(), offsets.tolist()
    return [flat_np[off[i] : off[i + 1]] for i in range(len(off) - 1)]


class PairTokenizer:
    """Tokenise a batch of sentences into ``copies`` interleaved rows per sentence."""

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase,
        max_len: int,
        *,
        copies: int = 2,
        pad_to_max_length: bool = False,
        pad_to_multiple_of: int | None = None,
    ) -> None:
        self.tokenizer = tokenizer
        self.max_len = max_len
        self.copies = copies
        self.padding: bool | str = "max_length" if pad_to_max_length else True
        # On GPUs a multiple of 8 keeps the set of shapes small (kernel plans are cached per shape) and
        # suits tensor cores; truncation still caps the length at max_len.
        self.pad_to_multiple_of = pad_to_multiple_of

    def __call__(self, sentences: Sequence[str]) -> dict[str, Tensor]:
        encoded = self.tokenizer(
            list(sentences),
            padding=self.padding,
            truncation=True,
            max_length=self.max_len,
            pad_to_multiple_of=self.pad_to_multiple_of,
            return_tensors="pt",
        )
        keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in encoded]
        return {k: encoded[k].repeat_interleave(self.copies, dim=0) for k in keys}
