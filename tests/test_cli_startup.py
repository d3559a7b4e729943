"""The command line starts fast: ``jtcse --help``, ``--version``, every command's ``--help`` (nested ones
included, found by walking the parser, so a new command is covered without editing this file) and
``jtcse eval zero-shot --list`` import none of numpy, scipy, torch or transformers; ``jtcse encode`` and
``jtcse search`` on an ONNX export import no torch. ``jtcse --help`` builds every command's parser, so
each ``jtcse.cli`` module's top-level imports and ``add_parser`` stay light: heavy imports go in ``run``."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

from jtcse.cli.main import COMMANDS, build_parser

REPO_ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("numpy", "scipy", "torch", "transformers")

# Runs jtcse's main in a fresh interpreter, then prints the heavy modules it imported on the last line.
PROBE = """\
import sys
from jtcse.cli.main import main
try:
    main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
else:
    code = 0
print("exit", code, "heavy", *sorted(m for m in {heavy!r} if m in sys.modules))
"""


def _command_paths(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command and sub-command under ``parser``, as the words that name it (``("eval", "sts")``)."""
    paths = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                paths.append((*prefix, name))
                paths += _command_paths(sub, (*prefix, name))
    return paths


COMMAND_PATHS = _command_paths(build_parser())


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO_ROOT / "src"), "HF_HUB_OFFLINE": "1"}


def _probe(*words: str) -> tuple[str, list[str]]:
    """``(stdout before the probe's line, heavy modules imported)``; fails on a non-zero exit."""
    proc = subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=HEAVY), *words],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    *printed, last = proc.stdout.rstrip("\n").split("\n")
    _, code, _, *heavy = last.split(" ")
    assert code in ("0", "None"), f"jtcse {' '.join(words)} exited {code}: {proc.stderr[-2000:]}"
    return "\n".join(printed), heavy


def test_every_command_is_walked() -> None:
    assert {(name,) for name in COMMANDS} <= set(COMMAND_PATHS)
    assert {("eval", "sts"), ("eval", "transfer"), ("data", "where")} <= set(COMMAND_PATHS)


@pytest.mark.parametrize("words", [(), *COMMAND_PATHS], ids=lambda words: " ".join(words) or "jtcse")
def test_help_imports_nothing_heavy(words: tuple[str, ...]) -> None:
    printed, heavy = _probe(*words, "--help")
    assert printed.startswith("usage: jtcse")
    assert heavy == [], f"jtcse {' '.join(words)} --help imported {heavy}"


def test_version_and_the_zero_shot_list_import_nothing_heavy() -> None:
    printed, heavy = _probe("--version")
    assert printed.startswith("jtcse ") and heavy == []
    printed, heavy = _probe("eval", "zero-shot", "--list")
    assert "STS22" in printed and heavy == [], heavy


@pytest.fixture(scope="module")
def onnx_dir(tiny_onnx_dir: Path) -> Path:
    return tiny_onnx_dir


def _imported_by(*words: str) -> set[str]:
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "jtcse", *words],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stderr.splitlines()
    return {line.split("|")[-1].strip() for line in lines if line.startswith("import time:")}


@pytest.mark.parametrize("output", ["vectors.npy", "corpus.vectors"])
def test_encode_on_an_export_imports_no_torch(onnx_dir: Path, tmp_path: Path, output: str) -> None:
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("a cat sits\nthe dog runs\n\nhello world\n", encoding="utf-8")
    imported = _imported_by("encode", "--model", str(onnx_dir), "--input", str(corpus), "--output",
                            str(tmp_path / output), "--no-progress")  # fmt: skip
    assert (tmp_path / output).exists()
    assert "onnxruntime" in imported and not imported & {"torch", "transformers"}


def test_search_on_an_export_imports_no_torch(onnx_dir: Path, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("a cat sits\nthe dog runs\nhello world\n", encoding="utf-8")
    for _ in range(2):  # the first search builds and saves the index, the second reuses it
        imported = _imported_by("search", "--model", str(onnx_dir), "--corpus", str(corpus), "--query", "cat")
        assert "onnxruntime" in imported and not imported & {"torch", "transformers"}
    vectors = tmp_path / "corpus.vectors"
    _imported_by("encode", "--model", str(onnx_dir), "--input", str(corpus), "--output", str(vectors))
    pytest.importorskip("faiss")
    _imported_by("index", "--vectors", str(vectors), "--kind", "flat")
    imported = _imported_by("search", "--model", str(onnx_dir), "--index", str(vectors / "index-flat"),
                            "--query", "cat")  # fmt: skip
    assert "faiss" in imported and not imported & {"torch", "transformers"}
