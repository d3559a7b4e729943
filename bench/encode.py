"""Side-by-side CPU speed of jtcse (torch fp32, ONNX fp32, ONNX int8) and sentence-transformers (torch).

All four encode the same sentences with all-MiniLM-L6-v2 in one process, with the same batch size and the
same thread count (``--threads``, set for torch and onnxruntime alike), in interleaved repeats (the order of
the backends rotates between repeats, so drifting machine load hits all alike). Two workloads:

* ``distinct``: the STS test sentences with duplicates removed beforehand, so the ratio is the speed of the
  encoding itself (the headline);
* ``all``: every sentence of the scored pairs, duplicates included (what a user who embeds the STS data hands
  over): jtcse encodes each distinct sentence once, and that dedup gain is reported on its own.

The bench checks that the comparison is fair: it records the padded length of every batch each side runs
(a forward hook), and prints the mean; sentence-transformers must pad per batch (the packaged tokenizer.json
carries a fixed padding to 128, which sentence-transformers' own ``padding=True`` call overrides; the bench
verifies that rather than assuming it). The ONNX directories come from ``jtcse export --format onnx`` (int8
with its STS-B dev gate); with ``--sts`` the bench also scores both on the 7 STS tasks, as ``jtcse eval sts
--model OUT`` does. The last line is the headline ratio: ONNX int8 / sentence-transformers on distinct
sentences.

    python bench/encode.py [--repeats 2] [--batch-size 64] [--limit N] [--threads T] [--sts] [--export-dir D]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np
import torch

from jtcse.benchmark import TASKS
from jtcse.encoder import Encoder
from jtcse.errors import JtcseError
from jtcse.model.names import packaged_model_dir

GOAL = "goal: ONNX int8 / sentence-transformers >= 3 on distinct sentences; int8 STS avg within 0.5 of fp32"


def sts_sentences(data_dir: str | None, limit: int | None) -> tuple[list[str], str]:
    """Both sides of every scored test pair of the 7 STS tasks, in file order; with ``limit``, the first
    pairs of every subset (so a quick run still spans all tasks and keeps their repeated sentences)."""
    from jtcse.data.paths import resolve_data_dir
    from jtcse.data.sts import read_task

    try:
        root = resolve_data_dir(data_dir, need="sts", download=False)
    except JtcseError as exc:
        sys.exit(f"bench: no STS data ({exc})")
    subsets = [pairs for task in TASKS for pairs in read_task(root, task, "test").values()]
    per_subset = None if not limit else max(1, limit // (2 * len(subsets)))
    sentences: list[str] = []
    for pairs in subsets:
        sentences += pairs.sentences1[:per_subset] + pairs.sentences2[:per_subset]
    what = "" if not limit else f"the first {per_subset} pairs of each of {len(subsets)} subsets of "
    return sentences, f"{what}the 7 STS test sets under {root}"


def exported(kind: str, export_dir: Path, threads: int) -> Path:
    """``export_dir/minilm-<kind>``, exported now unless a previous run left it there."""
    from jtcse.export.onnx import export_onnx
    from jtcse.model.format import is_jtcse_dir, read_spec

    out = export_dir / f"minilm-{kind}"
    if is_jtcse_dir(out) and read_spec(out).extra.get("onnx", {}).get("precision") == kind:
        return out
    started = time.perf_counter()
    result = export_onnx(
        "minilm", out, quantize=None if kind == "fp32" else kind, overwrite=True, threads=threads
    )
    gate = result.get("stsb_dev")
    note = f", STS-B dev fp32 {gate['fp32']:.2f} int8 {gate['int8']:.2f}" if gate else ""
    print(f"exported {out} in {time.perf_counter() - started:.0f} s{note}", flush=True)
    return out


class PaddingProbe:
    """Records, through a forward pre-hook, the padded shape of every batch a torch module receives."""

    def __init__(self, module: torch.nn.Module, *, features_dict: bool) -> None:
        self.shapes: list[tuple[int, int]] = []
        if features_dict:  # sentence-transformers' Transformer module: forward(features: dict)
            hook = module.register_forward_pre_hook(lambda _m, args: self._add(args[0]["input_ids"]))
        else:
            hook = module.register_forward_pre_hook(
                lambda _m, _a, kw: self._add(kw["input_ids"]), with_kwargs=True
            )
        self.handle = hook

    def _add(self, ids: torch.Tensor) -> None:
        self.shapes.append((int(ids.shape[0]), int(ids.shape[1])))

    def mean_padded_length(self) -> float:
        rows = sum(n for n, _ in self.shapes)
        return sum(n * width for n, width in self.shapes) / max(rows, 1)


def check_padding(ours: Encoder, theirs, texts: list[str], batch_size: int) -> None:
    """Print the mean padded length (tokens per sentence) each side actually runs; stop if either pads to a
    fixed length (the comparison would be unfair)."""
    mine = PaddingProbe(ours.members[0].model, features_dict=False)
    other = PaddingProbe(theirs[0], features_dict=True)
    ours.encode(texts, show_progress=False)
    theirs.encode(texts, batch_size=batch_size, show_progress_bar=False)
    mine.handle.remove()
    other.handle.remove()
    unpadded = np.mean([len(ids) for ids in ours.members[0].tokenizer(texts)["input_ids"]])
    print(
        f"mean padded length per sentence (distinct workload): jtcse {mine.mean_padded_length():.1f}, "
        f"sentence-transformers {other.mean_padded_length():.1f} tokens (unpadded mean {unpadded:.1f}; "
        f"batches: jtcse {len(mine.shapes)}, sentence-transformers {len(other.shapes)}); the ONNX backends "
        "share jtcse's batching",
        flush=True,
    )
    if (
        max(w for _, w in other.shapes) == min(w for _, w in other.shapes)
        or other.mean_padded_length() > 2 * unpadded
    ):
        sys.exit("bench: sentence-transformers pads to a fixed length here; the comparison would be unfair")


def timed(fn: Callable[[], np.ndarray]) -> tuple[float, float, np.ndarray]:
    """Wall seconds, CPU seconds of this process (all threads), result."""
    start, start_cpu = time.perf_counter(), time.process_time()
    result = fn()
    return time.perf_counter() - start, time.process_time() - start_cpu, result


def run_repeats(backends: dict[str, Callable], workloads: dict[str, list[str]], repeats: int) -> dict:
    """Interleaved repeats (the backend order rotates); returns seconds per (backend, workload) and the
    ``distinct`` vectors of each backend."""
    seconds: dict[tuple[str, str], list[float]] = {}
    vectors: dict[str, np.ndarray] = {}
    names = list(backends)
    for repeat in range(repeats):
        order = names[repeat % len(names) :] + names[: repeat % len(names)]
        for workload, texts in workloads.items():
            for name in order:
                elapsed, cpu, result = timed(lambda run=backends[name], texts=texts: run(texts))
                seconds.setdefault((name, workload), []).append(elapsed)
                if workload == "distinct":
                    vectors[name] = np.asarray(result)
                print(
                    f"  repeat {repeat + 1} {workload:8s} {name:22s} {elapsed:8.2f} s "
                    f"{len(texts) / elapsed:8.1f} sentences/s  "
                    f"(cpu {cpu:6.1f} s, load {os.getloadavg()[0]:.1f})",
                    flush=True,
                )
    return {"seconds": seconds, "vectors": vectors}


def sts_avg(model_dir: Path, data_dir: str | None, batch_size: int) -> float:
    """The 7-task STS average, as ``jtcse eval sts --model DIR`` computes it."""
    from jtcse.evaluation.sts import evaluate_sts

    report = evaluate_sts(Encoder(model_dir), data_dir=data_dir, batch_size=batch_size, show_progress=False)
    return float(report.scores["avg"])


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=2, help="interleaved repeats (median kept)")
    parser.add_argument("--batch-size", type=int, default=64, help="batch size for every backend")
    parser.add_argument(
        "--limit", type=int, default=None, help="about N sentences, from every subset (quick runs)"
    )
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for all (default: torch's)")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--export-dir", type=Path, default=Path("bench_out"), help="where the exports go")
    parser.add_argument("--sts", action="store_true", help="also score fp32 and int8 on the 7 STS tasks")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    from sentence_transformers import SentenceTransformer

    from jtcse.engines import resolve_threads

    threads = resolve_threads(args.threads)
    torch.set_num_threads(threads)
    sentences, origin = sts_sentences(args.data_dir, args.limit)
    distinct = list(dict.fromkeys(sentences))
    workloads = {"distinct": distinct, "all": sentences}
    print(GOAL)
    print(f"sentences: {len(sentences)} ({len(distinct)} distinct) from {origin}")
    dirs = {kind: exported(kind, args.export_dir, threads) for kind in ("fp32", "int8")}

    ours = Encoder("minilm", device="cpu", batch_size=args.batch_size, threads=threads)
    backends = {
        "jtcse torch fp32": ours,
        "jtcse onnx fp32": Encoder(dirs["fp32"], device="cpu", batch_size=args.batch_size, threads=threads),
        "jtcse onnx int8": Encoder(dirs["int8"], device="cpu", batch_size=args.batch_size, threads=threads),
    }
    theirs = SentenceTransformer(str(packaged_model_dir("minilm")), device="cpu")
    backends: dict[str, Callable] = {
        name: (lambda texts, e=encoder: e.encode(texts, normalize=True, show_progress=False))
        for name, encoder in backends.items()
    }
    backends["sentence-transformers"] = lambda texts: theirs.encode(
        texts, batch_size=args.batch_size, normalize_embeddings=True, show_progress_bar=False
    )
    print(
        f"model: all-MiniLM-L6-v2  device: cpu  threads (torch and onnxruntime): {threads}  "
        f"batch size: {args.batch_size}  repeats: {args.repeats}  cpu: {os.cpu_count()} cores",
        flush=True,
    )
    check_padding(ours, theirs, distinct, args.batch_size)
    for run in backends.values():  # warm-up: first-call allocations and lazy initialisation
        run(distinct[:256])
    measured = run_repeats(backends, workloads, args.repeats)
    report(measured, workloads, backends)
    if args.sts:
        scores = {kind: sts_avg(path, args.data_dir, args.batch_size) for kind, path in dirs.items()}
        print(
            f"7-task STS avg (jtcse eval sts --model {args.export_dir}/minilm-*): fp32 {scores['fp32']:.2f}, "
            f"int8 {scores['int8']:.2f} (difference {scores['fp32'] - scores['int8']:+.2f})"
        )
    rates = measured["rates"]
    headline = rates[("jtcse onnx int8", "distinct")] / rates[("sentence-transformers", "distinct")]
    print(f"ratio ONNX int8 / sentence-transformers, distinct sentences: {headline:.2f}")


def report(measured: dict, workloads: dict[str, list[str]], backends: dict[str, Callable]) -> None:
    """Medians, agreement with jtcse torch, per-backend ratios and the dedup gain (stored in ``measured``)."""
    reference = measured["vectors"]["jtcse torch fp32"]
    for name, vectors in measured["vectors"].items():
        cos = np.sum(vectors * reference, axis=1)
        print(f"agreement {name:22s} vs jtcse torch fp32: min cosine {cos.min():.6f}, mean {cos.mean():.6f}")
    rates = {}
    for workload, texts in workloads.items():
        for name in backends:
            median = statistics.median(measured["seconds"][(name, workload)])
            rates[(name, workload)] = len(texts) / median
            print(
                f"{workload:8s} {name:22s} median {median:8.2f} s  {rates[(name, workload)]:8.1f} sentences/s"
            )
    st = "sentence-transformers"
    for name in backends:
        if name != st:
            print(
                f"ratio {name} / {st}: distinct {rates[(name, 'distinct')] / rates[(st, 'distinct')]:.2f}, "
                f"all {rates[(name, 'all')] / rates[(st, 'all')]:.2f}"
            )
    share = len(workloads["distinct"]) / len(workloads["all"])
    gain = (rates[("jtcse onnx int8", "all")] / rates[(st, "all")]) / (
        rates[("jtcse onnx int8", "distinct")] / rates[(st, "distinct")]
    )
    print(
        f"dedup: {share:.1%} of the sentences are distinct; "
        f"dedup multiplies jtcse's ratio on 'all' by {gain:.2f}"
    )
    measured["rates"] = rates


if __name__ == "__main__":
    main()
