"""A schema-driven fuzzer against a real ``jtcse serve`` (tiny model, ``--corpus``, ``--api-key``) on
127.0.0.1: schemathesis 4 with all its checks, seeded and bounded, finds nothing. This holds the published
schema to what the server enforces (empty or blank texts, list sizes, top_k, exactly one of two fields,
/metrics' content type, 405 + Allow for undeclared methods)."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
pytest.importorskip("schemathesis")

from serve_helpers import ENV, start_cli, wait_healthy

KEY = "fuzz-key"
SEED = 20
MAX_EXAMPLES = 25  # per operation: about 30 s on 2 busy cores


def test_schemathesis_finds_no_failure_on_any_check(tiny_bert_dir, tmp_path) -> None:
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("A man plays a guitar.\nSnow closed the roads.\nThe chef cooks dinner.\n", "utf-8")
    proc, url = start_cli(
        "--model", str(tiny_bert_dir), "--corpus", str(corpus), "--api-key", KEY, "--max-client-batch", "16"
    )
    try:
        wait_healthy(url)  # before the run: a 503 while loading would count as a server error
        assert url.startswith("http://127.0.0.1:")  # never any other address
        cmd = [sys.executable, "-m", "schemathesis.cli", "run", f"{url}/openapi.json", "--checks", "all"]
        cmd += ["--header", f"Authorization: Bearer {KEY}", "--seed", str(SEED), "--workers", "1"]
        cmd += ["--max-examples", str(MAX_EXAMPLES), "--no-color"]
        run = subprocess.run(cmd, cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
        assert "No issues found" in run.stdout, run.stdout[-3000:]
    finally:
        proc.terminate()
        proc.wait(30)
        shutil.rmtree(tmp_path / ".hypothesis", ignore_errors=True)
