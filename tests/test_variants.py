"""experiments/variants.py: the issue-10 measurement plan (commands) and, slow, a tiny end-to-end run."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from sts_toy import write_toy_sts
from train_fixtures import write_corpus

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def variants() -> ModuleType:
    spec = importlib.util.spec_from_file_location("jtcse_variants", REPO_ROOT / "experiments" / "variants.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_plan_covers_every_variant_at_equal_steps(variants: ModuleType, tmp_path: Path, capsys) -> None:
    assert variants.main(["--out", str(tmp_path), "--results-dir", str(tmp_path), "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    simcse, rest = lines[0], lines[1:]
    assert "ablate simcse-minilm" in simcse
    assert (
        "data.batching=random,length_bucketed" in simcse
        and "loss.simcse_form=one_sided,interleaved" in simcse
    )
    assert "train.max_steps=160" in simcse and "--seeds 1,2,3" in simcse
    towers = [line for line in rest if " train simcse-minilm" in line]
    twins = [line for line in rest if "ablate jtcse-minilm" in line]
    assert (
        len(towers) == 12 and len(twins) == 6
    )  # 2 batchings x 3 seeds: two towers and one CA-mode grid each
    assert all("train.max_steps=40" in line for line in towers + twins)
    assert all("model.ca_mode=side_all,side_last" in line for line in twins)
    for batching in ("random", "length_bucketed"):  # the towers and the twin use the same batching
        assert sum(f"data.batching={batching} " in line for line in towers) == 6
        assert sum(f"data.batching={batching} " in line for line in twins) == 3
    assert not (tmp_path / "variants.md").exists()  # a dry run writes nothing


@pytest.mark.slow
def test_tiny_measurement_end_to_end(variants: ModuleType, tmp_path: Path, tiny_bert_dir: Path) -> None:
    data = write_toy_sts(tmp_path / "data", pairs=8)
    corpus = write_corpus(tmp_path / "corpus.txt", n=16)
    sets = [
        f"model.base={tiny_bert_dir}",
        "model.num_ca_layers=2",
        f"data.corpus={corpus}",
        f"data.data_dir={data}",
        "train.batch_size=4",
        "train.device=cpu",
        "train.threads=1",
    ]
    results = tmp_path / "results"
    argv = ["--out", str(tmp_path / "out"), "--results-dir", str(results), "--seeds", "1", "--steps", "1"]
    argv += ["--eval-tasks", "STS16"]
    assert variants.main([*argv, *[a for s in sets for a in ("--set", s)]]) == 0
    table = (results / "variants.md").read_text(encoding="utf-8")
    for batching in ("random", "length_bucketed"):
        for mode in ("side_all", "side_last"):
            assert f"| JTCSE | {batching} | model.ca_mode={mode} | " in table
        for form in ("one_sided", "interleaved"):
            assert f"| SimCSE (one tower) | {batching} | loss.simcse_form={form} | " in table
    assert len((results / "variants.csv").read_text(encoding="utf-8").splitlines()) == 1 + 4 + 4
    simcse = (tmp_path / "out" / "simcse" / "results.csv").read_text(encoding="utf-8").splitlines()
    assert len(simcse) == 1 + 4  # header + the 2 x 2 grid
