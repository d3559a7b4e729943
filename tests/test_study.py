"""experiments/study.py at tiny scale on a tiny random model: every variant, equal compute, reproducible."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

from jtcse.evaluation.sts import TASKS
from sts_toy import write_toy_sts
from train_fixtures import write_corpus

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def study() -> ModuleType:
    spec = importlib.util.spec_from_file_location("jtcse_study", REPO_ROOT / "experiments" / "study.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def inputs(tmp_path: Path, tiny_bert_dir: Path) -> list[str]:
    data = write_toy_sts(tmp_path / "sts_data", pairs=8)
    corpus = write_corpus(tmp_path / "corpus.txt", n=40)
    return [
        "--scale",
        "tiny",
        "--base-model",
        str(tiny_bert_dir),
        "--corpus",
        str(corpus),
        "--data-dir",
        str(data),
        "--eval-tasks",
        *TASKS,
        "--device",
        "cpu",
        "--threads",
        "1",
        "--quiet",
    ]


def _scores(results_dir: Path) -> list[dict]:
    payload = json.loads((results_dir / "study.json").read_text(encoding="utf-8"))
    return [{k: v for k, v in s.items() if not k.endswith("_s")} for s in payload["scores"]]


def test_tiny_study_runs_every_variant_reproducibly(
    study: ModuleType, inputs: list[str], tmp_path: Path, capsys
) -> None:
    runs, results = tmp_path / "runs", tmp_path / "results"
    assert study.main([*inputs, "--runs-dir", str(runs), "--results-dir", str(results)]) == 0
    err = capsys.readouterr().err
    assert "study: 1/" in err

    md = (results / "study.md").read_text(encoding="utf-8")
    assert md.startswith("# JTCSE study, tiny scale")
    assert "**What it cannot show:**" in md and "Reproduce: `python experiments/study.py --scale tiny" in md
    for label in (
        "start (CLS)",
        "start (avg)",
        "SimCSE (one tower)",
        "SimCSE A + B (sum)",
        "TNCSE-style",
        "JTCSE",
    ):
        assert f"| {label}" in md
    distilled = study.distill_teacher_key()[0] is not None
    assert ("| JTCSE-D |" in md) == distilled
    assert ("**JTCSE-D: not run.**" in md) == (not distilled)
    assert (results / "study_avg.png").stat().st_size > 1000
    assert (results / "curves" / "jtcse" / "loss_ictm.png").stat().st_size > 1000
    # the attention-sink section: start + stage1_a + simcse + tncse tower A + both JTCSE towers
    assert "## Attention sinking on [CLS]" in md and "| layer | start | stage1_a | simcse | tncse:a |" in md
    sink = json.loads((results / "attention_sink.json").read_text(encoding="utf-8"))
    labels = [s["label"] for s in sink["series"]]
    assert labels == ["start", "stage1_a", "simcse", "tncse:a", "jtcse:a", "jtcse:b"]
    assert all(len(s["e_cls"]) == 5 for s in sink["series"])  # embeddings + 4 layers
    assert (results / "attention_sink.png").stat().st_size > 1000

    # every trained row has all 7 test scores and an average
    payload = json.loads((results / "study.json").read_text(encoding="utf-8"))
    by_variant = {s["variant"]: s for s in payload["scores"]}
    for variant in ("start_cls", "start_avg", "simcse", "simcse_sum", "tncse", "jtcse"):
        assert set(by_variant[variant]["test"]) == {*TASKS, "avg"}
    assert by_variant["jtcse"]["train_s"] > by_variant["simcse"]["train_s"] * 0.1 > 0  # pipeline times

    # equal compute: 2 x (S1 + S) encoder passes for SimCSE, the summed towers and the twin pipelines
    seed_dir = runs / "seed-1"
    steps = {
        key: json.loads((seed_dir / key / "ablation_result.json").read_text())["steps"]
        for key in ("simcse", "sum_a", "sum_b", "stage1_a", "stage1_b", "tncse", "jtcse")
    }
    s1, s = steps["stage1_a"], steps["jtcse"]
    assert steps["simcse"] == 2 * (s1 + s) and steps["sum_a"] == steps["sum_b"] == s1 + s
    assert steps["stage1_b"] == s1 and steps["tncse"] == s
    ensemble = json.loads((seed_dir / "simcse_sum" / "jtcse.json").read_text())
    assert ensemble["kind"] == "ensemble" and [m["weight"] for m in ensemble["members"]] == [1.0, 1.0]
    assert [Path(m["path"]).name for m in ensemble["members"]] == ["sum_a", "sum_b"]
    jtcse_config = json.loads((seed_dir / "jtcse" / "ablation_result.json").read_text())["config"]
    assert jtcse_config["model.tower_a"] == str(seed_dir / "stage1_a")
    assert jtcse_config["model.num_ca_layers"] == 2  # every other layer of the 4-layer model
    assert not (seed_dir / "jtcse" / "checkpoint").exists()  # dropped once the run is finished

    # the same command in fresh folders gives the same table
    again = tmp_path / "results_again"
    assert study.main([*inputs, "--runs-dir", str(tmp_path / "runs_again"), "--results-dir", str(again)]) == 0
    assert _scores(again) == _scores(results)

    # the first folder again: refused without --resume; with it, nothing trains and the table is the same
    assert study.main([*inputs, "--runs-dir", str(runs), "--results-dir", str(results)]) == 2
    assert "pass --resume" in capsys.readouterr().err
    metrics = (seed_dir / "simcse" / "metrics.jsonl").read_text()
    assert study.main([*inputs, "--runs-dir", str(runs), "--results-dir", str(results), "--resume"]) == 0
    assert (seed_dir / "simcse" / "metrics.jsonl").read_text() == metrics
    assert "jtcse train:" not in capsys.readouterr().err
    assert _scores(results) == _scores(again)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--seeds", "1,x"], "--seeds 1,x: expected comma-separated integers"),
        (["--eval-tasks", "STS99"], "--eval-tasks STS99: unknown STS task"),
        (["--corpus", "/no/such/corpus.txt"], "/no/such/corpus.txt"),
    ],
)
def test_bad_input_is_one_line_error_before_training(
    study: ModuleType, inputs: list[str], tmp_path: Path, capsys, extra: list[str], message: str
) -> None:
    runs = tmp_path / "runs"
    code = study.main([*inputs, *extra, "--runs-dir", str(runs), "--results-dir", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.startswith("study: error: ")
    assert not (runs / "seed-1" / "simcse").exists()
