"""Scores of suite rows and the README's averages over them.

Task scores (what :mod:`jtcse.evaluation.zero_shot.runner` keeps of an mteb result) are
``{split: {subset: {metric: value}}}`` on mteb's 0-1 scale. A row's value is x100 and, as mteb's
``TaskResult.get_score`` does, the mean over the row's splits and (for a row without a subset) the task's
subsets. The category averages follow the README: the mean of the task rows (STS22.v2: the 18 language rows,
not its "avg" row); for retrieval, each metric row is the mean over the tasks and the average is the mean of
the 15 metric rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from jtcse.evaluation.zero_shot.suite import Category, SuiteEntry

TaskScores = Mapping[str, Mapping[str, Mapping[str, float]]]  # split -> subset -> metric -> value (0-1)
RowValues = Mapping[str, Mapping[str, float]]  # row -> metric -> value (x100)


def mean(values: Iterable[float]) -> float | None:
    items = list(values)
    return sum(items) / len(items) if items else None


def entry_value(entry: SuiteEntry, scores: TaskScores, metric: str) -> float | None:
    """``metric`` of ``entry`` x100 from its task's scores; None when a split, subset or key is missing."""
    values: list[float] = []
    for split in entry.splits:
        subsets = scores.get(split)
        if not subsets:
            return None
        chosen = [subsets.get(entry.subset, {})] if entry.subset else list(subsets.values())
        for metrics in chosen:
            if metric not in metrics:
                return None
            values.append(100.0 * float(metrics[metric]))
    return mean(values)


def entry_values(entry: SuiteEntry, category: Category, scores: TaskScores | None) -> dict[str, float]:
    """Every metric of ``category`` for ``entry`` (those that could be read)."""
    if scores is None:
        return {}
    values = {m: entry_value(entry, scores, m) for m in category.metrics}
    return {m: v for m, v in values.items() if v is not None}


@dataclass(frozen=True)
class Aggregate:
    """A category's average as the README computes it, over the rows that have values."""

    metric_rows: dict[str, float | None]  # retrieval: metric -> mean over tasks; else metric -> average
    average: float | None
    counted: int  # rows with a value
    total: int  # rows in the average

    @property
    def complete(self) -> bool:
        return self.counted == self.total


def average_of_rows(metric_rows: Mapping[str, float | None]) -> float | None:
    """The retrieval table's "45 Avg.": the mean of its metric rows (None if any row is missing)."""
    values = list(metric_rows.values())
    if not values or any(v is None for v in values):
        return None
    return mean(v for v in values if v is not None)


def aggregate(category: Category, entries: Iterable[SuiteEntry], values: RowValues) -> Aggregate:
    """The category average of ``values`` (row -> metric -> x100) over ``entries`` counted in it."""
    rows = [e.row for e in entries if e.in_average]
    present = [r for r in rows if all(m in values.get(r, {}) for m in category.metrics)]
    metric_rows = {m: mean(values[r][m] for r in present) for m in category.metrics}
    single = len(category.metrics) == 1
    average = metric_rows[category.metrics[0]] if single else average_of_rows(metric_rows)
    return Aggregate(metric_rows, average, len(present), len(rows))


def paper_values(
    entries: Iterable[SuiteEntry], category: Category, column: str
) -> dict[str, dict[str, float]]:
    """The README's per-row cells of ``column`` in the shape :func:`aggregate` takes."""
    out: dict[str, dict[str, float]] = {}
    for entry in entries:
        if column in entry.paper and len(category.metrics) == 1:
            out[entry.row] = {category.metrics[0]: entry.paper[column]}
    return out
