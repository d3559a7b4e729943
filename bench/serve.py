"""Served throughput and latency of ``jtcse serve`` against offline ``jtcse.Encoder.encode``, loopback only.

The server (MiniLM, ``jtcse serve --model minilm``, or ``--model DIR`` such as an int8 export) runs as a
subprocess on 127.0.0.1; the clients run in this
process (asyncio + httpx, base64 vectors as the official OpenAI clients ask for). Sentences are the distinct
sentences of the 7 STS test sets, shuffled; each phase takes a fresh slice, so no sentence repeats inside a
phase and neither side gains from encoding duplicates once.

* Sweep: 1, 8 and 32 concurrent clients, each request 1-64 sentences (uniform); bounded in requests and time.
  Prints sentences/s and p50/p99 request latency per concurrency.
* Offline: ``Encoder.encode`` (same model, batch size 64, same torch thread count, this machine) on exactly
  the sentences the 32-client phase sent, interleaved with it in every repeat (order alternating).
* Load: 5,000 requests at concurrency 32 (1-8 sentences each by default, to keep the run within minutes):
  errors, lost answers (a request without its vectors, or vectors of the wrong count or width), a sample of
  vectors checked against offline (fp32: within 1e-5; an ``int8`` export: min cosine >= 0.95, as dynamic int8
  vectors depend on their batch mates; an ``int8-rowwise`` export: min cosine >= 0.99999), and the server's
  RSS growth from the first to the last thousand requests.

The clients share the machine's cores with the server, as they would on one host; the ratio is conservative.
The last line is served throughput at 32 clients over offline throughput, in the same run.

    python bench/serve.py [--repeats 2] [--phase-seconds 20] [--load-requests 5000] [--data-dir D]
                          [--model minilm | --model bench_out/minilm-int8]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import random
import re
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

try:
    import httpx
    import psutil
except ImportError as exc:
    sys.exit(
        f"bench/serve.py needs the bench extra ({exc.name}): pip install -e '.[bench]' (make setup does)"
    )
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from encode import sts_sentences
from jtcse.encoder import Encoder

CONCURRENCY = (1, 8, 32)
MAX_PER_REQUEST = 64


@dataclass
class Phase:
    dim: int  # the width every answer's vectors must have
    sentences: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    lost: int = 0
    sent: list[list[str]] = field(default_factory=list)
    answers: list[np.ndarray | None] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.sentences / self.seconds if self.seconds else 0.0


class Pool:
    """Fresh slices of the shuffled distinct sentences (wrapping only when the pool runs out)."""

    def __init__(self, sentences: list[str], seed: int = 0) -> None:
        self.sentences = sorted(set(sentences))
        random.Random(seed).shuffle(self.sentences)
        self.pos = 0

    def take(self, n: int) -> list[str]:
        out = [self.sentences[(self.pos + i) % len(self.sentences)] for i in range(n)]
        self.pos = (self.pos + n) % len(self.sentences)
        return out


def start_server(threads: int, model: str) -> tuple[subprocess.Popen, str]:
    cmd = [
        sys.executable,
        "-m",
        "jtcse",
        "serve",
        "--model",
        f"minilm={model}",
        "--device",
        "cpu",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--max-client-batch",
        str(MAX_PER_REQUEST),
        "--max-queue",
        "16384",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env)
    for line in proc.stderr:
        match = re.search(r"listening on (http://127\.0\.0\.1:\d+)", line)
        if match:
            threading.Thread(target=proc.stderr.read, daemon=True).start()
            url = match.group(1)
            deadline = time.monotonic() + 300
            while httpx.get(f"{url}/health", timeout=10).status_code != 200:
                if time.monotonic() > deadline:
                    sys.exit("bench: the server did not become ready")
                time.sleep(0.2)
            return proc, url
    sys.exit(f"bench: the server did not start (exit {proc.wait()})")


async def run_phase(
    url: str,
    requests: list[list[str]],
    concurrency: int,
    deadline_s: float,
    dim: int,
    keep: bool = False,
    on_done=None,
) -> Phase:
    """Send ``requests`` from ``concurrency`` clients; stop starting new ones after ``deadline_s``."""
    phase = Phase(dim)
    queue = iter(enumerate(requests))
    start = time.perf_counter()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as http:

        async def client() -> None:
            for _, texts in queue:
                if time.perf_counter() - start > deadline_s:
                    return
                await one_request(http, texts, phase, keep)
                if on_done is not None:
                    on_done(len(phase.latencies))

        await asyncio.gather(*(client() for _ in range(concurrency)))
    phase.seconds = time.perf_counter() - start
    return phase


async def one_request(http: httpx.AsyncClient, texts: list[str], phase: Phase, keep: bool) -> None:
    body = {"model": "minilm", "input": texts, "encoding_format": "base64"}
    t0 = time.perf_counter()
    try:
        response = await http.post("/v1/embeddings", json=body)
    except httpx.HTTPError:
        phase.errors += 1
        phase.lost += 1
        return
    phase.latencies.append(time.perf_counter() - t0)
    if response.status_code != 200:
        phase.errors += 1
        return
    data = response.json()["data"]
    vectors = np.stack([np.frombuffer(base64.b64decode(d["embedding"]), "<f4") for d in data])
    if vectors.shape != (len(texts), phase.dim) or [d["index"] for d in data] != list(range(len(texts))):
        phase.lost += 1
    phase.sentences += len(texts)
    if keep:
        phase.sent.append(texts)
        phase.answers.append(vectors)


def make_requests(pool: Pool, n: int, low: int, high: int, seed: int) -> list[list[str]]:
    rng = random.Random(seed)
    return [pool.take(rng.randint(low, high)) for _ in range(n)]


def offline_rate(encoder: Encoder, sentences: list[str]) -> float:
    start = time.perf_counter()
    encoder.encode(sentences, batch_size=64, normalize=True, show_progress=False)
    return len(sentences) / (time.perf_counter() - start)


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def sweep(
    url: str, encoder: Encoder, pool: Pool, args: argparse.Namespace
) -> tuple[list[float], list[float]]:
    """Interleaved repeats of the concurrency sweep and the offline run: served@32 and offline rates."""
    served32, offline = [], []
    budgets = {1: 4, 8: 16, 32: 32} if args.smoke else {1: 60, 8: 240, 32: 480}
    for rep in range(args.repeats):
        for c in CONCURRENCY:
            requests = make_requests(pool, budgets[c], 1, MAX_PER_REQUEST, seed=rep * 100 + c)
            if c == 32 and rep % 2 == 1:  # alternate which side runs first
                offline.append(offline_rate(encoder, [t for r in requests for t in r]))
            phase = asyncio.run(run_phase(url, requests, c, args.phase_seconds, encoder.dim, keep=c == 32))
            lat = phase.latencies
            print(
                f"repeat {rep + 1}, {c:>2} clients: {phase.rate:7.1f} sentences/s, {len(lat)} requests, "
                f"p50 {percentile(lat, 50) * 1000:.0f} ms, p99 {percentile(lat, 99) * 1000:.0f} ms, "
                f"errors {phase.errors}",
                flush=True,
            )
            if c == 32:
                served32.append(phase.rate)
                if rep % 2 == 0:
                    offline.append(offline_rate(encoder, [t for r in phase.sent for t in r]))
                print(
                    f"repeat {rep + 1}, offline Encoder.encode on the same sentences: "
                    f"{offline[-1]:7.1f} sentences/s",
                    flush=True,
                )
    return served32, offline


# How close served vectors must be to offline ones. fp32: the same arithmetic up to summation order. int8:
# dynamic quantisation scales each batch's activations by that batch's range, so a sentence's vector depends
# on its batch mates (MiniLM int8 on 1,129 STS sentences, batch 64 vs batch 1: min cosine 0.963, mean 0.991,
# as far apart as int8 is from fp32); the server batches requests differently from offline encoding.
FP32_MAX_ABS = 1e-5
INT8_MIN_COSINE = 0.95
# --quantize int8-rowwise scales each token by its own range: a sentence's vector is the same in any batch
ROWWISE_MIN_COSINE = 0.99999


def int8_kind(model: str) -> str | None:
    """None for a float model; "rowwise" for an int8 export with per-token ranges, else "dynamic"."""
    from jtcse.engines import read_graph_info
    from jtcse.model.format import is_jtcse_dir, read_spec

    # the export's precision is its --quantize choice: "int8", "int8-rowwise"
    if not is_jtcse_dir(model) or not read_spec(model).extra.get("onnx", {}).get("precision", "").startswith(
        "int8"
    ):
        return None
    graphs = sorted(Path(model).glob("graph_*"))
    per_row = all(str(read_graph_info(g).get("int8_activations", "")).startswith("per row") for g in graphs)
    return "rowwise" if graphs and per_row else "dynamic"


def agreement_line(got: np.ndarray, want: np.ndarray, int8: str | None) -> str:
    if int8 is None:
        worst = float(np.abs(got - want).max())
        verdict = "ok" if worst <= FP32_MAX_ABS else "MISMATCH"
        return f"match offline within {worst:.1e} (goal <= {FP32_MAX_ABS:g}): {verdict}"
    cosine = float(np.sum(got * want, axis=1).min())
    goal, why = (
        (ROWWISE_MIN_COSINE, "int8-rowwise: the same vector in any batch")
        if int8 == "rowwise"
        else (INT8_MIN_COSINE, "int8: batch-dependent by design")
    )
    verdict = "ok" if cosine >= goal else "MISMATCH"
    return f"have min cosine {cosine:.6f} with offline ({why}, goal >= {goal}): {verdict}"


def load(
    url: str, server: psutil.Process, encoder: Encoder, pool: Pool, n: int, most: int, int8: str | None
) -> None:
    requests = make_requests(pool, n, 1, most, seed=7)
    rss: list[tuple[int, int]] = []

    def sample(done: int) -> None:
        if done % 100 == 0:
            rss.append((done, server.memory_info().rss))

    sample(0)
    phase = asyncio.run(run_phase(url, requests, 32, 3600, encoder.dim, keep=True, on_done=sample))
    answered = len(phase.answers)
    lost = phase.lost + (n - answered - phase.errors)
    checked = list(range(0, answered, 25))
    texts = [t for i in checked for t in phase.sent[i]]
    want = encoder.encode(texts, normalize=True, show_progress=False)
    got = np.concatenate([phase.answers[i] for i in checked])
    first = max(r for d, r in rss if d <= 1000)
    last = max(r for d, r in rss if d > n - 1000)
    print(
        f"load: {n} requests at 32 clients in {phase.seconds:.1f} s ({phase.rate:.1f} sentences/s), "
        f"errors {phase.errors}, lost answers {lost}"
    )
    print(f"load: {len(checked)} sampled requests ({len(texts)} vectors) {agreement_line(got, want, int8)}")
    print(
        f"load: server RSS {first / 2**20:.0f} MiB (first thousand) -> {last / 2**20:.0f} MiB (last), "
        f"growth {100 * (last / first - 1):+.1f}% (goal < 10%)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--phase-seconds", type=float, default=20.0, help="time bound of each sweep phase")
    parser.add_argument("--load-requests", type=int, default=5000)
    parser.add_argument("--load-max", type=int, default=8, help="sentences per load request: 1 to this")
    parser.add_argument("--data-dir")
    parser.add_argument(
        "--model",
        default="minilm",
        help="what the server and the offline encoder load (e.g. an int8 export: bench_out/minilm-int8)",
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="smallest real run: a tiny random BERT, generated sentences, 1 repeat of a few requests per "
        "phase, 200 load requests; measures nothing",
    )
    args = parser.parse_args()
    if args.smoke:
        import _smoke

        args.model, args.repeats, args.phase_seconds, args.load_requests = (
            str(_smoke.tiny_model()),
            1,
            5.0,
            200,
        )
        sentences, source = _smoke.sentences(200), "generated (--smoke)"
    else:
        sentences, source = sts_sentences(args.data_dir, limit=None)
    pool = Pool(sentences)
    threads = torch.get_num_threads()
    print(f"sentences: {len(pool.sentences)} distinct, {source}")
    print(
        f"model: {args.model} on CPU, batch size 64, {threads} torch threads in the server and offline; "
        f"{os.cpu_count()} cores shared with the clients"
    )
    print("goal: served throughput at 32 concurrent clients >= 0.9 x offline Encoder.encode (same sentences)")
    encoder = Encoder(args.model, device="cpu", batch_size=64)
    encoder.encode(["warm up"], show_progress=False)
    proc, url = start_server(threads, args.model)
    try:
        served32, offline = sweep(url, encoder, pool, args)
        if args.load_requests:
            load(
                url,
                psutil.Process(proc.pid),
                encoder,
                pool,
                args.load_requests,
                args.load_max,
                int8_kind(args.model),
            )
    finally:
        proc.terminate()
        proc.wait(60)
    ratio = statistics.median(served32) / statistics.median(offline)
    print(
        f"served at 32 clients: {statistics.median(served32):.1f} sentences/s; "
        f"offline: {statistics.median(offline):.1f} sentences/s (medians)"
    )
    print(f"served / offline throughput: {ratio:.2f}")


if __name__ == "__main__":
    main()
