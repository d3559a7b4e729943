"""What a user sees: ``jtcse demo``'s stages print only jtcse's own lines and progress bars (no third-party
bars, logs or warnings); ``jtcse --verbose`` lets the libraries speak."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from jtcse.cli.main import main
from serve_helpers import ENV
from sts_toy import write_toy_sts
from train_fixtures import write_corpus

# jtcse's lines: the demo's, the trainer's / commands', the runner's stage lines
JTCSE_LINE = re.compile(r"^(\[demo\] |jtcse |  stage \d)")
# jtcse's progress bars: training (no label, then its dev score) and the Encoder's "Encoding"
JTCSE_BAR = re.compile(r"^(Encoding: |dev -?[\d.]+ \(best -?[\d.]+\): )?\s*\d+%\|")


def jtcse(*args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "jtcse", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=600)


def foreign(stderr: str) -> list[str]:
    """The pieces of ``stderr`` (lines, and a bar's redraws after \\r) that are not jtcse's."""
    pieces = [p for line in stderr.split("\n") for p in line.split("\r")]
    return [p for p in pieces if p.strip() and not JTCSE_LINE.match(p) and not JTCSE_BAR.match(p)]


def test_demo_prints_only_jtcse_lines_and_bars(tiny_bert_dir: Path, tmp_path: Path) -> None:
    data = write_toy_sts(tmp_path / "data", pairs=8)
    (data / "unsup").mkdir()
    write_corpus(data / "unsup" / "wiki1m_for_simcse.head40.txt", n=40)
    argv = ["demo", "--model", str(tiny_bert_dir), "--data-dir", str(data)]
    argv += ["--output-dir", str(tmp_path / "demo")]
    argv += ["--sentences", "16", "--batch-size", "8", "--max-len", "16", "--num-ca-layers", "2"]
    argv += ["--tasks", "STS12", "STSBenchmark"]
    run = jtcse(*argv)
    assert run.returncode == 0, run.stderr[-3000:]
    assert foreign(run.stderr) == []
    # the evaluations show their progress (which percentages tqdm draws depends on its 0.1 s redraw interval:
    # a fast evaluation may close its bar, leave=False, before drawing 100%)
    assert re.search(r"Encoding: +\d+%\|", run.stderr)
    assert re.search(r"dev [\d.]+ \(best [\d.]+\): 100%\|", run.stderr)  # and training
    assert "%|" not in run.stdout and "| JTCSE twin tower |" in run.stdout


def test_verbose_lets_the_libraries_speak(tiny_bert_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """In process (transformers already imported: the quiet model loads, not the environment, do it)."""
    argv = ["similarity", "--model", str(tiny_bert_dir), "--device", "cpu", "a cat", "a dog"]
    printed = []
    for flags in ([], ["--verbose"]):
        with pytest.raises(SystemExit) as info:
            main([*flags, *argv])
        assert info.value.code == 0
        printed.append(capsys.readouterr())
    quiet, verbose = printed
    assert quiet.err.strip() == "" and float(quiet.out) == float(verbose.out)
    assert "Loading weights" in verbose.err and foreign(verbose.err)
