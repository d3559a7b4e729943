"""One training step's forward and backward, on one process or many, in one pass or grad-cached; and the
contract a task implements to get all of that.

**The task contract** (implemented by :class:`~jtcse.training.tasks.SimcseTask` and
:class:`~jtcse.training.tasks.TwinTowerTask`; a new task, e.g. distillation, implements the same)::

    embed_rows(batch: dict[str, Tensor]) -> dict[str, Tensor]
    loss_from_vectors(vectors: Vectors) -> dict[str, Tensor]      # {"loss": ..., <term>: ..., ...}
    local_vector_keys: tuple[str, ...] = ()                         # optional class attribute

``embed_rows`` computes the vectors the loss needs from *this process's rows* of the batch:

* **row-wise**: every batch tensor and every returned tensor has its rows in dim 0, a fixed number of rows
  per sentence, sentence-major (``[x0, x0, x1, x1, ...]`` is 2 rows per sentence; a distillation batch has
  1; a returned tensor may have its own count, e.g. one teacher vector per sentence). Embedding a slice of
  whole sentences must give the same slice of every vector, up to dropout: a batch is then embedded in
  shards (one per rank) or in chunks (gradient caching) without changing the loss;
* it returns **only vectors the loss uses**: under DDP, a returned vector that the loss ignores leaves the
  parameters behind it waiting for a gradient, and DDP stops with an error. (Vectors computed without
  gradient, such as a frozen teacher's, are fine.) In a grad-cached step it is called twice per chunk: a
  task may skip nothing, but its frozen parts are then computed twice;
* its only randomness is torch's RNG (dropout), which gradient caching replays.

``loss_from_vectors`` computes the objective, **called once per step** (so per-step random draws, like the
JTCSE ICNCE direction from Python's ``random``, belong here; every rank makes the same draws):

* ``vectors.all[key]``: the **global batch**, every rank's rows gathered with gradient, in the order a single
  process would have them. Terms over the batch (InfoNCE with in-batch negatives) read these.
* ``vectors.local[key]``: this rank's rows. A per-sentence *mean* term may read these instead (no
  communication) and must then be multiplied by ``vectors.local_weight`` (``world * n_local / n_global``),
  so that the average over ranks is the global mean; keys read only this way go into
  ``local_vector_keys`` and are not gathered.
* every returned value must average over ranks to the global batch's value (both kinds above do); the
  trainer logs that average, and ``"loss"`` is what gets back-propagated.

In one process ``vectors.all is vectors.local`` and ``local_weight == 1``, so a task's
``losses(batch) = loss_from_vectors(Vectors.single(embed_rows(batch)))`` is the plain single-process step.
A task without ``embed_rows`` still trains in one process through its ``losses(batch)``; multi-process
training and ``train.grad_cache_chunk`` then stop with a one-line error.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from jtcse.errors import JtcseError
from jtcse.training import distributed
from jtcse.training.grad_cache import grad_cached_backward
from jtcse.training.precision import Precision
from jtcse.training.sub_batching import embed_length_sorted


@dataclass
class Vectors:
    """What ``loss_from_vectors`` reads (see the module docstring)."""

    all: dict[str, Tensor]
    local: dict[str, Tensor]
    local_weight: float = 1.0
    """``world_size * n_local / n_global``: the factor for a per-sentence mean computed on local rows."""
    shard_sizes: list[int] = field(default_factory=list)
    """Sentences per rank in this step (one entry in a single process)."""

    @classmethod
    def single(cls, vectors: dict[str, Tensor]) -> Vectors:
        """One process: the local rows are the whole batch."""
        return cls(all=vectors, local=vectors, local_weight=1.0)


def supports_contract(task: Any) -> bool:
    return callable(getattr(task, "embed_rows", None)) and callable(getattr(task, "loss_from_vectors", None))


class StepRunner:
    """Forward and backward of one step; leaves the (rank-averaged) gradients in the parameters' ``.grad``.

    Plain: ``embed_rows`` on this rank's rows (through DDP when distributed), vectors gathered, loss,
    backward. With ``grad_cache_chunk = K`` < this rank's sentences: :func:`grad_cached_backward` in chunks
    of K sentences (DDP syncs gradients after the last chunk only).
    """

    def __init__(
        self,
        task: nn.Module,
        device: torch.device,
        precision: Precision,
        *,
        grad_cache_chunk: int = 0,
        method: str = "",
        length_sorted_sub_batch: int = 0,
        pad_multiple: int = 0,
    ) -> None:
        self.task = task
        self.device = device
        self.precision = precision
        self.grad_cache_chunk = grad_cache_chunk
        # issue 10: train.length_sorted_sub_batch (jtcse.training.sub_batching); one process only, because
        # DDP's gradient hooks expect one forward per backward
        self.sub_batch = length_sorted_sub_batch
        self.pad_multiple = pad_multiple
        self.dist = distributed.current()
        self.contract = supports_contract(task)
        if not self.contract and (self.dist.enabled or grad_cache_chunk):
            what = (
                f"training on {self.dist.world_size} processes"
                if self.dist.enabled
                else f"train.grad_cache_chunk = {grad_cache_chunk}"
            )
            raise JtcseError(
                f"method {method or type(task).__name__}: {what} needs a task with embed_rows and "
                "loss_from_vectors (jtcse.training.step); train on one process with grad_cache_chunk = 0"
            )
        self.model = distributed.wrap_for_data_parallel(task, device) if self.contract else task

    def __call__(self, batch: dict[str, Tensor], shard_sizes: Sequence[int]) -> dict[str, Tensor]:
        """Run the step on this rank's ``batch``; ``shard_sizes``: sentences per rank in this step.

        Returns the loss terms, detached, averaged over ranks: the global batch's values on every rank.
        """
        n_local = shard_sizes[self.dist.rank]
        if not self.contract:
            with self.precision.autocast():
                terms = self.task.losses(batch)
            self._backward(terms["loss"])
        elif self.grad_cache_chunk and self.grad_cache_chunk < n_local:
            terms = grad_cached_backward(
                batch,
                n_local,
                self.grad_cache_chunk,
                embed=self.task.embed_rows,
                embed_with_graph=self.model,
                loss_from_vectors=lambda local: self.task.loss_from_vectors(self.view(local, shard_sizes)),
                device=self.device,
                autocast=self.precision.autocast,
                scale=self._scale,
                no_sync=getattr(self.model, "no_sync", None),
            )
        else:
            with self.precision.autocast():
                local = self._embed(batch, n_local)
                terms = self.task.loss_from_vectors(self.view(local, shard_sizes))
            self._backward(terms["loss"])
        return self._reduce(terms)

    def _embed(self, batch: dict[str, Tensor], n_local: int) -> dict[str, Tensor]:
        """This rank's vectors with their graph: in length-sorted sub-batches when asked (issue 10)."""
        if self.sub_batch and not self.dist.enabled:
            return embed_length_sorted(
                self.model, batch, n_local, self.sub_batch, pad_multiple=self.pad_multiple
            )
        return self.model(batch)

    def view(self, local: dict[str, Tensor], shard_sizes: Sequence[int]) -> Vectors:
        """This rank's vectors and the global batch's (gathered with gradient) for ``loss_from_vectors``."""
        if not self.dist.enabled:
            vectors = Vectors.single(local)
            vectors.shard_sizes = list(shard_sizes)
            return vectors
        keep_local = set(getattr(self.task, "local_vector_keys", ()))
        to_gather = {k: v for k, v in local.items() if k not in keep_local}
        gathered = distributed.gather_vectors(to_gather, shard_sizes) if to_gather else {}
        n_local = shard_sizes[self.dist.rank]
        return Vectors(
            all=gathered,
            local=local,
            local_weight=self.dist.world_size * n_local / sum(shard_sizes),
            shard_sizes=list(shard_sizes),
        )

    def _scale(self, loss: Tensor) -> Tensor:
        scaler = self.precision.scaler
        return scaler.scale(loss) if scaler is not None else loss

    def _backward(self, loss: Tensor) -> None:
        self._scale(loss).backward()

    def _reduce(self, terms: dict[str, Tensor]) -> dict[str, Tensor]:
        if not self.dist.enabled:
            return {key: value.detach() for key, value in terms.items()}
        keys = list(terms)
        averaged = distributed.mean_across_ranks(torch.stack([terms[k].detach().float() for k in keys]))
        return dict(zip(keys, averaged.unbind(), strict=True))
