"""``jtcse eval sts`` end to end on a tiny synthetic dataset with a tiny random BERT."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from jtcse.cli.main import main
from jtcse.evaluation.sts import TASKS, evaluate_sts
from sts_toy import write_toy_sts


@pytest.fixture(scope="module")
def toy_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_toy_sts(tmp_path_factory.mktemp("toy_sts"), pairs=6)


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


def test_eval_sts_end_to_end(
    tiny_bert_dir: Path, toy_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "results" / "scores.json"
    argv = ["eval", "sts", "--model", str(tiny_bert_dir), "--pooler", "avg", "--data-dir", str(toy_data)]
    code, stdout, stderr = run_cli([*argv, "--output", str(out), "--quiet", "--batch-size", "5"], capsys)
    assert code == 0, stderr
    header = stdout.splitlines()[2]
    assert [cell.strip() for cell in header.split("|")[1:-1]] == [*TASKS, "Avg."]

    payload = json.loads(out.read_text())
    assert list(payload) == [*TASKS, "avg", "details", "pairs"]
    assert payload["details"]["STS15"]["n_pairs"] == 5 * 6
    assert payload["details"]["SICKRelatedness"]["n_pairs"] == 9
    assert payload["details"]["pooler"] == "avg"
    for task in TASKS:
        assert f"{payload[task]:.2f}" in stdout

    # The CLI computes exactly what the library computes.
    from jtcse import Encoder

    report = evaluate_sts(Encoder(tiny_bert_dir, pooler="avg"), data_dir=toy_data, show_progress=False)
    for task in TASKS:
        assert payload[task] == pytest.approx(report.scores[task], abs=1e-6)

    # Per-pair data: one entry per scored pair, and `jtcse plot` turns it into scatter plots.
    for task in TASKS:
        pairs = payload["pairs"][task]
        assert len(pairs["gold"]) == len(pairs["cosine"]) == payload["details"][task]["n_pairs"]
    assert payload["pairs"]["STS12"]["subset"][0] in payload["details"]["STS12"]["subsets"]
    pytest.importorskip("matplotlib")
    code, _, stderr = run_cli(["plot", str(out), "--out", str(tmp_path / "plots")], capsys)
    assert code == 0, stderr
    pngs = sorted(p.name for p in (tmp_path / "plots").glob("*.png"))
    assert "scatter_STS12.png" in pngs and all((tmp_path / "plots" / p).stat().st_size > 0 for p in pngs)


def test_eval_sts_dev_mode_with_task_alias(
    tiny_bert_dir: Path, toy_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["eval", "sts", "--model", str(tiny_bert_dir), "--data-dir", str(toy_data), "--mode", "dev"]
    code, stdout, stderr = run_cli([*argv, "--tasks", "sts-b", "--quiet"], capsys)
    assert code == 0, stderr
    assert "------ dev ------" in stdout and "STSBenchmark" in stdout and "SICKRelatedness" not in stdout


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--tasks", "STS17"], "--tasks STS17: unknown STS task"),
        (["--pooler", "max"], "--pooler max: unknown pooler"),
        (["--mode", "dev", "--tasks", "STS12"], "--mode dev: STS12 has no dev split"),
        (["--model", "./no/such/model"], "--model ./no/such/model: no such directory"),
        (["--data-dir", "/no/such/data"], "--data-dir /no/such/data: no such directory"),
    ],
)
def test_eval_sts_bad_input_is_one_line_exit_2(
    extra: list[str], message: str, tiny_bert_dir: Path, toy_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["eval", "sts", "--model", str(tiny_bert_dir), "--data-dir", str(toy_data), "--quiet", *extra]
    code, _, stderr = run_cli(argv, capsys)
    assert code == 2
    assert stderr.startswith(f"jtcse: error: {message}")
    assert stderr.count("\n") == 1 and "Traceback" not in stderr


def test_eval_sts_broken_data_file_exit_2(
    tiny_bert_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = write_toy_sts(tmp_path / "data", pairs=3)
    (data / "sts" / "STS12" / "senteval" / "STS.gs.MSRvid.txt").write_text("1\n\nnot-a-score\n2.5\n")
    argv = [
        "eval",
        "sts",
        "--model",
        str(tiny_bert_dir),
        "--data-dir",
        str(data),
        "--tasks",
        "STS12",
        "--quiet",
    ]
    code, _, stderr = run_cli(argv, capsys)
    assert code == 2
    assert "STS.gs.MSRvid.txt:3: gold score 'not-a-score' is not a number" in stderr


def test_eval_without_benchmark_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, stderr = run_cli(["eval"], capsys)
    assert code == 2 and "BENCHMARK" in stderr


# ------------------------------------------------------------------ where results go: checked before any work
@pytest.mark.parametrize(
    "command",
    [
        ["eval", "zero-shot", "--model", "MODEL", "--output-dir"],
        ["eval", "transfer", "--model", "MODEL", "--tasks", "MR", "--output"],
        ["eval", "sts", "--model", "MODEL", "--output"],
    ],
    ids=["zero-shot", "transfer", "sts"],
)
def test_eval_output_is_checked_before_any_task(
    command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str], read_only
) -> None:
    """A model that does not exist: the output's one line comes first (today's failure after every task ran,
    or after all the training, cannot happen)."""
    command = [str(tmp_path / "no-model") if word == "MODEL" else word for word in command]
    option = command[-1]
    wants_folder = option == "--output-dir"
    file = tmp_path / "notes.txt"
    file.write_text("mine")
    folder = tmp_path / "folder"
    folder.mkdir()
    frozen = read_only(tmp_path / "frozen")
    cases = [
        (
            file if wants_folder else folder,
            "is a file, not a folder" if wants_folder else "is a folder, not a file",
        ),
        (frozen if wants_folder else frozen / "r.json", f"cannot write in {frozen}: "),
        (file / "r.json", f"cannot be created: {file} is a file"),
    ]
    for path, message in cases:
        code, _, err = run_cli([*command, str(path)], capsys)
        assert code == 2 and err.startswith(f"jtcse: error: {option} {path}: "), err
        assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert file.read_text() == "mine" and os.listdir(frozen) == [] and os.listdir(folder) == []


def test_zero_shot_refuses_a_folder_of_someone_elses_files(tmp_path: Path, capsys) -> None:
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "draft.md").write_text("mine")
    argv = ["eval", "zero-shot", "--model", str(tmp_path / "no-model"), "--output-dir", str(theirs)]
    code, _, err = run_cli(argv, capsys)
    assert code == 2 and f"--output-dir {theirs}: exists and is not empty" in err, err
    assert os.listdir(theirs) == ["draft.md"]


def test_reports_record_the_pooler_used_not_the_flag(tiny_bert_dir: Path, minilm_dir: Path) -> None:
    """Without --pooler a report names the model's own pooler (minilm's sentence-transformers one: mean)."""
    from jtcse import Encoder
    from jtcse.cli.options import pooler_used

    assert pooler_used(Encoder(tiny_bert_dir, device="cpu")) == "cls_before_pooler"
    assert pooler_used(Encoder(minilm_dir, device="cpu")) == "avg"
    assert pooler_used(Encoder(tiny_bert_dir, pooler="avg_first_last", device="cpu")) == "avg_first_last"
    members = [Encoder(tiny_bert_dir, device="cpu"), Encoder(tiny_bert_dir, pooler="avg", device="cpu")]
    assert pooler_used(Encoder.ensemble(members, [1.0, 1.0])) == ["cls_before_pooler", "avg"]
