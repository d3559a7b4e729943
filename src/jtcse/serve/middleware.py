"""The ASGI layer in front of the routes: API key, body size limit, request metrics.

Plain ASGI (not Starlette's BaseHTTPMiddleware) so the routes still see the client's disconnect.
"""

from __future__ import annotations

import hmac
import time
from typing import TYPE_CHECKING

from jtcse.serve.errors import error_body

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from jtcse.serve.metrics import Metrics

# Reachable without the API key: the page and its files, liveness, metrics, the API schema.
PUBLIC_PATHS = ("/", "/health", "/metrics", "/openapi.json", "/favicon.ico")
PUBLIC_PREFIXES = ("/static/",)


class ServeMiddleware:
    def __init__(self, app: ASGIApp, *, api_key: str | None, payload_limit: int, metrics: Metrics) -> None:
        self.app = app
        self.api_key = api_key
        self.payload_limit = payload_limit
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = {"code": 500}

        async def send_and_record(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self._handle(scope, receive, send_and_record)
        finally:
            self.metrics.observe_request(scope["path"], status["code"], time.perf_counter() - start)

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.api_key is not None and not is_public(scope["path"]) and not self._authorized(scope):
            await _reply(
                send, 401, "missing or wrong API key (send: Authorization: Bearer KEY)", "invalid_api_key"
            )
            return
        if scope["method"] in ("POST", "PUT", "PATCH"):
            body = await self._read_body(scope, receive, send)
            if body is None:
                return
            receive = _replay(body, receive)
        await self.app(scope, receive, send)

    def _authorized(self, scope: Scope) -> bool:
        for name, value in scope.get("headers", []):
            if name == b"authorization":
                scheme, _, token = value.decode("latin-1").partition(" ")
                if scheme.lower() == "bearer" and self.api_key is not None:
                    return hmac.compare_digest(token.strip().encode(), self.api_key.encode())
        return False

    async def _read_body(self, scope: Scope, receive: Receive, send: Send) -> bytes | None:
        """The whole body, or None after answering 413 (declared or actual size over the limit)."""
        declared = _content_length(scope)
        if declared is not None and declared > self.payload_limit:
            await self._too_large(send, declared)
            return None
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.payload_limit:
                await self._too_large(send, size)
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _too_large(self, send: Send, size: int) -> None:
        message = (
            f"the request body has {size} bytes, over the limit of {self.payload_limit} (--payload-limit)"
        )
        await _reply(send, 413, message, "payload_too_large")


def is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # after the body: only the disconnect is left to hear

    return replay


async def _reply(send: Send, status: int, message: str, code: str) -> None:
    body = error_body(status, message, code)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if status == 401:
        headers.append((b"www-authenticate", b"Bearer"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
