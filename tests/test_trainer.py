"""The training loop on tiny random models (CPU, a few steps each)."""

from __future__ import annotations

import json
import math

import pytest
import torch
import yaml
from safetensors.torch import load_file

from jtcse.errors import JtcseError
from jtcse.model.format import read_spec
from jtcse.training.checkpoint import checkpoint_path, load_checkpoint
from jtcse.training.config import config_from_dict, resolve
from jtcse.training.metrics import TIMING_FIELDS, read_metrics, without_timing
from jtcse.training.trainer import train
from train_fixtures import tiny_config, write_corpus


def _config(raw):
    return resolve(config_from_dict(raw))


def _train_rows(records):
    return [r for r in records if "loss" in r]


def test_simcse_run_writes_a_loadable_model_and_metrics(tmp_path, tiny_bert_dir):
    config = _config(tiny_config(tmp_path, tiny_bert_dir))
    result = train(config)
    out = result.output_dir
    assert result.step == result.total_steps == 6  # 24 sentences / 8 per batch * 2 epochs
    assert not result.stopped_early

    records = read_metrics(out / "metrics.jsonl")
    rows = _train_rows(records)
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 5, 6]
    assert set(rows[0]) == {"step", "epoch", "loss", "nce", "lr", "sentences_per_s", "elapsed_s"}
    assert [r["epoch"] for r in rows] == [0, 0, 0, 1, 1, 1]
    assert all(math.isfinite(r["loss"]) and r["loss"] == r["nce"] for r in rows)
    # linear decay from lr to 0 (HF Trainer's default), the logged lr is the one the step used
    assert rows[0]["lr"] == pytest.approx(3e-5) and rows[-1]["lr"] == pytest.approx(3e-5 / 6)
    evals = [r for r in records if "dev_stsb" in r]
    assert [r["step"] for r in evals] == [2, 4, 6]
    assert result.best_dev == max(r["dev_stsb"] for r in evals)
    assert evals[-1]["best_step"] == result.best_step

    spec = read_spec(out)
    assert spec.kind == "single" and spec.method == "simcse"
    assert spec.members[0].path == "." and spec.members[0].pooler == "cls_before_pooler"
    assert spec.extra["best_step"] == result.best_step
    # the training-only MLP is not part of the saved model
    weights = load_file(out / "model.safetensors")
    assert not any("mlp" in k for k in weights)
    assert (out / "tokenizer.json").is_file() or (out / "vocab.txt").is_file()
    resolved = yaml.safe_load((out / "train_config.yaml").read_text())
    assert resolved["method"] == "simcse" and resolved["train"]["lr"] == 3e-5
    environment = json.loads((out / "environment.json").read_text())["runs"][0]
    assert environment["torch"] == torch.__version__ and environment["device"].startswith("cpu")
    state = load_checkpoint(checkpoint_path(out))
    assert state["step"] == 6 and state["best_step"] == result.best_step


def test_dev_score_uses_the_inference_embedding(tmp_path, tiny_bert_dir):
    """The saved best model, loaded by jtcse.Encoder, scores what the loop logged."""
    from jtcse import Encoder
    from jtcse.evaluation.sts import stsb_dev_score

    config = _config(tiny_config(tmp_path, tiny_bert_dir, train={"epochs": 1}, eval={"every": 1}))
    result = train(config)
    encoder = Encoder(result.output_dir, device="cpu", max_length=64)
    score = stsb_dev_score(lambda s: encoder.encode(s, show_progress=False), tmp_path / "data")
    assert score == pytest.approx(result.best_dev, abs=1e-3)


def test_two_runs_with_one_seed_are_identical(tmp_path, tiny_bert_dir):
    first = train(_config(tiny_config(tmp_path, tiny_bert_dir, output_dir=str(tmp_path / "one"))))
    second = train(_config(tiny_config(tmp_path, tiny_bert_dir, output_dir=str(tmp_path / "two"))))
    a = read_metrics(first.output_dir / "metrics.jsonl")
    b = read_metrics(second.output_dir / "metrics.jsonl")
    assert without_timing(a) == without_timing(b)
    assert any(k in a[0] for k in TIMING_FIELDS)
    other = train(_config(tiny_config(tmp_path, tiny_bert_dir, seed=8, output_dir=str(tmp_path / "three"))))
    assert without_timing(read_metrics(other.output_dir / "metrics.jsonl")) != without_timing(a)


