"""Inputs of the sweep tests: a tiny base config (a few Wiki sentences when the shared data is there, the
synthetic corpus otherwise), search spaces, and a command line for `jtcse sweep` subprocesses."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from train_fixtures import tiny_config

WIKI = Path(__file__).resolve().parents[2] / "shared" / "data" / "unsup" / "wiki1m_for_simcse.head11914.txt"
SPACE = """\
["train.lr"]
type = "float"
low = 1e-5
high = 1e-2
log = true

["loss.temperature"]
type = "categorical"
choices = [0.05, 0.1, 0.5]
"""


def base_config(tmp_path: Path, model_dir: Path, *, steps: int = 4, sentences: int = 32) -> Path:
    """A SimCSE config on a tiny BERT: ``steps`` steps, STS-B dev at every step, one thread."""
    corpus = tmp_path / "corpus.txt"
    if WIKI.is_file():
        with WIKI.open(encoding="utf-8") as fh:
            corpus.write_text("".join(next(fh) for _ in range(sentences)), encoding="utf-8")
    raw = tiny_config(
        tmp_path,
        model_dir,
        train={"max_steps": steps, "save_every": 0, "batch_size": 8},
        eval={"every": 1, "batch_size": 32},
    )
    path = tmp_path / "base.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


def space_file(tmp_path: Path, text: str = SPACE, name: str = "space.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def sweep_command(config: Path, space: Path, out: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "jtcse", "sweep", str(config), "--space", str(space), "--output-dir", str(out),
        "--sampler", "random", "--seed", "0", "--heartbeat", "1", *extra,
    ]  # fmt: skip


def run_sweep_cli(argv: list[str], timeout: float = 240) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env, check=False)
