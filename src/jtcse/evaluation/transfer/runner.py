"""``evaluate_transfer``: SentEval's transfer tasks on an encoder's frozen embeddings.

Every distinct sentence of the requested tasks is embedded once (one ``encoder.encode`` call, no
normalisation), then each task trains its classifiers on ``device``. The scores are test accuracies in
percent (SentEval's ``acc``); ``avg`` is their mean over the evaluated tasks, rounded to 2 decimals like
SimCSE's ``evaluation.py`` prints it. ``details`` keeps per task the dev accuracy, the chosen L2 penalties,
the sample counts and MRPC's F1; and the mode, its classifier settings and the seed.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from jtcse.errors import JtcseError
from jtcse.evaluation.transfer.classifier import ClassifierConfig, mode_config
from jtcse.evaluation.transfer.tasks import (
    N_CLASSES,
    TASKS,
    classifiers_needed,
    f1_positive,
    resolve_tasks,
    run_task,
    sentences_of,
)
from jtcse.evaluation.transfer.validation import L2_GRID, Setup
from jtcse.model.loading import select_device

DEFAULT_SEED = 1111  # SentEval's
_PROGRESS_EVERY_S = 10.0


class SentenceEncoder(Protocol):
    def encode(self, sentences: list[str], *, batch_size: int, show_progress: bool) -> np.ndarray: ...


@dataclass
class TransferReport:
    """Test accuracy (percent) per task plus ``avg``, and the details behind them."""

    mode: str
    scores: dict[str, float]
    details: dict[str, object] = field(default_factory=dict)

    @property
    def tasks(self) -> list[str]:
        return [task for task in TASKS if task in self.scores]

    @property
    def avg(self) -> float:
        return round(float(np.mean([self.scores[task] for task in self.tasks])), 2)

    def format_table(self) -> str:
        names = [*self.tasks, "Avg."]
        cells = [f"{self.scores[task]:.2f}" for task in self.tasks] + [f"{self.avg:.2f}"]
        widths = [max(len(name), len(cell)) for name, cell in zip(names, cells, strict=True)]
        rule = "+" + "+".join("-" * (w + 2) for w in widths) + "+"
        row = lambda items: "| " + " | ".join(s.rjust(w) for s, w in zip(items, widths, strict=True)) + " |"  # noqa: E731
        return "\n".join([rule, row(names), rule, row(cells), rule])

    def to_json(self) -> dict[str, object]:
        return {**{task: self.scores[task] for task in self.tasks}, "avg": self.avg, "details": self.details}


class _Progress:
    """``transfer MR: 120/410 classifiers, ETA 0:03:12`` on stderr at most every 10 s."""

    def __init__(self, task: str, total: int, enabled: bool) -> None:
        self.task, self.total, self.enabled = task, total, enabled
        self.done, self.started = 0, time.perf_counter()
        self.last = self.started

    def step(self) -> None:
        now = time.perf_counter()
        if self.enabled and self.done and now - self.last >= _PROGRESS_EVERY_S:
            self.last = now
            left = round((now - self.started) / self.done * (self.total - self.done))
            eta = f"{left // 3600}:{left % 3600 // 60:02d}:{left % 60:02d}"
            print(f"transfer {self.task}: {self.done}/{self.total} classifiers, ETA {eta}", file=sys.stderr)
        self.done += 1


def evaluate_transfer(
    encoder: SentenceEncoder,
    *,
    data_dir: str | Path,
    tasks: Sequence[str] | None = None,
    mode: str = "test",
    seed: int = DEFAULT_SEED,
    device: str | torch.device | None = None,
    batch_size: int = 64,
    show_progress: bool = True,
    classifier: ClassifierConfig | None = None,
) -> TransferReport:
    """Run ``tasks`` (default: all seven) under ``mode`` (``test`` or ``fasttest``); ``classifier`` replaces
    the mode's classifier settings (the report then names the mode ``custom``)."""
    if not 0 <= seed < 2**32:
        raise JtcseError(f"--seed {seed}: must be in 0 .. 2**32 - 1 (numpy's seeds)")
    config = mode_config(mode) if classifier is None else classifier
    mode = mode if classifier is None else "custom"
    chosen = resolve_tasks(tasks)
    data_dir = Path(data_dir)
    where = select_device(device, option="--classifier-device")  # before the sentences are embedded
    rows = _embed_all(
        encoder, [s for task in chosen for s in sentences_of(task, data_dir)], batch_size, show_progress
    )
    embed = lambda sentences: np.stack([rows[s] for s in sentences])  # noqa: E731
    scores: dict[str, float] = {}
    details: dict[str, object] = {
        "mode": mode,
        "seed": seed,
        "classifier": asdict(config),
        "l2_grid": list(L2_GRID),
    }
    for task in chosen:
        started = time.perf_counter()
        progress = _Progress(task, classifiers_needed(task, config.kfold), show_progress)
        setup = Setup(config, N_CLASSES[task], seed, where, progress.step)
        outcome, counts = run_task(task, data_dir, embed, setup)
        scores[task] = outcome.acc
        task_details: dict[str, object] = {
            "devacc": outcome.devacc,
            "acc": outcome.acc,
            "l2": outcome.penalties,
        }
        if task == "MRPC":
            task_details["f1"] = f1_positive(outcome.predictions, outcome.truth)
        details[task] = {**task_details, **counts, "seconds": round(time.perf_counter() - started, 2)}
        if show_progress:
            print(f"transfer {task}: acc {outcome.acc:.2f} (dev {outcome.devacc:.2f})", file=sys.stderr)
    return TransferReport(mode, scores, details)


def _embed_all(
    encoder: SentenceEncoder, sentences: list[str], batch_size: int, show_progress: bool
) -> dict[str, np.ndarray]:
    distinct = list(dict.fromkeys(sentences))
    vectors = np.asarray(encoder.encode(distinct, batch_size=batch_size, show_progress=show_progress))
    return dict(zip(distinct, vectors.astype(np.float32, copy=False), strict=True))
