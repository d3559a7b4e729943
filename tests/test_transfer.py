"""SentEval's transfer protocol: folds, penalty choice, classifier, tasks and ``jtcse eval transfer``."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from jtcse.cli.main import main
from jtcse.errors import JtcseError
from jtcse.evaluation.transfer.classifier import MODES, Classifier, ClassifierConfig
from jtcse.evaluation.transfer.folds import fold_of_each, stratified_kfold
from jtcse.evaluation.transfer.runner import evaluate_transfer
from jtcse.evaluation.transfer.tasks import TASKS, classifiers_needed, f1_positive, resolve_tasks
from jtcse.evaluation.transfer.validation import (
    L2_GRID,
    Data,
    Setup,
    choose_penalty,
    inner_kfold,
    kfold,
    split,
)
from transfer_toy import BagOfWords, write_toy_transfer

CPU = torch.device("cpu")
# Quick on toy sets: 3 folds, and batches small enough for a few dozen sentences to make several steps.
QUICK = ClassifierConfig(optim="rmsprop", batch_size=16, tenacity=3, epoch_size=2, kfold=3)


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_toy_transfer(tmp_path_factory.mktemp("toy_transfer"), n=24)


# --- folds -------------------------------------------------------------------------------------------------


def test_folds_deal_each_class_round_robin() -> None:
    """Hand computation: 4 of class 0 then 7 of class 1, 3 folds. Sorted labels 0000 1111111 dealt
    round-robin: fold 0 gets positions 0,3,6,9 (0,0,1,1), fold 1 gets 1,4,7,10 (0,1,1,1), fold 2 gets
    2,5,8 (0,1,1): per fold (class 0, class 1) = (2, 2), (1, 3), (1, 2)."""
    labels = [0] * 4 + [1] * 7
    for seed in (0, 1, 1111):
        folds = fold_of_each(labels, 3, seed)
        y = np.array(labels)
        counts = [
            (int(np.sum((folds == f) & (y == 0))), int(np.sum((folds == f) & (y == 1)))) for f in range(3)
        ]
        assert counts == [(2, 2), (1, 3), (1, 2)]
    splits = stratified_kfold(labels, 3, 1111)
    tests = np.sort(np.concatenate([test for _, test in splits]))
    assert tests.tolist() == list(range(11))  # every sample in exactly one test fold
    for train, test in splits:
        assert sorted(train.tolist() + test.tolist()) == list(range(11))
    # The seeded shuffle, fixed: SentEval's splits of this toy set with its seed.
    assert fold_of_each(labels, 3, 1111).tolist() == [2, 1, 0, 0, 0, 1, 2, 0, 2, 1, 1]


def test_folds_are_sklearns() -> None:
    sklearn_split = pytest.importorskip("sklearn.model_selection")
    rng = np.random.default_rng(0)
    for n, classes, k, seed in [(37, 2, 5, 1111), (100, 6, 10, 3), (53, 3, 4, 0), (20, 2, 10, 1111)]:
        y = rng.integers(0, classes, n) * 7 + 3  # labels that are neither 0-based nor contiguous
        theirs = sklearn_split.StratifiedKFold(k, shuffle=True, random_state=seed).split(np.zeros(n), y)
        ours = stratified_kfold(y, k, seed)
        for (a_train, a_test), (b_train, b_test) in zip(theirs, ours, strict=True):
            assert a_train.tolist() == b_train.tolist() and a_test.tolist() == b_test.tolist()


def test_folds_reject_too_few() -> None:
    with pytest.raises(JtcseError, match="more than the members of every class"):
        fold_of_each([0, 1, 0, 1], 3, 0)
    with pytest.raises(JtcseError, match="at least 2 folds"):
        fold_of_each([0, 1, 0, 1], 1, 0)


# --- penalty choice and the protocols, with a scripted classifier ------------------------------------------


class ConstantClassifier:
    """Predicts one class whatever the input: class 1 for the penalties 1e-4 and 1e-2, else class 0.
    Its accuracy on a fold is that class's share of the fold, which the stratification fixes."""

    def __init__(self, l2: float) -> None:
        self.cls = 1 if l2 in (1e-4, 1e-2) else 0

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        return torch.full((len(x),), self.cls, dtype=torch.int64)

    def score(self, x: torch.Tensor, y: torch.Tensor) -> float:
        return float((self.predict(x) == y).float().mean().item())

    def fit(self, x: torch.Tensor, y: torch.Tensor, valid: Data | None = None) -> float:
        return self.score(*valid) if valid is not None else 0.0


