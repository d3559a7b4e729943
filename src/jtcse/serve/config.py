"""What ``jtcse serve`` was asked to do: the models to load, the corpus, and every limit."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from jtcse.errors import JtcseError

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")


@dataclass(frozen=True)
class ModelSource:
    """One ``--model``: the name clients send in ``model`` and what ``jtcse.Encoder`` loads."""

    name: str
    source: str


@dataclass(frozen=True)
class Limits:
    """Every limit a client may hit; ``GET /info`` reports them so clients can split requests."""

    max_batch_tokens: int = 16384  # tokens (summed over items) handed to the Encoder in one call
    max_client_batch: int = 256  # inputs in one request
    max_queue: int = 4096  # items waiting for the model worker, all requests together
    payload_limit: int = 2_000_000  # bytes of one request body
    batch_wait_ms: float = 20.0  # the longest the oldest queued item waits for others to join its batch
    batch_quiet_ms: float = 5.0  # a batch runs once no item arrived for this long (a lone request waits this)
    truncate: bool = True  # inputs over the model's limit: truncated (True) or a 422 (False)
    max_top_k: int = 100  # hits per search query
    drain_timeout_s: float = 30.0  # SIGTERM: how long requests in flight may take to finish


@dataclass(frozen=True)
class ServeConfig:
    models: list[ModelSource]
    limits: Limits = field(default_factory=Limits)
    corpus: Path | None = None
    index: Path | None = None
    api_key: str | None = None
    pooler: str | None = None
    device: str | None = None
    max_length: int | None = None
    batch_size: int = 64

    def __post_init__(self) -> None:
        if not self.models:
            raise JtcseError("--model: give at least one model")
        names = [m.name for m in self.models]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise JtcseError(
                f"--model: the name {dupes[0]!r} is given twice; use NAME=PATH to tell them apart"
            )
        if self.corpus is not None and self.index is not None:
            raise JtcseError("--corpus and --index: give one (an --index names its own corpus)")
        lim = self.limits
        if lim.max_client_batch > lim.max_queue:
            raise JtcseError(
                f"--max-client-batch {lim.max_client_batch}: above --max-queue {lim.max_queue}; "
                "such a request could never be queued"
            )
        for option, value in (
            ("--batch-wait-ms", lim.batch_wait_ms),
            ("--batch-quiet-ms", lim.batch_quiet_ms),
        ):
            if not value >= 0:  # also NaN
                raise JtcseError(f"{option} {value}: must be >= 0")

    @property
    def default_model(self) -> str:
        return self.models[0].name


def parse_model_arg(text: str) -> ModelSource:
    """``NAME=PATH`` or a plain ``PATH_OR_NAME`` (then the argument itself is the name clients send)."""
    name, sep, source = text.partition("=")
    if sep and _NAME.match(name) and "/" not in name:
        if not source:
            raise JtcseError(f"--model {text}: nothing after '='; expected NAME=PATH")
        return ModelSource(name=name, source=source)
    if not text.strip():
        raise JtcseError("--model: empty")
    return ModelSource(name=text, source=text)
