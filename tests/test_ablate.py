"""``jtcse ablate``: grid parsing, run names, a resumable end-to-end grid on a tiny model, the tables."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
import yaml

from jtcse.benchmark import mean_std
from jtcse.cli.main import main
from jtcse.encoder import Encoder
from jtcse.errors import JtcseError
from jtcse.evaluation.sts import TASKS, evaluate_sts
from jtcse.pipeline.ablate import (
    parse_grid,
    run_ablation,
    run_name,
    write_results,
)
from jtcse.pipeline.runner import RESULT_FILE, RunResult
from sts_toy import write_toy_sts
from train_fixtures import tiny_config, write_corpus


def _config_file(tmp_path: Path, model_dir: Path, *, method: str = "simcse", **sections) -> Path:
    """A tiny 2-step config whose data dir holds all 7 toy STS tasks (and the STS-B dev split)."""
    data_dir = write_toy_sts(tmp_path / "sts_data", pairs=8)
    write_corpus(tmp_path / "corpus.txt", n=24)
    raw = tiny_config(
        tmp_path,
        model_dir,
        method=method,
        data={"data_dir": str(data_dir)},
        train={"max_steps": 2, "save_every": 1},
        eval={"every": 1},
        **sections,
    )
    path = tmp_path / "base.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


def _run_cli(argv: list[str]) -> int:
    with pytest.raises(SystemExit) as info:
        main(argv)
    return int(info.value.code or 0)


# ---------------------------------------------------------------------------------------------- parsing
def test_parse_grid_keeps_order_and_values() -> None:
    axes = parse_grid(["loss.ictm=0,1", "model.num_ca_layers = 1, 3 ,6"])
    assert [(a.key, a.values) for a in axes] == [
        ("loss.ictm", ("0", "1")),
        ("model.num_ca_layers", ("1", "3", "6")),
    ]


@pytest.mark.parametrize(
    ("items", "message"),
    [
        (["loss.ictm"], "--grid loss.ictm: expected key=v1,v2"),
        (["=1,2"], "--grid =1,2: expected key=v1,v2"),
        (["loss.ictm="], "empty value"),
        (["loss.ictm=0,,1"], "empty value"),
        (["loss.use_ictm=true,false"], "unknown config key 'loss.use_ictm' (did you mean 'loss.ictm'?)"),
        (["seed=1,2"], "use --seeds"),
        (["loss.ictm=0,1", "loss.ictm=2"], "already a grid key"),
    ],
)
def test_bad_grids_are_one_line_errors(items: list[str], message: str) -> None:
    with pytest.raises(JtcseError) as info:
        parse_grid(items)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_run_names_are_stable_safe_and_distinct() -> None:
    name = run_name({"model.num_ca_layers": "3", "loss.ictm": "0.0"}, 1)
    assert name == "loss.ictm-0.0_model.num_ca_layers-3_seed-1"  # keys sorted: order of --grid is irrelevant
    assert run_name({"loss.ictm": "0.0", "model.num_ca_layers": "3"}, 1) == name
    slash, underscore = run_name({"model.tower_a": "runs/a"}, 1), run_name({"model.tower_a": "runs_a"}, 1)
    assert "/" not in slash and slash != underscore
    assert run_name({"model.tower_a": "runs/a"}, 1) == slash
    assert len(run_name({"model.base": "x" * 500}, 1)) <= 120


# ---------------------------------------------------------------------------------------------- end to end
def test_grid_runs_resumes_skips_and_tabulates(tmp_path: Path, tiny_bert_dir: Path) -> None:
    config = _config_file(tmp_path, tiny_bert_dir)
    out = tmp_path / "ablation"
    messages: list[str] = []
    common = dict(seeds=[3], output_dir=out, say=messages.append)

    # An interrupted first invocation: run 1 stops after its first step, with a checkpoint and no result.
    first = run_ablation(config, ["model.pooler=cls,avg"], base_overrides=["train.stop_after=1"], **common)
    assert first.interrupted and first.runs == [] and first.planned == 2
    run_a, run_b = out / "runs" / "model.pooler-cls_seed-3", out / "runs" / "model.pooler-avg_seed-3"
    assert (run_a / "checkpoint" / "state.pt").is_file() and not (run_a / RESULT_FILE).exists()
    assert not run_b.exists()
    assert "run 1/2" in messages[0]

    # Without --resume the folder is refused; with it, run 1 continues from its checkpoint and run 2 starts.
    with pytest.raises(JtcseError, match="pass --resume"):
        run_ablation(config, ["model.pooler=cls,avg"], **common)
    messages.clear()
    second = run_ablation(config, ["model.pooler=cls,avg"], resume=True, **common)
    assert not second.interrupted and [r.name for r in second.runs] == [run_a.name, run_b.name]
    assert any("continuing from its checkpoint" in m for m in messages)
    assert any("run 2/2" in m for m in messages)
    for run in second.runs:
        assert run.steps == 2 and run.tasks == list(TASKS) and run.train_s > 0
        # the table's scores are the saved model's: evaluate it again independently
        direct = evaluate_sts(Encoder(run.output_dir, device="cpu"), data_dir=tmp_path / "sts_data")
        assert run.test["avg"] == pytest.approx(direct.scores["avg"], abs=1e-9)
        metrics = [
            json.loads(line) for line in (Path(run.output_dir) / "metrics.jsonl").read_text().splitlines()
        ]
        assert run.dev_stsb == max(r["dev_stsb"] for r in metrics if "dev_stsb" in r)

    rows = list(csv.DictReader((out / "results.csv").open(encoding="utf-8")))
    assert [(r["run"], r["model.pooler"], r["seed"]) for r in rows] == [
        (run_a.name, "cls", "3"),
        (run_b.name, "avg", "3"),
    ]
    assert list(rows[0])[3:12] == ["dev_stsb", *TASKS, "avg"]
    for row, run in zip(rows, second.runs, strict=True):
        assert float(row["STS12"]) == pytest.approx(run.test["STS12"], abs=1e-4)
        assert float(row["avg"]) == pytest.approx(run.test["avg"], abs=1e-4)
        assert float(row["dev_stsb"]) == pytest.approx(run.dev_stsb, abs=1e-4)
    md = (out / "results.md").read_text(encoding="utf-8")
    assert "## Runs" in md and "## Mean ± std over seeds" in md and f"`{run_b.name}`" in md
    assert f"{second.runs[1].test['avg']:.2f}" in md

    # A third invocation trains nothing: both runs are skipped, the tables come out the same.
    metrics_before = (run_a / "metrics.jsonl").read_text()
    csv_before = (out / "results.csv").read_text()
    messages.clear()
    third = run_ablation(config, ["model.pooler=cls,avg"], resume=True, **common)
    assert all(r.skipped for r in third.runs) and len(third.runs) == 2
    assert sum("finished earlier, skipped" in m for m in messages) == 2
    assert (run_a / "metrics.jsonl").read_text() == metrics_before
    assert (out / "results.csv").read_text() == csv_before

    # A finished run is not reused under other settings.
    with pytest.raises(JtcseError, match=r"trained with other settings \(loss\.temperature"):
        run_ablation(
            config, ["model.pooler=cls,avg"], base_overrides=["loss.temperature=0.1"], resume=True, **common
        )


def test_cli_twin_grid_dev_only(tmp_path: Path, tiny_bert_dir: Path, tiny_bert_dir_b: Path, capsys) -> None:
    config = _config_file(
        tmp_path,
        tiny_bert_dir,
        method="jtcse",
        model={"tower_a": str(tiny_bert_dir), "tower_b": str(tiny_bert_dir_b), "num_ca_layers": 2},
    )
    out = tmp_path / "twin"
    code = _run_cli(
        ["ablate", str(config), "--grid", "loss.ictm=0,1", "--dev-only", "--output-dir", str(out)]
    )
    assert code == 0
    captured = capsys.readouterr()
    assert "run 1/2" in captured.err and "run 2/2" in captured.err
    assert "# Ablation results" in captured.out  # the table is printed at the end
    rows = list(csv.DictReader((out / "results.csv").open(encoding="utf-8")))
    assert [r["loss.ictm"] for r in rows] == ["0.0", "1.0"]
    assert "STS12" not in rows[0] and all(math.isfinite(float(r["dev_stsb"])) for r in rows)
    spec = json.loads((out / "runs" / "loss.ictm-0.0_seed-7" / "jtcse.json").read_text())
    assert spec["kind"] == "twin"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--grid", "loss.use_ictm=true,false"], "did you mean 'loss.ictm'?"),
        (["--grid", "model.dropout=0.1,abc"], "model.dropout must be a float"),
        (["--grid", "model.dropout=0.1,0.10"], "the value 0.1 is listed twice"),
        (["--grid", "model.pooler=cls,max"], "model.pooler: 'max' is not one of"),
        (["--grid", "model.pooler=cls", "--seeds", "1,x"], "--seeds 1,x: expected comma-separated integers"),
        (["--grid", "model.pooler=cls", "--eval-tasks", "STS99"], "--eval-tasks STS99: unknown STS task"),
    ],
)
def test_cli_rejects_bad_input_before_running(
    tmp_path: Path, tiny_bert_dir: Path, capsys, extra: list[str], message: str
) -> None:
    config = _config_file(tmp_path, tiny_bert_dir)
    out = tmp_path / "never"
    assert _run_cli(["ablate", str(config), *extra, "--output-dir", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("jtcse: error: ") and message in err and err.count("\n") == 1
    assert not out.exists()


def test_dry_run_lists_the_plan(tmp_path: Path, tiny_bert_dir: Path, capsys) -> None:
    config = _config_file(tmp_path, tiny_bert_dir)
    out = tmp_path / "plan"
    argv = ["ablate", str(config), "--grid", "model.pooler=cls,avg", "--grid", "loss.temperature=0.05,0.1"]
    assert _run_cli([*argv, "--seeds", "1,2", "--output-dir", str(out), "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 8 and lines[0].startswith("1/8") and lines[-1].startswith("8/8")
    assert lines[0].endswith("loss.temperature-0.05_model.pooler-cls_seed-1")
    assert not out.exists()


# ---------------------------------------------------------------------------------------------- tables
def _result(point: dict[str, str], seed: int, avg: float, dev: float) -> RunResult:
    return RunResult(
        name=run_name(point, seed),
        point=point,
        seed=seed,
        output_dir="unused",
        dev_stsb=dev,
        dev_source="training",
        tasks=["STS12"],
        test={"STS12": avg, "avg": avg},
        train_s=10.0,
        eval_s=1.0,
        steps=2,
        best_step=2,
    )


def test_summary_is_mean_and_sample_std_over_seeds(tmp_path: Path) -> None:
    runs = [
        _result({"loss.ictm": "0.0"}, 1, 70.0, 80.0),
        _result({"loss.ictm": "0.0"}, 2, 72.0, 81.0),
        _result({"loss.ictm": "1.0"}, 1, 75.0, 82.0),
    ]
    md, csv_path = write_results(runs, ["loss.ictm"], tmp_path)
    text = md.read_text(encoding="utf-8")
    summary = text.split("## Mean ± std over seeds")[1]
    # seeds 1, 2: mean 71, sample std sqrt(2) = 1.41; dev 80.5 +- 0.71; one seed: the mean alone
    assert "| 0.0 | 1, 2 | 80.50 ± 0.71 | 71.00 ± 1.41 | 71.00 ± 1.41 |" in summary
    assert "| 1.0 | 1 | 82.00 | 75.00 | 75.00 |" in summary
    assert len(list(csv.DictReader(csv_path.open(encoding="utf-8")))) == 3
    assert mean_std([1.0, math.nan, 3.0]) == (2.0, pytest.approx(math.sqrt(2)))
    assert mean_std([]) == (pytest.approx(math.nan, nan_ok=True), None)
