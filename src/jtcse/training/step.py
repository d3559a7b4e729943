"""One training step's forward and backward, on one process or many, in one pass or grad-cached.

:class:`StepExecutor` drives a :class:`~jtcse.training.tasks.base.Task` through its contract (``embed_rows``
on this process's rows, ``loss_from_vectors`` on the step's :class:`Vectors`), which is what lets the same
task train on one process, on many (DDP: vectors gathered across ranks) and in chunks (gradient caching).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from jtcse.training import distributed
from jtcse.training.grad_cache import grad_cached_backward
from jtcse.training.precision import Precision
from jtcse.training.sub_batching import embed_length_sorted
from jtcse.training.tasks.base import Task, Vectors

__all__ = ["StepExecutor", "Vectors"]


class StepExecutor:
    """Forward and backward of one step; leaves the (rank-averaged) gradients in the parameters' ``.grad``.

    Plain: ``embed_rows`` on this rank's rows (through DDP when distributed), vectors gathered, loss,
    backward. With ``grad_cache_chunk = K`` < this rank's sentences: :func:`grad_cached_backward` in chunks
    of K sentences (DDP syncs gradients after the last chunk only).
    """

    def __init__(
        self,
        task: Task,
        device: torch.device,
        precision: Precision,
        *,
        grad_cache_chunk: int = 0,
        length_sorted_sub_batch: int = 0,
        pad_multiple: int = 0,
    ) -> None:
        self.task = task
        self.device = device
        self.precision = precision
        self.grad_cache_chunk = grad_cache_chunk
        # train.length_sorted_sub_batch (jtcse.training.sub_batching); one process only, because
        # DDP's gradient hooks expect one forward per backward
        self.sub_batch = length_sorted_sub_batch
        self.pad_multiple = pad_multiple
        self.dist = distributed.current()
        self.model = distributed.wrap_for_data_parallel(task, device)

    def __call__(self, batch: dict[str, Tensor], shard_sizes: Sequence[int]) -> dict[str, Tensor]:
        """Run the step on this rank's ``batch``; ``shard_sizes``: sentences per rank in this step.

        Returns the loss terms, detached, averaged over ranks: the global batch's values on every rank.
        """
        n_local = shard_sizes[self.dist.rank]
        if self.grad_cache_chunk and self.grad_cache_chunk < n_local:
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
        """This rank's vectors with their graph: in length-sorted sub-batches when asked."""
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
        keep_local = set(self.task.local_vector_keys)
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
