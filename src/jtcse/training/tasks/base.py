"""The task contract: what a training method provides to the trainer (and nothing else is asked of it).

A task is an ``nn.Module`` holding the trained model(s). The trainer calls, per step::

    batch = task.collate(sentences)                 # {name: tensor}, rows in dim 0 (default: 2 per sentence)
    vectors = task.embed_rows(batch)                # this process's rows (through DDP when distributed)
    terms = task.loss_from_vectors(Vectors(...))    # {"loss": ..., <term>: ...}, once per step

and, to evaluate and save, ``task.embed(batch)`` (the inference embedding, what ``jtcse.Encoder`` computes
from the saved model) and ``task.save_model(out_dir, extra)`` (a directory ``jtcse.Encoder`` loads).

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
  :attr:`Task.local_vector_keys` and are not gathered.
* every returned value must average over ranks to the global batch's value (both kinds above do); the
  trainer logs that average, and ``"loss"`` is what gets back-propagated.

In one process ``vectors.all is vectors.local`` and ``local_weight == 1``, so :meth:`Task.losses` (``batch ->
terms``, the plain single-process step) is ``loss_from_vectors(Vectors.single(embed_rows(batch)))``.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from torch import Tensor, nn

from jtcse.data.batching import PairTokenizer
from jtcse.training.config import Config

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


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


class Task(nn.Module, abc.ABC):
    """A training method: its model(s), its batches, its objective, its saved model.

    The base class tokenises a batch into ``rows_per_sentence`` copies of each sentence's tokens
    (:meth:`collate`), padded to the batch's longest sentence (a multiple of ``pad_to_multiple_of`` when
    > 0), truncated at ``max_len``.
    """

    local_vector_keys: tuple[str, ...] = ()
    """Keys of ``embed_rows``' output read only through ``vectors.local``: never gathered across ranks."""

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase,
        *,
        max_len: int,
        rows_per_sentence: int = 2,
        pad_to_multiple_of: int = 0,
    ) -> None:
        super().__init__()
        self.tokenizer = tokenizer
        self.pad_to_multiple_of = pad_to_multiple_of
        self._tokens = PairTokenizer(
            tokenizer, max_len, copies=rows_per_sentence, pad_to_multiple_of=pad_to_multiple_of or None
        )

    @property
    @abc.abstractmethod
    def terms(self) -> tuple[str, ...]:
        """The loss terms ``loss_from_vectors`` returns besides ``"loss"`` (the logged columns)."""

    def collate(self, sentences: Sequence[str]) -> dict[str, Tensor]:
        """One step's tensors for ``sentences``: ``input_ids``, ``attention_mask`` (``token_type_ids``)."""
        return self._tokens(sentences)

    @abc.abstractmethod
    def embed_rows(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """The vectors the loss reads, for this process's rows of ``batch``."""

    @abc.abstractmethod
    def loss_from_vectors(self, vectors: Vectors) -> dict[str, Tensor]:
        """``{"loss": ..., <term>: ...}`` of the step's vectors."""

    def losses(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """The single-process step: ``loss_from_vectors`` of this batch's vectors."""
        return self.loss_from_vectors(Vectors.single(self.embed_rows(batch)))

    @abc.abstractmethod
    def embed(self, batch: dict[str, Tensor]) -> Tensor:
        """The inference embedding of ``batch`` (one row per sentence), as the saved model computes it."""

    @abc.abstractmethod
    def save_model(self, out_dir: Path, extra: dict[str, Any]) -> None:
        """Write a model directory that ``jtcse.Encoder`` loads; ``extra`` goes into ``jtcse.json``."""


def batching(config: Config) -> dict[str, int]:
    """The :class:`Task` batching options a config sets: ``max_len`` and the effective padding multiple."""
    from jtcse.training.precision import resolve_pad_multiple

    pad = resolve_pad_multiple(config.data.pad_to_multiple_of, config.train.device)
    return {"max_len": config.data.max_len, "pad_to_multiple_of": pad}
