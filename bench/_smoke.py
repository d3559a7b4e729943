"""What the benches' ``--smoke`` runs share: a tiny random BERT and a few sentences (not a bench itself).

A smoke run is each bench's smallest real workload: the same code path as the measured run, on a model and
an input small enough for the test suite (``tests/test_bench_smoke.py``); its figures mean nothing.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import tempfile
from pathlib import Path

# Where smoke runs keep their tiny model and files (kept between runs; every process of a run finds them).
WORK_DIR = Path(os.environ.get("JTCSE_BENCH_SMOKE_DIR") or Path(tempfile.gettempdir()) / "jtcse-bench-smoke")

WORDS = [
    "a",
    "the",
    "man",
    "woman",
    "dog",
    "cat",
    "plays",
    "runs",
    "guitar",
    "field",
    "snow",
    "coffee",
    "reads",
    "book",
    "city",
    "river",
    "old",
    "new",
]


def sentences(count: int = 48, seed: int = 0) -> list[str]:
    """``count`` generated sentences of 3 to 12 words, distinct, the same for every run."""
    rng = random.Random(seed)
    out: dict[str, None] = {}
    while len(out) < count:
        out[" ".join(rng.choices(WORDS, k=rng.randint(3, 12)))] = None
    return list(out)


def tiny_model(layers: int = 1, hidden: int = 32) -> Path:
    """A random ``layers``-layer, ``hidden``-wide BERT with all-MiniLM-L6-v2's tokenizer, saved once under
    :data:`WORK_DIR` (written aside, then renamed: concurrent runs never read half a model)."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    from jtcse.model.names import packaged_model_dir

    WORK_DIR.mkdir(parents=True, exist_ok=True)
    out = WORK_DIR / f"tiny-bert-{layers}x{hidden}"
    if (out / "config.json").is_file():
        return out
    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(packaged_model_dir("minilm"))
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=2 * hidden,
        max_position_embeddings=128,
    )
    staging = Path(tempfile.mkdtemp(prefix="tiny-bert-", dir=WORK_DIR))
    BertModel(config).save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    _mean_pooling_files(staging, hidden)
    try:
        staging.rename(out)
    except OSError:  # another run got there first: use its copy
        shutil.rmtree(staging, ignore_errors=True)
    return out


def _mean_pooling_files(model_dir: Path, hidden: int) -> None:
    """sentence-transformers' modules.json and 1_Pooling/config.json (mean pooling, as all-MiniLM-L6-v2 has):
    sentence-transformers and jtcse (which reads them: ``avg``) then embed alike."""
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    ]
    (model_dir / "modules.json").write_text(json.dumps(modules, indent=2), encoding="utf-8")
    (model_dir / "1_Pooling").mkdir()
    pooling = {"word_embedding_dimension": hidden, "pooling_mode_mean_tokens": True}
    (model_dir / "1_Pooling" / "config.json").write_text(json.dumps(pooling, indent=2), encoding="utf-8")


def skipped(part: str, why: str) -> None:
    print(f"smoke: {part} skipped: {why}", flush=True)
