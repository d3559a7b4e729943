"""Side-by-side speed of ``jtcse.Encoder.encode`` and ``SentenceTransformer.encode`` on all-MiniLM-L6-v2.

Both encode the same sentences with the same model in one process, in interleaved repeats (the order of the
two libraries alternates between repeats, so drifting machine load hits both alike). Two workloads:

* ``all``: every sentence of the 7 STS test sets (both sides of every scored pair, duplicates included) in
  one call: what a user who embeds the STS data hands to either library. This is the headline.
* ``distinct``: the same sentences with duplicates removed beforehand (what ``jtcse eval sts`` sends), so
  the ratio shows the speed of the encoding itself, without the gain from encoding each sentence once.

Both libraries use the same batch size and CPU/GPU device; jtcse uses the ``avg`` pooler with
``normalize=True``, which is the all-MiniLM-L6-v2 pipeline (mean pooling + Normalize), and the bench checks
that the vectors agree. The last line printed is the headline ratio (jtcse sentences/s over
sentence-transformers sentences/s on the ``all`` workload).

    python bench/encode.py [--repeats 2] [--batch-size 64] [--limit N] [--data-dir D] [--device cpu]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np
import torch

from jtcse.benchmark import TASKS
from jtcse.encoder import Encoder
from jtcse.errors import JtcseError
from jtcse.model.names import packaged_model_dir


def sts_sentences(data_dir: str | None) -> tuple[list[str], str]:
    """Both sides of every scored test pair of the 7 STS tasks, in file order (wiki sentences as fallback)."""
    from jtcse.data.paths import resolve_data_dir
    from jtcse.data.sts import read_task

    try:
        root = resolve_data_dir(data_dir, need="sts", download=False)
    except JtcseError as exc:
        return wiki_sentences(data_dir, reason=str(exc))
    sentences: list[str] = []
    for task in TASKS:
        for pairs in read_task(root, task, "test").values():
            sentences += pairs.sentences1 + pairs.sentences2
    return sentences, f"7 STS test sets under {root}"


def wiki_sentences(data_dir: str | None, *, reason: str) -> tuple[list[str], str]:
    root = Path(data_dir) if data_dir else Path(__file__).resolve().parents[2] / "shared" / "data"
    files = sorted((root / "unsup").glob("wiki1m*.txt"))
    if not files:
        sys.exit(f"bench: no STS data ({reason}) and no wiki sentences under {root / 'unsup'}")
    lines = [line.strip() for line in files[0].read_text(encoding="utf-8").splitlines() if line.strip()]
    return lines, f"wiki sentences from {files[0]} (no STS data: {reason})"


def timed(fn) -> tuple[float, float, np.ndarray]:
    """Wall seconds, CPU seconds of this process (all threads), result.

    On an idle machine CPU seconds are about wall x threads; much less means other processes took the cores
    (the ratio stays fair because the runs are interleaved).
    """
    start, start_cpu = time.perf_counter(), time.process_time()
    result = fn()
    return time.perf_counter() - start, time.process_time() - start_cpu, result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--repeats", type=int, default=2, help="interleaved repeats per workload (median kept)"
    )
    parser.add_argument("--batch-size", type=int, default=64, help="batch size for both libraries")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N sentences (quick runs)")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--device", default=None, help="default: cuda when available, else cpu")
    args = parser.parse_args()

    from sentence_transformers import SentenceTransformer

    sentences, origin = sts_sentences(args.data_dir)
    if args.limit:
        sentences = sentences[: args.limit]
    distinct = list(dict.fromkeys(sentences))
    workloads = {"all": sentences, "distinct": distinct}

    model_dir = str(packaged_model_dir("minilm"))
    ours = Encoder("minilm", device=args.device, batch_size=args.batch_size)
    device = str(ours.device)
    theirs = SentenceTransformer(model_dir, device=device)
    print(f"sentences: {len(sentences)} ({len(distinct)} distinct) from {origin}")
    print(
        f"model: {model_dir}  device: {device}  torch threads: {torch.get_num_threads()}  "
        f"batch size: {args.batch_size}  repeats: {args.repeats}  jtcse pooler: {ours.members[0].pooler}"
    )

    runners = {
        "jtcse": lambda texts: ours.encode(texts, normalize=True, show_progress=False),
        "sentence-transformers": lambda texts: theirs.encode(
            texts, batch_size=args.batch_size, normalize_embeddings=True, show_progress_bar=False
        ),
    }
    for run in runners.values():  # warm-up: first-call allocations and lazy initialisation
        run(distinct[:256])

    seconds: dict[tuple[str, str], list[float]] = {}
    outputs: dict[str, np.ndarray] = {}
    for repeat in range(args.repeats):
        order = list(runners) if repeat % 2 == 0 else list(reversed(runners))
        for workload, texts in workloads.items():
            for name in order:
                elapsed, cpu, vectors = timed(lambda run=runners[name], texts=texts: run(texts))
                seconds.setdefault((name, workload), []).append(elapsed)
                if workload == "all":
                    outputs[name] = np.asarray(vectors)
                print(
                    f"  repeat {repeat + 1} {workload:8s} {name:22s} {elapsed:8.2f} s "
                    f"{len(texts) / elapsed:9.1f} sentences/s  "
                    f"(cpu {cpu:7.1f} s, load {os.getloadavg()[0]:.1f})",
                    flush=True,
                )

    ours_vec, theirs_vec = outputs["jtcse"], outputs["sentence-transformers"]
    cosines = np.sum(ours_vec * theirs_vec, axis=1)
    print(
        f"agreement on {len(cosines)} vectors: min cosine {cosines.min():.7f}, "
        f"max |difference| {np.abs(ours_vec - theirs_vec).max():.2e}"
    )

    ratios = {}
    for workload, texts in workloads.items():
        rates = {}
        for name in runners:
            median = statistics.median(seconds[(name, workload)])
            rates[name] = len(texts) / median
            print(f"{workload:8s} {name:22s} median {median:8.2f} s  {rates[name]:9.1f} sentences/s")
        ratios[workload] = rates["jtcse"] / rates["sentence-transformers"]
    print(f"ratio distinct sentences only (jtcse / sentence-transformers): {ratios['distinct']:.2f}")
    print(f"ratio all STS sentences with duplicates (jtcse / sentence-transformers): {ratios['all']:.2f}")


if __name__ == "__main__":
    main()
