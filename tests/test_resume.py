"""Checkpoint and resume: an interrupted run continues on exactly the loss curve of an unbroken one."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from jtcse.errors import JtcseError
from jtcse.training.checkpoint import checkpoint_path, load_checkpoint, save_checkpoint
from jtcse.training.config import config_from_dict, resolve
from jtcse.training.metrics import read_metrics, without_timing
from jtcse.training.seeding import capture_rng_state, restore_rng_state
from jtcse.training.trainer import train
from train_fixtures import tiny_config, write_corpus


class Killed(Exception):
    """Stands in for the process dying at an arbitrary point."""


def _config(raw, **overrides):
    config = resolve(config_from_dict(raw))
    for key, value in overrides.items():
        section, name = key.split("__")
        setattr(getattr(config, section), name, value)
    return config


def _curve(out):
    return without_timing(read_metrics(out / "metrics.jsonl"))


def _kill_at(step):
    def hook(current):
        if current == step:
            raise Killed

    return hook


@pytest.mark.parametrize(("batching", "sub_batch"), [("random", 3), ("length_bucketed", 0)])
def test_stop_and_resume_matches_an_unbroken_run(tmp_path, tiny_bert_dir, batching, sub_batch):
    """Stopped in epoch 1 and resumed into epoch 2: both epoch orders (data.batching) continue exactly."""

    def raw_config(name):
        data = {"batching": batching}
        return tiny_config(
            tmp_path, tiny_bert_dir, data=data, train={"length_sorted_sub_batch": sub_batch}, output_dir=name
        )

    straight = train(_config(raw_config(str(tmp_path / "straight"))))
    raw = raw_config(str(tmp_path / "broken"))
    first = train(_config(raw, train__stop_after=3))
    assert first.stopped_early and first.step == 3
    second = train(_config(raw), resume=True)
    assert second.step == 6 and not second.stopped_early
    assert _curve(second.output_dir) == _curve(straight.output_dir)
    assert second.best_dev == straight.best_dev and second.best_step == straight.best_step


def test_kill_between_checkpoints_replays_the_lost_steps(tmp_path, tiny_bert_dir):
    """Killed after step 5 (checkpoint at 4): step 5's metrics line is dropped and recomputed."""
    straight = train(_config(tiny_config(tmp_path, tiny_bert_dir, output_dir=str(tmp_path / "straight"))))
    raw = tiny_config(tmp_path, tiny_bert_dir, output_dir=str(tmp_path / "broken"))
    with pytest.raises(Killed):
        train(_config(raw), on_step_end=_kill_at(5))
    out = tmp_path / "broken"
    assert load_checkpoint(checkpoint_path(out))["step"] == 4
    assert max(r["step"] for r in read_metrics(out / "metrics.jsonl")) == 5
    train(_config(raw), resume=True)
    assert _curve(out) == _curve(straight.output_dir)


def test_twin_tower_resume_keeps_the_random_directions(tmp_path, tiny_bert_dir, tiny_bert_dir_b):
    """JTCSE draws the ICNCE direction from Python's random: its state must survive the restart too.

    Killed after step 3 with the checkpoint at step 2, so step 3 (and its direction draw) is replayed.
    Dropout is off, so the direction draws are the only randomness.
    """
    model = {"tower_b": str(tiny_bert_dir_b), "dropout": 0.0}

    def raw(name):
        return tiny_config(
            tmp_path,
            tiny_bert_dir,
            method="jtcse",
            model=model,
            eval={"every": 0},
            output_dir=str(tmp_path / name),
        )

    straight = train(_config(raw("straight")))
    with pytest.raises(Killed):
        train(_config(raw("broken")), on_step_end=_kill_at(3))
    assert load_checkpoint(checkpoint_path(tmp_path / "broken"))["step"] == 2
    train(_config(raw("broken")), resume=True)
    assert _curve(tmp_path / "broken") == _curve(straight.output_dir)


