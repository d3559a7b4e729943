"""Gradient caching (GradCache, Gao et al. 2021) with dropout replay: a large batch in small chunks.

``train.grad_cache_chunk = K`` (sentences) bounds the activation memory of a step by K sentences' worth while
the loss still sees the whole batch (every in-batch negative), unlike gradient accumulation:

1. **embed** each chunk of K sentences without an autograd graph, keeping only the vectors the loss reads
   (CLS states, pooler outputs, cross-attention states, ...); before each chunk, snapshot the CPU and CUDA
   RNG states (:class:`RngSnapshot`);
2. **loss** on the concatenated cached vectors (gathered across ranks under DDP), back-propagated to the
   vectors only: ``dL/dv`` for every cached vector;
3. **re-embed** each chunk with a graph, after restoring its snapshot, and back-propagate the cached
   ``dL/dv`` through it (``torch.autograd.backward(v, dL/dv)``); parameter gradients accumulate over chunks.

Dropout *is* SimCSE's augmentation, so step 3 must see exactly step 1's dropout masks: restoring the RNG
state replays them, and the gradient is then that of the one-graph computation with the same masks
(tests/test_grad_cache.py: within 1e-5 with dropout on; without the replay, visibly different). After the
step the RNG state is left where step 1 left it.

Cost: one extra forward pass per step (about +1/3 of a plain step's compute); memory: K sentences of
activations plus the cached vectors. Dropout masks depend on how rows are batched, so a grad-cached step
draws other masks than a one-pass step of the same batch: the same objective, other random draws (with
dropout off the two are equal to float precision). The loss itself runs once per step, so per-step draws
made in it (the JTCSE ICNCE direction) are unchanged.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

Batch = dict[str, Tensor]
Vectors = dict[str, Tensor]


@dataclass
class RngSnapshot:
    """The torch RNG state that dropout draws from: the CPU generator and, on CUDA, the device's."""

    cpu: Tensor
    cuda: Tensor | None = None
    device: torch.device | None = None

    @classmethod
    def capture(cls, device: torch.device) -> RngSnapshot:
        if device.type == "cuda":
            return cls(torch.get_rng_state(), torch.cuda.get_rng_state(device), device)
        return cls(torch.get_rng_state())

    def restore(self) -> None:
        torch.set_rng_state(self.cpu)
        if self.cuda is not None and self.device is not None:
            torch.cuda.set_rng_state(self.cuda, self.device)


def split_sentences(batch: Batch, n_sentences: int, chunk: int) -> list[Batch]:
    """Row slices of ``batch`` holding ``chunk`` whole sentences each (the last may hold fewer).

    Every tensor of the batch has ``rows_per_sentence * n_sentences`` rows, sentence-major (the interleaved
    ``[x0, x0, x1, x1, ...]`` has 2 rows per sentence; a distillation batch 1).
    """
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    per_sentence: dict[str, int] = {}
    for key, value in batch.items():
        rows, rest = divmod(value.shape[0], n_sentences)
        if rest or rows < 1:
            raise ValueError(
                f"split_sentences: {key!r} has {value.shape[0]} rows for {n_sentences} sentences"
            )
        per_sentence[key] = rows
    chunks = []
    for start in range(0, n_sentences, chunk):
        stop = min(start + chunk, n_sentences)
        chunks.append({k: v[start * per_sentence[k] : stop * per_sentence[k]] for k, v in batch.items()})
    return chunks


def grad_cached_backward(
    batch: Batch,
    n_sentences: int,
    chunk: int,
    *,
    embed: Callable[[Batch], Vectors],
    embed_with_graph: Callable[[Batch], Vectors],
    loss_from_vectors: Callable[[Vectors], dict[str, Tensor]],
    device: torch.device,
    autocast: Callable[[], contextlib.AbstractContextManager],
    scale: Callable[[Tensor], Tensor] = lambda loss: loss,
    no_sync: Callable[[], contextlib.AbstractContextManager] | None = None,
    replay_rng: bool = True,
) -> dict[str, Tensor]:
    """One grad-cached forward/backward; parameter gradients accumulate in ``.grad``.

    ``embed``: the task's row embedder (called under ``no_grad``); ``embed_with_graph``: the same, possibly
    through the DDP wrapper; ``loss_from_vectors``: cached vectors of this rank's rows -> ``{"loss", terms}``
    (gathering across ranks is its business); ``scale``: the fp16 loss scaler's ``scale`` (identity
    otherwise); ``no_sync``: DDP's ``no_sync`` (gradient all-reduce only after the last chunk).
    ``replay_rng=False`` exists for the test that shows why the replay is needed.
    Returns the loss terms (attached to the cached vectors' graph; detach to log).
    """
    chunks = split_sentences(batch, n_sentences, chunk)

    # 1. embed without a graph, snapshotting the RNG before each chunk
    snapshots: list[RngSnapshot] = []
    cached: list[Vectors] = []
    with torch.no_grad():
        for part in chunks:
            snapshots.append(RngSnapshot.capture(device))
            with autocast():
                cached.append(embed(part))
    after_first_pass = RngSnapshot.capture(device)

    # 2. loss on the cached vectors, gradient to the vectors only
    leaves = {
        key: torch.cat([c[key] for c in cached]).detach().requires_grad_(cached[0][key].is_floating_point())
        for key in cached[0]
    }
    del cached
    with autocast():
        terms = loss_from_vectors(leaves)
    wanted = [key for key, leaf in leaves.items() if leaf.requires_grad]
    grads = torch.autograd.grad(scale(terms["loss"]), [leaves[k] for k in wanted], allow_unused=True)
    cached_grads = {key: grad for key, grad in zip(wanted, grads, strict=True) if grad is not None}

    # 3. re-embed each chunk with a graph under its replayed RNG state; back-propagate the cached gradients
    offsets: dict[str, int] = dict.fromkeys(cached_grads, 0)
    for i, part in enumerate(chunks):
        last = i == len(chunks) - 1
        sync_context = no_sync() if (no_sync is not None and not last) else contextlib.nullcontext()
        with sync_context:
            if replay_rng:
                snapshots[i].restore()
            with autocast():
                vectors = embed_with_graph(part)
            outputs, gradients = [], []
            for key, grad in cached_grads.items():
                value = vectors[key]
                rows = value.shape[0]
                if value.requires_grad:
                    outputs.append(value)
                    gradients.append(grad[offsets[key] : offsets[key] + rows].to(value.dtype))
                offsets[key] += rows
            if outputs:
                torch.autograd.backward(outputs, gradients)
    after_first_pass.restore()
    return terms
