"""Run the suite's mteb tasks for one model: mteb's own evaluators, a cached result per task, failures kept.

Each mteb task runs once per model (STS22.v2 once for its 18 language rows) through ``mteb.evaluate``, which
also leaves its full result JSON under ``<output_dir>/mteb/``. What the suite needs of it (the score keys of
its rows, per split and subset) is cached as ``<output_dir>/tasks/<org>__<name>/<revision>/<task>.json``:
the revision is the fingerprint of the model's weights and pooler (:func:`jtcse.evaluation.mteb.
encoder_revision`), so a rerun skips finished tasks of the same model and never reuses another's.
``overwrite`` redoes them. A task that cannot run (no network, a dataset not in the cache while offline,
an mteb error) is recorded with a one-line reason and the next one starts.
"""

from __future__ import annotations

import io
import json
import re
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import redirect_stderr
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from jtcse.corpus_scale.progress import format_duration
from jtcse.errors import first_line
from jtcse.evaluation.mteb import MtebEncoder, require_mteb
from jtcse.evaluation.zero_shot.aggregate import TaskScores
from jtcse.evaluation.zero_shot.suite import Suite
from jtcse.fs import atomic_write_text
from jtcse.records import Const, MapOf, Num, Obj, read_cache

CACHE_FORMAT = "jtcse-zero-shot-task"
# split -> subset -> score key -> value; mteb's scores lie in [0, 1] (correlations in [-1, 1])
CACHE_SPEC = Obj({"format": Const(CACHE_FORMAT), "scores": MapOf(MapOf(MapOf(Num(-1.0, 1.0))))})

TASKS_DIR = "tasks"  # OUT/tasks/<model>/<fingerprint>/<task>.json: the per-task score cache
MTEB_DIR = "mteb"  # OUT/mteb: mteb's own results cache


@dataclass(frozen=True)
class TaskJob:
    """One mteb task to run: its splits and the score keys the suite reads from it."""

    task: str
    splits: tuple[str, ...]
    metrics: tuple[str, ...]


def jobs_for(suite: Suite) -> list[TaskJob]:
    """The suite's distinct mteb tasks, in suite order."""
    jobs: dict[str, TaskJob] = {}
    for entry in suite.entries:
        metrics = suite.categories[entry.category].metrics
        if entry.task in jobs:
            known = jobs[entry.task]
            merged = tuple(dict.fromkeys([*known.metrics, *metrics]))
            jobs[entry.task] = TaskJob(entry.task, known.splits, merged)
        else:
            jobs[entry.task] = TaskJob(entry.task, entry.splits, metrics)
    return list(jobs.values())


TaskFactory = Callable[[TaskJob], Any]


def hub_task(job: TaskJob) -> Any:
    """The mteb task of ``job`` by name, restricted to the job's splits (data fetched when it runs)."""
    mteb = require_mteb()
    return mteb.get_task(job.task, eval_splits=list(job.splits))


@dataclass
class ModelRun:
    """One model's pass over the suite."""

    label: str
    model: str
    name: str
    revision: str
    scores: dict[str, TaskScores] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)
    cached: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


class TaskProgress:
    """A line per task: position, outcome, seconds, and the time left at the mean pace of tasks run."""

    def __init__(self, total: int, label: str, stream: TextIO | None, enabled: bool = True) -> None:
        self.total, self.label, self.enabled = total, label, enabled
        self.stream = stream or sys.stderr
        self.done = 0
        self.run_seconds: list[float] = []

    def report(self, task: str, outcome: str, seconds: float | None = None) -> None:
        self.done += 1
        if seconds is not None:
            self.run_seconds.append(seconds)
        left = self.total - self.done
        if left == 0:
            eta = "done"
        elif self.run_seconds:
            eta = f"ETA {format_duration(left * sum(self.run_seconds) / len(self.run_seconds))}"
        else:
            eta = "ETA ?"
        took = f" in {seconds:.1f} s" if seconds is not None else ""
        if self.enabled:
            line = f"zero-shot {self.label} [{self.done}/{self.total}] {task}: {outcome}{took}; {eta}"
            print(line, file=self.stream, flush=True)


def cache_path(output_dir: str | Path, name: str, revision: str, task: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name.replace("/", "__"))
    return Path(output_dir) / TASKS_DIR / safe / revision / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', task)}.json"


def read_cached(path: Path, job: TaskJob) -> TaskScores | None:
    """The cached scores of ``job`` when the file holds every split and score key the job needs; a damaged
    file (a score that is not a number in [-1, 1], a split that is not an object...) is a one-line note and
    the task runs again."""
    data = read_cache(path, CACHE_SPEC, what="zero-shot task result", redo="running the task again")
    if data is None:
        return None
    scores = data["scores"]
    if any(not scores.get(split) for split in job.splits):
        return None
    for split in job.splits:
        if any(not set(job.metrics) <= set(metrics) for metrics in scores[split].values()):
            return None
    return scores


