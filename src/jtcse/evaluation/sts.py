"""The 7-task STS benchmark, computed as SimCSE's SentEval fork computes it for the papers' tables.

For every pair: the cosine of the two sentence embeddings (0 when an embedding is all zeros, as SentEval's
``nan_to_num`` makes it). Per task, the Spearman correlation with the gold scores, x100:

* STS12-16: the "all" setting, one Spearman over the concatenated pairs of every subset of the year
  (SentEval's ``results[task]['all']['spearman']['all']``); STS13 has no SMT subset;
* STS-B and SICK-R: the test split, no training (``results[task]['test']['spearman']``);
* ``mode="dev"``: STS-B dev and SICK-R trial, the only tasks with a development split.

``avg`` is the mean over the evaluated tasks of their scores rounded to two decimals, exactly as SimCSE's
``evaluation.py`` averages the numbers it prints. ``details`` also keeps, per task, every subset's Spearman,
Pearson and pair count, and SentEval's "mean" and "wmean" (pair-count-weighted mean) of the subsets.

All distinct sentences of all requested tasks are encoded in one ``encoder.encode`` call.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
from scipy import stats

from jtcse.benchmark import DEV_TASKS, TASKS
from jtcse.data.paths import resolve_data_dir
from jtcse.data.sts import STS_YEAR_SUBSETS, StsPairs, read_stsb, read_task
from jtcse.errors import JtcseError

if TYPE_CHECKING:
    from jtcse.protocols import SentenceEncoder

MODES = ("test", "dev")

_ALIASES = {
    **{task.lower(): task for task in TASKS},
    "stsb": "STSBenchmark",
    "sts-b": "STSBenchmark",
    "sts-benchmark": "STSBenchmark",
    "sick": "SICKRelatedness",
    "sickr": "SICKRelatedness",
    "sick-r": "SICKRelatedness",
}


def canonical_task(name: str) -> str:
    """The canonical task name for ``name`` (case-insensitive; STSB / STS-B / SICK-R / SICK accepted)."""
    task = _ALIASES.get(name.strip().lower())
    if task is None:
        raise JtcseError(f"--tasks {name}: unknown STS task; choose from {' '.join(TASKS)}")
    return task


def resolve_tasks(tasks: Sequence[str] | None, mode: str = "test") -> list[str]:
    """Requested tasks, canonical and in the papers' order; all 7 (test) or the 2 with a dev split (dev)."""
    if mode not in MODES:
        raise JtcseError(f"--mode {mode}: unknown; choose from {', '.join(MODES)}")
    if tasks is None or len(tasks) == 0:
        return list(TASKS if mode == "test" else DEV_TASKS)
    chosen = {canonical_task(name) for name in tasks}
    if mode == "dev":
        without_dev = sorted(chosen - set(DEV_TASKS), key=TASKS.index)
        if without_dev:
            raise JtcseError(
                f"--mode dev: {', '.join(without_dev)} has no dev split; only {' and '.join(DEV_TASKS)} do"
            )
    return [task for task in TASKS if task in chosen]


@dataclass
class StsReport:
    """Scores (Spearman x100 per task, plus ``avg``) and the details behind them."""

    mode: str
    scores: dict[str, float]
    details: dict[str, Any] = field(default_factory=dict)
    # task -> {"gold": [...], "cosine": [...], "subset": [...]}: every scored pair, for scatter plots
    pairs: dict[str, dict[str, list]] = field(default_factory=dict)

    @property
    def tasks(self) -> list[str]:
        return [task for task in self.scores if task != "avg"]

    def to_json(self, *, include_pairs: bool = False) -> dict[str, Any]:
        """``{"STS12": .., ..., "avg": .., "details": {...}}``; NaN (a constant prediction) becomes null.

        ``include_pairs`` adds ``"pairs"`` (per task: gold, cosine and subset of every scored pair), which
        ``jtcse plot EVAL.json`` draws as scatter plots.
        """
        payload = {**self.scores, "details": self.details}
        if include_pairs:
            payload["pairs"] = self.pairs
        return _json_safe(payload)

    def format_table(self) -> str:
        """The papers' table: one column per task plus Avg., scores x100 with two decimals."""
        names = [*self.tasks, "Avg."]
        values = [_fmt(self.scores[task]) for task in self.tasks] + [_fmt(self.scores["avg"])]
        widths = [max(len(name), len(value)) for name, value in zip(names, values, strict=True)]
        rule = "+" + "+".join("-" * (width + 2) for width in widths) + "+"
        header = "|" + "|".join(f" {name:^{width}} " for name, width in zip(names, widths, strict=True)) + "|"
        row = "|" + "|".join(f" {value:^{width}} " for value, width in zip(values, widths, strict=True)) + "|"
        return "\n".join([f"------ {self.mode} ------", rule, header, rule, row, rule])


