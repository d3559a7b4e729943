"""``jtcse serve --model M [--corpus FILE]``: an OpenAI-compatible embedding server (extra ``serve``)."""

from __future__ import annotations

import argparse
import importlib.util
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jtcse.cli.options import add_model_options, float_range, int_range, load_encoder, port_int, positive_int
from jtcse.errors import JtcseError

if TYPE_CHECKING:
    from jtcse.serve.config import ServeConfig

EPILOG = """\
examples:
  jtcse serve --model minilm --corpus faq.txt
  jtcse serve --model runs/jtcse --model base=minilm --port 8080 --api-key "$KEY"

  curl -s localhost:8000/v1/embeddings -H 'content-type: application/json' \\
       -d '{"model": "minilm", "input": ["a sentence", "another one"]}'

Endpoints: POST /v1/embeddings (OpenAI), /embed, /similarity, /search; GET /info, /health, /metrics,
/v1/models, and / (a search and compare page). The first --model is the default and the one /search uses.
SIGTERM stops accepting connections, finishes the requests in flight (--drain-timeout) and exits 0.
"""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="serve a model over HTTP (OpenAI-compatible embeddings, search page)",
        description="An OpenAI-compatible embedding server with dynamic batching.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_model_options(
        parser,
        repeatable=True,
        model_help="short name (minilm), Hugging Face id or directory, or jtcse model directory; repeat "
        "to serve several, NAME= sets the name clients send (default: minilm)",
        threads=False,
    )
    parser.add_argument("--corpus", type=Path, help="text file (one sentence per line) to serve /search over")
    parser.add_argument(
        "--index",
        type=Path,
        help="instead of --corpus: an index saved by `jtcse search`, or built by `jtcse index` (IVF/HNSW)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument(
        "--port", type=port_int, default=8000, help="port (default: 8000; 0 picks a free one)"
    )
    parser.add_argument(
        "--api-key",
        default=os.environ.get("JTCSE_API_KEY"),
        help="require 'Authorization: Bearer KEY' (default: $JTCSE_API_KEY, else no key)",
    )
    _limit_options(parser)
    parser.set_defaults(func=run)


def _limit_options(parser: argparse.ArgumentParser) -> None:
    """One flag per field of ``jtcse.serve.config.Limits``, from its declaration."""
    from jtcse.serve.config import limit_options

    group = parser.add_argument_group("limits")
    for option in limit_options():
        if option.kind is bool:
            action: Any = argparse.BooleanOptionalAction
            group.add_argument(
                option.flag, dest=option.name, action=action, default=option.default, help=option.help
            )
            continue
        group.add_argument(
            option.flag,
            dest=option.name,
            type=_limit_type(option.name, option.kind),
            default=option.default,
            metavar=option.flag[2:].upper().replace("-", "_"),
            help=f"{option.help} (default: {option.default_text})",
        )


def _limit_type(name: str, kind: type) -> Any:
    """A limit's argparse type: a count, a byte count (the body limit) or a time >= 0 (milliseconds or
    seconds: up to a day)."""
    if kind is int:
        return int_range(1, 1 << 40, what="a byte count") if name == "payload_limit" else positive_int
    return float_range(0.0, 86_400_000.0)


def build_config(args: argparse.Namespace) -> ServeConfig:
    from jtcse.serve.config import Limits, ServeConfig, limit_options, parse_model_arg

    limits = Limits(**{o.name: getattr(args, o.name) for o in limit_options()})
    return ServeConfig(
        models=[parse_model_arg(m) for m in (args.model or ["minilm"])],
        limits=limits,
        corpus=args.corpus,
        index=args.index,
        api_key=args.api_key or None,
        pooler=args.pooler,
        device=args.device,
        max_length=args.max_length,
        batch_size=args.batch_size,
    )


def _cli_loader(source: str, config: Any) -> Any:
    """The shared ``--model`` loader: a model that cannot be loaded is a one-line error."""
    args = argparse.Namespace(
        model=source,
        pooler=config.pooler,
        device=config.device,
        max_length=config.max_length,
        batch_size=config.batch_size,
    )
    return load_encoder(args)


def _check_inputs(args: argparse.Namespace) -> None:
    """What can be checked before the port opens: the extra, the port, the corpus or index."""
    missing = [m for m in ("fastapi", "uvicorn", "prometheus_client") if importlib.util.find_spec(m) is None]
    if missing:
        raise JtcseError(
            f"jtcse serve needs the extra 'serve' ({', '.join(missing)} missing): pip install 'jtcse[serve]'"
        )
    if not 0 <= args.port <= 65535:
        raise JtcseError(f"--port {args.port}: must be 0-65535")
    if args.corpus is not None:
        from jtcse.tools.search import read_corpus

        read_corpus(args.corpus)
    if args.index is not None and not args.index.is_dir():
        raise JtcseError(f"--index {args.index}: not a directory")


def run(args: argparse.Namespace) -> int:
    _check_inputs(args)
    config = build_config(args)
    from jtcse.serve.app import create_app
    from jtcse.serve.server import bind, configure_logging, make_server

    try:
        sock = bind(args.host, args.port)
    except OSError as exc:  # the port is taken, the address is not ours
        raise JtcseError(
            f"--host {args.host} --port {args.port}: cannot listen: {exc.strerror or exc}"
        ) from exc
    configure_logging()
    app = create_app(config, loader=_cli_loader)
    server = make_server(app, args.host, args.port, drain_timeout_s=config.limits.drain_timeout_s)
    with sock:
        server.run(sockets=[sock])
    state = app.state.serve
    if state.load_error is not None:
        error = state.load_error
        if isinstance(error, JtcseError):
            raise error
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise JtcseError(f"--model: cannot load: {first}") from error
    if not server.started:
        raise JtcseError(
            f"--host {args.host} --port {args.port}: the server did not start (is the port taken?)"
        )
    return 0
