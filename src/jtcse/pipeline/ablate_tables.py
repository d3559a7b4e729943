"""The tables of ``jtcse ablate``: ``results.csv`` (one row per run) and ``results.md`` (the runs, then the
mean +- std over seeds of each grid point)."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from pathlib import Path

from jtcse.benchmark import TASKS, fmt_mean_std, fmt_score, fmt_seconds, md_table, short_name
from jtcse.pipeline.runner import RunResult

RESULTS_MD = "results.md"
RESULTS_CSV = "results.csv"


def write_results(
    runs: Sequence[RunResult],
    grid_keys: Sequence[str],
    output_dir: str | Path,
    *,
    header: Sequence[str] = (),
    planned: int | None = None,
) -> tuple[Path, Path]:
    """``results.csv`` (one row per run) and ``results.md`` (runs table + mean +- std over seeds)."""
    from jtcse.fs import atomic_write_text

    out = Path(output_dir)
    evaluated = {task for r in runs for task in r.tasks}
    tasks = [task for task in TASKS if task in evaluated]
    csv_path = out / RESULTS_CSV
    atomic_write_text(csv_path, _csv_text(runs, grid_keys, tasks))
    md_path = out / RESULTS_MD
    atomic_write_text(md_path, "\n".join(_md_lines(runs, grid_keys, tasks, header, planned)) + "\n")
    return md_path, csv_path


def _score_columns(tasks: Sequence[str]) -> list[str]:
    return ["dev_stsb", *tasks, *(["avg"] if tasks else [])]


def _scores(r: RunResult, tasks: Sequence[str]) -> list[float | None]:
    return [r.dev_stsb, *(r.test.get(t) for t in tasks), *([r.test.get("avg")] if tasks else [])]


def _csv_text(runs: Sequence[RunResult], grid_keys: Sequence[str], tasks: Sequence[str]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    head = ["run", *grid_keys, "seed", *_score_columns(tasks), "train_s", "eval_s", "steps", "best_step"]
    writer.writerow(head)
    for r in runs:
        writer.writerow(
            [
                r.name,
                *(r.point.get(k, "") for k in grid_keys),
                r.seed,
                *(_csv_number(v) for v in _scores(r, tasks)),
                _csv_number(r.train_s),
                _csv_number(r.eval_s),
                r.steps,
                "" if r.best_step is None else r.best_step,
            ]
        )
    return buffer.getvalue()


def _md_lines(
    runs: Sequence[RunResult],
    grid_keys: Sequence[str],
    tasks: Sequence[str],
    header: Sequence[str],
    planned: int | None,
) -> list[str]:
    short = ["dev" if c == "dev_stsb" else short_name(c) for c in _score_columns(tasks)]
    lines = ["# Ablation results", "", *(f"{line}  " for line in header)]
    if planned is not None and planned != len(runs):
        lines.append(
            f"**{len(runs)} of {planned} runs finished**; rerun with `--resume` to complete the grid.  "
        )
    lines += [
        "",
        "Scores: Spearman x100 of cosine similarities. dev = STS-B dev (best during training, which chose "
        "the saved model); test tasks as SimCSE's SentEval evaluation; avg = mean of the test tasks. "
        "train = training wall time (with the in-loop dev evaluations), eval = test evaluation time.",
        "",
        "## Runs",
        "",
    ]
    rows = [
        [
            f"`{r.name}`",
            *(r.point.get(k, "") for k in grid_keys),
            str(r.seed),
            *(fmt_score(v) for v in _scores(r, tasks)),
            fmt_s(r.train_s),
            fmt_s(r.eval_s),
        ]
        for r in runs
    ]
    lines += md_table(["run", *grid_keys, "seed", *short, "train", "eval"], rows)
    lines += ["", "## Mean ± std over seeds", ""]
    lines.append("std is the sample standard deviation (n - 1); with one seed only the mean is shown.")
    lines.append("")
    summary_rows = []
    for point_key, group in _group_by_point(runs, grid_keys):
        columns = list(zip(*(_scores(r, tasks) for r in group), strict=True)) if group else []
        seeds = ", ".join(str(r.seed) for r in group)
        summary_rows.append([*point_key, seeds, *(fmt_mean_std(column) for column in columns)])
    return lines + md_table([*grid_keys, "seeds", *short], summary_rows)


def _group_by_point(
    runs: Sequence[RunResult], grid_keys: Sequence[str]
) -> list[tuple[tuple[str, ...], list[RunResult]]]:
    groups: dict[tuple[str, ...], list[RunResult]] = {}
    for r in runs:
        groups.setdefault(tuple(r.point.get(k, "") for k in grid_keys), []).append(r)
    return list(groups.items())


def fmt_s(seconds: float | None) -> str:
    """Seconds under 2 minutes, else minutes (the ablation tables' unit)."""
    if seconds is None or seconds < 120:
        return fmt_seconds(seconds)
    return f"{seconds / 60:.1f}min"


def _csv_number(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{value:.4f}" if isinstance(value, float) else str(value)