def scripted(k: int, calls: list[float]) -> Setup:
    config = ClassifierConfig(kfold=k)
    return Setup(
        config, 2, 1111, CPU, step=lambda: calls.append(1), factory=lambda dim, l2: ConstantClassifier(l2)
    )


def test_choose_penalty_takes_the_first_best() -> None:
    assert choose_penalty([80.0, 85.5, 85.5, 70.0]) == (1e-4, 85.5)
    assert choose_penalty([90.0, 85.5, 85.5, 70.0]) == (1e-5, 90.0)
    assert L2_GRID == (1e-5, 1e-4, 1e-3, 1e-2)  # SentEval: [10**t for t in range(-5, -1)]


def test_kfold_protocol_by_hand() -> None:
    """Train: 4 of class 0, 7 of class 1, 3 folds (shares of class 1 per fold: 2/4, 3/4, 2/3, see above).
    Predicting 1 scores mean(0.5, 0.75, 0.6667) = 63.89; predicting 0 scores 36.11. Grid scores
    [36.11, 63.89, 36.11, 63.89]: the first best, 1e-4, is refit and tested on [1, 0, 0, 0]: 25.0."""
    x = torch.zeros(11, 2)
    y = torch.tensor([0] * 4 + [1] * 7)
    calls: list[float] = []
    outcome = kfold(scripted(3, calls), (x, y), (torch.zeros(4, 2), torch.tensor([1, 0, 0, 0])))
    assert (outcome.devacc, outcome.acc, outcome.penalties) == (63.89, 25.0, [1e-4])
    assert outcome.predictions.tolist() == [1, 1, 1, 1] and outcome.truth.tolist() == [1, 0, 0, 0]
    assert len(calls) == classifiers_needed("TREC", 3) == 4 * 3 + 1


def test_inner_kfold_protocol_by_hand() -> None:
    """12 of class 1, 8 of class 0, 2 outer folds of (6, 4); inside each, 2 inner folds of (3, 2):
    predicting 1 scores 60.0 (inner) and 60.0 (outer test fold); the first best penalty, 1e-4, each time."""
    y = torch.tensor([1] * 12 + [0] * 8)
    calls: list[float] = []
    outcome = inner_kfold(scripted(2, calls), torch.zeros(20, 2), y)
    assert (outcome.devacc, outcome.acc, outcome.penalties) == (60.0, 60.0, [1e-4, 1e-4])
    assert len(calls) == classifiers_needed("MR", 2) == 2 * (4 * 2 + 1)


def test_split_protocol_by_hand() -> None:
    """Dev [1, 1, 0]: grid scores [33.33, 66.67, 33.33, 66.67]; 1e-4 tested on [0, 1, 1, 1, 0]: 60.0."""
    calls: list[float] = []
    setup = scripted(10, calls)
    train = (torch.zeros(6, 2), torch.tensor([0, 1, 0, 1, 0, 1]))
    dev = (torch.zeros(3, 2), torch.tensor([1, 1, 0]))
    outcome = split(setup, train, dev, (torch.zeros(5, 2), torch.tensor([0, 1, 1, 1, 0])))
    assert (outcome.devacc, outcome.acc, outcome.penalties) == (66.67, 60.0, [1e-4])
    assert len(calls) == classifiers_needed("SST2", 10) == 5


class RowRecorder(ConstantClassifier):
    """Records which rows (column 0 holds each row's number) every fit trained on."""

    def __init__(self, l2: float, fits: list[list[int]]) -> None:
        super().__init__(l2)
        self.fits = fits

    def fit(self, x: torch.Tensor, y: torch.Tensor, valid: Data | None = None) -> float:
        self.fits.append(x[:, 0].long().tolist())
        return super().fit(x, y, valid)


def _rows_trained_on(protocol: str, seed: int) -> list[list[int]]:
    fits: list[list[int]] = []
    setup = Setup(ClassifierConfig(kfold=3), 2, seed, CPU, factory=lambda dim, l2: RowRecorder(l2, fits))
    x = torch.arange(30, dtype=torch.float32).repeat(2, 1).T
    y = torch.tensor([0, 1, 1] * 10)
    if protocol == "inner":
        inner_kfold(setup, x, y)
    else:
        kfold(setup, (x, y), (x[:4], y[:4]))
    return fits


