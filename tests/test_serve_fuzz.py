"""A schema-driven fuzzer against a real ``jtcse serve`` (tiny model, ``--corpus``, ``--api-key``) on
127.0.0.1: schemathesis 4 with all its checks, seeded and bounded, finds nothing. This holds the published
schema to what the server enforces (empty or blank texts, list sizes, top_k, exactly one of two fields,
/metrics' content type, 405 + Allow for undeclared methods). A second run puts lone surrogates into
the bodies' strings (tests/fuzz_surrogate_hooks.py): 422s, never a 5xx."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
pytest.importorskip("schemathesis")

from fuzz_surrogate_hooks import CODES_ENV
from serve_helpers import ENV, start_cli, wait_healthy

KEY = "fuzz-key"
SEED = 20
MAX_EXAMPLES = 25  # per operation: about 30 s on 2 busy cores
SURROGATE_EXAMPLES = 10  # per operation, fuzzing phase only: the second run
HOOKS = Path(__file__).with_name("fuzz_surrogate_hooks.py")


def _schemathesis(url: str, cwd: Path, examples: int, more: list[str], env: dict[str, str]) -> None:
    cmd = [sys.executable, "-m", "schemathesis.cli", "run", f"{url}/openapi.json", "--checks", "all"]
    cmd += ["--header", f"Authorization: Bearer {KEY}", "--seed", str(SEED), "--workers", "1"]
    cmd += ["--max-examples", str(examples), "--no-color", *more]
    run = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert "No issues found" in run.stdout, run.stdout[-3000:]


def test_schemathesis_finds_no_failure_on_any_check(tiny_bert_dir, tmp_path) -> None:
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("A man plays a guitar.\nSnow closed the roads.\nThe chef cooks dinner.\n", "utf-8")
    proc, url = start_cli(
        "--model", str(tiny_bert_dir), "--corpus", str(corpus), "--api-key", KEY, "--max-client-batch", "16"
    )
    try:
        wait_healthy(url)  # before the run: a 503 while loading would count as a server error
        assert url.startswith("http://127.0.0.1:")  # never any other address
        _schemathesis(url, tmp_path, MAX_EXAMPLES, [], ENV)
        # again, with lone surrogates in the bodies' strings: a schema-valid body then gets a 422
        # (positive_data_acceptance would call that a failure), never a 5xx or a malformed answer
        codes = tmp_path / "codes.txt"
        env = {**ENV, "SCHEMATHESIS_HOOKS": str(HOOKS), CODES_ENV: str(codes)}
        more = ["--phases", "fuzzing", "--mode", "positive", "--exclude-checks", "positive_data_acceptance"]
        _schemathesis(url, tmp_path, SURROGATE_EXAMPLES, more, env)
        assert "invalid_text" in codes.read_text("utf-8").split(), "no lone surrogate reached the server"
    finally:
        proc.terminate()
        proc.wait(30)
        shutil.rmtree(tmp_path / ".hypothesis", ignore_errors=True)
