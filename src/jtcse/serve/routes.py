"""The HTTP endpoints. Each validates, queues its sentences on the batcher, and shapes the answer."""

from __future__ import annotations

import asyncio

import numpy as np
from fastapi import APIRouter, Request
from starlette.responses import Response

from jtcse.serve import validate
from jtcse.serve.batcher import run_job
from jtcse.serve.errors import ApiError, error_response
from jtcse.serve.models import ServedModel
from jtcse.serve.responses import (
    EmbeddingsResponse,
    Health,
    Info,
    JsonBytes,
    ModelList,
    SearchResponse,
    SimilarityResponse,
    errors,
)
from jtcse.serve.schemas import EmbeddingsRequest, EmbedRequest, SearchRequest, SimilarityRequest
from jtcse.serve.state import ServeState
from jtcse.serve.vectors import cosine_pairs, float_lists, normalize, shorten, to_base64

METRICS_TYPE = "text/plain; version=0.0.4; charset=utf-8"  # Prometheus' text exposition format
router = APIRouter(default_response_class=JsonBytes)
_POST_ERRORS = errors(404, 413, 422, 429, 503)


def _state(request: Request) -> ServeState:
    return request.app.state.serve


async def _encode(
    request: Request, served: ServedModel, texts: list[str], param: str, truncate: bool, single: bool
) -> tuple[np.ndarray, int]:
    """Raw vectors of ``texts`` (input order) from the model worker, and the tokens the model saw."""
    state = _state(request)
    assert state.batcher is not None  # routes serve only once the models are loaded
    counts = served.counter.count(texts)
    validate.check_lengths(counts, truncate, served.counter.max_input_tokens(), param, single)
    job = await run_job(state.batcher, served.name, texts, counts.kept, request)
    return job.vectors, int(counts.kept.sum())


@router.post("/v1/embeddings", response_model=EmbeddingsResponse, responses=_POST_ERRORS)
async def embeddings(body: EmbeddingsRequest, request: Request) -> Response:
    """OpenAI embeddings: unit vectors, ``float`` lists or ``base64`` little-endian float32."""
    state = _state(request)
    served = state.model(body.model)
    texts = validate.texts_of(body.input, "input", state.limits.max_client_batch)
    validate.check_dimensions(body.dimensions, served.dim)
    raw, tokens = await _encode(
        request, served, texts, "input", state.limits.truncate, isinstance(body.input, str)
    )
    vectors = shorten(normalize(raw), body.dimensions)
    if body.encoding_format == "base64":
        values: list = [to_base64(v) for v in vectors]
    else:
        values = float_lists(vectors)
    data = [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(values)]
    usage = {"prompt_tokens": tokens, "total_tokens": tokens}
    return JsonBytes({"object": "list", "data": data, "model": served.name, "usage": usage})


@router.post("/embed", response_model=list[list[float]], responses=_POST_ERRORS)
async def embed(body: EmbedRequest, request: Request) -> Response:
    """Vectors as lists of floats, one per input (normalised unless ``normalize`` is false)."""
    state = _state(request)
    served = state.model(body.model)
    texts = validate.texts_of(body.inputs, "inputs", state.limits.max_client_batch)
    truncate = state.limits.truncate if body.truncate is None else body.truncate
    raw, _ = await _encode(request, served, texts, "inputs", truncate, isinstance(body.inputs, str))
    return JsonBytes(float_lists(normalize(raw) if body.normalize else raw))


@router.post("/similarity", response_model=SimilarityResponse, responses=_POST_ERRORS)
async def similarity(body: SimilarityRequest, request: Request) -> Response:
    """Cosine similarity of sentence ``pairs``, or of one ``source`` against each of ``candidates``."""
    state = _state(request)
    served = state.model(body.model)
    form = validate.one_of(body, "pairs", "source")
    limit = state.limits.max_client_batch
    if form == "pairs":
        pairs = body.pairs or []
        texts = validate.texts_of([t for pair in pairs for t in pair], "pairs", limit)
    else:
        if body.candidates is None:
            raise ApiError(422, "candidates: required with source", code="invalid_value", param="candidates")
        validate.texts_of(body.candidates, "candidates", limit)
        texts = validate.texts_of([body.source, *body.candidates], "source", limit)
    raw, _ = await _encode(request, served, texts, form, state.limits.truncate, False)
    if form == "pairs":
        scores = cosine_pairs(raw[0::2], raw[1::2])
    else:
        scores = cosine_pairs(np.repeat(raw[:1], len(raw) - 1, axis=0), raw[1:])
    return JsonBytes({"model": served.name, "scores": scores})


@router.post("/search", response_model=SearchResponse, responses=_POST_ERRORS)
async def search(body: SearchRequest, request: Request) -> Response:
    """The corpus lines nearest to ``query`` (or to each of ``queries``), best first."""
    state = _state(request)
    served = state.model(None)
    if state.corpus is None:
        raise ApiError(404, "no corpus: start the server with --corpus FILE or --index DIR", code="no_corpus")
    form = validate.one_of(body, "query", "queries")
    queries = validate.texts_of(getattr(body, form), form, state.limits.max_client_batch)
    validate.check_top_k(body.top_k, state.limits.max_top_k)
    raw, _ = await _encode(request, served, queries, form, state.limits.truncate, form == "query")
    hits = await asyncio.to_thread(state.corpus.search, normalize(raw), body.top_k)
    results = [{"query": q, "hits": h} for q, h in zip(queries, hits, strict=True)]
    return JsonBytes({"model": served.name, "results": results})


@router.get("/v1/models", response_model=ModelList, responses=errors(503))
async def list_models(request: Request) -> Response:
    state = _state(request)
    state.require_ready()
    data = [{"id": name, "object": "model", "created": 0, "owned_by": "jtcse"} for name in state.models]
    return JsonBytes({"object": "list", "data": data})


@router.get("/info", response_model=Info, responses=errors(503))
async def info(request: Request) -> Response:
    """Models (kind, members, dimension, pooler, max input tokens) and every limit."""
    state = _state(request)
    state.require_ready()
    return JsonBytes(state.info())


@router.get("/health", response_model=Health, responses=errors(503))
async def health(request: Request) -> Response:
    state = _state(request)
    if not state.ready.is_set():
        return error_response(503, "loading", "loading", headers={"Retry-After": "1"})
    return JsonBytes({"status": "ok"})


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {
            "description": "Prometheus text format",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        }
    },
)
async def metrics(request: Request) -> Response:
    state = _state(request)
    return Response(state.metrics.render(), media_type=METRICS_TYPE)
