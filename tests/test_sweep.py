"""`jtcse sweep`: the space file's checks, one-line errors, a pruned 6-trial SQLite study whose best config
trains, a rerun that trains nothing, the report redrawn from the storage."""

from __future__ import annotations

import contextlib
import json
import shutil
import sqlite3
import sys
import time
from pathlib import Path

import pytest

from jtcse.cli.main import main
from jtcse.errors import JtcseError
from jtcse.pipeline.sweep.report import config_toml
from jtcse.pipeline.sweep.run import SweepOptions, run_sweep
from jtcse.pipeline.sweep.space import read_space
from jtcse.training.config import load_config
from sweep_fixtures import base_config, space_file

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """Exit code and stderr (stdout is left in capsys)."""
    with pytest.raises(SystemExit) as info:
        main(argv)
    captured = capsys.readouterr()
    print(captured.out, end="")
    return int(info.value.code or 0), captured.err


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ('["train.lrr"]\ntype = "float"\nlow = 1e-5\nhigh = 1e-4', "train.lrr: unknown config key"),
        ('["train.lr"]\ntype = "float"\nlow = 1e-3\nhigh = 1e-4', "train.lr: low 0.001 is above high 0.0001"),
        (
            '["train.lr"]\ntype = "float"\nlow = 0.0\nhigh = 1e-4\nlog = true',
            "train.lr: a log range must stay",
        ),
        (
            '["model.ca_mode"]\ntype = "categorical"\nchoices = []',
            "model.ca_mode: choices must be a non-empty",
        ),
        (
            '["model.ca_mode"]\ntype = "categorical"\nchoices = ["side_all", "sideways"]',
            "model.ca_mode = 'sideways'",
        ),
        ('["train.batch_size"]\ntype = "float"\nlow = 8\nhigh = 64', "train.batch_size: an integer key"),
        ('["train.batch_size"]\ntype = "int"\nlow = 0\nhigh = 64', "train.batch_size = 0"),
        ('["loss.temperature"]\ntype = "categorical"\nchoices = ["warm"]', "loss.temperature = 'warm'"),
        ('["train.lr"]\ntype = "normal"\nlow = 1\nhigh = 2', "train.lr: type 'normal' is not one of"),
        ('["seed"]\ntype = "int"\nlow = 1\nhigh = 2', "seed: set by the sweep itself"),
    ],
)
def test_bad_space_is_one_line_naming_the_key(tmp_path: Path, table: str, expected: str) -> None:
    base = load_config(None, ["model.base=minilm"])
    with pytest.raises(JtcseError) as info:
        read_space(space_file(tmp_path, table + "\n"), base)
    assert expected in str(info.value)
    assert "\n" not in str(info.value)


def test_dotted_and_quoted_tables_read_alike(tmp_path: Path) -> None:
    base = load_config(None)
    quoted = read_space(
        space_file(tmp_path, '["train.batch_size"]\ntype = "int"\nlow = 8\nhigh = 64\nstep = 8\n'), base
    )
    dotted = read_space(
        space_file(tmp_path, '[train.batch_size]\ntype = "int"\nlow = 8\nhigh = 64\nstep = 8\n'), base
    )
    assert quoted == dotted and quoted[0].step == 8


