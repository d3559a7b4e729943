"""The training configs shipped inside the package (jtcse.configs): found by name from any folder, by
``jtcse train/distill/ablate``, ``jtcse reproduce`` and ``jtcse configs list | show | copy``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from jtcse.cli.main import main
from jtcse.configs import names, packaged_dir, packaged_path, resolve_config
from jtcse.errors import JtcseError
from jtcse.pipeline.recipes import RECIPES, find_configs_dir

SRC = Path(__file__).resolve().parents[1] / "src"


def _jtcse(*argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The CLI in a fresh process started in ``cwd`` (outside the checkout)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(
        [sys.executable, "-m", "jtcse", *argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def test_names_are_the_files_with_dashes() -> None:
    files = sorted(p.name for p in packaged_dir().glob("*.toml"))
    assert names() == sorted(f.removesuffix(".toml").replace("_", "-") for f in files)
    assert {"simcse-minilm", "jtcse-bert-base", "distill-minilm"} <= set(names())
    for spelling in ("simcse-minilm", "simcse_minilm", "simcse_minilm.toml", " SIMCSE-MiniLM "):
        assert packaged_path(spelling) == packaged_dir() / "simcse_minilm.toml"
    assert packaged_path("../simcse_minilm") is None and packaged_path("") is None


def test_a_file_wins_over_a_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "simcse-minilm").write_text('method = "simcse"\n', encoding="utf-8")
    assert resolve_config("simcse-minilm") == Path("simcse-minilm")
    assert resolve_config("jtcse-minilm") == packaged_dir() / "jtcse_minilm.toml"


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("simcse-mini", r"^simcse-mini: neither a config file nor a packaged config; .*simcse-minilm"),
        (
            "configs/simcse_minilm.toml",
            r"^configs/simcse_minilm.toml: no such config file; the packaged config of that name is "
            r"'simcse-minilm'",
        ),
        ("mine.yaml", r"^mine.yaml: no such config file; jtcse configs list shows"),
    ],
)
def test_neither_file_nor_name_is_one_line(tmp_path: Path, monkeypatch, given: str, message: str) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(JtcseError, match=message) as caught:
        resolve_config(given)
    assert "\n" not in str(caught.value)


def test_load_config_takes_a_name(tmp_path: Path, monkeypatch) -> None:
    from jtcse.training.config import load_config

    monkeypatch.chdir(tmp_path)
    config = load_config("jtcse-minilm", ["seed=3"])
    assert config.method == "jtcse" and config.seed == 3


def test_every_recipe_finds_its_configs_from_any_folder(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    configs = find_configs_dir()
    for recipe in RECIPES.values():
        assert all((configs / stage.config).is_file() for stage in recipe.stages), recipe.name
    with pytest.raises(JtcseError, match="--configs nowhere: no such directory"):
        find_configs_dir("nowhere")


def test_train_side_commands_take_a_name_outside_the_checkout(tmp_path: Path) -> None:
    result = _jtcse("ablate", "simcse-minilm", "--grid", "model.dropout=0.1,0.05", "--dry-run", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "runs/ablate_simcse_minilm/runs/model.dropout-0.05_seed-1" in result.stdout
    result = _jtcse("train", "simcse-minilmm", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("jtcse: error: simcse-minilmm: neither a config file nor a packaged")
    assert len(result.stderr.splitlines()) == 1


def test_configs_list_and_show(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as done:
        main(["configs", "list"])
    assert done.value.code == 0
    rows = capsys.readouterr().out.splitlines()
    assert [row.split()[0] for row in rows] == names()
    assert all(len(row.split(maxsplit=1)) == 2 for row in rows)  # every name has its description
    result = _jtcse("configs", "show", "jtcse-minilm", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == (packaged_dir() / "jtcse_minilm.toml").read_text(encoding="utf-8")


def test_configs_show_an_unknown_name(capsys) -> None:
    with pytest.raises(SystemExit) as done:
        main(["configs", "show", "bert"])
    assert done.value.code == 2
    assert capsys.readouterr().err.startswith("jtcse: error: unknown config 'bert': the packaged configs are")


def test_configs_copy_refuses_to_overwrite(tmp_path: Path, capsys) -> None:
    original = (packaged_dir() / "simcse_minilm.toml").read_text(encoding="utf-8")
    dest = tmp_path / "mine.toml"
    with pytest.raises(SystemExit) as done:
        main(["configs", "copy", "simcse-minilm", str(dest)])
    assert done.value.code == 0 and dest.read_text(encoding="utf-8") == original
    dest.write_text("# edited\n", encoding="utf-8")
    with pytest.raises(SystemExit) as done:
        main(["configs", "copy", "simcse-minilm", str(dest)])
    assert done.value.code == 2 and "already exists; pass --overwrite" in capsys.readouterr().err
    assert dest.read_text(encoding="utf-8") == "# edited\n"
    with pytest.raises(SystemExit) as done:
        main(["configs", "copy", "simcse-minilm", str(dest), "--overwrite"])
    assert done.value.code == 0 and dest.read_text(encoding="utf-8") == original
    with pytest.raises(SystemExit) as done:  # a folder gets the file under its own name
        main(["configs", "copy", "jtcse-minilm", str(tmp_path)])
    assert done.value.code == 0 and (tmp_path / "jtcse_minilm.toml").is_file()
    with pytest.raises(SystemExit) as done:
        main(["configs", "copy", "jtcse-minilm", str(tmp_path / "no" / "x.toml")])
    assert done.value.code == 2
