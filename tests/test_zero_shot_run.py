"""``jtcse eval zero-shot`` end to end on a tiny model: small in-memory tasks of all five types through
mteb's real evaluators, the report files, the per-task cache, a failing task recorded while the others
finish, and the command line. Offline: nothing comes from the hub."""

from __future__ import annotations

import json
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import pytest

mteb = pytest.importorskip("mteb")

import zero_shot_tasks as tiny  # noqa: E402
from jtcse.cli.main import main  # noqa: E402
from jtcse.encoder import Encoder  # noqa: E402
from jtcse.errors import JtcseWarning  # noqa: E402
from jtcse.evaluation.mteb import MtebEncoder  # noqa: E402
from jtcse.evaluation.zero_shot import runner  # noqa: E402
from jtcse.evaluation.zero_shot import suite as suite_module  # noqa: E402
from jtcse.evaluation.zero_shot.report import build_report, write_report  # noqa: E402
from jtcse.evaluation.zero_shot.runner import TaskJob, jobs_for, run_model  # noqa: E402
from jtcse.evaluation.zero_shot.suite import Suite, load_suite, reported_metrics  # noqa: E402


def tiny_suite(*, broken: bool = True) -> Suite:
    """The packaged suite's categories (their real score keys) over the tiny tasks."""
    real = load_suite()
    paper = dict.fromkeys(real.columns, 50.0)
    entries = [
        suite_module.SuiteEntry("sts22", "en", tiny.NAMES["sts22"], ("test",), "en", paper),
        suite_module.SuiteEntry("sts22", "de", tiny.NAMES["sts22"], ("test",), "de", paper),
        suite_module.SuiteEntry(
            "sts22", "avg", tiny.NAMES["sts22"], ("test",), None, paper, in_average=False
        ),
        suite_module.SuiteEntry(
            "classification", "Tiny", tiny.NAMES["classification"], ("test",), None, paper
        ),
        suite_module.SuiteEntry("retrieval", "Tiny", tiny.NAMES["retrieval"], ("test",)),
        suite_module.SuiteEntry("reranking", "Tiny", tiny.NAMES["reranking"], ("test",), None, paper),
        suite_module.SuiteEntry("bitext", "Tiny", tiny.NAMES["bitext"], ("test",), None, paper),
    ]
    if broken:
        entries.insert(
            4, suite_module.SuiteEntry("classification", "Broken", tiny.BROKEN, ("test",), None, paper)
        )
    return Suite(tuple(entries), real.categories, real.columns, real.reference_column, real.source)


def run_cli(argv: list[str]) -> int:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    return int(exit_info.value.code or 0)


def factory(job: TaskJob) -> object:
    return tiny.make_task(job.task)


@pytest.fixture(scope="module")
def wrapper(tiny_bert_dir: Path) -> MtebEncoder:
    return MtebEncoder(Encoder(tiny_bert_dir, device="cpu"), name="jtcse/tiny", batch_size=8)


def test_evaluators_report_the_keys_the_suite_reads(wrapper: MtebEncoder) -> None:
    """reported_metrics (used on real tasks' metadata) against what mteb's evaluators really return."""
    tasks = [tiny.make_task(name) for name in tiny.NAMES.values()]
    result = mteb.evaluate(wrapper, tasks, cache=None, show_progress_bar=False, co2_tracker=False)
    for task, task_result in zip(tasks, result.task_results, strict=True):
        for row in task_result.scores["test"]:
            assert reported_metrics(task) <= set(row), task.metadata.name