def evaluate_sts(
    encoder: SentenceEncoder | Callable[[list[str]], object],
    *,
    data_dir: str | Path | None = None,
    tasks: Sequence[str] | None = None,
    mode: str = "test",
    batch_size: int = 64,
    show_progress: bool = True,
) -> StsReport:
    """Evaluate ``encoder`` on the STS tasks (all 7 by default) and return a :class:`StsReport`.

    ``encoder`` is anything with ``encode(list[str], batch_size=..., show_progress=...) -> array [n, dim]``
    (a :class:`jtcse.Encoder`), or a plain callable ``list[str] -> array``.
    """
    task_list = resolve_tasks(tasks, mode)
    root = resolve_data_dir(data_dir, need="sts")
    split = "test" if mode == "test" else "dev"
    data = {task: read_task(root, task, split) for task in task_list}

    sentences, position = _distinct_sentences(data)
    embeddings = _encode(encoder, sentences, batch_size=batch_size, show_progress=show_progress)
    unit = _unit_rows(embeddings)

    scores: dict[str, float] = {}
    details: dict[str, Any] = {"mode": mode, "data_dir": str(root), "n_sentences": len(sentences)}
    pairs: dict[str, dict[str, list]] = {}
    for task, subsets in data.items():
        result, pairs[task] = _score_task(subsets, unit, position)
        result["split"] = split
        scores[task] = result["all"]["spearman"]
        details[task] = result
    # SimCSE averages the printed (two-decimal) numbers.
    scores["avg"] = float(np.mean([round(value, 2) for value in scores.values()]))
    return StsReport(mode=mode, scores=scores, details=details, pairs=pairs)


def stsb_dev_score(encode_fn: Callable[[list[str]], Any] | Any, data_dir: str | Path | None = None) -> float:
    """STS-B dev Spearman x100 of cosine similarities: the model-selection signal during training.

    ``encode_fn`` maps a list of sentences to an array ``[n, dim]`` (or is an object with ``encode``); each
    distinct sentence is encoded once. The dev pairs are read once per data directory and then cached.
    """
    pairs = _stsb_dev(resolve_data_dir(data_dir, need="sts"))
    data = {"STSBenchmark": {"dev": pairs}}
    sentences, position = _distinct_sentences(data)
    encode = encode_fn.encode if hasattr(encode_fn, "encode") else encode_fn
    unit = _unit_rows(_as_matrix(encode(sentences), len(sentences)))
    return _score_task(data["STSBenchmark"], unit, position)[0]["all"]["spearman"]


_STSB_DEV_CACHE: dict[Path, StsPairs] = {}


def _stsb_dev(root: Path) -> StsPairs:
    if root not in _STSB_DEV_CACHE:
        _STSB_DEV_CACHE[root] = read_stsb(root, "dev")
    return _STSB_DEV_CACHE[root]


