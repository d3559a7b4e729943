"""The benchmark's vocabulary, in one place: the 7 STS tasks, their short column names, and the markdown
tables (with mean ± std over seeds) that every report of this project writes.

The lowest layer: it imports nothing from jtcse, so data readers, evaluators, model cards, plots, the
pipeline's reports and the benches can all use it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

# The papers' order (SimCSE's SentEval fork, ``--task_set sts``); every table and loop follows it.
TASKS: tuple[str, ...] = ("STS12", "STS13", "STS14", "STS15", "STS16", "STSBenchmark", "SICKRelatedness")
# The two tasks with a development split.
DEV_TASKS: tuple[str, ...] = ("STSBenchmark", "SICKRelatedness")

# Column headers of the papers' tables; other names (STS12..STS16, "avg") stay as they are.
SHORT_NAMES: dict[str, str] = {"STSBenchmark": "STS-B", "SICKRelatedness": "SICK-R"}
# MTEB calls SICK-R by its short name and STS-B by its long one.
MTEB_NAMES: dict[str, str] = {"SICKRelatedness": "SICK-R"}
# MTEB's names of the 7 tasks (`jtcse eval mteb --tasks local:NAME`).
MTEB_LOCAL_TASKS: tuple[str, ...] = tuple(MTEB_NAMES.get(t, t) for t in TASKS)


def short_name(task: str) -> str:
    """``STSBenchmark`` -> ``STS-B``, ``SICKRelatedness`` -> ``SICK-R``; anything else unchanged."""
    return SHORT_NAMES.get(task, task)


def in_task_order(names: Sequence[str]) -> list[str]:
    """The 7 tasks among ``names`` in the papers' order, then the other names as given."""
    return [t for t in TASKS if t in names] + [n for n in names if n not in TASKS]


def md_table(head: Sequence[str], rows: Sequence[Sequence[str]], *, align: bool = False) -> list[str]:
    """A GitHub markdown table as lines: header, rule, one line per row. ``align`` pads every column to its
    widest cell (for a terminal; the rendered table is the same)."""
    if not align:
        return [
            "| " + " | ".join(head) + " |",
            "|" + "|".join("---" for _ in head) + "|",
            *("| " + " | ".join(row) + " |" for row in rows),
        ]
    widths = [max(len(row[i]) for row in (head, *rows)) for i in range(len(head))]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    return [line(head), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *(line(r) for r in rows)]


def fmt_score(value: float | None) -> str:
    """A score x100 with two decimals, as the papers print it; ``-`` for a missing or NaN value."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.2f}"


def mean_std(values: Sequence[float | None]) -> tuple[float, float | None]:
    """Mean and sample standard deviation (n - 1; None for fewer than two values); None and NaN dropped."""
    finite = [v for v in values if v is not None and not math.isnan(v)]
    if not finite:
        return math.nan, None
    mean = sum(finite) / len(finite)
    if len(finite) < 2:
        return mean, None
    return mean, math.sqrt(sum((v - mean) ** 2 for v in finite) / (len(finite) - 1))


def fmt_mean_std(values: Sequence[float | None]) -> str:
    """``mean ± std`` over seeds, or the mean alone with one value."""
    mean, std = mean_std(values)
    return fmt_score(mean) if std is None else f"{fmt_score(mean)} ± {std:.2f}"


def fmt_seconds(seconds: float | None) -> str:
    """A wall time: seconds under 2 minutes, minutes under 2 hours, else hours."""
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.1f}s"
    if seconds < 7200:
        return f"{seconds / 60:.1f}min"
    return f"{seconds / 3600:.1f}h"