def test_run_cache_failure_and_report(
    wrapper: MtebEncoder, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    suite = tiny_suite()
    jobs = jobs_for(suite)
    assert [j.task for j in jobs] == [e.task for e in suite.entries if e.row not in ("de", "avg")]
    run = run_model(wrapper, jobs, tmp_path, label="tiny", model="tiny", factory=factory, batch_size=8)

    assert list(run.failures) == [tiny.BROKEN]
    assert run.failures[tiny.BROKEN].startswith(
        "ConnectionError: TinyBrokenClassification: the dataset is not"
    )
    assert "\n" not in run.failures[tiny.BROKEN]
    assert sorted(run.scores) == sorted(tiny.NAMES.values()) and run.cached == []
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == len(jobs) and lines[0].startswith(
        f"zero-shot tiny [1/{len(jobs)}] TinySTS22: done in "
    )
    assert "ETA" in lines[0] and "FAILED (ConnectionError" in "".join(lines) and lines[-1].endswith("; done")

    report = build_report(suite, [run])
    json_path, md_path = write_report(tmp_path, report)
    saved = json.loads(json_path.read_text())
    cats = saved["categories"]
    assert set(cats) == set(suite.categories) and saved["failures"][0]["task"] == tiny.BROKEN
    sts = {r["row"]: r["measured"]["tiny"]["cosine_spearman"] for r in cats["sts22"]["rows"]}
    assert sts["avg"] == pytest.approx((sts["en"] + sts["de"]) / 2, abs=1e-3)
    assert cats["sts22"]["average"]["measured"]["tiny"] == pytest.approx(sts["avg"], abs=1e-3)
    assert cats["sts22"]["rows"][0]["gap"]["tiny"] == pytest.approx(sts["en"] - 50.0, abs=1e-3)
    assert cats["classification"]["average"]["counted"]["tiny"] == 1  # the broken task is not counted
    assert cats["classification"]["average"]["total"] == 2
    metric_rows = {r["metric"]: r["measured"]["tiny"] for r in cats["retrieval"]["metric_rows"]}
    assert len(metric_rows) == 15 and all(0 <= v <= 100 for v in metric_rows.values())
    assert cats["retrieval"]["average"]["measured"]["tiny"] == pytest.approx(
        sum(metric_rows.values()) / 15, abs=1e-3
    )
    assert 0 < cats["reranking"]["average"]["measured"]["tiny"] <= 100
    assert cats["bitext"]["average"]["measured"]["tiny"] > 0
    markdown = md_path.read_text()
    assert "| **Avg. MAP** |" in markdown and "[inferred]" in markdown and "## Failed tasks" in markdown
    assert markdown.count("JTCSE UCD") >= 4
    partial = cats["classification"]["average"]["measured"]["tiny"]
    assert f"| classification | {partial:.2f}* | 56.67 |" in markdown  # 1 of its 2 rows ran
    assert f"| sts22 | {sts['avg']:.2f} | 39.21 |" in markdown

    # a rerun reads the finished tasks back and retries only the failed one
    again = run_model(wrapper, jobs, tmp_path, label="tiny", model="tiny", factory=factory, batch_size=8)
    assert sorted(again.cached) == sorted(tiny.NAMES.values()) and list(again.failures) == [tiny.BROKEN]
    assert again.scores == run.scores
    # --overwrite runs them again
    fresh = run_model(wrapper, jobs, tmp_path, label="tiny", model="tiny", factory=factory, overwrite=True)
    assert fresh.cached == [] and fresh.scores.keys() == run.scores.keys()


def test_command_line(
    tiny_bert_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(runner, "hub_task", factory)  # the tasks' data come from memory, not the hub
    monkeypatch.setattr(suite_module, "load_suite", lambda: tiny_suite(broken=False))
    out = tmp_path / "zs"
    argv = ["eval", "zero-shot", "--model", str(tiny_bert_dir), "--device", "cpu", "--output-dir", str(out)]
    assert run_cli([*argv, "--categories", "sts22,bitext", "--batch-size", "8"]) == 0
    captured = capsys.readouterr()
    assert "sts22" in captured.out and "bitext" in captured.out and "classification" not in captured.out
    saved = json.loads((out / "zero_shot.json").read_text())
    assert list(saved["categories"]) == ["sts22", "bitext"] and saved["failures"] == []

    monkeypatch.setattr(suite_module, "load_suite", tiny_suite)  # now with the broken task
    # the same model twice: two columns; the second finds every finished task of the first in the cache
    code = run_cli([*argv, "--model", str(tiny_bert_dir), "--categories", "classification,sts22", "--quiet"])
    assert code == 1
    err = capsys.readouterr().err
    name = tiny_bert_dir.name
    assert f"2 task(s) failed: {name}#1:{tiny.BROKEN}, {name}#2:{tiny.BROKEN}" in err
    saved = json.loads((out / "zero_shot.json").read_text())
    assert [m["cached"] for m in saved["models"]] == [1, 2]  # TinySTS22 from the first command
    assert "zero-shot " not in err  # --quiet: no progress lines


def test_list_needs_no_model(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(["eval", "zero-shot", "--list", "--categories", "reranking"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "reranking\tAlloprofReranking" and out[-1] == "reranking\t14" and len(out) == 16


def test_a_cached_result_counts_only_when_it_has_what_the_job_needs(tmp_path: Path) -> None:
    job = TaskJob("T", ("test",), ("map_at_1000",))
    path = runner.cache_path(tmp_path, "jtcse/my model", "abc123", "T")
    assert path == tmp_path / "tasks" / "jtcse__my_model" / "abc123" / "T.json"
    path.parent.mkdir(parents=True)
    record = {"format": runner.CACHE_FORMAT, "scores": {"test": {"default": {"map_at_1000": 0.5}}}}
    path.write_text(json.dumps(record))
    assert runner.read_cached(path, job) == record["scores"]
    assert runner.read_cached(path, TaskJob("T", ("test",), ("map_at_1000", "mrr_at_10"))) is None
    assert runner.read_cached(path, TaskJob("T", ("dev",), ("map_at_1000",))) is None
    path.write_text("{torn")
    with pytest.warns(JtcseWarning, match="T.json: damaged zero-shot task result"):
        assert runner.read_cached(path, job) is None


DAMAGED_SCORES = {
    "a string": {"test": {"default": {"cosine_spearman": "0.5"}}},
    "null": {"test": {"default": {"cosine_spearman": None}}},
    "a list": {"test": {"default": {"cosine_spearman": [0.5]}}},
    "a split that is a list": {"test": [{"cosine_spearman": 0.5}]},
    "out of range": {"test": {"default": {"cosine_spearman": 7.0}}},
}


@pytest.mark.parametrize("damage", DAMAGED_SCORES)
def test_a_damaged_cached_result_is_a_note_and_the_task_runs_again(
    wrapper: MtebEncoder, tmp_path: Path, damage: str
) -> None:
    """Issue 26: a cached score that is a string, null or a list (or a split holding a list) was a
    traceback; it is now one note naming the file and the field, and the task is evaluated again."""
    job = TaskJob(tiny.NAMES["sts22"], ("test",), ("cosine_spearman",))
    path = runner.cache_path(tmp_path, wrapper.name, wrapper.revision, job.task)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"format": runner.CACHE_FORMAT, "scores": DAMAGED_SCORES[damage]}))
    with pytest.warns(JtcseWarning) as notes:
        run = run_model(wrapper, [job], tmp_path, label="t", model="t", factory=factory, progress=False)
    (note,) = [str(n.message) for n in notes if issubclass(n.category, JtcseWarning)]
    assert note.startswith(f"{path}: damaged zero-shot task result (field scores.test")
    assert note.endswith("ignored, running the task again") and "\n" not in note
    assert run.cached == [] and not run.failures
    values = [m["cosine_spearman"] for m in run.scores[job.task]["test"].values()]
    assert values and all(isinstance(v, float) for v in values)
    assert runner.read_cached(path, job) == run.scores[job.task]  # the redone result replaced it
