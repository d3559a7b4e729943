"""``/openapi.json`` for one server: the limits of its flags filled into the request schemas, and with
``--api-key`` the bearer scheme and the 401 on every endpoint that needs the key."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from jtcse.serve.middleware import is_public
from jtcse.serve.schemas import LIMITS
from jtcse.serve.state import ServeState

_UNAUTHORIZED = {
    "description": "missing or wrong API key",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
}


def limit_values(state: ServeState) -> dict[str, int | None]:
    """The bounds named in :mod:`jtcse.serve.schemas` -> this server's values (None: not known yet, as the
    largest model dimension before the models are loaded; the bound is left out)."""
    n = state.limits.max_client_batch
    dims = [m.dim for m in state.models.values()]
    return {
        "inputs": n,
        "pairs": n // 2,  # both sentences of a pair count as inputs
        "candidates": n - 1,  # the source counts too
        "top_k": state.limits.max_top_k,
        "dimensions": max(dims) if dims else None,
    }


def resolve_limits(node: Any, values: dict[str, int | None]) -> None:
    """Replace each ``"x-jtcse-limits"`` under ``node`` (in place) by the bounds it names."""
    if isinstance(node, dict):
        for keyword, name in node.pop(LIMITS, {}).items():
            if values[name] is not None:
                node[keyword] = values[name]
        for child in node.values():
            resolve_limits(child, values)
    elif isinstance(node, list):
        for child in node:
            resolve_limits(child, values)


def _require_key(schema: dict[str, Any]) -> None:
    schema.setdefault("components", {})["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
    for path, operations in schema.get("paths", {}).items():
        if is_public(path):
            continue
        for operation in operations.values():
            operation["security"] = [{"bearer": []}]
            operation.setdefault("responses", {})["401"] = _UNAUTHORIZED


def openapi_builder(app: FastAPI, state: ServeState) -> Callable[[], dict[str, Any]]:
    """``app.openapi``: the schema, kept once the models are loaded (the largest dimension is known)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        resolve_limits(schema, limit_values(state))
        if state.config.api_key is not None:
            _require_key(schema)
        if state.ready.is_set():
            app.openapi_schema = schema
        return schema

    return openapi
