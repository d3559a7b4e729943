"""Stratified k-fold splits, the very splits of scikit-learn's
``StratifiedKFold(shuffle=True, random_state=seed)`` (the splitter SentEval uses), without scikit-learn.

Classes are numbered by order of first appearance. The sorted class list is dealt round-robin over the k
folds, which fixes how many members of each class every test fold gets; then, class by class, the fold
numbers of that class's members are shuffled with one ``numpy.random.RandomState(seed)`` (numpy's legacy
generator, whose stream numpy keeps stable across versions) and assigned to its members in data order.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from jtcse.errors import JtcseError

Split = tuple[np.ndarray, np.ndarray]  # (train indices, test indices), each ascending


def fold_of_each(labels: Sequence[int] | np.ndarray, k: int, seed: int) -> np.ndarray:
    """The test fold (0..k-1) of every sample."""
    y = np.asarray(labels)
    if k < 2:
        raise JtcseError(f"--kfold {k}: need at least 2 folds")
    _, first_seen, inverse = np.unique(y, return_index=True, return_inverse=True)
    order_of_class = np.argsort(np.argsort(first_seen))  # lexicographic class id -> order of appearance
    encoded = order_of_class[inverse.reshape(-1)]
    n_classes = len(first_seen)
    if np.all(np.bincount(encoded, minlength=n_classes) < k):
        raise JtcseError(f"{k} folds: more than the members of every class ({len(y)} samples)")
    dealt = np.sort(encoded)
    allocation = np.asarray([np.bincount(dealt[i::k], minlength=n_classes) for i in range(k)])
    rng = np.random.RandomState(seed)
    folds = np.empty(len(y), dtype=np.int64)
    for cls in range(n_classes):
        folds_for_class = np.arange(k).repeat(allocation[:, cls])
        rng.shuffle(folds_for_class)
        folds[encoded == cls] = folds_for_class
    return folds


def stratified_kfold(labels: Sequence[int] | np.ndarray, k: int, seed: int) -> list[Split]:
    """``k`` (train, test) index pairs; every sample is in exactly one test fold."""
    folds = fold_of_each(labels, k, seed)
    everything = np.arange(len(folds))
    return [(everything[folds != i], everything[folds == i]) for i in range(k)]
