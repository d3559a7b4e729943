"""Floating-point operations of a BERT-style encoder, to set achieved speed against a machine's peak.

Counted as multiply-adds x 2 of the matrix products only (what the GEMM peak measures); layer norms,
softmax, GELU and embeddings are a few percent and left out, so the figures are a slight undercount.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass


def bert_layer_flops_per_token(hidden: int, intermediate: int, length: int) -> int:
    """FLOPs one token costs in one Transformer layer of a sequence of ``length`` tokens: the Q, K, V and
    output projections (4 x 2·h·h), the feed-forward pair (2 x 2·h·i), and attention over the sequence
    (scores Q·Kᵀ and the weighted sum of V: 2 x 2·length·h, summed over the heads)."""
    if min(hidden, intermediate, length) < 0:
        raise ValueError("hidden, intermediate and length must be >= 0")
    return 8 * hidden * hidden + 4 * hidden * intermediate + 4 * length * hidden


@dataclass(frozen=True)
class EncoderShape:
    """The dimensions that set an encoder's FLOPs."""

    hidden: int
    intermediate: int
    layers: int

    @classmethod
    def from_config(cls, config: dict[str, object]) -> EncoderShape:
        """From a Hugging Face ``config.json`` (BERT, RoBERTa, MiniLM names)."""
        values = (config.get("hidden_size"), config.get("intermediate_size"), config.get("num_hidden_layers"))
        if not all(isinstance(v, int) for v in values):
            raise ValueError("config needs integer hidden_size, intermediate_size and num_hidden_layers")
        hidden, intermediate, layers = (int(v) for v in values if isinstance(v, int))
        return cls(hidden, intermediate, layers)

    def sequence_flops(self, length: int) -> int:
        """FLOPs of one sequence of ``length`` tokens through every layer."""
        return self.layers * length * bert_layer_flops_per_token(self.hidden, self.intermediate, length)

    def real_flops(self, lengths: Iterable[int]) -> int:
        """FLOPs of the real tokens: every sentence at its own length, no padding."""
        return sum(self.sequence_flops(int(n)) for n in lengths)

    def padded_flops(self, batches: Sequence[tuple[int, int]]) -> int:
        """FLOPs a runtime spends on ``(rows, padded width)`` batches, padding included."""
        return sum(rows * self.sequence_flops(width) for rows, width in batches)
