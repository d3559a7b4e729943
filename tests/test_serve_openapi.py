"""``/openapi.json`` describes what the server answers: every served body (successes and the OpenAI error
bodies) validates against the published schema of its route and status; undeclared methods get 405 + Allow."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("jsonschema_rs")

import jsonschema_rs

from jtcse.serve.config import Limits, ModelSource, ServeConfig
from serve_helpers import running_server

KEY = "test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
LIMITS = Limits(max_client_batch=8, max_top_k=6, payload_limit=20_000)


@pytest.fixture(scope="module")
def server(tiny_bert_dir, tmp_path_factory) -> str:
    corpus = tmp_path_factory.mktemp("openapi_corpus") / "corpus.txt"
    corpus.write_text("A man plays a guitar.\nSnow closed the roads.\nThe chef cooks.\n", encoding="utf-8")
    config = ServeConfig(
        models=[ModelSource("tiny", str(tiny_bert_dir))],
        limits=LIMITS,
        corpus=corpus,
        api_key=KEY,
        device="cpu",
    )
    with running_server(config) as url:
        yield url


@pytest.fixture(scope="module")
def schema(server) -> dict[str, Any]:
    response = httpx.get(f"{server}/openapi.json", timeout=30)
    assert response.status_code == 200
    return response.json()


def check_body(schema: dict[str, Any], method: str, path: str, response: httpx.Response) -> None:
    """The response's body is valid under the schema declared for its route, status and content type."""
    declared = schema["paths"][path][method]["responses"]
    assert str(response.status_code) in declared, f"{method} {path} {response.status_code} undeclared"
    content = declared[str(response.status_code)]["content"]
    media = response.headers["content-type"].split(";")[0]
    assert media in content, f"{method} {path}: {media} undeclared ({list(content)})"
    if media != "application/json":
        return
    root = {**content[media]["schema"], "components": schema["components"]}
    errors = [e.message for e in jsonschema_rs.validator_for(root).iter_errors(response.json())]
    assert not errors, f"{method} {path} {response.status_code}: {errors[:3]}"


def call(server: str, schema: dict[str, Any], method: str, path: str, body: Any = None, **kw: Any) -> Any:
    headers = kw.pop("headers", AUTH)
    response = httpx.request(method.upper(), f"{server}{path}", json=body, headers=headers, timeout=60, **kw)
    check_body(schema, method, path, response)
    return response


OK_REQUESTS = [
    ("post", "/v1/embeddings", {"input": ["one sentence", "two"], "model": "tiny"}),
    ("post", "/v1/embeddings", {"input": "one", "encoding_format": "base64", "dimensions": 4}),
    ("post", "/embed", {"inputs": ["a", "b"], "normalize": False}),
    ("post", "/similarity", {"pairs": [["a cat", "a dog"]]}),
    ("post", "/similarity", {"source": "a cat", "candidates": ["a dog", "snow"]}),
    ("post", "/search", {"query": "guitar", "top_k": 2}),
    ("post", "/search", {"queries": ["guitar", "roads"]}),
    ("get", "/v1/models", None),
    ("get", "/info", None),
    ("get", "/health", None),
    ("get", "/metrics", None),
]


@pytest.mark.parametrize(("method", "path", "body"), OK_REQUESTS)
def test_served_bodies_validate_against_the_schema(server, schema, method, path, body) -> None:
    assert call(server, schema, method, path, body).status_code == 200


ERROR_REQUESTS = [
    ("post", "/v1/embeddings", {"input": ["a"]}, {}, 401),
    ("get", "/info", None, {}, 401),
    ("post", "/v1/embeddings", {"input": "a", "model": "nope"}, AUTH, 404),
    ("post", "/v1/embeddings", {"input": "x" * 30_000}, AUTH, 413),
    ("post", "/v1/embeddings", {"input": ""}, AUTH, 422),
    ("post", "/embed", {"inputs": ["a"] * 9}, AUTH, 422),
    ("post", "/similarity", {"pairs": []}, AUTH, 422),
    ("post", "/search", {"queries": []}, AUTH, 422),
    ("post", "/search", {"query": "a", "top_k": 7}, AUTH, 422),
]


@pytest.mark.parametrize(("method", "path", "body", "headers", "status"), ERROR_REQUESTS)
def test_error_bodies_validate_against_the_schema(server, schema, method, path, body, headers, status):
    response = call(server, schema, method, path, body, headers=headers)
    assert response.status_code == status and response.json()["error"]["code"]


def test_the_schema_says_what_the_server_enforces(schema) -> None:
    components = schema["components"]["schemas"]
    embed_input = components["EmbeddingsRequest"]["properties"]["input"]["anyOf"]
    text, texts = embed_input
    assert text["pattern"] and texts["minItems"] == 1 and texts["maxItems"] == LIMITS.max_client_batch
    assert components["SearchRequest"]["properties"]["top_k"]["maximum"] == LIMITS.max_top_k
    dims = components["EmbeddingsRequest"]["properties"]["dimensions"]["anyOf"][0]
    assert dims["minimum"] == 1 and dims["maximum"] == 32  # the tiny model's width
    assert set(components["Info"]["properties"]["limits"]["required"]) >= {"max_client_batch", "max_top_k"}
    assert schema["paths"]["/info"]["get"]["security"] == [{"bearer": []}]
    assert "security" not in schema["paths"]["/health"]["get"]


@pytest.mark.parametrize(("path", "allowed"), [("/metrics", "GET"), ("/v1/embeddings", "POST")])
def test_undeclared_methods_answer_405_with_allow(server, path, allowed) -> None:
    response = httpx.request("TRACE", f"{server}{path}", headers=AUTH, timeout=30)
    assert response.status_code == 405 and response.headers["allow"] == allowed
