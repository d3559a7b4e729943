"""``jtcse eval transfer`` on all-MiniLM-L6-v2 (avg pooler, its own) gives SentEval's own numbers: the
figures below are what SentEval's code (its MR/KFold/Split classifiers with sklearn's folds) printed on the
same vectors. The data directory is found as ``jtcse eval sts`` finds its own (no ``--data-dir``):
``../shared/data`` beside the checkout, else ``$JTCSE_DATA``. Slow: it embeds SentEval's 108,107 distinct
sentences and trains the classifiers on the CPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from jtcse.data.paths import TRANSFER_DIR

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"

FASTTEST = {
    **{"MR": 75.06, "CR": 82.07, "SUBJ": 91.89, "MPQA": 86.96},
    **{"SST2": 81.55, "TREC": 88.40, "MRPC": 71.71},
}
FASTTEST_MRPC_F1 = 80.43
FASTTEST_AVG = 82.52
TEST_MODE = {"CR": 82.15, "MRPC": 72.35}
TEST_MODE_MRPC_F1 = 81.40


def _transfer(tmp_path: Path, name: str, *options: str) -> dict:
    if not (SHARED_DATA / TRANSFER_DIR).is_dir():
        env_dir = os.environ.get("JTCSE_DATA")
        if not env_dir or not (Path(env_dir) / TRANSFER_DIR).is_dir():
            pytest.skip(f"no {TRANSFER_DIR}/ in {SHARED_DATA} nor in $JTCSE_DATA")
    out = tmp_path / f"{name}.json"
    argv = ["eval", "transfer", "--model", "minilm", "--device", "cpu"]
    proc = subprocess.run(  # its progress goes to the test's stderr (pytest -s shows it)
        [sys.executable, "-m", "jtcse", *argv, *options, "--output", str(out)],
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT / "src"), "HF_HUB_OFFLINE": "1"},
        cwd=REPO_ROOT,
    )
    assert proc.returncode == 0
    return json.loads(out.read_text(encoding="utf-8"))


@pytest.mark.slow
def test_minilm_fasttest_equals_senteval(tmp_path: Path) -> None:
    report = _transfer(tmp_path, "fasttest", "--pooler", "avg", "--mode", "fasttest")
    assert {task: report[task] for task in FASTTEST} == FASTTEST
    assert report["avg"] == FASTTEST_AVG
    details = report["details"]
    assert round(details["MRPC"]["f1"], 2) == FASTTEST_MRPC_F1
    assert details["pooler"] == "avg" and details["seed"] == 1111


@pytest.mark.slow
def test_minilm_test_mode_equals_senteval_on_cr_and_mrpc(tmp_path: Path) -> None:
    report = _transfer(tmp_path, "test", "--mode", "test", "--tasks", "CR", "MRPC")
    assert {task: report[task] for task in TEST_MODE} == TEST_MODE
    assert round(report["details"]["MRPC"]["f1"], 2) == TEST_MODE_MRPC_F1
    assert report["details"]["pooler"] == "avg"  # no --pooler: minilm's own (sentence-transformers: mean)
