"""Every bench script answers ``--help`` (its usage, no traceback) with the extras ``make setup`` installs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
BENCHES = sorted(p.name for p in (REPO_ROOT / "bench").glob("*.py") if p.name != "st_peers.py")


def test_the_benches_are_found() -> None:
    assert {"encode.py", "roofline.py", "serve.py", "cold_start.py"} <= set(BENCHES)


@pytest.mark.parametrize("name", BENCHES)
def test_help(name: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "src"), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, str(REPO_ROOT / "bench" / name), "--help"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=REPO_ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith("usage:"), proc.stdout[:500]
    assert "Traceback" not in proc.stderr
