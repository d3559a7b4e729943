"""`jtcse serve` endpoints against a real server on 127.0.0.1: parity with offline ``Encoder.encode`` for
single, twin and ensemble models (float, base64, the official openai client), no mix-ups under 32 concurrent
clients, and the OpenAI error body for every client mistake."""

from __future__ import annotations

import base64
import random
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from jtcse.encoder import Encoder
from jtcse.serve.config import Limits, ModelSource, ServeConfig
from serve_helpers import make_ensemble, make_twin, metric, running_server

ATOL = 1e-5
MODELS = ("single", "twin", "ensemble")
PAYLOAD_LIMIT = 50_000
BATCH_TOKENS = 1024  # small: large requests are spread over several model batches
JSON = {"Content-Type": "application/json"}
CORPUS = [
    "A man is playing a guitar on the stage.",
    "The chef slices fresh vegetables in the kitchen.",
    "Heavy snow closed the mountain roads overnight.",
    "Children are building a sandcastle at the beach.",
    "The orchestra rehearses the symphony before the concert.",
]
SENTENCES = [
    "A woman rides a horse along the shore.",
    "hello",
    "Two dogs chase a red ball across a wide green field in the early morning light.",
    "The train was late again.",
]
_WORDS = [
    "river",
    "stone",
    "quiet",
    "lamp",
    "market",
    "violin",
    "winter",
    "garden",
    "bridge",
    "paper",
    "orange",
    "silver",
    "tower",
    "cloud",
]


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory, tiny_bert_dir, tiny_bert_dir_b, tiny_roberta_dir) -> dict[str, Path]:
    twin = make_twin(tmp_path_factory.mktemp("serve_twin"), tiny_bert_dir, tiny_bert_dir_b)
    ensemble = make_ensemble(tmp_path_factory.mktemp("serve_ensemble"), twin, tiny_roberta_dir)
    return {"single": tiny_bert_dir, "twin": twin, "ensemble": ensemble}


@pytest.fixture(scope="module")
def offline(model_dirs) -> dict[str, Encoder]:
    return {name: Encoder(path, device="cpu") for name, path in model_dirs.items()}


@pytest.fixture(scope="module")
def server(model_dirs, tmp_path_factory) -> str:
    corpus = tmp_path_factory.mktemp("serve_corpus") / "corpus.txt"
    corpus.write_text("\n".join(CORPUS) + "\n", encoding="utf-8")
    config = ServeConfig(
        models=[ModelSource(name, str(path)) for name, path in model_dirs.items()],
        limits=Limits(
            max_batch_tokens=BATCH_TOKENS, max_client_batch=64, payload_limit=PAYLOAD_LIMIT, batch_wait_ms=5
        ),
        corpus=corpus,
        device="cpu",
    )
    with running_server(config) as url:
        yield url


def expected(offline: dict[str, Encoder], model: str, texts: list[str]) -> np.ndarray:
    return offline[model].encode(texts, normalize=True)


def decode_b64(text: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype="<f4")


def post(url: str, path: str, body: object, **kw) -> httpx.Response:
    return httpx.post(f"{url}{path}", json=body, timeout=60, **kw)


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("encoding", ["float", "base64"])
def test_openai_endpoint_matches_offline_vectors(server, offline, model, encoding):
    body = {"model": model, "input": SENTENCES, "encoding_format": encoding}
    response = post(server, "/v1/embeddings", body)
    assert response.status_code == 200, response.text
    payload = response.json()
    assert payload["object"] == "list" and payload["model"] == model
    assert [d["index"] for d in payload["data"]] == list(range(len(SENTENCES)))
    if encoding == "base64":
        got = np.stack(
            [np.frombuffer(base64.b64decode(d["embedding"]), dtype="<f4") for d in payload["data"]]
        )
    else:
        got = np.array([d["embedding"] for d in payload["data"]], dtype=np.float32)
    np.testing.assert_allclose(got, expected(offline, model, SENTENCES), atol=ATOL, rtol=0)
    usage = payload["usage"]
    assert usage["prompt_tokens"] == usage["total_tokens"] > len(SENTENCES)


