"""The seven transfer tasks of the SimCSE/JTCSE tables: their names, data, features and protocol.

Each task reads its files (:mod:`jtcse.data.senteval`), orders the samples as SentEval does before embedding
them (a stable sort by (number of tokens, label); for MRPC by (tokens of the first, of the second, label)),
which fixes which sample falls into which fold, embeds them with ``embed`` and runs its protocol
(:mod:`jtcse.evaluation.transfer.validation`). MRPC's features are SentEval's ``[|u - v|, u * v]`` of the two
sentence embeddings; every other task classifies the sentence embedding itself.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from jtcse.data.senteval import (
    BINARY_FILES,
    Labelled,
    LabelledPairs,
    read_binary,
    read_mrpc,
    read_sst2,
    read_trec,
)
from jtcse.errors import JtcseError
from jtcse.evaluation.transfer.validation import L2_GRID, Outcome, Setup, inner_kfold, kfold, split

TASKS: tuple[str, ...] = ("MR", "CR", "SUBJ", "MPQA", "SST2", "TREC", "MRPC")
N_CLASSES = {"MR": 2, "CR": 2, "SUBJ": 2, "MPQA": 2, "SST2": 2, "TREC": 6, "MRPC": 2}
_ALIASES = {**{task.lower(): task for task in TASKS}, "sst": "SST2", "sst-2": "SST2", "sst-b": "SST2"}

Embed = Callable[[list[str]], np.ndarray]  # sentences -> float32 [n, dim]
Data = tuple[torch.Tensor, torch.Tensor]


def resolve_tasks(names: Sequence[str] | None) -> list[str]:
    """Requested tasks, canonical (case-insensitive; SST / SST-2 accepted) and in the tables' order."""
    if not names:
        return list(TASKS)
    chosen = set()
    for name in names:
        for part in name.split(","):
            task = _ALIASES.get(part.strip().lower())
            if task is None:
                raise JtcseError(f"--tasks {part}: unknown transfer task; choose from {' '.join(TASKS)}")
            chosen.add(task)
    return [task for task in TASKS if task in chosen]


def classifiers_needed(task: str, kfold_k: int) -> int:
    """How many classifiers ``task``'s protocol trains (for the progress line)."""
    grid = len(L2_GRID)
    if task in BINARY_FILES:
        return kfold_k * (grid * kfold_k + 1)
    if task == "SST2":
        return grid + 1
    return grid * kfold_k + 1


def sentences_of(task: str, data_dir: Path) -> list[str]:
    """Every sentence ``task`` embeds (after reading its files: a quick check that they are all there)."""
    if task in BINARY_FILES:
        return read_binary(data_dir, task).sentences
    if task == "SST2":
        return [s for part in ("train", "dev", "test") for s in read_sst2(data_dir, part).sentences]
    if task == "TREC":
        return [s for part in ("train", "test") for s in read_trec(data_dir, part).sentences]
    sentences: list[str] = []
    for part in ("train", "test"):
        pairs = read_mrpc(data_dir, part)
        sentences += pairs.first + pairs.second
    return sentences


def run_task(task: str, data_dir: Path, embed: Embed, setup: Setup) -> tuple[Outcome, dict[str, int]]:
    """Evaluate ``task``; also return its sample counts."""
    if task in BINARY_FILES:
        data = read_binary(data_dir, task)
        return inner_kfold(setup, *_labelled(data, embed, setup.device)), {"n": len(data)}
    if task == "SST2":
        parts = [read_sst2(data_dir, part) for part in ("train", "dev", "test")]
        train, dev, test = (_labelled(part, embed, setup.device) for part in parts)
        counts = {f"n_{name}": len(part) for name, part in zip(("train", "dev", "test"), parts, strict=True)}
        return split(setup, train, dev, test), counts
    if task == "TREC":
        parts = [read_trec(data_dir, part) for part in ("train", "test")]
        train, test = (_labelled(part, embed, setup.device) for part in parts)
        return kfold(setup, train, test), {"n_train": len(parts[0]), "n_test": len(parts[1])}
    pairs = [read_mrpc(data_dir, part) for part in ("train", "test")]
    train, test = (_paired(part, embed, setup.device) for part in pairs)
    return kfold(setup, train, test), {"n_train": len(pairs[0]), "n_test": len(pairs[1])}


def f1_positive(predictions: np.ndarray, labels: np.ndarray) -> float:
    """F1 (percent, 2 decimals) of class 1, as SentEval reports it for MRPC."""
    true_pos = float(np.sum((predictions == 1) & (labels == 1)))
    denominator = float(np.sum(predictions == 1) + np.sum(labels == 1))
    return round(100 * 2 * true_pos / denominator, 2) if denominator else 0.0


def _tokens(sentence: str) -> int:
    return len(sentence.split())


def _labelled(data: Labelled, embed: Embed, device: torch.device) -> Data:
    order = sorted(range(len(data)), key=lambda i: (_tokens(data.sentences[i]), data.labels[i]))
    x = embed([data.sentences[i] for i in order])
    y = np.asarray([data.labels[i] for i in order], dtype=np.int64)
    return _tensors(x, y, device)


def _paired(data: LabelledPairs, embed: Embed, device: torch.device) -> Data:
    key = lambda i: (_tokens(data.first[i]), _tokens(data.second[i]), data.labels[i])  # noqa: E731
    order = sorted(range(len(data)), key=key)
    u = embed([data.first[i] for i in order])
    v = embed([data.second[i] for i in order])
    y = np.asarray([data.labels[i] for i in order], dtype=np.int64)
    return _tensors(np.concatenate([np.abs(u - v), u * v], axis=1), y, device)


def _tensors(x: np.ndarray, y: np.ndarray, device: torch.device) -> Data:
    return torch.as_tensor(x, dtype=torch.float32, device=device), torch.as_tensor(y, device=device)
