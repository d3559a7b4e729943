"""The zero-shot suite: which mteb task, split, subset and score key stands for each row of the JTCSE README.

The data live in ``suite.json`` beside this module (package data): every row of the official README's
"Zero-shot downstream tasks evaluation" tables (tianyuzong/JTCSE, the commit named in the file) with its mteb
2.x task name, category, splits, subset (the STS22.v2 language pairs) and the paper's eleven published cells;
per category the mteb score key(s) the README reports, why, how the README averages them, and its average
row. The retrieval tasks are a documented choice ([inferred]): the README does not name them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from jtcse.errors import JtcseError

CATEGORIES = ("sts22", "classification", "retrieval", "reranking", "bitext")
SUITE_FILE = "suite.json"
# The keys each of mteb's evaluators reports whatever the task (retrieval-style keys depend on k_values,
# see reported_metrics). Checked against real evaluator output by tests/test_zero_shot_run.py.
EVALUATOR_KEYS: dict[str, frozenset[str]] = {
    "STS": frozenset({"cosine_spearman", "cosine_pearson", "manhattan_spearman", "euclidean_spearman"}),
    "Classification": frozenset({"accuracy", "f1", "f1_weighted"}),
    "BitextMining": frozenset({"accuracy", "precision", "recall", "f1"}),
}
RETRIEVAL_FAMILIES = ("ndcg", "map", "recall", "precision", "mrr")
RETRIEVAL_TYPES = frozenset({"Retrieval", "Reranking"})


@dataclass(frozen=True)
class SuiteEntry:
    """One README row: ``task`` (mteb name) on ``splits``; ``subset`` None = mean over the task's subsets."""

    category: str
    row: str
    task: str
    splits: tuple[str, ...]
    subset: str | None = None
    paper: Mapping[str, float] = field(default_factory=dict)
    in_average: bool = True

    def list_line(self) -> str:
        return "\t".join([self.category, self.task, *([self.subset] if self.subset else [])])


@dataclass(frozen=True)
class Category:
    """A README table: its mteb task type, the score key(s) read, and the README's own average row."""

    name: str
    mteb_type: str
    metrics: tuple[str, ...]
    label: str
    aggregate: str
    paper_average: Mapping[str, float]
    paper_average_label: str
    paper_rows: Mapping[str, Mapping[str, float]] = field(default_factory=dict)  # retrieval: metric rows
    inferred: str | None = None  # why the task set is not the paper's own (retrieval)


@dataclass(frozen=True)
class Suite:
    entries: tuple[SuiteEntry, ...]
    categories: Mapping[str, Category]
    columns: tuple[str, ...]
    reference_column: str
    source: Mapping[str, str] = field(default_factory=dict)

    def select(self, categories: Sequence[str]) -> Suite:
        """The suite restricted to ``categories`` (names from :data:`CATEGORIES`), in suite order."""
        unknown = [c for c in categories if c not in self.categories]
        if unknown:
            raise JtcseError(
                f"--categories {','.join(unknown)}: unknown; choose from {','.join(self.categories)}"
            )
        kept = {c: self.categories[c] for c in self.categories if c in categories}
        entries = tuple(e for e in self.entries if e.category in kept)
        return Suite(entries, kept, self.columns, self.reference_column, self.source)

    def in_category(self, category: str) -> list[SuiteEntry]:
        return [e for e in self.entries if e.category == category]

    def list_lines(self) -> list[str]:
        """``--list``: a line per entry, then the count per category."""
        lines = [e.list_line() for e in self.entries]
        counts = [f"{c}\t{len(self.in_category(c))}" for c in self.categories]
        return [*lines, "", *counts]


def parse_categories(text: str | None) -> list[str]:
    """``--categories a,b``: names in the order given; None (the flag not given) means all. A value that names
    no category (``""``, ``","``) is an error rather than an empty run that exits 0."""
    if text is None:
        return list(CATEGORIES)
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        raise JtcseError(f"--categories {text!r}: names no category; choose from {','.join(CATEGORIES)}")
    return names


def _category(name: str, data: Mapping[str, Any]) -> Category:
    return Category(
        name=name,
        mteb_type=data["mteb_type"],
        metrics=tuple(data["metrics"]),
        label=data["label"],
        aggregate=data["aggregate"],
        paper_average={k: float(v) for k, v in data["paper_average"].items()},
        paper_average_label=data["paper_average_label"],
        paper_rows={m: dict(row) for m, row in data.get("paper_rows", {}).items()},
        inferred=data.get("task_set") if data.get("inferred") else None,
    )


def _entry(data: Mapping[str, Any]) -> SuiteEntry:
    return SuiteEntry(
        category=data["category"],
        row=data["row"],
        task=data["task"],
        splits=tuple(data["splits"]),
        subset=data.get("subset"),
        paper={k: float(v) for k, v in data.get("paper", {}).items()},
        in_average=bool(data.get("in_average", True)),
    )


def suite_from_dict(data: Mapping[str, Any]) -> Suite:
    """A :class:`Suite` from the JSON layout of ``suite.json``."""
    categories = {name: _category(name, data["categories"][name]) for name in data["categories"]}
    entries = tuple(_entry(e) for e in data["entries"])
    strays = sorted({e.category for e in entries} - set(categories))
    if strays:
        raise JtcseError(f"{SUITE_FILE}: entries of unknown categories {', '.join(strays)}")
    return Suite(
        entries,
        categories,
        tuple(data["columns"]),
        data["reference_column"],
        {k: str(v) for k, v in data.get("source", {}).items()},
    )


def load_suite() -> Suite:
    """The packaged suite (``suite.json``)."""
    text = resources.files(__package__).joinpath(SUITE_FILE).read_text(encoding="utf-8")
    return suite_from_dict(json.loads(text))


def reported_metrics(task: Any) -> frozenset[str]:
    """The score keys mteb's evaluator reports for ``task`` (an mteb task object; no data are loaded).

    Retrieval and reranking tasks (both scored by mteb's retrieval evaluator) report
    ``<family>_at_<k>`` for each k of the task's ``k_values``; the others a fixed set per task type; an
    aggregate task (CQADupstackRetrieval) the keys all its subtasks report."""
    if getattr(task, "is_aggregate", False):  # the runner averages every key over the subtasks
        return frozenset.intersection(*(reported_metrics(t) for t in task.metadata.tasks))
    task_type = task.metadata.type
    if task_type in RETRIEVAL_TYPES:
        keys = {f"{family}_at_{k}" for family in RETRIEVAL_FAMILIES for k in task.k_values}
        return frozenset(keys)
    return EVALUATOR_KEYS.get(task_type, frozenset())
