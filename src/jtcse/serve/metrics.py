"""Prometheus metrics of one app (its own registry, so several apps in one process do not collide)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

# The routes whose requests are counted by name; anything else counts as "other" (bounded label values).
ENDPOINTS = (
    "/v1/embeddings",
    "/v1/models",
    "/embed",
    "/similarity",
    "/search",
    "/info",
    "/health",
    "/metrics",
    "/",
)
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
_TOKEN_BUCKETS = (16, 64, 256, 1024, 2048, 4096, 8192, 16384, 32768, 65536)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "jtcse_requests", "HTTP requests by endpoint and status", ["endpoint", "status"], registry=r
        )
        self.latency = Histogram(
            "jtcse_request_duration_seconds",
            "Request latency by endpoint",
            ["endpoint"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.queue_items = Gauge("jtcse_queue_items", "Items waiting for the model worker", registry=r)
        self.batch_size = Histogram(
            "jtcse_batch_size", "Items per model batch", buckets=_SIZE_BUCKETS, registry=r
        )
        self.batch_tokens = Histogram(
            "jtcse_batch_tokens", "Tokens per model batch", buckets=_TOKEN_BUCKETS, registry=r
        )
        self.items_encoded = Counter("jtcse_items_encoded", "Items run through the model", registry=r)
        self.items_dropped = Counter(
            "jtcse_items_dropped", "Queued items dropped because their client disconnected", registry=r
        )

    def observe_batch(self, items: int, tokens: int) -> None:
        self.batch_size.observe(items)
        self.batch_tokens.observe(tokens)

    def observe_request(self, path: str, status: int, seconds: float) -> None:
        endpoint = path if path in ENDPOINTS else "other"
        self.requests.labels(endpoint=endpoint, status=str(status)).inc()
        self.latency.labels(endpoint=endpoint).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