def test_resume_needs_the_same_settings_and_data(tmp_path, tiny_bert_dir):
    raw = tiny_config(tmp_path, tiny_bert_dir)
    train(_config(raw, train__stop_after=2))
    with pytest.raises(JtcseError, match=r"config differs from the checkpoint's in train\.lr = 0\.001"):
        train(_config(raw, train__lr=1e-3), resume=True)
    write_corpus(tmp_path / "corpus.txt", n=24, seed=99)  # other sentences
    with pytest.raises(JtcseError, match=r"the corpus .* is not the one the checkpoint was trained on"):
        train(_config(raw), resume=True)


def test_resume_without_a_checkpoint(tmp_path, tiny_bert_dir):
    with pytest.raises(JtcseError, match=r"no checkpoint to resume from"):
        train(_config(tiny_config(tmp_path, tiny_bert_dir)), resume=True)


def test_resume_of_a_finished_run_does_nothing(tmp_path, tiny_bert_dir):
    raw = tiny_config(tmp_path, tiny_bert_dir, train={"epochs": 1}, eval={"every": 0})
    done = train(_config(raw))
    before = (done.output_dir / "metrics.jsonl").read_text()
    again = train(_config(raw), resume=True)
    assert again.step == done.step and (done.output_dir / "metrics.jsonl").read_text() == before


class _Unpicklable:
    def __reduce__(self):
        raise RuntimeError("disk full")  # fails in the middle of writing the file


def test_a_crash_mid_save_keeps_the_previous_checkpoint(tmp_path):
    path = tmp_path / "checkpoint" / "state.pt"
    save_checkpoint(path, {"step": 1, "weights": torch.ones(1000)})
    with pytest.raises(RuntimeError, match="disk full"):
        save_checkpoint(path, {"step": 2, "weights": torch.zeros(1000), "bad": _Unpicklable()})
    state = load_checkpoint(path)
    assert state["step"] == 1 and torch.equal(state["weights"], torch.ones(1000))
    assert [p.name for p in path.parent.iterdir()] == ["state.pt"]  # no temporary file left behind


def test_a_torn_checkpoint_is_a_one_line_error(tmp_path):
    path = tmp_path / "state.pt"
    path.write_bytes(b"PK\x03\x04 not really a checkpoint")
    with pytest.raises(JtcseError, match=r"state\.pt: the checkpoint is damaged"):
        load_checkpoint(path)


def test_rng_states_round_trip_through_a_checkpoint(tmp_path):
    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    save_checkpoint(tmp_path / "s.pt", {"rng": capture_rng_state()})
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    random.seed(9)
    np.random.seed(9)
    torch.manual_seed(9)
    restore_rng_state(load_checkpoint(tmp_path / "s.pt")["rng"])  # loads with weights_only=True
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected


def test_tncse_resume_fills_the_dropout_as_the_first_run_did(tmp_path, tiny_bert_dir, tiny_bert_dir_b):
    """TNCSE's dropout comes from the backbone family (config.resolve_for_model) on every start, so a resume
    with the same config file (model.dropout unset) matches the checkpoint's config without a special case."""
    raw = tiny_config(
        tmp_path, tiny_bert_dir, method="tncse", model={"tower_b": str(tiny_bert_dir_b)}, eval={"every": 0}
    )
    config = _config(raw, train__stop_after=2)
    assert config.model.dropout is None and "model.dropout" not in config.explicit
    train(config)
    assert config.model.dropout is None  # the caller's config is not written back
    saved = load_checkpoint(checkpoint_path(tmp_path / "run"))
    assert saved["config"]["model"]["dropout"] == 0.00025
    result = train(_config(raw), resume=True)
    assert result.step == 6 and not result.stopped_early
    with pytest.raises(JtcseError, match=r"model\.dropout = 0\.1 \(checkpoint: 0\.00025\)"):
        train(_config({**raw, "model": {**raw["model"], "dropout": 0.1}}), resume=True)
