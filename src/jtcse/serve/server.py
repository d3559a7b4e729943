"""Running the app under uvicorn: the listening socket, the drain on SIGTERM, the start-up line.

On SIGTERM (or Ctrl-C) uvicorn stops accepting connections and lets the requests in flight finish (at most
``drain_timeout_s``); then the app's shut-down stops the model worker. Recent uvicorn re-raises the signal
once it is done, which would end the process "killed by SIGTERM"; here a drained shut-down exits 0.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
import sys
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

import uvicorn

from jtcse.serve.state import ServeState

if TYPE_CHECKING:
    from fastapi import FastAPI


class Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, announce: bool = True) -> None:
        super().__init__(config)
        self.announce = announce
        self.address: str | None = None

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield  # a server in a thread (tests) is stopped with should_exit, not with signals
            return
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started and self.servers:
            host, port = self.servers[0].sockets[0].getsockname()[:2]
            self.address = f"http://{host}:{port}"
            if self.announce:
                print(
                    f"jtcse serve: listening on {self.address} (loading the model)",
                    file=sys.stderr,
                    flush=True,
                )


def make_server(
    app: FastAPI, host: str, port: int, *, drain_timeout_s: float, announce: bool = True
) -> Server:
    state: ServeState = app.state.serve
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        access_log=False,
        log_level="warning",
        timeout_graceful_shutdown=max(1, round(drain_timeout_s)),
        lifespan="on",
    )
    server = Server(config, announce=announce)

    def stop_on_load_error(exc: BaseException) -> None:
        server.should_exit = True

    state.on_load_error = stop_on_load_error
    return server


def configure_logging() -> None:
    logger = logging.getLogger("jtcse.serve")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("jtcse serve: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound here so a taken port is our one-line error, not uvicorn's exit."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock
