"""`jtcse serve` as a real subprocess: SIGTERM drains the requests in flight and exits 0; bad input is a
one-line error with exit code 2."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time

import httpx
import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from jtcse.cli.main import main
from jtcse.encoder import Encoder
from serve_helpers import ENV, metric, wait_healthy
from serve_helpers import start_cli as start


def test_sigterm_finishes_requests_in_flight_then_exits_0(tiny_bert_dir):
    proc, url = start("--model", str(tiny_bert_dir), "--batch-wait-ms", "1500", "--batch-quiet-ms", "1500")
    try:
        wait_healthy(url)
        texts = ["in flight one", "in flight two"]
        result: dict = {}

        def client() -> None:
            result["r"] = httpx.post(f"{url}/v1/embeddings", json={"input": texts}, timeout=30)

        thread = threading.Thread(target=client)
        thread.start()
        deadline = time.monotonic() + 10
        while metric(url, "jtcse_queue_items") < 2:  # the request is queued, waiting for its batch
            assert time.monotonic() < deadline
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        port = int(url.rsplit(":", 1)[1])
        with pytest.raises(OSError):  # no new connections once draining
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
        thread.join(30)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    response = result["r"]
    assert response.status_code == 200, response.text
    got = np.array([d["embedding"] for d in response.json()["data"]], dtype=np.float32)
    want = Encoder(tiny_bert_dir, device="cpu").encode(texts, normalize=True)
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)


def run_cli(*args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "jtcse", "serve", "--host", "127.0.0.1", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=ENV)


def test_unloadable_model_is_a_one_line_error(tmp_path):
    missing = run_cli("--port", "0", "--model", str(tmp_path / "no_such_model"))
    assert missing.returncode == 2
    assert "jtcse: error: --model" in missing.stderr and "Traceback" not in missing.stderr


def cli_error(capsys, *args: str) -> str:
    """Run ``jtcse serve ARGS`` in-process; it must stop with exit code 2 and one line on stderr."""
    with pytest.raises(SystemExit) as stop:
        main(["serve", "--host", "127.0.0.1", "--device", "cpu", *args])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("jtcse: error: ") and "\n" not in err, err
    return err


def test_bad_flags_are_one_line_errors(tmp_path, tiny_bert_dir, capsys):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n", encoding="utf-8")
    assert "no sentences" in cli_error(capsys, "--port", "0", "--corpus", str(empty))
    assert "--max-client-batch 10" in cli_error(
        capsys, "--port", "0", "--max-client-batch", "10", "--max-queue", "5"
    )
    assert "--index" in cli_error(capsys, "--port", "0", "--index", str(tmp_path / "none"))
    assert "NAME=PATH" in cli_error(capsys, "--port", "0", "--model", "a=x", "--model", "a=y")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        assert "cannot listen" in cli_error(capsys, "--port", str(taken.getsockname()[1]))
