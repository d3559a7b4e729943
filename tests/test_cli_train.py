"""``jtcse train``: config files, --set, --output-dir, --resume, one-line errors with exit code 2."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from jtcse.cli.main import main
from jtcse.configs import names as packaged_names
from jtcse.configs import require
from jtcse.training.metrics import read_metrics, without_timing
from train_fixtures import tiny_config


def _run(argv: list[str]) -> int:
    with pytest.raises(SystemExit) as info:
        main(argv)
    return int(info.value.code or 0)


def _write_yaml(tmp_path: Path, raw: dict) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


def test_train_from_a_yaml_config_with_overrides(tmp_path, tiny_bert_dir, capsys):
    config = _write_yaml(tmp_path, tiny_config(tmp_path, tiny_bert_dir))
    out = tmp_path / "elsewhere"
    code = _run(
        ["train", str(config), "--set", "train.epochs=1", "--set", "eval.every=0", "--output-dir", str(out)]
    )
    assert code == 0
    assert (out / "jtcse.json").is_file() and (out / "checkpoint" / "state.pt").is_file()
    resolved = yaml.safe_load((out / "train_config.yaml").read_text())
    assert resolved["train"]["epochs"] == 1 and resolved["output_dir"] == str(out)
    assert "jtcse train: simcse on cpu" in capsys.readouterr().err


def test_stop_then_resume_from_the_output_dir_alone(tmp_path, tiny_bert_dir):
    raw = tiny_config(tmp_path, tiny_bert_dir, train={"epochs": 1}, eval={"every": 0})
    config = _write_yaml(tmp_path, raw)
    out = Path(raw["output_dir"])
    assert _run(["train", str(config), "--set", "train.stop_after=1"]) == 0
    assert [r["step"] for r in read_metrics(out / "metrics.jsonl")] == [1]
    assert _run(["train", "--resume", "--output-dir", str(out)]) == 0
    straight = tmp_path / "straight"
    assert _run(["train", str(config), "--output-dir", str(straight)]) == 0
    assert without_timing(read_metrics(out / "metrics.jsonl")) == without_timing(
        read_metrics(straight / "metrics.jsonl")
    )


@pytest.mark.parametrize(
    ("extra", "pattern"),
    [
        (
            ["--set", "train.lrr=1"],
            r"unknown config key 'train\.lrr' \(did you mean 'train\.lr'\?\); valid keys: ",
        ),
        (["--set", "train.batch_size=big"], r"train\.batch_size must be an int"),
        (
            ["--set", "model.tower_b=/no/such/dir", "--set", "method=jtcse"],
            r"model\.tower_b = '/no/such/dir'",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, tiny_bert_dir, capsys, extra, pattern):
    config = _write_yaml(tmp_path, tiny_config(tmp_path, tiny_bert_dir))
    assert _run(["train", str(config), *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("jtcse: error: ")
    assert re.search(pattern, err[0])


def test_non_utf8_corpus_with_the_error_policy(tmp_path, tiny_bert_dir, capsys):
    corpus = tmp_path / "bad.txt"
    corpus.write_bytes(b"fine line\nanother\n\xff\xfe broken\n")
    config = _write_yaml(tmp_path, tiny_config(tmp_path, tiny_bert_dir, data={"corpus": str(corpus)}))
    assert _run(["train", str(config), "--set", "data.on_bad_utf8=error"]) == 2
    assert "bad.txt:3: not valid UTF-8" in capsys.readouterr().err


def test_resume_without_config_or_output_dir(capsys):
    assert _run(["train", "--resume"]) == 2
    assert "give the CONFIG file or --output-dir" in capsys.readouterr().err


@pytest.mark.parametrize("name", packaged_names())
def test_shipped_configs_load(name):
    from jtcse.training.config import load_config

    config = load_config(require(name))
    assert config.method in ("simcse", "jtcse", "tncse", "distill")


def test_train_never_writes_into_a_users_folder_or_its_own_inputs(tmp_path, tiny_bert_dir, capsys):
    """Checked before the model or the corpus is read: one line, the folder as it was."""
    raw = tiny_config(tmp_path, tiny_bert_dir, train={"max_steps": 1}, eval={"every": 0})
    config = _write_yaml(tmp_path, raw)
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "config.json").write_text('{"mine": true}')  # a name a trained model would overwrite
    cases = [
        (theirs, f"--output-dir {theirs}: exists and is not empty; choose a new or empty folder"),
        (tiny_bert_dir, f"--output-dir {tiny_bert_dir}: is the input model.base {tiny_bert_dir}"),
        (tmp_path / "data", f"--output-dir {tmp_path / 'data'}: is the input data.data_dir"),
        (tiny_bert_dir / "run", f"--output-dir {tiny_bert_dir / 'run'}: lies inside the input model.base"),
    ]
    before = sorted(p.name for p in tiny_bert_dir.iterdir())
    for out, message in cases:
        assert _run(["train", str(config), "--output-dir", str(out)]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"jtcse: error: {message}") and len(err.splitlines()) == 1, err
    assert (theirs / "config.json").read_text() == '{"mine": true}' and len(list(theirs.iterdir())) == 1
    assert sorted(p.name for p in tiny_bert_dir.iterdir()) == before
    assert not (tiny_bert_dir / "run").exists()
