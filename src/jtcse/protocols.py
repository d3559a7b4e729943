"""The seams, as Protocols a type checker can see: what the layers above ask of a sentence encoder and of a
vector index, whatever implements it.

* :class:`SentenceEncoder`: ``dim`` and ``encode`` (numpy rows by default, a torch tensor with
  ``convert_to_tensor=True``). :class:`jtcse.Encoder` is one; so is anything with the same two members (the
  STS evaluator, the search tools and the index builders take any of them).
* :class:`VectorSearch`: a searchable set of vectors tied to the model that made them:
  :class:`jtcse.tools.search.SearchIndex` (a corpus in memory) and
  :class:`jtcse.corpus_scale.index.VectorIndex` (a faiss index over sharded vectors) are the two kinds;
  ``jtcse serve --corpus/--index`` serves either.

Layer 0: nothing here imports jtcse. :class:`SearchHit`, what both index kinds answer, lives here too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol, overload

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class SearchHit:
    rank: int  # 1-based
    score: float  # cosine similarity
    line: int  # 1-based line number in the corpus file
    text: str


Vectors = npt.NDArray[np.float32]
"""float32 rows ``[n, dim]`` (``[dim]`` for a single sentence)."""


class SentenceEncoder(Protocol):
    """Sentences in, vectors out: what the server, the evaluators, the search tools and mteb's wrapper use."""

    @property
    def dim(self) -> int:
        """The length of every vector."""
        ...

    @overload
    def encode(
        self,
        sentences: str | Sequence[str],
        *,
        batch_size: int | None = None,
        normalize: bool = False,
        show_progress: bool | None = None,
        convert_to_tensor: Literal[False] = False,
    ) -> Vectors: ...

    @overload
    def encode(
        self,
        sentences: str | Sequence[str],
        *,
        batch_size: int | None = None,
        normalize: bool = False,
        show_progress: bool | None = None,
        convert_to_tensor: Literal[True],
    ) -> torch.Tensor: ...

    @overload
    def encode(
        self,
        sentences: str | Sequence[str],
        *,
        batch_size: int | None = None,
        normalize: bool = False,
        show_progress: bool | None = None,
        convert_to_tensor: bool = False,
    ) -> Vectors | torch.Tensor: ...


class VectorSearch(Protocol):
    """A searchable set of vectors and the lines they were made from."""

    def __len__(self) -> int:
        """How many vectors (corpus lines) it holds."""
        ...

    def check_model(self, encoder: SentenceEncoder) -> str:
        """A one-line error unless ``encoder`` made the vectors or is an export of the same weights; returns
        the line that names the export (``""`` for the same model)."""
        ...

    def hits(self, queries: npt.NDArray[np.floating], top_k: int = 5) -> list[list[SearchHit]]:
        """The ``top_k`` best lines per query vector (unit length), best first; no model check."""
        ...