def test_unreachable_storage_is_one_line_within_seconds(
    tmp_path: Path, tiny_bert_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, space = base_config(tmp_path, tiny_bert_dir), space_file(tmp_path)
    started = time.monotonic()
    code, err = _cli(
        ["sweep", str(config), "--space", str(space), "--trials", "2", "--output-dir", str(tmp_path / "o"),
         "--storage", "postgresql://u:secret@127.0.0.1:1/x"],
        capsys,
    )  # fmt: skip
    assert code == 2 and time.monotonic() - started < 10
    assert err.startswith("jtcse: error: --storage postgresql://u:***@127.0.0.1:1/x: cannot open")
    assert err.count("\n") == 1 and "secret" not in err


def test_bad_space_stops_before_any_training(
    tmp_path: Path, tiny_bert_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = base_config(tmp_path, tiny_bert_dir)
    space = space_file(tmp_path, '["train.lr"]\ntype = "float"\nlow = 1\nhigh = 0.5\n')
    code, err = _cli(
        ["sweep", str(config), "--space", str(space), "--trials", "2", "--output-dir", str(tmp_path / "o")],
        capsys,
    )
    assert code == 2 and "train.lr: low 1 is above high 0.5" in err and err.count("\n") == 1
    assert not (tmp_path / "o" / "trials").exists()


def test_config_toml_round_trips(tmp_path: Path) -> None:
    config = load_config(None, ["train.lr=3.5e-05", "model.ca_mode=in_stream", "loss.small_cos_floor=none"])
    path = tmp_path / "c.toml"
    path.write_text(config_toml(config), encoding="utf-8")
    tomllib.loads(path.read_text(encoding="utf-8"))
    again = load_config(path, [f"output_dir={config.output_dir}"])
    assert again.flat() == {**config.flat(), "loss.small_cos_floor": 1e-4}  # none is left out: the default


def test_six_trials_prune_report_resume_and_best_trains(
    tmp_path: Path, tiny_bert_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, space, out = base_config(tmp_path, tiny_bert_dir), space_file(tmp_path), tmp_path / "sweep"
    # the median pruner from the first finished trial on; CPU training and the seeded sampler are exact, so
    # which trials fall below the running median is the same on every run
    options = SweepOptions(
        config, space, out, trials=6, sampler="random", seed=3, pruner_startup=1, threads=1
    )
    lines: list[str] = []
    report = run_sweep(options, say=lines.append)
    assert report is not None
    trials = report["trials"]
    assert [t["number"] for t in trials] == list(range(6))
    with contextlib.closing(sqlite3.connect(out / "sweep.db")) as db:  # workers read while one writes
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    complete = [t for t in trials if t["state"] == "complete"]
    pruned = [t for t in trials if t["state"] == "pruned"]
    assert pruned and all(t["steps"] < 4 for t in pruned)
    assert report["best"]["value"] == max(t["value"] for t in complete)
    for t in trials:
        assert (out / t["folder"] / "train_config.yaml").is_file()
        assert "jtcse train:" in (out / t["folder"] / "train.log").read_text()  # not on the console
        assert not (out / t["folder"] / "checkpoint").exists()  # never resumed: no optimizer state kept
    assert len(lines) == 6 and lines[-1].startswith("trial 5: ") and "6/6 finished" in lines[-1]
    assert (out / "sweep.md").is_file() and json.loads((out / "sweep.json").read_text())["study"] == "base"
    assert (out / "figures" / "history.png").stat().st_size > 1000
    assert "importance" in report["importance_evaluator"] or "not computed" in report["importance_evaluator"]

    # a rerun trains nothing more; --report redraws from the storage
    assert run_sweep(options, say=lines.append) is not None and len(lines) == 6
    code, _ = _cli(["sweep", "--report", str(out)], capsys)
    assert (
        code == 0 and f"optuna-dashboard sqlite:///{(out / 'sweep.db').resolve()}" in capsys.readouterr().out
    )

    best = tomllib.loads((out / "best.toml").read_text(encoding="utf-8"))
    assert best["train"]["lr"] == report["best"]["params"]["train.lr"]
    code, _ = _cli(["train", str(out / "best.toml"), "--output-dir", str(tmp_path / "best_run")], capsys)
    assert code == 0 and (tmp_path / "best_run" / "jtcse.json").is_file()

    # --confirm-seeds: best and base retrained per seed, mean and std of each
    from jtcse.pipeline.sweep.confirm import confirm
    from jtcse.pipeline.sweep.run import prepare

    setup, _ = prepare(options)
    stsb = tmp_path / "data" / "sts" / "STSB" / "senteval"
    shutil.copy(stsb / "sts-dev.csv", stsb / "sts-test.csv")  # the fixture's data has dev pairs only
    confirmed = confirm(setup, report["best"]["params"], [1, 2], tasks=["stsb"], say=lines.append)
    assert len(confirmed["best"]["scores"]) == 2 and confirmed["base"]["std"] is not None
    assert confirmed["best"]["scores"] == confirmed["best"]["dev"]  # the objective: STS-B dev
    base_test = confirmed["base"]["test"]
    assert len(base_test["STSBenchmark"]) == 2 and base_test["avg"][0] is not None
    assert (out / "confirm" / "best-seed2" / "jtcse.json").is_file()
    md = (out / "confirm.md").read_text()
    assert "| best |" in md and "±" in md and "| config | STSBenchmark | avg |" in md


def test_on_evaluate_halts_training_after_that_evaluation(tmp_path: Path, tiny_bert_dir: Path) -> None:
    """The trainer's seam the pruner uses: called at every eval.every with the step and its dev score; True
    stops the run there, without a checkpoint, with the best model so far saved."""
    from jtcse.training.trainer import train

    config = load_config(base_config(tmp_path, tiny_bert_dir), [f"output_dir={tmp_path / 'run'}"])
    seen: list[tuple[int, float]] = []
    result = train(config, on_evaluate=lambda step, score: seen.append((step, score)) or step == 2)
    assert [step for step, _ in seen] == [1, 2] and result.halted and result.step == 2
    assert not result.stopped_early and not (tmp_path / "run" / "checkpoint").exists()
    assert (tmp_path / "run" / "jtcse.json").is_file()


def test_the_sweep_parser_imports_no_optuna_torch_or_numpy() -> None:
    """`jtcse --help` builds every parser: the sweep's must stay light."""
    import subprocess

    code = (
        "import sys; from jtcse.cli.main import build_parser; build_parser('sweep'); "
        "print(sorted(m for m in ('optuna', 'torch', 'numpy', 'sqlalchemy') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_a_study_searching_another_space_is_refused(tmp_path: Path) -> None:
    import optuna

    from jtcse.pipeline.sweep.strategy import check_same_space, distribution

    base = load_config(None)
    before = read_space(space_file(tmp_path, '["train.lr"]\ntype = "float"\nlow = 1e-5\nhigh = 1e-4\n'), base)
    now = read_space(
        space_file(tmp_path, '["train.lr"]\ntype = "float"\nlow = 1e-6\nhigh = 1e-4\n', "b.toml"), base
    )
    study = optuna.create_study(direction="maximize")
    study.add_trial(
        optuna.create_trial(
            params={"train.lr": 5e-5}, distributions={"train.lr": distribution(before[0])}, value=1.0
        )
    )
    check_same_space(study, before)
    with pytest.raises(
        JtcseError, match=r"its trials searched train.lr as .*, now .*use the same space file"
    ):
        check_same_space(study, now)


def test_dry_run_checks_and_lists_the_space(
    tmp_path: Path, tiny_bert_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, space = base_config(tmp_path, tiny_bert_dir), space_file(tmp_path)
    code, _ = _cli(
        [
            "sweep",
            str(config),
            "--space",
            str(space),
            "--trials",
            "3",
            "--output-dir",
            str(tmp_path / "o"),
            "--dry-run",
        ],
        capsys,
    )
    out = capsys.readouterr().out
    assert (
        code == 0
        and "train.lr float [1e-05, 0.01, log]" in out
        and "loss.temperature in {0.05, 0.1, 0.5}" in out
    )
    assert not (tmp_path / "o" / "trials").exists()


def test_grid_space_enumerates_choices_and_stepped_ranges(tmp_path: Path) -> None:
    from jtcse.pipeline.sweep.strategy import grid_size, grid_space

    text = (
        '["train.batch_size"]\ntype = "int"\nlow = 8\nhigh = 24\nstep = 8\n'
        '["loss.ictm"]\ntype = "float"\nlow = 0.0\nhigh = 1.0\nstep = 0.5\n'
    )
    params = read_space(space_file(tmp_path, text), load_config(None))
    assert grid_space(params) == {"train.batch_size": [8, 16, 24], "loss.ictm": [0.0, 0.5, 1.0]}
    assert grid_size(params) == 9
    lr = read_space(
        space_file(tmp_path, '["train.lr"]\ntype = "float"\nlow = 1e-5\nhigh = 1e-4\n', "b.toml"),
        load_config(None),
    )
    with pytest.raises(JtcseError, match=r"--sampler grid: train\.lr is a continuous float"):
        grid_space(lr)


def test_grid_sweep_runs_each_point_once_with_hyperband(tmp_path: Path, tiny_bert_dir: Path) -> None:
    config, out = base_config(tmp_path, tiny_bert_dir, steps=2), tmp_path / "grid"
    space = space_file(tmp_path, '["loss.temperature"]\ntype = "categorical"\nchoices = [0.05, 0.1]\n')
    options = SweepOptions(config, space, out, sampler="grid", pruner="hyperband", threads=1)
    report = run_sweep(options, say=lambda _line: None)  # no --trials: the grid's size
    assert report is not None
    assert sorted(t["params"]["loss.temperature"] for t in report["trials"]) == [0.05, 0.1]


def test_the_sensitivity_study_command_passes_the_dry_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """experiments/sweep_study.py's command (the committed study's reproduce line) is valid: its config,
    its --set keys and the packaged space file pass every check that needs no training."""
    import importlib.util

    script = Path(__file__).resolve().parents[1] / "experiments" / "sweep_study.py"
    spec = importlib.util.spec_from_file_location("sweep_study", script)
    assert spec is not None and spec.loader is not None
    study = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(study)
    monkeypatch.chdir(script.parents[1])  # the space file is named relative to the repository
    args = study.build_parser().parse_args(["--runs-dir", str(tmp_path / "o"), "--data-dir", str(tmp_path)])
    argv = study.sweep_argv(args)
    assert argv[:2] == ["jtcse", "sweep"] and "--confirm-seeds" in argv
    code, err = _cli([*argv[1:], "--dry-run"], capsys)
    out = capsys.readouterr().out
    assert code == 0, err
    assert "model.num_ca_layers in {1, 2, 3, 6}" in out and "train.batch_size in {16, 32, 64}" in out