def test_openai_python_client(server, offline):
    openai = pytest.importorskip("openai")
    client = openai.OpenAI(base_url=f"{server}/v1", api_key="unused", max_retries=0, timeout=60)
    for model in MODELS:
        result = client.embeddings.create(model=model, input=SENTENCES)  # base64 on the wire by default
        got = np.array([d.embedding for d in result.data], dtype=np.float32)
        np.testing.assert_allclose(got, expected(offline, model, SENTENCES), atol=ATOL, rtol=0)
    one = client.embeddings.create(model="single", input=SENTENCES[0], dimensions=8)
    short = np.array(one.data[0].embedding, dtype=np.float32)
    full = expected(offline, "single", SENTENCES[:1])[0][:8]
    np.testing.assert_allclose(short, full / np.linalg.norm(full), atol=ATOL, rtol=0)
    assert [m.id for m in client.models.list().data] == list(MODELS)


@pytest.mark.parametrize("model", MODELS)
def test_embed_similarity_and_search_match_offline(server, offline, model):
    raw = post(server, "/embed", {"model": model, "inputs": SENTENCES, "normalize": False}).json()
    np.testing.assert_allclose(np.array(raw, np.float32), offline[model].encode(SENTENCES), atol=ATOL, rtol=0)
    unit = post(server, "/embed", {"model": model, "inputs": SENTENCES[1]}).json()
    np.testing.assert_allclose(unit[0], expected(offline, model, SENTENCES[1:2])[0], atol=ATOL, rtol=0)

    vectors = expected(offline, model, SENTENCES)
    pairs = post(server, "/similarity", {"model": model, "pairs": [SENTENCES[:2], SENTENCES[2:]]}).json()
    np.testing.assert_allclose(pairs["scores"], [vectors[0] @ vectors[1], vectors[2] @ vectors[3]], atol=ATOL)
    ranked = post(
        server, "/similarity", {"model": model, "source": SENTENCES[0], "candidates": SENTENCES[1:]}
    )
    np.testing.assert_allclose(ranked.json()["scores"], vectors[1:] @ vectors[0], atol=ATOL)


def test_search_ranks_the_corpus_like_offline(server, offline):
    queries = ["someone plays music on stage", CORPUS[2]]
    response = post(server, "/search", {"queries": queries, "top_k": 3})
    assert response.status_code == 200, response.text
    corpus_vectors = expected(offline, "single", CORPUS)
    for query, result in zip(queries, response.json()["results"], strict=True):
        scores = corpus_vectors @ expected(offline, "single", [query])[0]
        assert result["query"] == query
        hits = result["hits"]
        # random tiny models give near-ties, so compare scores: each hit's own, and the top 3 in order
        assert all(h["text"] == CORPUS[h["id"] - 1] for h in hits)  # ids are 1-based corpus lines
        np.testing.assert_allclose([h["score"] for h in hits], [scores[h["id"] - 1] for h in hits], atol=ATOL)
        np.testing.assert_allclose([h["score"] for h in hits], np.sort(scores)[::-1][:3], atol=ATOL)
    assert response.json()["results"][1]["hits"][0]["text"] == CORPUS[2]


def _client_requests(seed: int) -> list[list[str]]:
    rng = random.Random(seed)
    sizes = [rng.choice([1, 2, 5, 17, 40]) for _ in range(3)]
    return [
        [
            f"client {seed} item {r}-{i}: " + " ".join(rng.choices(_WORDS, k=rng.randint(1, 30)))
            for i in range(n)
        ]
        for r, n in enumerate(sizes)
    ]


def test_32_concurrent_clients_get_their_own_vectors(server, offline):
    plans = [_client_requests(seed) for seed in range(32)]
    models = [MODELS[seed % 3] for seed in range(32)]
    batches_before = metric(server, "jtcse_batch_size_count")

    def client(seed: int) -> list[np.ndarray]:
        got = []
        with httpx.Client(base_url=server, timeout=120) as http:
            for texts in plans[seed]:
                body = {"model": models[seed], "input": texts, "encoding_format": "base64"}
                response = http.post("/v1/embeddings", json=body)
                assert response.status_code == 200, response.text
                data = response.json()["data"]
                got.append(np.stack([decode_b64(d["embedding"]) for d in data]))
        return got

    with ThreadPoolExecutor(32) as pool:
        results = list(pool.map(client, range(32)))
    for model in MODELS:  # one offline call per model over every sentence its clients sent
        seeds = [seed for seed in range(32) if models[seed] == model]
        texts = [t for seed in seeds for request in plans[seed] for t in request]
        got = np.concatenate([v for seed in seeds for v in results[seed]])
        np.testing.assert_allclose(got, expected(offline, model, texts), atol=ATOL, rtol=0)
    requests = sum(len(p) for p in plans)
    assert metric(server, "jtcse_batch_size_count") - batches_before < requests  # requests did share batches


