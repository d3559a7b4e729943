"""What ``jtcse serve`` was asked to do: the models to load, the corpus, and every limit."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TypeVar

from jtcse.errors import JtcseError

T = TypeVar("T", int, float, bool)

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")


@dataclass(frozen=True)
class ModelSource:
    """One ``--model``: the name clients send in ``model`` and what ``jtcse.Encoder`` loads."""

    name: str
    source: str


def _option(default: T, flag: str, help: str, *, exceeded: str = "", info: bool = True) -> T:
    """A limit's one declaration: its default, ``flag``, ``help`` (``{default}`` is filled in), what a client
    gets when it is exceeded (the docs table) and whether ``GET /info`` reports it."""
    meta = {"flag": flag, "help": help, "exceeded": exceeded, "info": info}
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class Limits:
    """Every limit a client may hit; ``GET /info`` reports them so clients can split requests. Each field is
    the one declaration of its ``jtcse serve`` flag, default, help, ``/info`` field and row of the limits
    table in docs/serve.md."""

    max_batch_tokens: int = _option(
        16384, "--max-batch-tokens", "tokens gathered from all requests for one model call"
    )
    max_client_batch: int = _option(
        256, "--max-client-batch", "inputs per request", exceeded="422 `too_many_inputs`"
    )
    max_queue: int = _option(
        4096,
        "--max-queue",
        "items waiting for the model, all requests together, before requests get 429",
        exceeded="429 with `Retry-After`",
    )
    payload_limit: int = _option(2_000_000, "--payload-limit", "request body bytes", exceeded="413")
    batch_wait_ms: float = _option(
        20.0, "--batch-wait-ms", "the longest the oldest queued item waits for others to join its batch"
    )
    batch_quiet_ms: float = _option(
        5.0,
        "--batch-quiet-ms",
        "run the batch once no item arrived for this long; a lone request waits this",
    )
    truncate: bool = _option(
        True,
        "--truncate",
        "truncate inputs over the model's limit (--max-length, else its position limit); "
        "--no-truncate answers 422",
        exceeded="with `--no-truncate`: 422 `input_too_long`",
    )
    max_top_k: int = _option(100, "--max-top-k", "hits per search query", exceeded="422 `invalid_value`")
    drain_timeout_s: float = _option(
        30.0, "--drain-timeout", "seconds requests in flight get to finish after SIGTERM", info=False
    )


@dataclass(frozen=True)
class LimitOption:
    """One field of :class:`Limits` as the CLI, ``/info`` and the docs see it."""

    name: str  # the Limits field, the argparse dest and the /info key
    kind: type  # int, float or bool
    default: int | float | bool
    flag: str
    help: str
    exceeded: str
    info: bool

    @property
    def default_text(self) -> str:
        """The default as the help and the docs write it (2000000, 20, true)."""
        return f"{self.default:g}" if self.kind is float else str(self.default).lower()


def limit_options() -> list[LimitOption]:
    """The declarations of :class:`Limits`, in order."""
    return [
        LimitOption(
            name=f.name,
            kind=type(f.default),
            default=_default(f.default),
            flag=f.metadata["flag"],
            help=f.metadata["help"],
            exceeded=f.metadata["exceeded"],
            info=f.metadata["info"],
        )
        for f in fields(Limits)
    ]


def _default(value: object) -> int | float | bool:
    if not isinstance(value, (int, float, bool)):
        raise TypeError(f"Limits: every field needs a number or bool default, not {value!r}")
    return value


def info_limits(limits: Limits) -> dict[str, int | float | bool]:
    """The limits ``GET /info`` reports."""
    return {o.name: getattr(limits, o.name) for o in limit_options() if o.info}


def options_table() -> str:
    """The limits table of docs/serve.md (``tests/test_serve_options.py`` checks that it is current)."""
    rows = ["| flag | default | what | `/info` field | when exceeded |", "|---|---|---|---|---|"]
    for o in limit_options():
        flag = f"`{o.flag}` / `--no-{o.flag[2:]}`" if o.kind is bool else f"`{o.flag}`"
        info = f"`limits.{o.name}`" if o.info else ""
        rows.append(f"| {flag} | {o.default_text} | {o.help} | {info} | {o.exceeded} |")
    return "\n".join(rows)


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


if __name__ == "__main__":  # python -m jtcse.serve.config: the limits table of docs/serve.md
    print(options_table())
