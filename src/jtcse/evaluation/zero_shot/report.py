"""``zero_shot.json`` and ``zero_shot.md``: the measured models beside the paper's eleven columns.

Per category: a row per README row (measured value of each model, the paper's cells, the gap of each model
to the paper's JTCSE column), the README's average computed the README's way, and for retrieval its 15 metric
rows. The paper's cells come from the suite (the JTCSE README, cited in the output).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from jtcse.evaluation.zero_shot.aggregate import aggregate, entry_values, mean
from jtcse.evaluation.zero_shot.runner import ModelRun
from jtcse.evaluation.zero_shot.suite import Category, Suite
from jtcse.fs import atomic_write_text

REPORT_FORMAT = "jtcse-zero-shot"
JSON_NAME, MARKDOWN_NAME = "zero_shot.json", "zero_shot.md"


def _gap(value: float | None, reference: float | None) -> float | None:
    return None if value is None or reference is None else round(value - reference, 4)


def _rounded(values: Mapping[str, float | None]) -> dict[str, float | None]:
    return {k: None if v is None else round(v, 4) for k, v in values.items()}


def _category_report(suite: Suite, category: Category, runs: Sequence[ModelRun]) -> dict[str, Any]:
    ref = suite.reference_column
    entries = suite.in_category(category.name)
    measured = {
        run.label: {e.row: entry_values(e, category, run.scores.get(e.task)) for e in entries} for run in runs
    }
    rows = []
    for e in entries:
        row_measured = {run.label: _rounded(measured[run.label][e.row]) for run in runs}
        row: dict[str, Any] = {"row": e.row, "task": e.task, "subset": e.subset, "splits": list(e.splits)}
        row.update(measured=row_measured, paper=dict(e.paper), in_average=e.in_average)
        if e.paper and len(category.metrics) == 1:
            metric = category.metrics[0]
            row["gap"] = {k: _gap(v.get(metric), e.paper.get(ref)) for k, v in row_measured.items()}
        rows.append(row)
    aggregates = {run.label: aggregate(category, entries, measured[run.label]) for run in runs}
    paper_average = category.paper_average
    average = {
        "label": category.paper_average_label,
        "measured": {k: None if a.average is None else round(a.average, 4) for k, a in aggregates.items()},
        "counted": {k: a.counted for k, a in aggregates.items()},
        "total": len([e for e in entries if e.in_average]),
        "paper": dict(paper_average),
        "gap": {k: _gap(a.average, paper_average.get(ref)) for k, a in aggregates.items()},
    }
    out: dict[str, Any] = {"mteb_type": category.mteb_type, "metrics": list(category.metrics)}
    out.update(label=category.label, aggregate=category.aggregate, rows=rows, average=average)
    if category.inferred:
        out["inferred"] = category.inferred
    if len(category.metrics) > 1:
        out["metric_rows"] = [
            {
                "metric": m,
                "measured": {k: _rounded(a.metric_rows)[m] for k, a in aggregates.items()},
                "paper": dict(category.paper_rows.get(m, {})),
                "gap": {
                    k: _gap(a.metric_rows[m], category.paper_rows.get(m, {}).get(ref))
                    for k, a in aggregates.items()
                },
            }
            for m in category.metrics
        ]
    return out


def build_report(suite: Suite, runs: Sequence[ModelRun]) -> dict[str, Any]:
    """The whole report as JSON-ready data."""
    categories = {name: _category_report(suite, cat, runs) for name, cat in suite.categories.items()}
    failures = [{"model": r.label, "task": t, "reason": why} for r in runs for t, why in r.failures.items()]
    models = [
        {"label": r.label, "model": r.model, "name": r.name, "revision": r.revision, "cached": len(r.cached)}
        for r in runs
    ]
    return {
        "format": REPORT_FORMAT,
        "format_version": 1,
        "source": dict(suite.source),
        "columns": list(suite.columns),
        "reference_column": suite.reference_column,
        "models": models,
        "categories": categories,
        "failures": failures,
    }


def _metric_names(metrics: Sequence[str]) -> str:
    return ", ".join(metrics) if len(metrics) <= 3 else f"{metrics[0]} ... {metrics[-1]}"


def _task_cell(measured: Mapping[str, float | None]) -> str:
    """A retrieval task's mean over its metrics and its NDCG@10."""
    average = mean(v for v in measured.values() if v is not None)
    return f"{_cell(average)} ({_cell(measured.get('ndcg_at_10'))})"


