"""Model cards: config, data, training-curve summary and the STS table; tolerant of missing pieces."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jtcse.errors import JtcseError
from jtcse.model.format import MemberSpec, ModelSpec, write_spec
from jtcse.model_card import summarize_metrics, write_model_card

# in the trainer's format (jtcse.training.metrics): training lines and dev lines
RECORDS = [
    {
        "step": 1,
        "epoch": 0,
        "loss": 2.0,
        "nce": 1.5,
        "ictm": 0.5,
        "lr": 1e-5,
        "sentences_per_s": 100.0,
        "elapsed_s": 1,
    },
    {
        "step": 2,
        "epoch": 0,
        "loss": 1.2,
        "nce": 1.0,
        "ictm": 0.2,
        "lr": 1e-5,
        "sentences_per_s": 120.0,
        "elapsed_s": 2,
    },
    {"step": 2, "dev_stsb": 70.5, "best_dev_stsb": 70.5, "best_step": 2, "eval_s": 3.0, "elapsed_s": 5},
    {
        "step": 3,
        "epoch": 0,
        "loss": 1.4,
        "nce": 0.9,
        "ictm": 0.5,
        "lr": 1e-5,
        "sentences_per_s": 110.0,
        "elapsed_s": 6,
    },
    {
        "step": 4,
        "epoch": 1,
        "loss": 1.3,
        "nce": 0.95,
        "ictm": 0.35,
        "lr": 0.0,
        "sentences_per_s": 90.0,
        "elapsed_s": 7,
    },
    {"step": 4, "dev_stsb": 69.25, "best_dev_stsb": 70.5, "best_step": 2, "eval_s": 3.0, "elapsed_s": 9},
]
STS = {
    "STS12": 72.37,
    "STS13": 80.6,
    "STS14": 75.59,
    "STS15": 85.39,
    "STS16": 78.99,
    "STSBenchmark": 82.03,
    "SICKRelatedness": 77.15,
    "avg": 78.87,
    "details": {"mode": "test"},
}


def write_metrics(path: Path) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in RECORDS) + '{"step": 5, "lo', encoding="utf-8")
    return path


def test_summary_of_the_curve() -> None:
    summary = summarize_metrics(RECORDS)
    assert summary["steps"] == 4
    assert set(summary["losses"]) == {"loss", "nce", "ictm"}
    assert summary["losses"]["loss"] == {"first": (1, 2.0), "best": (2, 1.2), "last": (4, 1.3)}
    assert summary["losses"]["nce"]["best"] == (3, 0.9)
    assert summary["dev"] == {"key": "dev_stsb", "best": (2, 70.5), "last": (4, 69.25), "evals": 2}
    assert summary["sentences_per_s"] == pytest.approx(105.0)


def test_full_card(tmp_path: Path) -> None:
    model = tmp_path / "run"
    write_spec(model, ModelSpec("twin", [MemberSpec("tower_a"), MemberSpec("tower_b")], method="jtcse"))
    metrics = write_metrics(model / "metrics.jsonl")
    config = {"method": "jtcse", "train": {"lr": 1.3e-06, "batch_size": 64}}
    card = write_model_card(
        model, config=config, data="wiki1m (1,000,000 sentences)", metrics_path=metrics, sts_report=STS
    )
    text = card.read_text(encoding="utf-8")
    assert card == model / "README.md"
    assert text.startswith("---\n") and "# run" in text
    assert "| `tower_a` | `cls_before_pooler` | 1 |" in text
    assert "wiki1m (1,000,000 sentences)" in text
    assert "| STS12 | STS13 | STS14 | STS15 | STS16 | STS-B | SICK-R | Avg. |" in text
    assert "| 72.37 | 80.60 | 75.59 | 85.39 | 78.99 | 82.03 | 77.15 | 78.87 |" in text
    assert "(test split)" in text
    assert "| loss | 2 (1) | 1.2 (2) | 1.3 (4) |" in text
    assert "best 70.50 at step 2, last 69.25 at step 4" in text
    assert '"lr": 1.3e-06' in text


def test_missing_pieces_still_give_a_card(tmp_path: Path) -> None:
    text = write_model_card(tmp_path, config=None, data=None, metrics_path=None, sts_report=None).read_text()
    assert "## Usage" in text and "## STS evaluation" not in text and "## Training curve" not in text
    text = write_model_card(
        tmp_path,
        config={},
        data="",
        metrics_path=tmp_path / "none.jsonl",
        sts_report={"STS12": None, "avg": float("nan")},
    ).read_text()
    assert "no metrics.jsonl was found" in text
    assert "| STS12 | Avg. |" in text and "| n/a | n/a |" in text


def test_accepts_a_report_object(tmp_path: Path) -> None:
    from jtcse.evaluation.sts import StsReport

    report = StsReport(mode="dev", scores={"STSBenchmark": 81.234, "avg": 81.234})
    text = write_model_card(
        tmp_path, config=None, data=None, metrics_path=None, sts_report=report
    ).read_text()
    assert "| STS-B | Avg. |" in text and "| 81.23 | 81.23 |" in text


def test_not_a_directory(tmp_path: Path) -> None:
    with pytest.raises(JtcseError, match="not a directory"):
        write_model_card(tmp_path / "nope", config=None, data=None, metrics_path=None, sts_report=None)


def test_trained_model_gets_a_card_and_eval_fills_its_sts_table(tmp_path, tiny_bert_dir, capsys):
    """Training writes README.md (config, data, curve); a full `jtcse eval sts` adds the 7-task table."""
    from jtcse.cli.main import main
    from jtcse.evaluation.sts import TASKS
    from jtcse.training.config import load_config
    from jtcse.training.trainer import train
    from sts_toy import write_toy_sts
    from train_fixtures import tiny_config

    raw = tiny_config(tmp_path, tiny_bert_dir, train={"epochs": 1})
    write_toy_sts(Path(raw["data"]["data_dir"]), pairs=6)
    out = train(load_config(None, base=raw)).output_dir
    card = (out / "README.md").read_text()
    assert "## Training data" in card and "corpus.txt" in card
    assert "dev" in card.lower() and "STS12" not in card  # curve summary; no STS table yet

    with pytest.raises(SystemExit) as exit_info:
        main(["eval", "sts", "--model", str(out), "--data-dir", raw["data"]["data_dir"], "--quiet"])
    assert exit_info.value.code == 0, capsys.readouterr().err
    card = (out / "README.md").read_text()
    assert all(task in card or task in ("STSBenchmark", "SICKRelatedness") for task in TASKS)
    assert "STS-B" in card and "SICK-R" in card and "## Training data" in card
    saved = json.loads((out / "sts_results.json").read_text())
    assert set(TASKS) <= set(saved)

    # A README the user wrote is never overwritten.
    (out / "README.md").write_text("my own notes\n")
    with pytest.raises(SystemExit):
        main(["eval", "sts", "--model", str(out), "--data-dir", raw["data"]["data_dir"], "--quiet"])
    assert (out / "README.md").read_text() == "my own notes\n"


def test_model_cards_do_not_import_the_training_layer():
    """The run directory's names come from jtcse.run_files (a low layer), not from jtcse.training: no import
    of it anywhere in these modules, lazy ones inside functions included."""
    import ast

    import jtcse.model_card
    import jtcse.plotting

    for module in (jtcse.model_card, jtcse.plotting):
        tree = ast.parse(Path(module.__file__).read_text(encoding="utf-8"))
        imported = [
            name
            for node in ast.walk(tree)
            for name in (
                [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else []
            )
        ]
        assert "jtcse.run_files" in imported
        assert not [name for name in imported if name.startswith("jtcse.training")], module.__name__