def test_a_request_spread_over_several_batches_is_whole_and_in_order(server, offline):
    rng = random.Random(5)
    texts = [f"{i} " + " ".join(rng.choices(_WORDS, k=rng.randint(20, 60))) for i in range(64)]
    before = metric(server, "jtcse_batch_size_count")
    response = post(
        server, "/v1/embeddings", {"model": "ensemble", "input": texts, "encoding_format": "base64"}
    )
    assert response.status_code == 200, response.text
    assert metric(server, "jtcse_batch_size_count") - before >= 3  # > 3,000 tokens over a 1,024-token budget
    got = np.stack([decode_b64(d["embedding"]) for d in response.json()["data"]])
    np.testing.assert_allclose(got, expected(offline, "ensemble", texts), atol=ATOL, rtol=0)


def _error(response: httpx.Response, status: int, code: str, param: str | None = None) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["code"] == code and error["message"]
    if param is not None:
        assert error["param"] == param
    return error


@pytest.mark.parametrize(
    ("body", "code", "param"),
    [
        ({"input": ""}, "empty_input", "input"),
        ({"input": []}, "empty_input", "input"),
        ({"input": ["ok", "  "]}, "empty_input", "input[1]"),
        ({"input": 5}, "invalid_value", "input"),
        ({"input": ["ok", 3.5]}, "invalid_value", None),
        ({"input": [1, 2, 3]}, "unsupported_input", "input"),
        ({"input": [[1, 2], [3]]}, "unsupported_input", "input"),
        ({"input": ["x"] * 65}, "too_many_inputs", "input"),
        ({"input": "x", "dimensions": 0}, "invalid_dimensions", "dimensions"),
        ({"input": "x", "dimensions": 33}, "invalid_dimensions", "dimensions"),
        ({"input": "x", "encoding_format": "int8"}, "invalid_value", "encoding_format"),
        ({}, "invalid_value", "input"),
    ],
)
def test_validation_errors_are_422_openai_bodies(server, body, code, param):
    _error(post(server, "/v1/embeddings", body), 422, code, param)


def test_other_client_errors(server):
    _error(post(server, "/v1/embeddings", {"model": "gpt-4", "input": "x"}), 404, "model_not_found", "model")
    _error(httpx.get(f"{server}/no/such/page", timeout=10), 404, "not_found")
    bad_json = httpx.post(f"{server}/v1/embeddings", content=b"{not json", headers=JSON, timeout=10)
    _error(bad_json, 422, "invalid_json")
    not_utf8 = httpx.post(
        f"{server}/v1/embeddings", content=b'\xff\xfe{"input": "x"}', headers=JSON, timeout=10
    )
    _error(not_utf8, 422, "invalid_json")
    assert "JSON object" in _error(post(server, "/v1/embeddings", [1, 2]), 422, "invalid_value")["message"]
    big = {"input": ["word " * 2000] * 6}
    _error(post(server, "/v1/embeddings", big), 413, "payload_too_large")
    _error(post(server, "/similarity", {"pairs": []}), 422, "empty_input")
    _error(post(server, "/similarity", {"source": "x"}), 422, "invalid_value", "candidates")
    _error(post(server, "/similarity", {"pairs": [["a", "b"]], "source": "x"}), 422, "invalid_value")
    _error(post(server, "/search", {"query": "x", "top_k": 0}), 422, "invalid_value", "top_k")
    _error(post(server, "/search", {"query": ""}), 422, "empty_input", "query")
    _error(post(server, "/embed", {"inputs": []}), 422, "empty_input", "inputs")
    # the server is still up and answering after all of that
    assert post(server, "/v1/embeddings", {"input": "still here"}).status_code == 200
    metrics = httpx.get(f"{server}/metrics", timeout=10).text
    assert 'jtcse_requests_total{endpoint="/v1/embeddings",status="413"}' in metrics
    assert 'status="500"' not in metrics


