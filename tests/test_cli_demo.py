"""``jtcse demo`` on a tiny random BERT and toy data: start row, two towers and the twin, on the runner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jtcse.cli.main import main
from jtcse.pipeline.runner import RESULT_FILE
from sts_toy import write_toy_sts
from train_fixtures import write_corpus


def test_demo_runs_the_pipeline_and_compares_start_and_twin(
    tiny_bert_dir: Path, tmp_path: Path, capsys
) -> None:
    data = write_toy_sts(tmp_path / "data", pairs=8)
    (data / "unsup").mkdir()
    write_corpus(data / "unsup" / "wiki1m_for_simcse.head40.txt", n=40)
    out = tmp_path / "demo"
    argv = ["demo", "--model", str(tiny_bert_dir), "--data-dir", str(data), "--output-dir", str(out)]
    argv += ["--sentences", "16", "--batch-size", "8", "--max-len", "16", "--num-ca-layers", "2", "--quiet"]
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 0
    printed = capsys.readouterr().out
    assert "| model " in printed and "| start " in printed and "| JTCSE twin tower |" in printed
    summary = json.loads((out / "demo_summary.json").read_text(encoding="utf-8"))
    assert set(summary["tables"]) == {"start", "jtcse"}
    assert set(summary["seconds"]) >= {
        "eval start",
        "train simcse_a",
        "train simcse_b",
        "train jtcse",
        "total",
    }
    twin = json.loads((out / "jtcse" / RESULT_FILE).read_text(encoding="utf-8"))
    assert twin["test"] == summary["tables"]["jtcse"]["scores"] and twin["steps"] == 2
    assert json.loads((out / "jtcse" / "jtcse.json").read_text())["kind"] == "twin"
