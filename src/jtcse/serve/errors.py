"""Errors in the OpenAI body ``{"error": {"message", "type", "param", "code"}}``, whatever went wrong.

Every failure a client can cause maps to a 4xx with this body; an unexpected exception becomes a 500 with a
one-line message (never a traceback in the body) and the server stays up.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

log = logging.getLogger("jtcse.serve")

# status -> the OpenAI error "type"
_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
    500: "server_error",
    503: "server_error",
}


_TYPE_TAGS = {"body", "str", "int", "bool", "float", "list", "tuple"}


class ApiError(Exception):
    """A client-facing error with its HTTP status, OpenAI-style ``code`` and the request field at fault."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.param = param
        self.headers = headers or {}


class ClientGone(Exception):
    """The client disconnected while its items waited; there is nobody to answer (one handler below)."""


GONE = 499  # nginx's "client closed request": recorded in the metrics, never seen by the client


def error_body(status: int, message: str, code: str, param: str | None = None) -> bytes:
    error = {"message": message, "type": _TYPES.get(status, "invalid_request_error"), "param": param}
    error["code"] = code
    return json.dumps({"error": error}).encode()


def error_response(
    status: int, message: str, code: str, param: str | None = None, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        error_body(status, message, code, param),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


def _param(loc: tuple[Any, ...]) -> str | None:
    """``("body", "input", 3)`` -> ``"input[3]"``: the request field a validation error is about."""
    # pydantic adds the union member it tried ("str", "list[int]"): not a field name
    parts = [p for p in loc if isinstance(p, int) or (str(p).isidentifier() and p not in _TYPE_TAGS)]
    if not parts:
        return None
    text = str(parts[0])
    for p in parts[1:]:
        text += f"[{p}]" if isinstance(p, int) else f".{p}"
    return text


def _validation_message(exc: RequestValidationError) -> tuple[str, str | None]:
    errors = exc.errors()
    if not errors:
        return "invalid request", None
    first = errors[0]
    param = _param(tuple(first.get("loc", ())))
    if first.get("type") == "json_invalid":
        return "the request body is not valid JSON", None
    if param is None and first.get("type") == "model_attributes_type":
        return "the request body must be a JSON object (Content-Type: application/json)", None
    message = str(first.get("msg", "invalid value"))
    return (f"{param}: {message}" if param else message), param


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> Response:
        return error_response(exc.status, exc.message, exc.code, exc.param, exc.headers)

    @app.exception_handler(ClientGone)
    async def _client_gone(request: Request, exc: ClientGone) -> Response:
        return Response(status_code=GONE)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        message, param = _validation_message(exc)
        bad_json = any(e.get("type") == "json_invalid" for e in exc.errors())
        return error_response(422, message, "invalid_json" if bad_json else "invalid_value", param)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if (
            exc.status_code == 400
        ):  # FastAPI could not read the body (not UTF-8, not JSON): a validation error
            return error_response(422, f"the request body cannot be read: {exc.detail}", "invalid_json")
        code = "not_found" if exc.status_code == 404 else "http_error"
        # a 405 carries Allow: the methods the path answers
        headers = dict(exc.headers) if exc.headers else None
        return error_response(exc.status_code, str(exc.detail), code, headers=headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.error("%s %s failed: %s: %s", request.method, request.url.path, type(exc).__name__, exc)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return error_response(500, f"internal error: {first}", "internal_error")
