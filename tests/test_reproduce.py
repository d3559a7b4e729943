"""``jtcse reproduce``: every recipe's stages end to end on a tiny random BERT (``--max-steps 2``), the
report against ``jtcse eval sts``, resuming, and the one-line errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from jtcse.benchmark import TASKS
from jtcse.cli.main import main
from jtcse.pipeline.recipes import RECIPES
from sts_toy import write_toy_sts
from train_fixtures import write_corpus

# Sizes for a tiny model on a toy corpus; the configs' hyperparameters stay as they are otherwise.
TINY = [
    "train.batch_size=8",
    "data.max_len=16",
    "eval.batch_size=16",
    "eval.dev_max_len=16",
    "model.num_ca_layers=2",
    "train.threads=1",
]
EXPECTED_STAGES = {
    "simcse-bert": ["simcse"],
    "jtcse-bert": ["tower_a", "tower_b", "twin"],
    "jtcse-roberta": ["tower_a", "tower_b", "twin"],
    "jtcse-bert-d": ["tower_a", "tower_b", "twin", "student"],
}


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    root = write_toy_sts(tmp_path / "data", pairs=8)
    (root / "unsup").mkdir()
    write_corpus(root / "unsup" / "wiki1m_for_simcse.head40.txt", n=40)
    return root


def _run(argv: list[str]) -> int:
    with pytest.raises(SystemExit) as info:
        main(argv)
    return int(info.value.code or 0)


def _reproduce(recipe: str, backbone: Path, data_dir: Path, out: Path, *extra: str) -> int:
    argv = ["reproduce", recipe, "--backbone", str(backbone), "--max-steps", "2", "--data-dir", str(data_dir)]
    argv += ["--output-dir", str(out), "--device", "cpu", "--quiet", *extra]
    for item in TINY:
        argv += ["--set", item]
    return _run(argv)


def _eval_sts(model: Path, data_dir: Path, tmp_path: Path) -> dict[str, float]:
    """What ``jtcse eval sts`` gives for a saved model (scores from its --output JSON)."""
    scores = tmp_path / f"eval_{model.name}.json"
    argv = ["eval", "sts", "--model", str(model), "--data-dir", str(data_dir), "--device", "cpu"]
    assert _run([*argv, "--quiet", "--no-card", "--output", str(scores)]) == 0
    payload = json.loads(scores.read_text(encoding="utf-8"))
    return {task: payload[task] for task in (*TASKS, "avg")}


def _check_report(recipe: str, out: Path, data_dir: Path, tmp_path: Path) -> dict:
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["recipe"] == recipe and report["seeds"] == [42]
    assert [s["stage"] for s in report["stages"]] == EXPECTED_STAGES[recipe]
    assert all(s["steps"] == 2 and s["train_s"] > 0 for s in report["stages"])
    assert report["paper"]["scores"] == RECIPES[recipe].paper
    measured = report["measured"]["per_seed"]["42"]
    result_dir = out / "seed-42" / EXPECTED_STAGES[recipe][-1]
    direct = _eval_sts(result_dir, data_dir, tmp_path)
    for task in (*TASKS, "avg"):
        assert measured[task] == pytest.approx(direct[task], abs=1e-9), task
        assert report["measured"]["mean"][task] == measured[task]
        assert report["gap"][task] == pytest.approx(measured[task] - RECIPES[recipe].paper[task])
    assert set(report["seconds"]) == {"data", "backbone", "total"}
    assert {"gpu", "driver", "torch", "transformers", "git_commit"} <= set(report["environment"])
    assert any("--max-steps" in d for d in report["deviations"])
    md = (out / "report.md").read_text(encoding="utf-8")
    assert md.startswith(f"# jtcse reproduce {recipe}")
    paper_avg = f"{RECIPES[recipe].paper['avg']:.2f}"
    assert "| paper |" in md and paper_avg in md and "| gap (measured - paper) |" in md
    return report


def test_jtcse_bert_d_runs_every_stage_and_reports_what_eval_sts_gives(
    tiny_bert_dir: Path, data_dir: Path, tmp_path: Path, capsys
) -> None:
    out = tmp_path / "repro"
    assert _reproduce("jtcse-bert-d", tiny_bert_dir, data_dir, out) == 0
    assert "| measured (1 seed) |" in capsys.readouterr().out  # the report is printed
    first = _check_report("jtcse-bert-d", out, data_dir, tmp_path)
    twin = json.loads((out / "seed-42" / "twin" / "jtcse.json").read_text())
    assert twin["kind"] == "twin"
    config = json.loads((out / "seed-42" / "student" / "ablation_result.json").read_text())["config"]
    assert config["distill.teacher"] == str(out / "seed-42" / "twin")
    towers = [
        json.loads((out / "seed-42" / t / "ablation_result.json").read_text()) for t in ("tower_a", "tower_b")
    ]
    assert [t["seed"] for t in towers] == [42, 1042]
    assert [t["config"]["train.lr"] for t in towers] == [1.5e-5, 2e-5]

    # Rerunning the command trains nothing: every stage is finished, the measured row is the same.
    metrics = (out / "seed-42" / "twin" / "metrics.jsonl").read_text()
    assert _reproduce("jtcse-bert-d", tiny_bert_dir, data_dir, out) == 0
    again = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert all(s["skipped"] for s in again["stages"])
    assert again["measured"] == first["measured"]
    assert (out / "seed-42" / "twin" / "metrics.jsonl").read_text() == metrics


@pytest.mark.parametrize("recipe", ["simcse-bert", "jtcse-bert", "jtcse-roberta"])
def test_every_recipe_runs_end_to_end(
    recipe: str, tiny_bert_dir: Path, tiny_roberta_dir: Path, data_dir: Path, tmp_path: Path
) -> None:
    backbone = tiny_roberta_dir if "roberta" in recipe else tiny_bert_dir
    out = tmp_path / recipe
    assert _reproduce(recipe, backbone, data_dir, out) == 0
    _check_report(recipe, out, data_dir, tmp_path)


def test_two_seeds_give_mean_and_std(tiny_bert_dir: Path, data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "seeds"
    assert _reproduce("simcse-bert", tiny_bert_dir, data_dir, out, "--seeds", "1,2") == 0
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    per_seed = report["measured"]["per_seed"]
    assert report["seeds"] == [1, 2] and set(per_seed) == {"1", "2"}
    assert report["measured"]["mean"]["avg"] == pytest.approx(
        (per_seed["1"]["avg"] + per_seed["2"]["avg"]) / 2
    )
    assert report["measured"]["std"]["avg"] is not None
    assert "| measured (2 seeds) |" in (out / "report.md").read_text(encoding="utf-8")


def test_bad_recipe_name_is_one_line_error(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "jtcse", "reproduce", "jtcse-bret", "--output-dir", str(tmp_path / "x")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr == (
        "jtcse: error: unknown recipe 'jtcse-bret': did you mean 'jtcse-bert'? choose from "
        "simcse-bert, jtcse-bert, jtcse-roberta, jtcse-bert-d\n"
    )
    assert not (tmp_path / "x").exists()


def test_unreachable_backbone_offline_is_one_line_error(data_dir: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "x"
    argv = ["reproduce", "simcse-bert", "--backbone", "no-such-org/no-such-model", "--max-steps", "2"]
    assert _run([*argv, "--data-dir", str(data_dir), "--output-dir", str(out)]) == 2
    error = capsys.readouterr().err.splitlines()[-1]  # after the stage announcements
    assert error.startswith("jtcse: error: backbone no-such-org/no-such-model: not in the Hugging Face cache")
    assert error.endswith("offline, pass --backbone DIR with a local copy")
    assert not (out / "seed-42").exists()


def test_full_recipe_without_gpu_is_refused_with_an_estimate(data_dir: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "x"
    argv = [
        "reproduce",
        "jtcse-bert",
        "--device",
        "cpu",
        "--data-dir",
        str(data_dir),
        "--output-dir",
        str(out),
    ]
    assert _run(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("jtcse: error: no CUDA GPU found: jtcse-bert needs about ")
    assert " days of training on a CPU" in err and "--allow-cpu" in err and err.count("\n") == 1
    assert not out.exists()


def test_a_full_run_on_a_head_of_wiki1m_is_noted(data_dir: Path) -> None:
    from jtcse.pipeline.reproduce import prepare_data

    root, notes = prepare_data(str(data_dir), full=True, say=print)
    assert root == data_dir.resolve()
    assert notes == ["corpus: wiki1m_for_simcse.head40.txt, 40 sentences of wiki1m, not the full corpus"]
    assert prepare_data(str(data_dir), full=False, say=print)[1] == []  # a short run: nothing to note


def _weights_only(src: Path, dst: Path) -> Path:
    """A model folder as the released JTCSE stage-1 towers ship: config and weights, no tokenizer."""
    dst.mkdir(parents=True)
    for name in ("config.json", "model.safetensors"):
        shutil.copy(src / name, dst / name)
    return dst


def _max_weight_gap(a: Path, b: Path) -> float:
    from safetensors.numpy import load_file

    wa, wb = load_file(str(a / "model.safetensors")), load_file(str(b / "model.safetensors"))
    return max(float(abs(wa[k] - wb[k]).max()) for k in wa if k in wb)


@pytest.mark.parametrize("recipe", ["jtcse-bert", "jtcse-bert-d"])
def test_released_towers_skip_stage_one(
    recipe: str, tiny_bert_dir: Path, tiny_bert_dir_b: Path, data_dir: Path, tmp_path: Path
) -> None:
    towers = [
        _weights_only(d, tmp_path / "released" / n)
        for d, n in ((tiny_bert_dir, "e1"), (tiny_bert_dir_b, "e2"))
    ]
    out, extra = tmp_path / recipe, ["--towers", str(towers[0]), str(towers[1])]
    corpus = None
    if recipe == "jtcse-bert":  # the official text; every stage trains on it, so wiki1m is not needed
        corpus = write_corpus(tmp_path / "Wiki_for_JTCSE.txt", n=40)
        data_dir = write_toy_sts(tmp_path / "sts_only", pairs=8)
        extra += ["--corpus", str(corpus)]
    assert _reproduce(recipe, tiny_bert_dir, data_dir, out, *extra) == 0
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert [s["stage"] for s in report["stages"]] == EXPECTED_STAGES[recipe][2:]
    assert [s["stage"] for s in report["skipped_stages"]] == ["tower_a", "tower_b"]
    assert all("--towers" in s["reason"] and "tokenizer" in s["reason"] for s in report["skipped_stages"])
    assert not (out / "seed-42" / "tower_a").exists()
    deviations = " ".join(report["deviations"])
    assert "stage-1 towers" not in deviations and "--max-steps" in deviations
    assert ("SICK" in deviations) == (corpus is None)
    assert report["settings"]["towers"] == [str(t) for t in towers]
    md = (out / "report.md").read_text(encoding="utf-8")
    assert "Not run: tower_a (stage 1: SimCSE tower A): the twin starts from --towers" in md

    twin = out / "seed-42" / "twin"
    config = json.loads((twin / "ablation_result.json").read_text())["config"]
    copies = [out / "towers" / "tower_a", out / "towers" / "tower_b"]
    assert [config["model.tower_a"], config["model.tower_b"]] == [str(c.resolve()) for c in copies]
    assert config["data.corpus"] == (str(corpus.resolve()) if corpus else "wiki")
    # the twin's towers started from the given ones (2 steps at lr ~1e-6 barely move them)
    assert _max_weight_gap(twin / "tower_a", tiny_bert_dir) < 1e-4
    assert _max_weight_gap(twin / "tower_b", tiny_bert_dir_b) < 1e-4
    assert _max_weight_gap(twin / "tower_a", tiny_bert_dir_b) > 1e-2
    measured = report["measured"]["per_seed"]["42"]
    direct = _eval_sts(out / "seed-42" / EXPECTED_STAGES[recipe][-1], data_dir, tmp_path)
    assert all(measured[t] == pytest.approx(direct[t], abs=1e-9) for t in (*TASKS, "avg"))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["simcse-bert", "--towers", "{a}", "{a}"],
            "--towers: recipe simcse-bert has no stage-1 towers to replace",
        ),
        (["jtcse-bert", "--towers", "{a}", "{missing}"], "--towers {missing}: no such directory"),
        (["jtcse-bert", "--corpus", "{missing}"], "--corpus {missing}: no such file"),
        (
            ["simcse-bert", "--corpus", "{a}"],
            "--corpus: recipe simcse-bert has no twin-tower stage to train on it",
        ),
    ],
)
def test_towers_and_corpus_errors_are_one_line(
    argv: list[str],
    message: str,
    tiny_bert_dir: Path,
    data_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    names = {"a": str(tiny_bert_dir), "missing": str(tmp_path / "missing")}
    out = tmp_path / "x"
    args = ["reproduce", *(a.format(**names) for a in argv), "--max-steps", "2", "--data-dir", str(data_dir)]
    assert _run([*args, "--output-dir", str(out), "--backbone", str(tiny_bert_dir)]) == 2
    err = capsys.readouterr().err
    assert err == f"jtcse: error: {message.format(**names)}\n"
    assert not out.exists()
