"""The whole sentence embedding as one torch module: token ids and mask in, the final vector out.

``EmbeddingGraph`` computes ``sum_i weight_i * pool_i(model_i(x))`` for members that share one tokenizer
(so one ``input_ids`` tensor feeds them all): pooling, a twin tower's sum of the two CLS vectors and an
ensemble's weighted sum all happen inside ``forward``. It exists to be traced into an ONNX graph
(:mod:`jtcse.export.onnx`); the arithmetic is :func:`jtcse.model.pooling.pool`'s, so the exported graph gives
``jtcse.Encoder``'s vectors.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from jtcse.model.pooling import needs_hidden_states, pool


@dataclass(frozen=True)
class GraphPart:
    """One member inside a graph: which model, how its vector is read, its weight in the sum."""

    model: int  # index into EmbeddingGraph.models
    pooler: str
    weight: float


class EmbeddingGraph(torch.nn.Module):
    """Weighted sum of pooled vectors of models that read the same token ids.

    A model named by several members (the same tower with two poolers) runs once per forward.
    ``token_type_ids`` is an input only when ``use_token_types`` (BERT-style tokenizers return it).
    """

    def __init__(self, models: Sequence[Any], parts: Sequence[GraphPart], *, use_token_types: bool) -> None:
        super().__init__()
        if not parts:
            raise ValueError("an embedding graph needs at least one member")
        self.models = torch.nn.ModuleList(models)
        self.parts = tuple(parts)
        self.use_token_types = use_token_types
        self._hidden = [
            any(needs_hidden_states(p.pooler) for p in parts if p.model == i) for i in range(len(models))
        ]

    @property
    def input_names(self) -> list[str]:
        names = ["input_ids", "attention_mask"]
        return [*names, "token_type_ids"] if self.use_token_types else names

    def forward(
        self, input_ids: Tensor, attention_mask: Tensor, token_type_ids: Tensor | None = None
    ) -> Tensor:
        extra = {"token_type_ids": token_type_ids} if self.use_token_types else {}
        outputs: dict[int, Any] = {}
        total: Tensor | None = None
        for part in self.parts:
            if part.model not in outputs:
                outputs[part.model] = self.models[part.model](
                    input_ids=input_ids,
                    attention_mask=attention_mask,
                    output_hidden_states=self._hidden[part.model],
                    return_dict=True,
                    **extra,
                )
            vector = pool(part.pooler, outputs[part.model], attention_mask).float()
            if part.weight != 1.0:
                vector = vector * part.weight
            total = vector if total is None else total + vector
        assert total is not None
        return total
