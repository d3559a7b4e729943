"""`jtcse serve` limits on a real server: 429 with Retry-After, a disconnected client's items never run,
the API key (401), --no-truncate (422), and /health answering 503 until the model is loaded."""

from __future__ import annotations

import json
import socket
import threading
import time

import httpx
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from jtcse.serve.config import Limits, ModelSource, ServeConfig
from jtcse.serve.models import default_loader
from serve_helpers import metric, running_server, wait_healthy

KEY = "s3cret-key"
WAIT_MS = 1500  # the worker holds a batch open this long: time to act while items are queued
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture(scope="module")
def slow_server(tiny_bert_dir) -> str:
    limits = Limits(
        max_client_batch=4, max_queue=4, batch_wait_ms=WAIT_MS, batch_quiet_ms=WAIT_MS, truncate=False
    )
    config = ServeConfig([ModelSource("tiny", str(tiny_bert_dir))], limits=limits, api_key=KEY, device="cpu")
    with running_server(config) as url:
        yield url


def post(url: str, path: str, body: object, headers: dict | None = AUTH) -> httpx.Response:
    return httpx.post(f"{url}{path}", json=body, headers=headers, timeout=30)


def wait_for(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


def test_api_key(slow_server):
    for headers in (None, {"Authorization": "Bearer wrong"}, {"Authorization": KEY}):
        response = post(slow_server, "/v1/embeddings", {"input": "x"}, headers=headers)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "invalid_api_key"
    assert httpx.get(f"{slow_server}/info", timeout=10).status_code == 401
    assert httpx.get(f"{slow_server}/info", headers=AUTH, timeout=10).json()["auth"] is True
    assert httpx.get(f"{slow_server}/health", timeout=10).status_code == 200  # liveness needs no key
    assert post(slow_server, "/v1/embeddings", {"input": "x"}).status_code == 200


def test_queue_full_is_429_with_retry_after(slow_server):
    first: dict = {}
    thread = threading.Thread(
        target=lambda: first.update(r=post(slow_server, "/embed", {"inputs": ["a"] * 3}))
    )
    thread.start()
    wait_for(lambda: metric(slow_server, "jtcse_queue_items") == 3)
    response = post(slow_server, "/embed", {"inputs": ["b", "c"]})
    assert response.status_code == 429, response.text
    assert int(response.headers["Retry-After"]) >= 1
    assert response.json()["error"]["code"] == "queue_full"
    thread.join(30)
    assert first["r"].status_code == 200 and len(first["r"].json()) == 3  # the queued request is unharmed


def test_no_truncate_rejects_long_inputs(slow_server):
    long = "word " * 300  # over the tiny model's 128 positions
    response = post(slow_server, "/v1/embeddings", {"input": ["short", long]})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "input_too_long" and error["param"] == "input[1]" and "128" in error["message"]
    # a client may still ask for truncation explicitly on /embed
    assert post(slow_server, "/embed", {"inputs": [long], "truncate": True}).status_code == 200


def test_disconnected_client_items_never_run(slow_server):
    encoded = metric(slow_server, "jtcse_items_encoded_total")
    dropped = metric(slow_server, "jtcse_items_dropped_total")
    body = json.dumps({"input": ["gone one", "gone two", "gone three"]}).encode()
    port = int(slow_server.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        head = (
            f"POST /v1/embeddings HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer {KEY}\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        sock.sendall(head.encode() + body)
        wait_for(lambda: metric(slow_server, "jtcse_queue_items") == 3)
    # the socket is closed while the items wait for the batch: they are dropped, not encoded
    wait_for(lambda: metric(slow_server, "jtcse_items_dropped_total") == dropped + 3)
    time.sleep(WAIT_MS / 1000 + 0.5)  # past the moment the batch would have run
    assert metric(slow_server, "jtcse_items_encoded_total") == encoded
    assert metric(slow_server, "jtcse_queue_items") == 0
    assert post(slow_server, "/v1/embeddings", {"input": "next"}).status_code == 200
    assert metric(slow_server, "jtcse_items_encoded_total") == encoded + 1


def test_health_is_503_until_the_model_is_loaded(tiny_bert_dir):
    gate = threading.Event()

    def gated_loader(source, config):  # the real loader, once the test lets it run
        assert gate.wait(60)
        return default_loader(source, config)

    config = ServeConfig([ModelSource("tiny", str(tiny_bert_dir))], device="cpu")
    with running_server(config, loader=gated_loader, wait_ready=False) as url:
        health = httpx.get(f"{url}/health", timeout=10)
        assert health.status_code == 503 and health.json()["error"]["code"] == "loading"
        early = httpx.post(f"{url}/v1/embeddings", json={"input": "x"}, timeout=10)
        assert early.status_code == 503 and early.headers["Retry-After"] == "1"
        gate.set()
        wait_healthy(url)
        assert httpx.post(f"{url}/v1/embeddings", json={"input": "x"}, timeout=30).status_code == 200
