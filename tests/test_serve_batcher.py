"""The serve batcher's timing rules, on a real tiny Encoder: requests arriving in a stream share one model
batch (the quiet rule), a lone request runs after the quiet gap rather than the full wait, and the full wait
bounds a stream that never pauses."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

pytest.importorskip("prometheus_client")

from jtcse.encoder import Encoder
from jtcse.serve.batcher import Batcher
from jtcse.serve.config import Limits
from jtcse.serve.metrics import Metrics


@pytest.fixture(scope="module")
def encoder(tiny_bert_dir) -> Encoder:
    return Encoder(str(tiny_bert_dir), device="cpu")


def start(encoder: Encoder, **limits) -> tuple[Batcher, Metrics]:
    metrics = Metrics()
    batcher = Batcher({"tiny": encoder}, Limits(**limits), metrics)
    batcher.start()
    return batcher, metrics


def submit(batcher: Batcher, texts: list[str]) -> threading.Event:
    answered = threading.Event()
    batcher.submit("tiny", texts, np.full(len(texts), 4), lambda error: answered.set())
    return answered


def batches_run(metrics: Metrics) -> float:
    return metrics.registry.get_sample_value("jtcse_batch_size_count") or 0.0


def test_requests_arriving_in_a_stream_share_one_batch(encoder):
    batcher, metrics = start(encoder, batch_wait_ms=5000, batch_quiet_ms=400)
    try:
        events = []
        for i in range(4):  # gaps of 50 ms: well inside the 400 ms quiet gap
            events.append(submit(batcher, [f"sentence {i}", f"another {i}"]))
            time.sleep(0.05)
        assert all(e.wait(10) for e in events)
        assert batches_run(metrics) == 1
        assert metrics.registry.get_sample_value("jtcse_batch_size_sum") == 8
    finally:
        batcher.stop(10)


def test_a_lone_request_runs_after_the_quiet_gap_not_the_full_wait(encoder):
    batcher, metrics = start(encoder, batch_wait_ms=60_000, batch_quiet_ms=20)
    try:
        began = time.monotonic()
        assert submit(batcher, ["alone"]).wait(10)
        assert time.monotonic() - began < 10
        assert batches_run(metrics) == 1
    finally:
        batcher.stop(10)


def test_the_full_wait_bounds_a_stream_that_never_pauses(encoder):
    batcher, metrics = start(encoder, batch_wait_ms=300, batch_quiet_ms=60_000)
    try:
        first = submit(batcher, ["first"])
        began = time.monotonic()
        while not first.is_set():  # keep items coming, never quiet
            assert time.monotonic() - began < 10
            submit(batcher, ["more"])
            time.sleep(0.02)
        assert batches_run(metrics) >= 1
    finally:
        batcher.stop(10)
