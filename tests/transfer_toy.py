"""Synthetic SentEval transfer data (``downstream/...``) and a bag-of-words encoder for the transfer tests."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np

# Words that decide the class, and filler words both classes share.
CLASS_WORDS = [
    ["alpha", "bravo", "charlie"],
    ["delta", "echo", "foxtrot"],
    ["golf", "hotel", "india"],
    ["juliet", "kilo", "lima"],
    ["mike", "november", "oscar"],
    ["papa", "quebec", "romeo"],
]
FILLER = ["the", "a", "of", "and", "to", "in", "is", "it", "that", "was", "for", "on"]
VOCABULARY = sorted({w for words in CLASS_WORDS for w in words} | set(FILLER))
TREC_NAMES = ("ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM")


def sentence(cls: int, rng: random.Random) -> str:
    """A sentence of class ``cls``: its three words among 2-5 filler words."""
    words = CLASS_WORDS[cls] + [rng.choice(FILLER) for _ in range(rng.randint(2, 5))]
    rng.shuffle(words)
    return " ".join(words)


def _write(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def write_toy_transfer(root: Path, *, n: int = 30, seed: int = 0) -> Path:
    """All seven tasks under ``root/downstream`` in SentEval's formats; classes decided by their words.

    ``n`` sentences per class and split (MRPC: pairs per class; TREC: per class of 6)."""
    rng = random.Random(seed)
    down = root / "downstream"
    for task, (first, second) in {
        "MR": ("rt-polarity.pos", "rt-polarity.neg"),
        "CR": ("custrev.pos", "custrev.neg"),
        "SUBJ": ("subj.objective", "subj.subjective"),
        "MPQA": ("mpqa.pos", "mpqa.neg"),
    }.items():
        _write(down / task / first, [sentence(1, rng) for _ in range(n)])
        _write(down / task / second, [sentence(0, rng) for _ in range(n)])
    for split in ("train", "dev", "test"):
        rows = [f"{sentence(c, rng)} \t{c}" for c in (0, 1) for _ in range(n)]
        _write(down / "SST" / "binary" / f"sentiment-{split}", rng.sample(rows, len(rows)))
    for name in ("train_5500.label", "TREC_10.label"):
        rows = [f"{TREC_NAMES[c]}:other {sentence(c, rng)}" for c in range(6) for _ in range(n)]
        _write(down / "TREC" / name, rng.sample(rows, len(rows)))
    for split in ("train", "test"):
        rows = ["\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String"]
        for i in range(2 * n):
            first = sentence(i % 6, rng)
            second = first if i % 2 else sentence((i + 1) % 6, rng)  # paraphrase: the same sentence
            rows.append(f"{i % 2}\t{i}\t{i + 1000}\t{first}\t{second}")
        _write(down / "MRPC" / f"msr_paraphrase_{split}.txt", rows)
    return root


class BagOfWords:
    """A deterministic encoder: word counts over :data:`VOCABULARY` (linearly separable toy classes)."""

    def encode(self, sentences: list[str], *, batch_size: int, show_progress: bool) -> np.ndarray:
        index = {word: i for i, word in enumerate(VOCABULARY)}
        out = np.zeros((len(sentences), len(VOCABULARY)), dtype=np.float32)
        for row, text in enumerate(sentences):
            for word in text.split():
                out[row, index[word]] += 1.0
        return out
