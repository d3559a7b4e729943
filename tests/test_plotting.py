"""Plots: produced, valid PNG, not blank; a clear error for an eval JSON without per-pair data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from jtcse.errors import JtcseError
from jtcse.plotting import plot_eval, plot_run, read_curves

pytest.importorskip("matplotlib")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def assert_real_png(path: Path) -> None:
    from matplotlib.image import imread

    assert path.is_file() and path.read_bytes()[:8] == PNG_MAGIC
    pixels = imread(path)
    assert pixels.shape[0] > 100 and pixels.shape[1] > 100
    assert float(pixels[..., :3].std()) > 0.01  # something is drawn on it


def write_run(run: Path, steps: int = 120) -> Path:
    rng = np.random.default_rng(0)
    lines = []
    for step in range(1, steps + 1):
        nce = 2.0 * np.exp(-step / 40) + 0.05 * rng.random()
        lines.append(
            {
                "step": step,
                "epoch": 0,
                "loss": nce + 0.1,
                "nce": nce,
                "ictm": 0.1,
                "lr": 1e-5,
                "sentences_per_s": 100.0,
                "elapsed_s": step,
            }
        )
        if step % 20 == 0:
            lines.append(
                {
                    "step": step,
                    "dev_stsb": 60 + step / 10,
                    "best_dev_stsb": 60 + step / 10,
                    "best_step": step,
                    "eval_s": 1.0,
                }
            )
    run.mkdir(parents=True, exist_ok=True)
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines), encoding="utf-8")
    return run


def test_plot_run(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run")
    losses, dev = read_curves(run)
    assert set(losses) == {"loss", "nce", "ictm"} and len(losses["nce"][0]) == 120
    assert dev is not None and dev[0] == "dev_stsb" and dev[1] == [20, 40, 60, 80, 100, 120]
    written = plot_run(run)
    assert sorted(p.name for p in written) == [
        "dev_score.png",
        "loss_ictm.png",
        "loss_loss.png",
        "loss_nce.png",
    ]
    assert all(p.parent == run / "plots" for p in written)
    for path in written:
        assert_real_png(path)


def test_plot_eval(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    gold = rng.uniform(0, 5, 200)
    data = {
        "STS12": 50.0,
        "STSBenchmark": 80.0,
        "avg": 65.0,
        "pairs": {
            "STSBenchmark": {"gold": gold.tolist(), "cosine": (gold / 5 + rng.normal(0, 0.1, 200)).tolist()},
            "STS12": {
                "gold": gold[:100].tolist(),
                "cosine": rng.uniform(0, 1, 100).tolist(),
                "subset": ["MSRpar"] * 50 + ["SMTeuroparl"] * 50,
            },
        },
    }
    eval_json = tmp_path / "eval.json"
    eval_json.write_text(json.dumps(data), encoding="utf-8")
    written = plot_eval(eval_json)
    assert [p.name for p in written] == ["scatter_STS12.png", "scatter_STSBenchmark.png", "scatter_all.png"]
    for path in written:
        assert path.parent == tmp_path / "eval_plots"
        assert_real_png(path)


def test_bad_input(tmp_path: Path) -> None:
    no_pairs = tmp_path / "scores.json"
    no_pairs.write_text(json.dumps({"STS12": 70.0, "avg": 70.0, "details": {}}), encoding="utf-8")
    with pytest.raises(JtcseError, match="no per-pair data"):
        plot_eval(no_pairs)
    uneven = tmp_path / "uneven.json"
    uneven.write_text(json.dumps({"pairs": {"STS12": {"gold": [1, 2], "cosine": [0.5]}}}), encoding="utf-8")
    with pytest.raises(JtcseError, match="2 gold scores but 1 cosines"):
        plot_eval(uneven)
    with pytest.raises(JtcseError, match=r"no metrics\.jsonl"):
        plot_run(tmp_path)
    (tmp_path / "metrics.jsonl").write_text("", encoding="utf-8")
    with pytest.raises(JtcseError, match="no loss or dev-score records"):
        plot_run(tmp_path)