def pair_cosines(unit: np.ndarray, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Cosine of rows ``left[i]`` and ``right[i]`` of a matrix of unit (or all-zero) rows."""
    return np.einsum("ij,ij->i", unit[left], unit[right])


def correlations(predicted: np.ndarray, gold: np.ndarray) -> tuple[float, float]:
    """(Spearman, Pearson) x100 from ``scipy.stats.spearmanr`` / ``pearsonr`` (ties get average ranks, as
    SentEval's scipy call gives them); NaN when a side is constant."""
    predicted = np.asarray(predicted, dtype=np.float64)
    gold = np.asarray(gold, dtype=np.float64)
    if len(predicted) < 2 or np.ptp(predicted) == 0 or np.ptp(gold) == 0:
        return math.nan, math.nan
    spearman = float(stats.spearmanr(predicted, gold)[0])
    return 100.0 * spearman, 100.0 * float(stats.pearsonr(predicted, gold)[0])


def average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks; tied values share the mean of the ranks they span (what Spearman correlates)."""
    return stats.rankdata(values, method="average")


def _score_task(
    subsets: dict[str, StsPairs], unit: np.ndarray, position: dict[str, int]
) -> tuple[dict[str, Any], dict[str, list]]:
    """SentEval's per-subset, "all", "mean" and "wmean" figures for one task, and the scored pairs."""
    per_subset: dict[str, Any] = {}
    all_predicted: list[np.ndarray] = []
    all_gold: list[np.ndarray] = []
    for name, pairs in subsets.items():
        left = np.array([position[s] for s in pairs.sentences1], dtype=np.int64)
        right = np.array([position[s] for s in pairs.sentences2], dtype=np.int64)
        predicted = pair_cosines(unit, left, right)
        spearman, pearson = correlations(predicted, pairs.scores)
        per_subset[name] = {"spearman": spearman, "pearson": pearson, "n_pairs": len(pairs)}
        all_predicted.append(predicted)
        all_gold.append(pairs.scores)
    predicted_all, gold_all = np.concatenate(all_predicted), np.concatenate(all_gold)
    all_spearman, all_pearson = correlations(predicted_all, gold_all)
    scored_pairs = {
        "gold": gold_all.tolist(),
        "cosine": predicted_all.tolist(),
        "subset": [name for name, pairs in subsets.items() for _ in range(len(pairs))],
    }
    counts = np.array([item["n_pairs"] for item in per_subset.values()], dtype=np.float64)
    spearmans = np.array([item["spearman"] for item in per_subset.values()])
    pearsons = np.array([item["pearson"] for item in per_subset.values()])
    return {
        "n_pairs": int(counts.sum()),
        "all": {"spearman": all_spearman, "pearson": all_pearson},
        "mean": {"spearman": float(np.mean(spearmans)), "pearson": float(np.mean(pearsons))},
        "wmean": {
            "spearman": float(np.average(spearmans, weights=counts)),
            "pearson": float(np.average(pearsons, weights=counts)),
        },
        "subsets": per_subset,
    }, scored_pairs


def _distinct_sentences(data: dict[str, dict[str, StsPairs]]) -> tuple[list[str], dict[str, int]]:
    """Every distinct sentence once (first-seen order) and its row in the embedding matrix."""
    position: dict[str, int] = {}
    for subsets in data.values():
        for pairs in subsets.values():
            for sentence in (*pairs.sentences1, *pairs.sentences2):
                position.setdefault(sentence, len(position))
    return list(position), position


def _encode(
    encoder: SentenceEncoder | Callable[[list[str]], object],
    sentences: list[str],
    *,
    batch_size: int,
    show_progress: bool,
) -> np.ndarray:
    output: object
    if hasattr(encoder, "encode"):
        model = cast("SentenceEncoder", encoder)  # a hasattr check does not narrow the union
        output = model.encode(sentences, batch_size=batch_size, show_progress=show_progress)
    else:
        output = encoder(sentences)
    return _as_matrix(output, len(sentences))


def _as_matrix(output: object, rows: int) -> np.ndarray:
    if hasattr(output, "detach"):  # a torch tensor from a custom encode function
        output = output.detach().float().cpu().numpy()
    matrix = np.asarray(output, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] != rows:
        raise ValueError(f"encoder returned shape {matrix.shape}; expected ({rows}, dim)")
    return matrix


def _unit_rows(matrix: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length; NaN entries and all-zero rows become zeros (cosine 0, as in SentEval)."""
    matrix = np.nan_to_num(matrix)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return np.divide(matrix, norms, out=np.zeros_like(matrix), where=norms > 0)


def _fmt(value: float) -> str:
    return "nan" if math.isnan(value) else f"{value:.2f}"


def _json_safe(value: object) -> Any:  # a JSON value: its type depends on the input
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(item) for item in value]
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


__all__ = [
    "DEV_TASKS",
    "MODES",
    "STS_YEAR_SUBSETS",
    "TASKS",
    "StsReport",
    "average_ranks",
    "canonical_task",
    "correlations",
    "evaluate_sts",
    "resolve_tasks",
    "stsb_dev_score",
]