def extract_scores(task_result: Any, job: TaskJob) -> dict[str, dict[str, dict[str, float]]]:
    """The job's score keys per split and subset from an mteb ``TaskResult``."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for split in job.splits:
        if split not in task_result.scores:
            raise ValueError(f"mteb's result has no split {split!r} (it has {', '.join(task_result.scores)})")
        subsets: dict[str, dict[str, float]] = {}
        for row in task_result.scores[split]:
            missing = [m for m in job.metrics if m not in row]
            if missing:
                raise ValueError(f"mteb's result has no {', '.join(missing)} for subset {row['hf_subset']}")
            subsets[str(row["hf_subset"])] = {m: float(row[m]) for m in job.metrics}
        out[split] = subsets
    return out


def _evaluate(
    wrapper: MtebEncoder, tasks: list[Any], output_dir: Path, overwrite: bool, batch_size: int
) -> Any:
    mteb = require_mteb()
    result = mteb.evaluate(
        wrapper,
        tasks,
        cache=mteb.ResultCache(output_dir / MTEB_DIR),
        # no third-party bars: mteb's retrieval search reads show_progress_bar from encode_kwargs
        encode_kwargs={"batch_size": batch_size, "show_progress_bar": False},
        overwrite_strategy="always" if overwrite else "only-missing",
        show_progress_bar=False,
        co2_tracker=False,
    )
    if len(result.task_results) != len(tasks):
        raise RuntimeError(f"mteb returned {len(result.task_results)} results for {len(tasks)} task(s)")
    return result.task_results


def combine_subtasks(parts: Sequence[TaskScores], job: TaskJob) -> dict[str, dict[str, dict[str, float]]]:
    """An aggregate task's scores (CQADupstackRetrieval: 12 forums) as the mean of its subtasks' scores,
    every key alike (mteb's own aggregate keeps only the main score)."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for split in job.splits:
        per_part = [[metrics for metrics in part[split].values()] for part in parts]
        out[split] = {
            "default": {
                m: sum(sum(r[m] for r in rows) / len(rows) for rows in per_part) / len(per_part)
                for m in job.metrics
            }
        }
    return out


def task_scores(
    wrapper: MtebEncoder, task: Any, job: TaskJob, output_dir: Path, overwrite: bool, batch_size: int
) -> dict[str, dict[str, dict[str, float]]]:
    """Run ``task`` (an aggregate one: its subtasks) and keep the job's score keys."""
    subtasks = list(task.metadata.tasks) if task.is_aggregate else [task]
    results = _evaluate(wrapper, subtasks, output_dir, overwrite, batch_size)
    parts = [extract_scores(result, job) for result in results]
    return combine_subtasks(parts, job) if task.is_aggregate else parts[0]


def _save_log(result_path: Path, log: io.StringIO) -> None:
    """What the task wrote to stderr (mteb's warnings, datasets' bars) as ``<task>.log``, if anything."""
    result_path.parent.mkdir(parents=True, exist_ok=True)
    if log.getvalue():
        atomic_write_text(result_path.with_suffix(".log"), log.getvalue())


def run_model(
    wrapper: MtebEncoder,
    jobs: Sequence[TaskJob],
    output_dir: str | Path,
    *,
    label: str,
    model: str,
    overwrite: bool = False,
    factory: TaskFactory | None = None,
    batch_size: int = 64,
    progress: bool = True,
    stream: TextIO | None = None,
) -> ModelRun:
    """Run ``jobs`` for one wrapped model; cached tasks are read back, failing ones recorded.

    ``factory`` makes the mteb task object of a job (default :func:`hub_task`, looked up at call time)."""
    make_task = factory or hub_task
    out = Path(output_dir)
    run = ModelRun(label, model, wrapper.name, wrapper.revision)
    bar = TaskProgress(len(jobs), label, stream, enabled=progress)
    for job in jobs:
        path = cache_path(out, wrapper.name, wrapper.revision, job.task)
        cached = None if overwrite else read_cached(path, job)
        if cached is not None:
            run.scores[job.task] = cached
            run.cached.append(job.task)
            bar.report(job.task, "cached")
            continue
        started = time.perf_counter()
        log = io.StringIO()  # third-party bars and warnings: kept beside the task's result, not shown
        try:
            with redirect_stderr(log):
                scores = task_scores(wrapper, make_task(job), job, out, overwrite, batch_size)
        except Exception as exc:  # any task may fail (network, cache, mteb): record it, go on
            seconds = time.perf_counter() - started
            run.failures[job.task] = f"{type(exc).__name__}: {first_line(exc)}"
            _save_log(path, log)
            bar.report(job.task, f"FAILED ({run.failures[job.task]})", seconds)
            continue
        seconds = time.perf_counter() - started
        run.scores[job.task], run.seconds[job.task] = scores, seconds
        record = {"format": CACHE_FORMAT, "task": job.task, "splits": list(job.splits), "scores": scores}
        _save_log(path, log)
        atomic_write_text(path, json.dumps({**record, "seconds": round(seconds, 3)}, indent=1) + "\n")
        bar.report(job.task, "done", seconds)
    return run
