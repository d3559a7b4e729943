"""Peak memory of ``jtcse encode`` into shards: 1,000,000 generated lines with a cheap model.

The model is a 1-layer, 32-wide random BERT with the bert-base-uncased vocabulary (from the packaged
all-MiniLM-L6-v2), so the run takes minutes on a CPU; memory is about the pipeline (reading, tokenising,
shards), not the model. The lines are generated sentences of 4-16 words (seed 0), every 50th one blank.

Measured in one process: the resident set after loading the model and encoding a warm-up batch (the
model's own memory, the baseline), then the peak resident set (sampled every 20 ms) while
:func:`jtcse.corpus_scale.encode_to_shards` encodes the file. The goal: the sharded run stays within
1.5 GiB above the model's own memory. For scale: the one-shot path (``--output vecs.npy``) would hold the
1,000,000 x 32 matrix plus every sentence and its tokens at once, and grows with the input.

    python bench/encode_memory.py [--lines 1000000] [--shard-size 100000] [--threads T]

The last line is the peak growth of the sharded run as a share of the 1.5 GiB allowance.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

try:
    import psutil
except ImportError:
    sys.exit(
        "bench/encode_memory.py needs the bench extra (psutil): pip install -e '.[bench]' (make setup does)"
    )

import _smoke  # the same tiny random BERT as the smoke runs (a memory bench, not a model bench)
from jtcse.corpus_scale import ShardOptions, encode_to_shards
from jtcse.encoder import Encoder

GIB = 2**30
ALLOWANCE = 1.5 * GIB
WORDS = [
    "the",
    "a",
    "man",
    "woman",
    "child",
    "dog",
    "cat",
    "plays",
    "runs",
    "eats",
    "reads",
    "writes",
    "guitar",
    "piano",
    "ball",
    "book",
    "park",
    "field",
    "river",
    "city",
    "music",
    "food",
    "rain",
    "snow",
    "sun",
    "quickly",
    "slowly",
    "happily",
    "under",
    "over",
    "near",
    "with",
    "without",
    "today",
    "yesterday",
    "tomorrow",
    "market",
    "price",
    "falls",
    "rises",
    "sharply",
    "team",
    "wins",
    "loses",
    "match",
    "weather",
    "storm",
    "calm",
    "bright",
    "dark",
    "old",
    "new",
    "small",
    "big",
]


def write_lines(path: Path, count: int) -> None:
    rng = random.Random(0)
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(count):
            blank = i % 50 == 49
            fh.write("\n" if blank else " ".join(rng.choices(WORDS, k=rng.randint(4, 16))) + "\n")


class PeakRss:
    """The highest resident set size seen while the block runs (a sampling thread)."""

    def __init__(self) -> None:
        self.process, self.peak, self._stop = psutil.Process(), 0, threading.Event()

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(0.02)

    def __enter__(self) -> PeakRss:
        self.peak = self.process.memory_info().rss
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.process.memory_info().rss)


def sharded_run(encoder: Encoder, corpus: Path, out: Path, options: ShardOptions, own: int) -> float:
    """Encode ``corpus`` into shards; print and return the peak growth over ``own`` (bytes)."""
    started = time.perf_counter()
    with PeakRss() as sharded:
        result = encode_to_shards(encoder, corpus, out, options)
    seconds = time.perf_counter() - started
    lines, growth = result.manifest["lines"], sharded.peak - own
    verdict = "within" if growth <= ALLOWANCE else "OVER"
    print(
        f"{lines:,} lines into {len(result.manifest['shards'])} shards of {options.shard_size:,}: "
        f"{seconds:.0f} s ({lines / seconds:,.0f} sentences/s), peak resident {sharded.peak / GIB:.2f} GiB "
        f"= model + {growth / GIB:.3f} GiB ({verdict} the goal)"
    )
    return growth


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--shard-size", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="smallest real run: 600 lines in shards of 200; measures nothing",
    )
    args = parser.parse_args()
    if args.smoke:
        args.lines, args.shard_size, args.batch_size = 600, 200, 64
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="jtcse_bench_mem_") as tmp:
        root = Path(tmp)
        corpus = root / "lines.txt"
        write_lines(corpus, args.lines)
        encoder = Encoder(_smoke.tiny_model(), device="cpu", batch_size=args.batch_size)
        encoder.encode(["warm up the model and the tokenizer"] * args.batch_size)
        own = psutil.Process().memory_info().rss
        print(f"goal: peak resident memory of the sharded encode <= model's own + {ALLOWANCE / GIB:.1f} GiB")
        print(f"model's own resident memory (after loading and a warm-up batch): {own / GIB:.2f} GiB")
        options = ShardOptions(shard_size=args.shard_size, normalize=True, batch_size=args.batch_size)
        growth = sharded_run(encoder, corpus, root / "lines.vectors", options, own)
        print(f"peak growth of the sharded encode as a share of the allowance: {growth / ALLOWANCE:.1%}")


if __name__ == "__main__":
    main()
