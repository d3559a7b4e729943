"""Small synthetic inputs for the training tests: a corpus, an STS-B dev file set, a config."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

WORDS = (
    "the",
    "a",
    "one",
    "cat",
    "dog",
    "bird",
    "man",
    "woman",
    "child",
    "plays",
    "runs",
    "sits",
    "eats",
    "sings",
    "reads",
    "on",
    "under",
    "near",
    "big",
    "small",
    "red",
    "blue",
    "green",
    "old",
    "young",
    "house",
    "tree",
    "car",
    "guitar",
    "ball",
    "food",
    "mat",
    "park",
    "river",
    "quickly",
    "slowly",
    "today",
)


def write_corpus(path: Path, n: int = 24, *, seed: int = 0) -> Path:
    rng = random.Random(seed)
    lines = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 14))) for _ in range(n)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_stsb_dev(data_dir: Path, n: int = 24, *, seed: int = 1) -> Path:
    """``data_dir/sts/STSB/senteval/sts-dev.csv`` in SentEval's tab-separated layout (score in column 5)."""
    rng = random.Random(seed)
    folder = data_dir / "sts" / "STSB" / "senteval"
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        left = [rng.choice(WORDS) for _ in range(rng.randint(4, 9))]
        right = [w if rng.random() < 0.6 else rng.choice(WORDS) for w in left]
        score = 5.0 * sum(a == b for a, b in zip(left, right, strict=True)) / len(left)
        rows.append(
            f"main-captions\tMSRvid\t2012test\t{i:04d}\t{score:.3f}\t{' '.join(left)}\t{' '.join(right)}"
        )
    (folder / "sts-dev.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return data_dir


def tiny_config(
    tmp_path: Path, model_dir: Path, *, method: str = "simcse", **sections: dict[str, Any]
) -> dict:
    """A config dict for a few fast CPU steps on a tiny model (sections override key by key)."""
    corpus = tmp_path / "corpus.txt"
    if not corpus.exists():
        write_corpus(corpus)
    data_dir = tmp_path / "data"
    if not (data_dir / "sts").exists():
        write_stsb_dev(data_dir)
    config: dict[str, Any] = {
        "method": method,
        "seed": 7,
        "output_dir": str(tmp_path / "run"),
        "model": {"base": str(model_dir), "num_ca_layers": 2},
        "data": {"corpus": str(corpus), "data_dir": str(data_dir), "max_len": 16},
        "train": {
            "batch_size": 8,
            "epochs": 2,
            "log_every": 1,
            "save_every": 2,
            "progress": False,
            "threads": 1,
            "device": "cpu",
        },  # resume and reproducibility are exact on CPU
        "eval": {"every": 2, "batch_size": 16},
    }
    if method != "simcse":
        config["train"]["lr"] = 1e-4  # visible movement in a few steps
    for section, values in sections.items():
        if isinstance(values, dict):
            config.setdefault(section, {}).update(values)
        else:
            config[section] = values
    return config
