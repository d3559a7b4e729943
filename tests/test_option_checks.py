"""Options that used to end in a traceback or a silently useless result: ``eval transfer
--classifier-device`` (the one device check, before any data or model), ``jtcse ensemble`` with every weight
0 (its vectors would all be zero), and ``--normalize`` of a zero vector (left at zero, said so, never called
unit length)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from jtcse.cli.main import main


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    return int(exit_info.value.code or 0), capsys.readouterr().err


@pytest.mark.parametrize(
    ("device", "message"),
    [
        ("banana", "not a device name (cpu, cuda, cuda:N, mps)"),
        ("cuda:999", "CUDA is not available on this machine|only "),  # either, by the machine
    ],
)
def test_classifier_device_is_checked_before_data_and_model(tmp_path: Path, capsys, device, message) -> None:
    argv = ["eval", "transfer", "--model", str(tmp_path / "no-model"), "--tasks", "MR"]
    code, err = run_cli(
        [*argv, "--classifier-device", device, "--data-dir", str(tmp_path / "no-data")], capsys
    )
    assert code == 2 and "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"jtcse: error: --classifier-device {device}: "), err
    assert any(part in lines[0] for part in message.split("|")), err


def test_ensemble_with_every_weight_zero_is_refused(tiny_bert_dir: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "zero"
    argv = ["ensemble", "--member", f"{tiny_bert_dir}:0", "--member", f"{tiny_bert_dir}:0.0"]
    code, err = run_cli([*argv, "--output", str(out)], capsys)
    assert code == 2 and not out.exists()
    assert err.splitlines() == [
        "jtcse: error: ensemble: every member's weight is 0, so every vector would be all zeros; "
        "give at least one member a non-zero weight (--member PATH:WEIGHT)"
    ]


def test_normalize_leaves_a_zero_vector_at_zero_and_says_so(
    tiny_bert_dir: Path, tmp_path: Path, capsys
) -> None:
    """Weights 1 and -1 of one model cancel out: allowed (not all 0), but the vectors are zero."""
    out = tmp_path / "cancel"
    argv = ["ensemble", "--member", f"{tiny_bert_dir}:1", "--member", f"{tiny_bert_dir}:-1"]
    assert run_cli([*argv, "--output", str(out)], capsys)[0] == 0
    sentences = tmp_path / "s.txt"
    sentences.write_text("a cat\nsnow on the hills\n", "utf-8")
    vectors = tmp_path / "v.npy"
    argv = ["encode", "--model", str(out), "--device", "cpu", "--input", str(sentences)]
    code, err = run_cli([*argv, "--output", str(vectors), "--normalize"], capsys)
    assert code == 0, err
    assert not np.load(vectors).any()  # zeros, not NaN and not made up
    lines = err.splitlines()
    assert lines == [
        "jtcse: warning: 2 of 2 distinct vector(s) are all zero and stay zero when normalised (not unit "
        "length); an ensemble whose weights cancel out gives such vectors",
        f"wrote 2 x 32 float32 vectors, unit length (except 2 all-zero vector(s): left at zero) to {vectors}",
    ], err
