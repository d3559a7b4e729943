"""The STS evaluator against hand-computed figures, and (slow) against the published MiniLM numbers."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import pytest

from jtcse.errors import JtcseError
from jtcse.evaluation.sts import (
    TASKS,
    average_ranks,
    canonical_task,
    correlations,
    evaluate_sts,
    resolve_tasks,
    stsb_dev_score,
)
from sts_toy import LookupEncoder, vector_with_cosine, write_toy_sts

# STS13 toy: per subset, (cosine of the pair, gold score); the anchor sentence is always the left side.
TOY_STS13 = {
    "FNWN": [(0.9, 5), (0.5, 3), (0.1, 1)],  # Spearman 1
    "headlines": [(0.8, 4), (0.6, 2), (0.4, 3), (0.2, 1)],  # ranks 4321 vs 4231: 1 - 6*2/(4*15) = 0.8
    "OnWN": [(0.7, 0), (0.3, 5), (-0.5, 2)],  # ranks 321 vs 132: 1 - 6*6/(3*8) = -0.5
}
ANCHOR = "the   anchor  sentence"  # written with extra spaces: the evaluator must re-join it


def write_toy_sts13(root: Path) -> dict[str, np.ndarray]:
    """The STS13 files for TOY_STS13 (one extra unscored pair in headlines) and the lookup table."""
    folder = root / "sts" / "STS13" / "senteval"
    folder.mkdir(parents=True)
    table = {"the anchor sentence": np.array([2.0, 0.0, 0.0])}  # not unit length: cosine must normalise
    for subset, pairs in TOY_STS13.items():
        inputs, golds = [], []
        for index, (cosine, gold) in enumerate(pairs):
            sentence = f"{subset} pair {index}"
            table[sentence] = vector_with_cosine(cosine, scale=0.5 + index)
            inputs.append(f"{ANCHOR}\t{sentence}")
            golds.append(str(gold))
        if subset == "headlines":
            inputs.insert(1, f"{ANCHOR}\tnever encoded")
            golds.insert(1, "")
        (folder / f"STS.input.{subset}.txt").write_text("\n".join(inputs) + "\n")
        (folder / f"STS.gs.{subset}.txt").write_text("\n".join(golds) + "\n")
    return table


def test_all_mean_wmean_match_hand_computation(tmp_path: Path) -> None:
    encoder = LookupEncoder(write_toy_sts13(tmp_path))
    report = evaluate_sts(encoder, data_dir=tmp_path, tasks=["STS13"], show_progress=False)
    details = report.details["STS13"]

    subsets = details["subsets"]
    assert subsets["FNWN"]["spearman"] == pytest.approx(100.0)
    assert subsets["headlines"]["spearman"] == pytest.approx(80.0)
    assert subsets["OnWN"]["spearman"] == pytest.approx(-50.0)
    assert [subsets[name]["n_pairs"] for name in ("FNWN", "headlines", "OnWN")] == [3, 4, 3]
    assert subsets["FNWN"]["pearson"] == pytest.approx(100.0)  # cosines 0.9/0.5/0.1 are linear in gold 5/3/1

    assert details["mean"]["spearman"] == pytest.approx((100 + 80 - 50) / 3)
    assert details["wmean"]["spearman"] == pytest.approx((3 * 100 + 4 * 80 + 3 * -50) / 10)
    # "all": one Spearman over the 10 concatenated pairs, i.e. Pearson of the (tie-averaged) ranks.
    # cosine ranks 10 6 2 9 7 5 3 8 4 1; gold ranks 9.5 6.5 2.5 8 4.5 6.5 2.5 1 9.5 4.5;
    # centred cross-product sum 30.5, sums of squares 82.5 and 80.5.
    expected_all = 100 * 30.5 / math.sqrt(82.5 * 80.5)
    assert details["all"]["spearman"] == pytest.approx(expected_all)
    assert report.scores["STS13"] == pytest.approx(expected_all)
    assert report.scores["avg"] == pytest.approx(round(expected_all, 2))
    assert details["n_pairs"] == 10


def test_encodes_each_distinct_sentence_once_in_one_call(tmp_path: Path) -> None:
    encoder = LookupEncoder(write_toy_sts13(tmp_path))
    evaluate_sts(encoder, data_dir=tmp_path, tasks=["STS13"], show_progress=False)
    assert len(encoder.calls) == 1
    sentences = encoder.calls[0]
    assert len(sentences) == len(set(sentences)) == 1 + 10  # the anchor once; the unscored pair never
    assert "never encoded" not in sentences


def test_zero_vector_gives_cosine_zero(tmp_path: Path) -> None:
    table = write_toy_sts13(tmp_path)
    table["FNWN pair 2"] = np.zeros(3)  # cosine 0.1 -> 0: still the lowest of FNWN, Spearman unchanged
    report = evaluate_sts(LookupEncoder(table), data_dir=tmp_path, tasks=["STS13"], show_progress=False)
    assert report.details["STS13"]["subsets"]["FNWN"]["spearman"] == pytest.approx(100.0)


def test_seven_tasks_json_and_table(tmp_path: Path) -> None:
    write_toy_sts(tmp_path, pairs=5)
    rng = np.random.default_rng(0)
    vectors: dict[str, np.ndarray] = {}

    class RandomEncoder:
        def encode(self, sentences, batch_size=64, show_progress=True):
            return np.stack([vectors.setdefault(s, rng.normal(size=8)) for s in sentences])

    report = evaluate_sts(RandomEncoder(), data_dir=tmp_path, show_progress=False)
    payload = json.loads(json.dumps(report.to_json()))
    assert list(payload) == [*TASKS, "avg", "details"]
    assert payload["details"]["STS12"]["n_pairs"] == 5 * 5
    assert payload["details"]["STSBenchmark"]["n_pairs"] == 7
    assert payload["details"]["SICKRelatedness"]["n_pairs"] == 8
    assert payload["details"]["STSBenchmark"]["split"] == "test"
    assert set(payload["details"]["STS14"]["subsets"]) == {
        "deft-forum",
        "deft-news",
        "headlines",
        "images",
        "OnWN",
        "tweet-news",
    }
    assert payload["avg"] == pytest.approx(np.mean([round(payload[t], 2) for t in TASKS]))
    table = report.format_table()
    assert "STSBenchmark" in table and "Avg." in table
    assert f"{report.scores['STS12']:.2f}" in table


def test_dev_mode_uses_stsb_dev_and_sick_trial(tmp_path: Path) -> None:
    write_toy_sts(tmp_path, pairs=4)
    rng = np.random.default_rng(1)
    report = evaluate_sts(lambda s: rng.normal(size=(len(s), 4)), data_dir=tmp_path, mode="dev")
    assert report.tasks == ["STSBenchmark", "SICKRelatedness"]
    assert report.details["SICKRelatedness"]["split"] == "dev"
    assert report.details["SICKRelatedness"]["n_pairs"] == 7  # SICK_trial.txt
    with pytest.raises(JtcseError, match="--mode dev: STS12 has no dev split"):
        evaluate_sts(lambda s: rng.normal(size=(len(s), 4)), data_dir=tmp_path, mode="dev", tasks=["STS12"])


def test_stsb_dev_score(tmp_path: Path) -> None:
    write_toy_sts(tmp_path, pairs=4)
    rng = np.random.default_rng(2)
    vectors: dict[str, np.ndarray] = {}

    def encode(sentences):
        assert len(sentences) == len(set(sentences))
        return np.stack([vectors.setdefault(s, rng.normal(size=6)) for s in sentences])

    score = stsb_dev_score(encode, data_dir=tmp_path)
    report = evaluate_sts(encode, data_dir=tmp_path, mode="dev", tasks=["stsb"])
    assert score == pytest.approx(report.scores["STSBenchmark"])


def test_correlations_match_scipy_with_ties() -> None:
    from scipy import stats

    rng = np.random.default_rng(3)
    for size in (2, 7, 500):
        predicted = np.round(rng.normal(size=size), 1)  # rounding makes ties
        gold = rng.integers(0, 6, size=size).astype(float)
        gold[:2] = [0.0, 5.0]  # never constant
        spearman, pearson = correlations(predicted, gold)
        assert np.allclose(average_ranks(predicted), stats.rankdata(predicted))
        assert spearman == pytest.approx(100 * stats.spearmanr(predicted, gold)[0], abs=1e-9)
        assert pearson == pytest.approx(100 * stats.pearsonr(predicted, gold)[0], abs=1e-9)
    assert all(math.isnan(v) for v in correlations(np.ones(4), np.arange(4.0)))


def test_task_names_and_aliases() -> None:
    assert canonical_task("sts-b") == "STSBenchmark"
    assert canonical_task("SICK-R") == "SICKRelatedness"
    assert resolve_tasks(["SICK", "sts12"]) == ["STS12", "SICKRelatedness"]  # papers' order
    with pytest.raises(JtcseError, match=r"^--tasks STS17: unknown STS task; choose from STS12"):
        resolve_tasks(["STS17"])
    with pytest.raises(JtcseError, match="--mode final: unknown"):
        resolve_tasks(None, mode="final")


# Published all-MiniLM-L6-v2 (mean pooling) figures; STS12-16 and STS-B equal MTEB's.
MINILM_EXPECTED = {
    "STS12": 72.37,
    "STS13": 80.60,
    "STS14": 75.59,
    "STS15": 85.39,
    "STS16": 78.99,
    "STSBenchmark": 82.03,
    "SICKRelatedness": 77.15,
    "avg": 78.87,
}
PAIRS = {
    "STS12": 3108,
    "STS13": 1500,
    "STS14": 3750,
    "STS15": 3000,
    "STS16": 1186,
    "STSBenchmark": 1379,
    "SICKRelatedness": 4927,
}


@pytest.mark.slow
def test_minilm_reproduces_published_figures(shared_data_dir: Path) -> None:
    from jtcse import Encoder

    started = time.perf_counter()
    report = evaluate_sts(Encoder("minilm", pooler="avg"), data_dir=shared_data_dir, show_progress=False)
    seconds = time.perf_counter() - started
    print(f"\n{report.format_table()}\n7-task eval: {seconds:.1f} s")
    for task, expected in MINILM_EXPECTED.items():
        assert report.scores[task] == pytest.approx(expected, abs=0.02), task
    for task, pairs in PAIRS.items():
        assert report.details[task]["n_pairs"] == pairs, task
