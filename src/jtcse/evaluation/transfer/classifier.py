"""SentEval's classifier on frozen features: logistic regression (``nhid`` 0) or a one-hidden-layer MLP,
trained with an L2 penalty (the optimizer's weight decay) and early stopping on a validation set.

Training follows SentEval's ``PyTorchClassifier.fit``: rounds of ``epoch_size`` passes over the shuffled
training set in mini-batches (mean cross-entropy), each round followed by the validation accuracy; the best
round's weights are kept; after a round that does not beat the best, training stops once ``tenacity`` such
rounds came before it (the count is never reset), and in any case after ``max_epoch`` passes. Without a
validation set, a seeded 5% of the training set is held out for it (SentEval's ``validation_split=0.05``).

Randomness is SentEval's: every classifier starts from ``seed``: its initial weights are torch's default init
right after ``torch.manual_seed(seed)``, and the held-out 5% and every epoch's shuffle come, in SentEval's
order, from numpy's legacy generator seeded with ``seed`` (SentEval's ``np.random.seed(seed)``), so the
permutations are SentEval's own. Both generators are private: the global ones are left alone.

On the CPU, training runs on one torch thread: its matrix products (a batch of 64 by a few hundred features
by a handful of classes) are too small to gain from more, and on a busy machine extra threads cost far more
than they give (a measured 3 s against 36 ms for one toy fit on a loaded 2-core machine).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from jtcse.errors import JtcseError

OPTIMIZERS = ("adam", "rmsprop")


@dataclass(frozen=True)
class ClassifierConfig:
    """SentEval's ``params['classifier']`` plus ``kfold``."""

    nhid: int = 0
    optim: str = "adam"
    batch_size: int = 64
    tenacity: int = 5
    epoch_size: int = 4
    max_epoch: int = 200
    dropout: float = 0.0
    kfold: int = 10


# SimCSE's evaluation.py: "test" is SentEval's full protocol, "fasttest" its fast one.
MODES: dict[str, ClassifierConfig] = {
    "test": ClassifierConfig(optim="adam", batch_size=64, tenacity=5, epoch_size=4, kfold=10),
    "fasttest": ClassifierConfig(optim="rmsprop", batch_size=128, tenacity=3, epoch_size=2, kfold=5),
}


def mode_config(mode: str) -> ClassifierConfig:
    if mode not in MODES:
        raise JtcseError(f"--mode {mode}: unknown; choose from {', '.join(MODES)}")
    return MODES[mode]


class Classifier:
    """One classifier with one L2 penalty; ``fit`` then ``score`` / ``predict``."""

    def __init__(
        self,
        config: ClassifierConfig,
        dim: int,
        n_classes: int,
        l2: float,
        *,
        seed: int,
        device: torch.device,
    ) -> None:
        self.config, self.l2, self.device = config, l2, device
        self.rng = np.random.RandomState(seed)
        self.model = _build(config, dim, n_classes, seed).to(device)
        if config.optim not in OPTIMIZERS:
            raise JtcseError(f"classifier optim {config.optim}: unknown; choose from {', '.join(OPTIMIZERS)}")
        optimizer = torch.optim.Adam if config.optim == "adam" else torch.optim.RMSprop
        self.optimizer = optimizer(self.model.parameters(), weight_decay=l2)
        self.loss = nn.CrossEntropyLoss()

    def fit(
        self, x: torch.Tensor, y: torch.Tensor, valid: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> float:
        """Train with early stopping on ``valid`` (else a held-out 5% of ``x``); return the best validation
        accuracy (a fraction), whose weights the classifier keeps."""
        with _cpu_threads(1 if self.device.type == "cpu" else None):
            return self._fit(x, y, valid)

    def _fit(
        self, x: torch.Tensor, y: torch.Tensor, valid: tuple[torch.Tensor, torch.Tensor] | None
    ) -> float:
        if valid is None:
            order = torch.from_numpy(self.rng.permutation(len(x))).to(x.device)
            held = int(0.05 * len(x))
            valid = (x[order[:held]], y[order[:held]])
            x, y = x[order[held:]], y[order[held:]]
        best, best_state, bad_rounds, epochs = -1.0, None, 0, 0
        while epochs <= self.config.max_epoch:
            self._train_round(x, y)
            epochs += self.config.epoch_size
            accuracy = self.score(*valid)
            if accuracy > best:
                best, best_state = accuracy, copy.deepcopy(self.model.state_dict())
            else:
                if bad_rounds >= self.config.tenacity:
                    break
                bad_rounds += 1
        if best_state is not None:
            self.model.load_state_dict(best_state)
        return best

    def _train_round(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.model.train()
        size = self.config.batch_size
        for _ in range(self.config.epoch_size):
            order = torch.from_numpy(self.rng.permutation(len(x))).to(x.device)
            for start in range(0, len(x), size):
                batch = order[start : start + size]
                loss = self.loss(self.model(x[batch]), y[batch])
                self.optimizer.zero_grad()
                loss.backward()
                self.optimizer.step()

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        self.model.eval()
        return self.model(x).argmax(dim=1)

    def score(self, x: torch.Tensor, y: torch.Tensor) -> float:
        """Accuracy as a fraction (0 for no samples)."""
        if len(y) == 0:
            return 0.0
        return float((self.predict(x) == y).sum().item()) / len(y)


@contextmanager
def _cpu_threads(threads: int | None) -> Iterator[None]:
    """Run the block on ``threads`` torch CPU threads (``None``: unchanged), then restore the count."""
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        if threads is not None:
            torch.set_num_threads(before)


def _build(config: ClassifierConfig, dim: int, n_classes: int, seed: int) -> nn.Sequential:
    """``nn.Sequential`` as SentEval builds it, with torch's default init drawn right after
    ``torch.manual_seed(seed)`` (SentEval's weights, bit for bit on the CPU); on a forked generator, so the
    caller's global torch generator is untouched."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if config.nhid == 0:
            return nn.Sequential(nn.Linear(dim, n_classes))
        hidden, out = nn.Linear(dim, config.nhid), nn.Linear(config.nhid, n_classes)
        return nn.Sequential(hidden, nn.Dropout(config.dropout), nn.Sigmoid(), out)
