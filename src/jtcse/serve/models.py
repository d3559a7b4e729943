"""The served models: each ``--model`` loaded through ``jtcse.Encoder``, warmed up, described for /info."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from jtcse.serve.config import ModelSource, ServeConfig
from jtcse.serve.tokens import TokenCounter

if TYPE_CHECKING:
    from jtcse.encoder import Encoder

_WARMUP = ["A warm-up sentence.", "Two more words to load the kernels."]


@dataclass
class ServedModel:
    name: str
    source: str
    encoder: Encoder
    counter: TokenCounter

    @property
    def dim(self) -> int:
        return int(self.encoder.dim)

    def info(self) -> dict[str, Any]:
        members = [
            {
                "source": str(m.source),
                "pooler": m.pooler,
                "weight": float(m.weight),
                "max_input_tokens": m.max_length,
            }
            for m in self.encoder.members
        ]
        poolers = sorted({str(m["pooler"]) for m in members})
        return {
            "id": self.name,
            "source": self.source,
            "kind": _kind(self.encoder),
            "dimension": self.dim,
            "pooler": poolers[0] if len(poolers) == 1 else poolers,
            "max_input_tokens": self.counter.max_input_tokens(),
            "members": members,
            "device": str(self.encoder.device),
        }


def _kind(encoder: Encoder) -> str:
    n = len(encoder.members)
    if n == 1:
        return "single"
    if n == 2 and all(m.weight == 1.0 for m in encoder.members):
        return "twin"  # how a twin tower loads: two towers, weight 1 each
    return "ensemble"


EncoderLoader = Callable[[str, ServeConfig], "Encoder"]


def default_loader(source: str, config: ServeConfig) -> Encoder:
    from jtcse.encoder import Encoder

    return Encoder(
        source,
        pooler=config.pooler,
        device=config.device,
        max_length=config.max_length,
        batch_size=config.batch_size,
    )


def load_model(
    source: ModelSource, config: ServeConfig, loader: EncoderLoader = default_loader
) -> ServedModel:
    """Load one model (the CLI passes its own loader, which words load failures as one-line errors)."""
    encoder = loader(source.source, config)
    encoder.encode(
        _WARMUP, show_progress=False
    )  # first calls allocate and pick kernels: not on a client's time
    return ServedModel(source.name, source.source, encoder, TokenCounter(encoder))
