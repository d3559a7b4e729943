"""SentEval's three validation protocols (``senteval/tools/validation.py``, PyTorch branch), each choosing the
L2 penalty from :data:`L2_GRID` by validation accuracy:

* :func:`inner_kfold` (MR, CR, SUBJ, MPQA: one labelled set): k outer folds; in each, every penalty is
  scored by an inner k-fold cross-validation on the outer training part, the best one is refit on that whole
  part (early stopping on a held-out 5%) and tested on the outer test fold. Test accuracy: the mean over the
  outer folds.
* :func:`kfold` (TREC, MRPC: train and test sets): every penalty scored by k-fold cross-validation on the
  train set; the best refit on the whole train set (held-out 5%) and tested once on the test set.
* :func:`split` (SST2: train, dev and test sets): every penalty trained on train with early stopping on dev
  and scored on dev; the best retrained the same way and tested once.

Scores are percentages rounded to 2 decimals, as SentEval rounds them, and the chosen penalty is the first of
the grid with the highest rounded score (``numpy.argmax``). Each fold's classifier is validated on the fold it
is scored on, as in SentEval. As in SentEval, the outer and inner folds of :func:`inner_kfold` are drawn with
the fixed seed 1111 (:data:`INNER_KFOLD_SEED`) whatever the seed, and the folds of :func:`kfold` with the
seed; the seed always starts every classifier (its weights, held-out 5% and shuffles).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import torch

from jtcse.evaluation.transfer.classifier import Classifier, ClassifierConfig
from jtcse.evaluation.transfer.folds import stratified_kfold

# SentEval's grid for its PyTorch classifier: [10**t for t in range(-5, -1)]
L2_GRID: tuple[float, ...] = (1e-5, 1e-4, 1e-3, 1e-2)
# SentEval's InnerKFoldClassifier draws its outer and inner folds with random_state=1111, not its seed.
INNER_KFOLD_SEED = 1111

Data = tuple[torch.Tensor, torch.Tensor]  # (features, labels)
Step = Callable[[], None]  # called once per classifier trained: drives a progress line


class Trainable(Protocol):
    """What the protocols need of a classifier (:class:`Classifier` is the one they use by default)."""

    def fit(self, x: torch.Tensor, y: torch.Tensor, valid: Data | None = None) -> float: ...

    def predict(self, x: torch.Tensor) -> torch.Tensor: ...

    def score(self, x: torch.Tensor, y: torch.Tensor) -> float: ...


Factory = Callable[[int, float], Trainable]  # (feature dim, L2 penalty) -> a fresh classifier


@dataclass
class Outcome:
    """Dev (validation) and test accuracy in percent, the penalty chosen (per outer fold for inner k-fold)
    and, for one run on a test set, its predictions and true labels (empty for inner k-fold)."""

    devacc: float
    acc: float
    penalties: list[float]
    predictions: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    truth: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))


@dataclass(frozen=True)
class Setup:
    """What every classifier of one task shares."""

    config: ClassifierConfig
    n_classes: int
    seed: int
    device: torch.device
    step: Step = lambda: None
    factory: Factory | None = None  # another classifier (tests of the protocols); default: Classifier

    def classifier(self, dim: int, l2: float) -> Trainable:
        self.step()
        if self.factory is not None:
            return self.factory(dim, l2)
        return Classifier(self.config, dim, self.n_classes, l2, seed=self.seed, device=self.device)


def percent(fraction: float) -> float:
    return round(100 * fraction, 2)


def choose_penalty(scores: Sequence[float], grid: Sequence[float] = L2_GRID) -> tuple[float, float]:
    """(penalty, its score): the first grid entry with the highest score."""
    best = int(np.argmax(np.asarray(scores)))
    return grid[best], float(scores[best])


def _cv_scores(
    setup: Setup, x: torch.Tensor, y: torch.Tensor, labels: np.ndarray, fold_seed: int
) -> list[float]:
    """Per penalty: the mean over k folds of the fold's accuracy (fit with early stopping on that fold)."""
    folds = stratified_kfold(labels, setup.config.kfold, fold_seed)
    scores = []
    for l2 in L2_GRID:
        accuracies = []
        for train, test in folds:
            clf = setup.classifier(x.shape[1], l2)
            accuracies.append(clf.fit(x[train], y[train], valid=(x[test], y[test])))
        scores.append(percent(float(np.mean(accuracies))))
    return scores


def inner_kfold(setup: Setup, x: torch.Tensor, y: torch.Tensor) -> Outcome:
    labels = y.cpu().numpy()
    dev_scores, test_scores, penalties = [], [], []
    for train, test in stratified_kfold(labels, setup.config.kfold, INNER_KFOLD_SEED):
        l2, dev = choose_penalty(_cv_scores(setup, x[train], y[train], labels[train], INNER_KFOLD_SEED))
        clf = setup.classifier(x.shape[1], l2)
        clf.fit(x[train], y[train])
        dev_scores.append(dev)
        test_scores.append(percent(clf.score(x[test], y[test])))
        penalties.append(l2)
    return Outcome(round(float(np.mean(dev_scores)), 2), round(float(np.mean(test_scores)), 2), penalties)


def kfold(
    setup: Setup, train: tuple[torch.Tensor, torch.Tensor], test: tuple[torch.Tensor, torch.Tensor]
) -> Outcome:
    x, y = train
    l2, dev = choose_penalty(_cv_scores(setup, x, y, y.cpu().numpy(), setup.seed))
    clf = setup.classifier(x.shape[1], l2)
    clf.fit(x, y)
    predictions = clf.predict(test[0])
    acc = percent(float((predictions == test[1]).float().mean().item()))
    return Outcome(dev, acc, [l2], predictions.cpu().numpy(), test[1].cpu().numpy())


def split(
    setup: Setup,
    train: tuple[torch.Tensor, torch.Tensor],
    dev: tuple[torch.Tensor, torch.Tensor],
    test: tuple[torch.Tensor, torch.Tensor],
) -> Outcome:
    scores = []
    for l2 in L2_GRID:
        clf = setup.classifier(train[0].shape[1], l2)
        clf.fit(*train, valid=dev)
        scores.append(percent(clf.score(*dev)))
    l2, devacc = choose_penalty(scores)
    clf = setup.classifier(train[0].shape[1], l2)
    clf.fit(*train, valid=dev)
    predictions = clf.predict(test[0])
    acc = percent(float((predictions == test[1]).float().mean().item()))
    return Outcome(devacc, acc, [l2], predictions.cpu().numpy(), test[1].cpu().numpy())