def _average_cell(average: Mapping[str, Any], label: str) -> str:
    """A category average; marked * when some of its rows have no value (failed or missing tasks)."""
    value = average["measured"][label]
    partial = value is not None and average["counted"][label] < average["total"]
    return _cell(value) + ("*" if partial else "")


def _cell(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _signed(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.2f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def _summary_lines(report: Mapping[str, Any], labels: Sequence[str]) -> list[str]:
    ref = report["reference_column"]
    header = ["category", *labels, f"paper {ref}", *(f"{label} - {ref}" for label in labels), "tasks run"]
    rows = []
    for name, cat in report["categories"].items():
        avg = cat["average"]
        counted = ", ".join(f"{avg['counted'][k]}/{avg['total']}" for k in labels)
        rows.append(
            [name, *(_average_cell(avg, k) for k in labels), _cell(avg["paper"].get(ref))]
            + [_signed(avg["gap"][k]) for k in labels]
            + [counted]
        )
    return _table(header, rows)


def _category_lines(
    name: str, cat: Mapping[str, Any], columns: Sequence[str], labels: Sequence[str]
) -> list[str]:
    lines = [
        f"## {name} ({cat['label']}; {_metric_names(cat['metrics'])})",
        "",
    ]
    if cat.get("inferred"):
        lines += [f"**[inferred]** {cat['inferred']}", ""]
    header = ["row", *labels, *columns, *(f"{k} - JTCSE" for k in labels)]
    avg = cat["average"]
    if "metric_rows" in cat:
        body = [
            [
                r["metric"],
                *(_cell(r["measured"][k]) for k in labels),
                *(_cell(r["paper"].get(c)) for c in columns),
            ]
            + [_signed(r["gap"][k]) for k in labels]
            for r in cat["metric_rows"]
        ]
    else:
        metric = cat["metrics"][0]
        body = [
            [
                r["row"],
                *(_cell(r["measured"][k].get(metric)) for k in labels),
                *(_cell(r["paper"].get(c)) for c in columns),
            ]
            + [_signed(r.get("gap", {}).get(k)) for k in labels]
            for r in cat["rows"]
        ]
    body.append(
        [
            f"**{avg['label']}**",
            *(_average_cell(avg, k) for k in labels),
            *(_cell(avg["paper"].get(c)) for c in columns),
        ]
        + [_signed(avg["gap"][k]) for k in labels]
    )
    lines += _table(header, body)
    if "metric_rows" in cat:
        lines += ["", "Per task (mean of the 15 metrics; NDCG@10):", ""]
        per_task = [[r["row"], *(_task_cell(r["measured"][k]) for k in labels)] for r in cat["rows"]]
        lines += _table(["task", *labels], per_task)
    return [*lines, ""]


def render_markdown(report: Mapping[str, Any]) -> str:
    """``zero_shot.md``: the summary, then a table per category, then the failed tasks."""
    labels = [m["label"] for m in report["models"]]
    source = report["source"]
    lines = [
        "# Zero-shot suite (JTCSE README's tables)",
        "",
        f"Paper columns: {source.get('repository', '')} {source.get('file', '')} at "
        f"{source.get('commit', '')[:12]}, "
        f'section "{source.get("section", "")}". Models: '
        + "; ".join(f"{m['label']} = {m['model']} (revision {m['revision']})" for m in report["models"]),
        "",
        *_summary_lines(report, labels),
        "",
        "\\* an average over the rows that have a value only (tasks run: how many).",
        "",
    ]
    for name, cat in report["categories"].items():
        lines += _category_lines(name, cat, report["columns"], labels)
    if report["failures"]:
        lines += ["## Failed tasks", ""]
        lines += [f"- {f['model']}: {f['task']}: {f['reason']}" for f in report["failures"]]
    return "\n".join(lines).rstrip() + "\n"


def write_report(output_dir: str | Path, report: Mapping[str, Any]) -> tuple[Path, Path]:
    """Write ``zero_shot.json`` and ``zero_shot.md`` into ``output_dir``."""
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out / JSON_NAME, out / MARKDOWN_NAME
    atomic_write_text(json_path, json.dumps(report, indent=1, ensure_ascii=False) + "\n")
    atomic_write_text(md_path, render_markdown(report))
    return json_path, md_path
