"""Compare int8 quantisation schemes of the all-MiniLM-L6-v2 ONNX export (issue 29): for each candidate,
how far a sentence's vector moves with its batch, how close it stays to torch fp32, and its speed.

Every candidate is built from one fp32 export (``jtcse export --format onnx``, kept in ``--work-dir``) and
encodes the 2,758 STS-B test sentences (duplicates included) through ``jtcse.Encoder``:

* batch vs single: in batches of ``--batch-size`` (the Encoder's length-sorted batches) against each
  sentence in its own call: min and mean cosine;
* vs fp32: the batched vectors against the torch fp32 model's: min and mean cosine;
* speed: sentences/s on the distinct STS-B test sentences in batches of ``--batch-size``, best of
  ``--repeats`` interleaved rounds (the candidates take turns, so drifting load hits all alike);
* with ``--sts NAMES``: their 7-task STS average (as ``jtcse eval sts``) and its difference to fp32.

    python bench/int8_candidates.py [--threads T] [--repeats 3] [--sts dynamic,rowwise]
                                    [--only dynamic,rowwise] [--data-dir D] [--work-dir W]
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np

from jtcse.encoder import Encoder
from jtcse.engines import GRAPH_FILE
from jtcse.export.onnx_quant import quantize_blockwise_graph, quantize_dynamic_graph, quantize_rowwise_graph
from jtcse.model.format import read_spec, write_spec
from jtcse.tools.cpu import describe_cpu

CANDIDATES: dict[str, Callable[[Path], None]] = {
    "fp32-onnx": lambda path: None,
    "dynamic": quantize_dynamic_graph,  # --quantize int8
    "blockwise-32": lambda path: quantize_blockwise_graph(path, block_size=32),
    "blockwise-64": lambda path: quantize_blockwise_graph(path, block_size=64),
    "blockwise-128": lambda path: quantize_blockwise_graph(path, block_size=128),
    "rowwise": quantize_rowwise_graph,  # --quantize int8-rowwise: 8-bit weights
    "rowwise-w7": lambda path: quantize_rowwise_graph(path, weight_bits=7),
    "blockwise-32-asym": lambda path: quantize_blockwise_graph(path, block_size=32, symmetric=False),
}


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a64, b64 = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return np.sum(a64 * b64, axis=1) / (np.linalg.norm(a64, axis=1) * np.linalg.norm(b64, axis=1))


def one_at_a_time(encoder: Encoder, sentences: list[str]) -> np.ndarray:
    """Each sentence in its own call (batch_size=1 alone would still group short sentences: the Encoder's
    batches hold up to batch_size * 64 tokens)."""
    return np.stack([np.asarray(encoder.encode([s], show_progress=False))[0] for s in sentences])


def stsb_test(data_dir: str | None) -> list[str]:
    from jtcse.data.paths import resolve_data_dir
    from jtcse.data.sts import read_task

    pairs = read_task(resolve_data_dir(data_dir, need="sts", download=False), "STSBenchmark", "test")["test"]
    return list(pairs.sentences1) + list(pairs.sentences2)


def build(name: str, fp32_dir: Path, work: Path) -> Path:
    """A copy of the fp32 export with every graph quantised by ``name``; checksums renewed."""
    out = work / name
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(fp32_dir, out)
    for graph in sorted(out.glob(f"graph_*/{GRAPH_FILE}")):
        CANDIDATES[name](graph)
    write_spec(out, read_spec(out))
    return out


def fp32_export(work: Path, threads: int, model: str) -> Path:
    from jtcse.export.onnx import export_onnx

    out = work / "fp32-export"
    if not (out / "jtcse.json").exists():
        export_onnx(model, out, overwrite=True, threads=threads)
    return out


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", default=",".join(CANDIDATES), help="comma-separated candidate names")
    parser.add_argument("--sts", default="", help="candidates (comma-separated) to score on the 7 STS tasks")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--work-dir", type=Path, default=Path("bench_out/int8_candidates"))
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="the smallest real run (a tiny random BERT, 24 sentences, fp32 / dynamic / rowwise, one round)",
    )
    args = parser.parse_args()
    args.model = "minilm"
    if args.smoke:
        import _smoke

        args.model, args.repeats, args.sts = str(_smoke.tiny_model()), 1, ""
        args.only = "fp32-onnx,dynamic,rowwise"
        args.work_dir = _smoke.WORK_DIR / "int8_candidates"
    return args


def workload(args: argparse.Namespace) -> list[str]:
    if not args.smoke:
        return stsb_test(args.data_dir)
    import _smoke

    return _smoke.sentences(24)


def main() -> None:
    args = parse_args()
    args.work_dir.mkdir(parents=True, exist_ok=True)
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    sentences = workload(args)
    origin = "generated (--smoke)" if args.smoke else "STS-B test"
    distinct = list(dict.fromkeys(sentences))
    print(describe_cpu())
    print(
        f"{origin}: {len(sentences)} sentences ({len(distinct)} distinct); threads {args.threads}, "
        f"batch size {args.batch_size}, load {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    reference = Encoder(args.model, device="cpu", threads=args.threads).encode(sentences, show_progress=False)
    fp32_dir = fp32_export(args.work_dir, args.threads, args.model)
    encoders: dict[str, Encoder] = {}
    for name in names:
        path = build(name, fp32_dir, args.work_dir)
        batched = Encoder(path, batch_size=args.batch_size, threads=args.threads)
        vectors = np.asarray(batched.encode(sentences, show_progress=False))
        alone = one_at_a_time(batched, sentences)
        self_cos, ref_cos = cosines(vectors, alone), cosines(vectors, np.asarray(reference))
        print(
            f"{name:20s} batch vs single: min {self_cos.min():.8f} mean {self_cos.mean():.8f}; "
            f"vs torch fp32: min {ref_cos.min():.4f} mean {ref_cos.mean():.4f}",
            flush=True,
        )
        batched.encode(distinct[:256], show_progress=False)  # warm-up
        encoders[name] = batched
    best = {name: float("inf") for name in names}
    for repeat in range(args.repeats):
        for name in names[repeat % len(names) :] + names[: repeat % len(names)]:
            started = time.perf_counter()
            encoders[name].encode(distinct, show_progress=False)
            best[name] = min(best[name], time.perf_counter() - started)
    for name in names:
        print(
            f"{name:20s} {len(distinct) / best[name]:8.1f} sentences/s (best of {args.repeats}; "
            f"load {os.getloadavg()[0]:.1f})",
            flush=True,
        )
    if args.sts:
        sts_scores(args, [n.strip() for n in args.sts.split(",") if n.strip()])
    # the headline: --quantize int8-rowwise's speed over --quantize int8's (goal: at least 1)
    new, old = ("rowwise", "dynamic") if {"rowwise", "dynamic"} <= set(names) else (names[-1], names[0])
    print(f"goal: {new} at no less than {old}'s speed; {new} / {old} sentences/s:")
    print(f"{best[old] / best[new]:.3f}")


def sts_scores(args: argparse.Namespace, names: list[str]) -> None:
    from jtcse.evaluation.sts import evaluate_sts

    def avg(path: Path) -> float:
        encoder = Encoder(path, batch_size=args.batch_size, threads=args.threads)
        return float(evaluate_sts(encoder, data_dir=args.data_dir, show_progress=False).scores["avg"])

    fp32 = avg(args.work_dir / "fp32-export")
    print(f"7-task STS avg: fp32 {fp32:.2f}", flush=True)
    for name in names:
        score = avg(args.work_dir / name)
        print(f"{name:20s} 7-task STS avg {score:.2f} ({score - fp32:+.2f} vs fp32)", flush=True)


if __name__ == "__main__":
    main()
