"""What every endpoint answers, as pydantic models, so ``/openapi.json`` describes each body and error.

The models describe; they are not on the hot path: the routes still write their bytes once with
:func:`jtcse.serve.vectors.json_bytes` through :class:`JsonBytes` (FastAPI passes a returned ``Response``
through unchanged). ``tests/test_serve_openapi.py`` validates the served bodies against the published schema.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, WithJsonSchema
from starlette.responses import JSONResponse

from jtcse.serve.config import limit_options
from jtcse.serve.vectors import json_bytes


class JsonBytes(JSONResponse):
    """``application/json`` written by :func:`json_bytes` (compact, shortest float32 round trip)."""

    def render(self, content: Any) -> bytes:
        return json_bytes(content)


class Embedding(BaseModel):
    object: Literal["embedding"]
    index: int = Field(description="the input's position in the request")
    embedding: list[float] | str = Field(
        description="a unit vector: floats, or with encoding_format base64 its little-endian float32 bytes"
    )


class Usage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class EmbeddingsResponse(BaseModel):
    object: Literal["list"]
    data: list[Embedding]
    model: str
    usage: Usage


class SimilarityResponse(BaseModel):
    model: str
    scores: list[float] = Field(description="cosine similarity per pair, or per candidate")


class Hit(BaseModel):
    id: int = Field(description="the corpus line, 1-based")
    rank: int
    text: str
    score: float = Field(description="cosine similarity")


class QueryHits(BaseModel):
    query: str
    hits: list[Hit] = Field(description="best first")


class SearchResponse(BaseModel):
    model: str
    results: list[QueryHits]


class ModelCard(BaseModel):
    id: str
    object: Literal["model"]
    created: int
    owned_by: str


class ModelList(BaseModel):
    object: Literal["list"]
    data: list[ModelCard]


class Member(BaseModel):
    source: str
    pooler: str
    weight: float
    max_input_tokens: int | None


class ModelInfo(BaseModel):
    id: str
    source: str
    kind: Literal["single", "twin", "ensemble"]
    dimension: int
    pooler: str | list[str] = Field(description="one pooler, or the members' poolers when they differ")
    max_input_tokens: int | None
    members: list[Member]
    device: str


class CorpusInfo(BaseModel):
    size: int


_JSON_TYPES = {bool: "boolean", int: "integer", float: "number"}


def _limits_schema() -> dict[str, Any]:
    """The ``limits`` object of ``GET /info``, from the declarations in :class:`jtcse.serve.config.Limits`."""
    reported = [o for o in limit_options() if o.info]
    properties = {
        o.name: {"type": _JSON_TYPES[o.kind], "description": f"{o.flag}: {o.help}"} for o in reported
    }
    return {
        "type": "object",
        "properties": properties,
        "required": [o.name for o in reported],
        "additionalProperties": False,
    }


class Info(BaseModel):
    version: str
    default_model: str
    models: list[ModelInfo]
    limits: Annotated[dict[str, int | float | bool], WithJsonSchema(_limits_schema())]
    corpus: CorpusInfo | None
    auth: bool = Field(description="whether requests need 'Authorization: Bearer KEY'")


class Health(BaseModel):
    status: Literal["ok"]


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = Field(description="the request field at fault")
    code: str


class ErrorBody(BaseModel):
    """The OpenAI error body."""

    error: ErrorDetail


_RETRY = {"Retry-After": {"description": "seconds to wait", "schema": {"type": "string"}}}
_WHY: dict[int, dict[str, Any]] = {
    401: {"description": "missing or wrong API key (with --api-key)"},
    404: {"description": "unknown model, or /search without a corpus"},
    413: {"description": "the request body is over --payload-limit"},
    422: {"description": "invalid request: the error names the field (param) at fault"},
    429: {"description": "the queue is full (--max-queue); retry later", "headers": _RETRY},
    503: {"description": "the models are still loading", "headers": _RETRY},
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` of a route: the error statuses it answers, each with the OpenAI error body."""
    return {status: {"model": ErrorBody, **_WHY[status]} for status in statuses}