def test_seed_moves_the_folds_only_where_senteval_lets_it() -> None:
    """SentEval's InnerKFoldClassifier (MR CR SUBJ MPQA) draws both fold levels with 1111 whatever its seed;
    its KFoldClassifier (TREC, MRPC) with the seed."""
    inner = _rows_trained_on("inner", 1111)
    assert _rows_trained_on("inner", 5) == inner
    outer_train = [sorted(train.tolist()) for train, _ in stratified_kfold([0, 1, 1] * 10, 3, 1111)]
    assert [fit for fit in inner if len(fit) == 20] == outer_train  # the refit on each outer training part
    assert _rows_trained_on("kfold", 5) != _rows_trained_on("kfold", 1111)


def test_f1_of_the_positive_class() -> None:
    # 2 true positives, 1 false positive, 1 false negative: F1 = 2*2 / (3 + 3) = 66.67
    assert f1_positive(np.array([1, 1, 1, 0, 0]), np.array([1, 1, 0, 1, 0])) == 66.67


# --- the real classifier -----------------------------------------------------------------------------------


def blobs(n: int, dim: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = rng.normal(size=(n, dim)).astype(np.float32)
    x[:, 0] += (2 * y - 1) * 4.0  # separable along the first axis, margin well above the noise
    return torch.from_numpy(x), torch.from_numpy(y)


def test_classifier_separable_and_shuffled() -> None:
    x, y = blobs(150, 8, seed=0)
    setup = Setup(QUICK, 2, 1111, CPU)
    assert inner_kfold(setup, x, y).acc >= 95.0
    shuffled = y[torch.from_numpy(np.random.default_rng(1).permutation(len(y)))]
    chance = inner_kfold(setup, x, shuffled).acc
    assert 35.0 <= chance <= 65.0, chance


def test_classifier_is_seeded_and_leaves_global_rng_alone() -> None:
    x, y = blobs(120, 4, seed=2)
    torch.manual_seed(5)
    before = torch.rand(1)
    torch.manual_seed(5)
    weights = []
    for _ in range(2):
        clf = Classifier(MODES["fasttest"], 4, 2, 1e-3, seed=7, device=CPU)
        clf.fit(x, y)
        weights.append(clf.model[0].weight.detach().clone())
    assert torch.equal(weights[0], weights[1])
    assert torch.equal(torch.rand(1), before)
    # SentEval's initial weights: torch's default init right after torch.manual_seed(seed).
    torch.manual_seed(7)
    reference = torch.nn.Linear(4, 2)
    fresh = Classifier(MODES["fasttest"], 4, 2, 1e-3, seed=7, device=CPU).model[0]
    assert torch.equal(fresh.weight, reference.weight) and torch.equal(fresh.bias, reference.bias)


def test_early_stopping_counts_as_senteval() -> None:
    """Validation accuracy never improves after the first round: SentEval stops after tenacity + 1 more
    rounds (the count is checked before it is raised), i.e. 1 + tenacity + 1 rounds in all."""
    config = ClassifierConfig(tenacity=2, epoch_size=1, batch_size=1000)
    clf = Classifier(config, 2, 2, 0.0, seed=0, device=CPU)
    rounds = []
    clf._train_round = lambda x, y: rounds.append(1)  # type: ignore[method-assign]  # count rounds only
    x = torch.zeros(10, 2)
    clf.fit(x, torch.zeros(10, dtype=torch.int64), valid=(x, torch.zeros(10, dtype=torch.int64)))
    assert len(rounds) == 1 + config.tenacity + 1


def test_modes_are_simcse_settings() -> None:
    test = ClassifierConfig(nhid=0, optim="adam", batch_size=64, tenacity=5, epoch_size=4, kfold=10)
    fasttest = ClassifierConfig(optim="rmsprop", batch_size=128, tenacity=3, epoch_size=2, kfold=5)
    assert {"test": test, "fasttest": fasttest} == MODES


# --- tasks end to end --------------------------------------------------------------------------------------


def test_task_names() -> None:
    assert resolve_tasks(None) == list(TASKS)
    assert resolve_tasks(["mrpc,sst", "MR"]) == ["MR", "SST2", "MRPC"]
    with pytest.raises(JtcseError, match="--tasks SST5: unknown transfer task"):
        resolve_tasks(["SST5"])


def test_separable_toy_tasks_score_high(toy: Path) -> None:
    report = evaluate_transfer(
        BagOfWords(), data_dir=toy, device="cpu", show_progress=False, classifier=QUICK
    )
    assert report.tasks == list(TASKS)
    for task in TASKS:
        assert report.scores[task] >= 95.0, (task, report.scores[task])
    assert report.avg == round(float(np.mean([report.scores[t] for t in TASKS])), 2)
    details = report.details
    assert details["mode"] == "custom" and details["MR"]["n"] == 48 and details["TREC"]["n_test"] == 144
    assert details["SST2"]["n_dev"] == 48 and len(details["MR"]["l2"]) == 3
    assert details["MRPC"]["f1"] >= 95.0


def test_shuffled_labels_score_chance(tmp_path: Path) -> None:
    root = write_toy_transfer(tmp_path, n=100, seed=3)
    pos, neg = (root / "downstream" / "MR" / name for name in ("rt-polarity.pos", "rt-polarity.neg"))
    lines = pos.read_text().splitlines() + neg.read_text().splitlines()
    random.Random(0).shuffle(lines)  # each file now holds both kinds of sentence: the labels mean nothing
    pos.write_text("\n".join(lines[:100]) + "\n")
    neg.write_text("\n".join(lines[100:]) + "\n")
    report = evaluate_transfer(
        BagOfWords(), data_dir=root, tasks=["MR"], device="cpu", show_progress=False, classifier=QUICK
    )
    assert 35.0 <= report.scores["MR"] <= 65.0, report.scores


# --- the command -------------------------------------------------------------------------------------------


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


def test_cli_eval_transfer(tiny_bert_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = write_toy_transfer(tmp_path / "data", n=8)
    out = tmp_path / "res" / "transfer.json"
    argv = ["eval", "transfer", "--model", str(tiny_bert_dir), "--pooler", "avg", "--data-dir", str(data)]
    argv += ["--tasks", "SST2,TREC", "MRPC", "--mode", "fasttest", "--device", "cpu", "--quiet"]
    code, stdout, stderr = run_cli([*argv, "--output", str(out)], capsys)
    assert code == 0, stderr
    header = stdout.splitlines()[1]
    assert [cell.strip() for cell in header.split("|")[1:-1]] == ["SST2", "TREC", "MRPC", "Avg."]
    payload = json.loads(out.read_text())
    assert list(payload)[:4] == ["SST2", "TREC", "MRPC", "avg"]
    for task in ("SST2", "TREC", "MRPC"):
        assert 0.0 <= payload[task] <= 100.0 and f"{payload[task]:.2f}" in stdout
    details = payload["details"]
    assert details["mode"] == "fasttest" and details["seed"] == 1111 and details["classifier"]["kfold"] == 5
    assert details["TREC"]["n_train"] == 48 and details["pooler"] == "avg"


def test_cli_errors_are_one_line(
    tiny_bert_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["eval", "transfer", "--model", str(tiny_bert_dir), "--quiet"]
    code, _, stderr = run_cli([*base, "--data-dir", str(tmp_path), "--tasks", "MR"], capsys)
    assert code == 2 and "has no downstream/ folder" in stderr and len(stderr.strip().splitlines()) == 1
    data = write_toy_transfer(tmp_path / "data", n=4)
    code, _, stderr = run_cli([*base, "--data-dir", str(data), "--tasks", "SST5"], capsys)
    assert code == 2 and "--tasks SST5: unknown transfer task" in stderr
    code, _, stderr = run_cli([*base, "--data-dir", str(data), "--tasks", "MR", "--seed", "-1"], capsys)
    assert code == 2 and "argument --seed: expected a seed from 0 to 4294967295, got -1" in stderr
    (data / "downstream" / "TREC" / "TREC_10.label").unlink()
    code, _, stderr = run_cli([*base, "--data-dir", str(data), "--tasks", "TREC"], capsys)
    assert code == 2 and "TREC_10.label: missing" in stderr