def test_jtcse_twin_tower_run(tmp_path, tiny_bert_dir, tiny_bert_dir_b):
    from jtcse import Encoder

    raw = tiny_config(
        tmp_path,
        tiny_bert_dir,
        method="jtcse",
        model={"tower_a": str(tiny_bert_dir), "tower_b": str(tiny_bert_dir_b)},
    )
    result = train(_config(raw))
    out = result.output_dir
    rows = _train_rows(read_metrics(out / "metrics.jsonl"))
    assert set(rows[0]) >= {"loss", "nce", "icnce", "icnce_ca", "ictm", "lr"}
    for r in rows:
        assert r["loss"] == pytest.approx(r["nce"] + r["icnce"] + r["icnce_ca"] + r["ictm"], rel=1e-5)
    assert all(r["lr"] == 1e-4 for r in rows)  # constant, as the official code
    spec = read_spec(out)
    assert spec.kind == "twin" and spec.method == "jtcse"
    assert (out / "tower_a" / "config.json").is_file() and (out / "tower_b" / "config.json").is_file()
    assert spec.extra["num_ca_layers"] == 2 and spec.extra["ca_mode"] == "side_all"
    vectors = Encoder(out, device="cpu").encode(["a cat sits on the mat", "a dog runs"])
    assert vectors.shape == (2, 32)


def test_tncse_preset_run(tmp_path, tiny_bert_dir, tiny_bert_dir_b):
    raw = tiny_config(
        tmp_path,
        tiny_bert_dir,
        method="tncse",
        model={"tower_b": str(tiny_bert_dir_b)},
        train={"epochs": 1},
        eval={"every": 0},
    )
    result = train(_config(raw))
    rows = _train_rows(read_metrics(result.output_dir / "metrics.jsonl"))
    assert "icnce_ca" not in rows[0] and {"nce", "icnce", "ictm"} <= set(rows[0])
    resolved = yaml.safe_load((result.output_dir / "train_config.yaml").read_text())
    assert resolved["model"]["dropout"] == 0.00025  # TNCSE's BERT value, filled from the model type
    assert resolved["loss"]["direction"] == "a_to_b"
    assert read_spec(result.output_dir).extra["final_step"] == 3  # no dev eval: the final state is kept


def test_one_base_for_both_towers(tmp_path, tiny_bert_dir):
    raw = tiny_config(tmp_path, tiny_bert_dir, method="jtcse", train={"epochs": 1}, eval={"every": 0})
    result = train(_config(raw))
    state = load_checkpoint(checkpoint_path(result.output_dir))["model"]
    # same start, different dropout masks and asymmetric directions: the towers have drifted apart
    name = "twin.tower_a.encoder.layer.0.attention.self.query.weight"
    assert not torch.equal(state[name], state[name.replace("tower_a", "tower_b")])


def test_nan_loss_stops_with_the_step_and_keeps_the_last_checkpoint(tmp_path, tiny_bert_dir):
    raw = tiny_config(tmp_path, tiny_bert_dir, train={"lr": 1e30, "save_every": 1}, eval={"every": 0})
    with pytest.raises(JtcseError, match=r"step 2: the loss is not finite") as info:
        train(_config(raw))
    message = str(info.value)
    assert "\n" not in message and "last good checkpoint (step 1)" in message
    state = load_checkpoint(checkpoint_path(tmp_path / "run"))
    assert state["step"] == 1


def test_towers_of_different_architectures(tmp_path, tiny_bert_dir, tiny_roberta_dir):
    raw = tiny_config(tmp_path, tiny_bert_dir, method="jtcse", model={"tower_b": str(tiny_roberta_dir)})
    with pytest.raises(JtcseError, match=r"towers differ in architecture"):
        train(_config(raw))


def test_empty_corpus_through_the_trainer(tmp_path, tiny_bert_dir):
    (tmp_path / "blank.txt").write_text("\n\n  \n", encoding="utf-8")
    raw = tiny_config(tmp_path, tiny_bert_dir, data={"corpus": str(tmp_path / "blank.txt")})
    with pytest.raises(JtcseError, match=r"blank\.txt: has no sentences"):
        train(_config(raw))


