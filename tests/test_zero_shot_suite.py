"""The zero-shot suite's data: every row resolves to an mteb task of its type with the score key it reads,
and the aggregation reproduces the JTCSE README's own averages from the README's cells. Offline: only
mteb's task metadata is read (no dataset is downloaded)."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import pytest

from jtcse.errors import JtcseError
from jtcse.evaluation.zero_shot.aggregate import aggregate, average_of_rows, entry_value, paper_values
from jtcse.evaluation.zero_shot.suite import CATEGORIES, load_suite, parse_categories, reported_metrics

mteb = pytest.importorskip("mteb")

SUITE = load_suite()
COUNTS = {"sts22": 19, "classification": 45, "retrieval": 45, "reranking": 14, "bitext": 15}
# The README's average rows of its JTCSE column (what the issue quotes).
README_JTCSE = {
    "sts22": 39.21,
    "classification": 56.67,
    "retrieval": 13.71,
    "reranking": 37.64,
    "bitext": 17.77,
}
STS22_SUBSETS = [
    "ar", "de", "de-en", "de-fr", "de-pl", "en", "es", "es-en", "es-it",
    "fr", "fr-pl", "it", "pl", "pl-en", "ru", "tr", "zh", "zh-en",
]  # fmt: skip


def test_counts_columns_and_list_lines() -> None:
    assert tuple(SUITE.categories) == CATEGORIES
    assert {c: len(SUITE.in_category(c)) for c in CATEGORIES} == COUNTS
    assert len(SUITE.columns) == 11 and SUITE.columns[8] == SUITE.reference_column == "JTCSE"
    assert SUITE.source["commit"] and "JTCSE" in SUITE.source["repository"]
    lines = SUITE.list_lines()
    assert lines[0] == "sts22\tSTS22.v2\tar" and "sts22\tSTS22.v2" in lines  # the avg row: no subset
    assert lines[-5:] == [f"{c}\t{n}" for c, n in COUNTS.items()]
    assert len(lines) == sum(COUNTS.values()) + 1 + 5
    assert len({e.task for e in SUITE.in_category("retrieval")}) == 45
    assert [e.subset for e in SUITE.in_category("sts22") if e.subset] == STS22_SUBSETS
    # the README's shortened names resolve to mteb's full ones
    tasks = {e.row: e.task for e in SUITE.entries}
    assert tasks["CUADAntiAssignmentLegalBench"] == "CUADAntiAssignmentLegalBenchClassification"
    assert tasks["tabularOPP115InternationalAndSpecific"] == (
        "OPP115InternationalAndSpecificAudiencesLegalBenchClassification"
    )
    assert tasks["tabularContractNLIPermissibleDevelopment"].startswith(
        "ContractNLIPermissibleDevelopmentOfSimilarInformation"
    )


def test_every_entry_resolves_to_a_task_of_its_type_reporting_its_metrics() -> None:
    names = sorted({e.task for e in SUITE.entries})
    tasks = {t.metadata.name: t for t in mteb.get_tasks(tasks=names)}  # metadata only
    assert sorted(tasks) == names
    for entry in SUITE.entries:
        category = SUITE.categories[entry.category]
        task = tasks[entry.task]
        assert task.metadata.type == category.mteb_type, entry
        assert set(category.metrics) <= reported_metrics(task), entry
        assert set(entry.splits) <= set(task.metadata.eval_splits), entry
        if entry.subset:
            assert entry.subset in task.metadata.hf_subsets, entry
        if entry.category != "retrieval":
            assert list(entry.paper) == list(SUITE.columns), entry
    assert all(task.metadata.is_public is not False for task in tasks.values())


def test_aggregation_reproduces_the_readme_averages() -> None:
    for name, category in SUITE.categories.items():
        entries = SUITE.in_category(name)
        for column in SUITE.columns:
            if name == "retrieval":  # the README gives only its 15 metric rows
                got = average_of_rows({m: category.paper_rows[m][column] for m in category.metrics})
            else:
                got = aggregate(category, entries, paper_values(entries, category, column)).average
            assert got is not None
            # The README averaged unrounded scores: the mean of its rounded cells is within 0.01 of its
            # average (half a unit for the cells, half for the average), in every column.
            assert got == pytest.approx(category.paper_average[column], abs=0.01 + 1e-9), (name, column)
            if column == SUITE.reference_column:  # JTCSE's: exactly the README's figure at its rounding
                assert round(got, 2) == README_JTCSE[name], name
        ref = SUITE.reference_column
        assert category.paper_average[ref] == README_JTCSE[name]
    jtcse = aggregate(
        SUITE.categories["sts22"],
        SUITE.in_category("sts22"),
        paper_values(SUITE.in_category("sts22"), SUITE.categories["sts22"], "JTCSE"),
    )
    assert (jtcse.counted, jtcse.total) == (18, 18)  # the "avg" row is not counted in its own average
    avg_row = next(e for e in SUITE.in_category("sts22") if e.row == "avg")
    assert avg_row.paper["JTCSE"] == pytest.approx(jtcse.average, abs=0.005)


def test_row_values_average_splits_and_subsets() -> None:
    scores = {"test": {"en": {"f1": 0.5}, "de": {"f1": 0.7}}, "dev": {"en": {"f1": 0.1}, "de": {"f1": 0.3}}}
    whole = SUITE.in_category("bitext")[0]
    from dataclasses import replace

    assert entry_value(replace(whole, splits=("test",)), scores, "f1") == pytest.approx(60.0)
    assert entry_value(replace(whole, splits=("test", "dev")), scores, "f1") == pytest.approx(40.0)
    assert entry_value(replace(whole, splits=("test",), subset="de"), scores, "f1") == pytest.approx(70.0)
    assert entry_value(replace(whole, splits=("test",), subset="xx"), scores, "f1") is None
    assert entry_value(replace(whole, splits=("test",)), scores, "accuracy") is None


def test_partial_results_are_counted_not_hidden() -> None:
    category = SUITE.categories["reranking"]
    entries = SUITE.in_category("reranking")
    values = {entries[0].row: {"map_at_1000": 40.0}, entries[1].row: {"map_at_1000": 20.0}}
    got = aggregate(category, entries, values)
    assert (got.average, got.counted, got.total, got.complete) == (30.0, 2, 14, False)
    retrieval = SUITE.categories["retrieval"]
    one = {SUITE.in_category("retrieval")[0].row: dict.fromkeys(retrieval.metrics, 10.0)}
    assert aggregate(retrieval, SUITE.in_category("retrieval"), one).average == 10.0
    assert aggregate(retrieval, SUITE.in_category("retrieval"), {}).average is None


def test_category_selection() -> None:
    assert parse_categories(None) == list(CATEGORIES)
    assert parse_categories("bitext, sts22") == ["bitext", "sts22"]
    picked = SUITE.select(["bitext", "sts22"])
    assert list(picked.categories) == ["sts22", "bitext"] and len(picked.entries) == 34
    with pytest.raises(JtcseError, match="--categories nope: unknown"):
        SUITE.select(["nope"])
