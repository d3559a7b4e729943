"""Every bench script answers ``--help`` (its usage, no traceback) and runs its ``--smoke`` workload (a tiny
random BERT, a few sentences, one repeat: the measured run's code path) to its last line, the headline, with
the extras ``make setup`` installs."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
# bench/st_peers.py is bench/encode.py's worker in another environment; bench/_smoke.py what smokes share.
BENCHES = sorted(
    p.name
    for p in (REPO_ROOT / "bench").glob("*.py")
    if p.name != "st_peers.py" and not p.name.startswith("_")
)


def _run(name: str, *options: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "src"), "HF_HUB_OFFLINE": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, str(REPO_ROOT / "bench" / name), *options],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        cwd=REPO_ROOT,
    )


def test_the_benches_are_found() -> None:
    assert {"encode.py", "roofline.py", "serve.py", "cold_start.py", "train_step.py"} <= set(BENCHES)


@pytest.mark.parametrize("name", BENCHES)
def test_help(name: str) -> None:
    proc = _run(name, "--help")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith("usage:"), proc.stdout[:500]
    assert "--smoke" in proc.stdout
    assert "Traceback" not in proc.stderr


@pytest.fixture(scope="session")
def smoke_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One folder for every smoke run of the session: the tiny model and its export are made once."""
    return tmp_path_factory.mktemp("bench_smoke")


# every smoke runs in the default suite, the ones that start several torch processes (cold_start, gpu_step,
# serve, train_step: 10 to 21 s each on a quiet 2-core CPU) included
@pytest.mark.parametrize("name", BENCHES)
def test_smoke(name: str, smoke_dir: Path) -> None:
    proc = _run(name, "--smoke", env={"JTCSE_BENCH_SMOKE_DIR": str(smoke_dir)})
    assert proc.returncode == 0, (proc.stdout[-2000:], proc.stderr[-3000:])
    assert "Traceback" not in proc.stderr
    headline = proc.stdout.strip().splitlines()[-1]
    assert re.search(r"\d", headline), headline  # the last line is the headline figure
    assert "WARNING" not in proc.stdout and "MISMATCH" not in proc.stdout, proc.stdout[-2000:]