def test_existing_checkpoint_needs_resume(tmp_path, tiny_bert_dir):
    raw = tiny_config(tmp_path, tiny_bert_dir, train={"epochs": 1}, eval={"every": 0})
    train(_config(raw))
    with pytest.raises(JtcseError, match=r"holds a checkpoint of an earlier run; pass --resume"):
        train(_config(raw))


def test_avg_pooler_and_warmup(tmp_path, tiny_roberta_dir):
    write_corpus(tmp_path / "corpus.txt", n=40)
    raw = tiny_config(
        tmp_path,
        tiny_roberta_dir,
        model={"pooler": "avg"},
        eval={"every": 0},
        train={"epochs": 1, "warmup_steps": 2},
    )
    result = train(_config(raw))
    rows = _train_rows(read_metrics(result.output_dir / "metrics.jsonl"))
    assert [r["lr"] for r in rows][:3] == pytest.approx([0.0, 1.5e-5, 3e-5])
    assert read_spec(result.output_dir).members[0].pooler == "avg"


def test_missing_dev_data_fails_before_training(tmp_path, tiny_bert_dir):
    (tmp_path / "nodata").mkdir()
    raw = tiny_config(tmp_path, tiny_bert_dir, data={"data_dir": str(tmp_path / "nodata")})
    with pytest.raises(JtcseError, match=r"has no sts/ folder.*set eval\.every = 0"):
        train(_config(raw))
    assert not (tmp_path / "run" / "metrics.jsonl").exists()


def test_half_precision_on_cpu_falls_back_to_fp32(tmp_path, tiny_bert_dir, capsys):
    raw = tiny_config(tmp_path, tiny_bert_dir, train={"epochs": 1, "precision": "bf16"}, eval={"every": 0})
    result = train(_config(raw))
    assert result.step == 3
    err = capsys.readouterr().err
    assert "train.precision = bf16 needs CUDA; using fp32 on cpu" in err and ", fp32;" in err


def test_tensorboard_needs_its_package(tmp_path, tiny_bert_dir):
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        raw = tiny_config(
            tmp_path, tiny_bert_dir, train={"epochs": 1, "tensorboard": True}, eval={"every": 0}
        )
        with pytest.raises(JtcseError, match=r"train\.tensorboard = true needs the tensorboard package"):
            train(_config(raw))
    else:
        raw = tiny_config(
            tmp_path, tiny_bert_dir, train={"epochs": 1, "tensorboard": True}, eval={"every": 0}
        )
        train(_config(raw))
        assert any((tmp_path / "run" / "tensorboard").iterdir())


@pytest.mark.parametrize(
    ("every", "at_final_step", "evaluated", "saved"),
    [(4, False, [4], "best_step"), (4, True, [4, 6], "best_step"), (10, False, [], "final_step")],
)
def test_dev_evaluation_cadence(tmp_path, tiny_bert_dir, every, at_final_step, evaluated, saved):
    """Issue 10: dev evaluation at multiples of eval.every only (the official scripts); the last step too
    only with eval.at_final_step; no evaluation at all -> the final state is the saved model."""
    raw = tiny_config(
        tmp_path, tiny_bert_dir, eval={"every": every, "at_final_step": at_final_step, "batch_size": 16}
    )
    result = train(_config(raw))
    assert result.step == 6
    records = read_metrics(result.output_dir / "metrics.jsonl")
    assert [r["step"] for r in records if "dev_stsb" in r] == evaluated
    extra = read_spec(result.output_dir).extra
    assert saved in extra and (saved != "final_step" or extra["final_step"] == 6)


@pytest.mark.parametrize("decay_all", [True, False])
def test_weight_decay_all(decay_all):
    from torch import nn

    from jtcse.training.optimization import build_optimizer

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.dense = nn.Linear(3, 3)
            self.LayerNorm = nn.LayerNorm(3)

    config = resolve(config_from_dict({"train": {"weight_decay": 0.01, "weight_decay_all": decay_all}}))
    groups = build_optimizer(Block(), config).param_groups
    decay = {id(p): group["weight_decay"] for group in groups for p in group["params"]}
    assert len(decay) == 4  # dense weight and bias, LayerNorm weight and bias
    assert sorted(decay.values()) == ([0.01] * 4 if decay_all else [0.0, 0.0, 0.0, 0.01])