def test_info_health_page_and_schema(server, offline):
    info = httpx.get(f"{server}/info", timeout=10).json()
    kinds = {m["id"]: (m["kind"], len(m["members"]), m["dimension"]) for m in info["models"]}
    assert kinds == {"single": ("single", 1, 32), "twin": ("twin", 2, 32), "ensemble": ("ensemble", 3, 32)}
    assert info["models"][0]["max_input_tokens"] == 128
    assert info["limits"]["max_client_batch"] == 64 and info["limits"]["payload_limit"] == PAYLOAD_LIMIT
    assert info["corpus"] == {"size": len(CORPUS)}
    assert httpx.get(f"{server}/health", timeout=10).json() == {"status": "ok"}
    page = httpx.get(f"{server}/", timeout=10)
    assert page.status_code == 200 and "search-form" in page.text
    assert "http" not in httpx.get(f"{server}/static/app.js", timeout=10).text  # nothing from elsewhere
    assert httpx.get(f"{server}/openapi.json", timeout=10).json()["paths"]["/v1/embeddings"]
    assert httpx.get(f"{server}/docs", timeout=10).status_code == 404  # off: it would need a CDN


def test_index_saved_by_jtcse_search_is_served(tmp_path, offline, tiny_bert_dir_b):
    from jtcse.errors import JtcseError
    from jtcse.serve.search import ServedSearch
    from jtcse.tools.search import SearchIndex

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(CORPUS) + "\n", encoding="utf-8")
    encoder = offline["single"]
    saved = SearchIndex.for_corpus(encoder, corpus, index_dir=tmp_path / "index")
    served = ServedSearch.open(encoder, corpus=None, index_dir=tmp_path / "index")
    queries = ["snow on the roads", "a guitar player"]
    hits = served.search(encoder.encode(queries, normalize=True), top_k=2)
    want = saved.search(encoder, queries, top_k=2)
    assert [[h["id"] for h in q] for q in hits] == [[h.line for h in q] for q in want]
    with pytest.raises(JtcseError, match="another model"):  # an index of another model is refused
        ServedSearch.open(Encoder(tiny_bert_dir_b, device="cpu"), corpus=None, index_dir=tmp_path / "index")


def test_index_built_by_jtcse_index_is_served(tmp_path, offline, tiny_bert_dir_b):
    """``--index`` also takes a ``jtcse index`` folder (sharded vectors, here flat): the index's own hits."""
    pytest.importorskip("faiss")
    from jtcse.corpus_scale import ShardOptions, VectorIndex, build_index, encode_to_shards
    from jtcse.errors import JtcseError
    from jtcse.serve.search import ServedSearch

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(CORPUS) + "\n", encoding="utf-8")
    encoder = offline["single"]
    options = ShardOptions(normalize=True, shard_size=3, progress=False)
    encode_to_shards(encoder, corpus, tmp_path / "vecs", options)
    folder, _ = build_index(tmp_path / "vecs", kind="flat")
    served = ServedSearch.open(encoder, corpus=None, index_dir=folder)
    queries = ["snow on the roads", "a guitar player"]
    hits = served.search(encoder.encode(queries, normalize=True), top_k=2)
    want = VectorIndex.load(folder).search(encoder, queries, top_k=2)
    assert [[(h["id"], h["text"]) for h in q] for q in hits] == [[(h.line, h.text) for h in q] for q in want]
    with pytest.raises(JtcseError, match="same --model"):  # an index of another model is refused
        ServedSearch.open(Encoder(tiny_bert_dir_b, device="cpu"), corpus=None, index_dir=folder)


def test_heap_trimmer_finds_glibc_and_runs():
    import sys

    from jtcse.serve.memory import HeapTrimmer

    trimmer = HeapTrimmer(interval_s=0.0)
    if sys.platform.startswith("linux"):
        assert trimmer._trim is not None
    trimmer.maybe_trim()
