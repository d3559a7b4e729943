"""A tiny synthetic STS data directory (made-up sentences, every file format) and a lookup-table encoder.

Used by the STS reader, evaluator and CLI tests. Nothing here is copied from the real data.
"""

from __future__ import annotations

import math
import random
from pathlib import Path

import numpy as np

from jtcse.data.sts import STS_YEAR_SUBSETS

SUBJECTS = ("a man", "a woman", "the child", "a dog", "the cat", "two people")
VERBS = ("plays", "is playing", "runs to", "rides", "eats", "reads", "looks at")
OBJECTS = ("a guitar", "the piano", "the beach", "a red bike", "an apple", "a small book")
ENDINGS = ("", "quickly", "slowly", "in the park", "on the street")


def synthetic_sentence(rng: random.Random) -> str:
    parts = (rng.choice(SUBJECTS), rng.choice(VERBS), rng.choice(OBJECTS), rng.choice(ENDINGS))
    return " ".join(part for part in parts if part)


def write_toy_sts(root: Path, *, pairs: int = 6, seed: int = 0) -> Path:
    """Write ``root/sts/...`` for all 7 tasks: every year subset, STS-B and SICK splits. Returns ``root``.

    Each STS12-16 subset has ``pairs`` scored pairs plus one unscored pair (empty gold line). STS-B rows have
    7 columns, SICK files a header; the SICK test file uses CRLF line ends, as the real one does.
    """
    rng = random.Random(seed)
    for year, subsets in STS_YEAR_SUBSETS.items():
        folder = root / "sts" / year / "senteval"
        folder.mkdir(parents=True, exist_ok=True)
        for subset in subsets:
            inputs, golds = [], []
            for index in range(pairs + 1):
                inputs.append(f"{synthetic_sentence(rng)}\t{synthetic_sentence(rng)}")
                golds.append("" if index == 1 else f"{rng.uniform(0, 5):.3f}")
            (folder / f"STS.input.{subset}.txt").write_text("\n".join(inputs) + "\n", encoding="utf-8")
            (folder / f"STS.gs.{subset}.txt").write_text("\n".join(golds) + "\n", encoding="utf-8")
    stsb = root / "sts" / "STSB" / "senteval"
    stsb.mkdir(parents=True, exist_ok=True)
    for split in ("train", "dev", "test"):
        rows = [
            f"main-captions\tMSRvid\t2012test\t{i:04d}\t{rng.uniform(0, 5):.3f}\t"
            f"{synthetic_sentence(rng)}\t{synthetic_sentence(rng)}"
            for i in range(pairs + 2)
        ]
        (stsb / f"sts-{split}.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    sick = root / "sts" / "SICK" / "senteval"
    sick.mkdir(parents=True, exist_ok=True)
    for name in ("SICK_train.txt", "SICK_trial.txt", "SICK_test_annotated.txt"):
        rows = ["pair_ID\tsentence_A\tsentence_B\trelatedness_score\tentailment_judgment"]
        rows += [
            f"{i + 1}\t{synthetic_sentence(rng)}\t{synthetic_sentence(rng)}\t{rng.uniform(1, 5):.1f}\tNEUTRAL"
            for i in range(pairs + 3)
        ]
        newline = "\r\n" if name == "SICK_test_annotated.txt" else "\n"
        (sick / name).write_bytes((newline.join(rows) + newline).encode("utf-8"))
    return root


class LookupEncoder:
    """Encodes by table lookup; records every call. Unknown sentences raise KeyError (so any text the
    evaluator did not normalise as expected shows up)."""

    def __init__(self, table: dict[str, np.ndarray]) -> None:
        self.table = table
        self.calls: list[list[str]] = []

    def encode(self, sentences, batch_size: int = 64, show_progress: bool = True) -> np.ndarray:
        self.calls.append(list(sentences))
        return np.stack([self.table[s] for s in sentences]).astype(np.float32)


def vector_with_cosine(cosine: float, scale: float = 1.0) -> np.ndarray:
    """A 3-d vector whose cosine with [1, 0, 0] is ``cosine``."""
    return scale * np.array([cosine, math.sqrt(1.0 - cosine * cosine), 0.0])
