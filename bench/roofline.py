"""How close jtcse's CPU encoding comes to what this machine can do: a roofline for the encoder's GEMMs.

1. The CPU: model name and the vector features that pick the kernels (AVX2, AVX-512, VNNI, AMX).
2. The practical peak of the operations an encoder is made of, at the shapes MiniLM (384/1536) and
   BERT-base (768/3072) use, on ``--tokens`` rows (a batch's tokens): fp32 GEMM through torch (oneDNN/MKL)
   and through onnxruntime (MLAS), int8 GEMM through onnxruntime's integer kernels (a one-node
   ``MatMulInteger`` graph, u8 activations x s8 weights, what dynamic quantisation runs). Best of
   ``--runs`` timed calls per shape, in GFLOP/s.
3. Every backend of ``bench/encode.py`` (its ``--json`` file; run here with ``--limit`` when absent): the
   effective rate, FLOPs of the real tokens (each sentence at its own length, see
   :mod:`jtcse.tools.flops`) per second, as a share of the matching peak (fp32 or int8, the model's best
   shape), and the share of the work that went into padding.

Every figure comes from this machine now: a loaded machine lowers both peak and achieved rate, not always
alike; quote figures from a quiet run, with the CPU line this prints.

    python bench/roofline.py [--threads T] [--encode-json bench_out/encode.json] [--limit 600] [--runs 20]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

SHAPES = {"MiniLM": (384, 1536), "BERT-base": (768, 3072)}
ROOT = Path(__file__).resolve().parents[1]


def gemm_shapes(hidden: int, intermediate: int) -> list[tuple[int, int]]:
    """(K, N) of the encoder's weight products: projections, feed-forward in, feed-forward out."""
    return [(hidden, hidden), (hidden, intermediate), (intermediate, hidden)]


def best_rate(run, flops: int, runs: int) -> float:
    """Best GFLOP/s of ``runs`` timed calls after two warm-up calls."""
    run()
    run()
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return flops / best / 1e9


def fp32_peak(tokens: int, k: int, n: int, threads: int, runs: int) -> float:
    import torch

    torch.set_num_threads(threads)
    a, b = torch.randn(tokens, k), torch.randn(k, n)
    out = torch.empty(tokens, n)
    with torch.inference_mode():
        return best_rate(lambda: torch.matmul(a, b, out=out), 2 * tokens * k * n, runs)


def ort_fp32_peak(tokens: int, k: int, n: int, threads: int, runs: int) -> float:
    """fp32 GEMM through onnxruntime's own kernels (MLAS): a one-node ``MatMul`` graph."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    weights = numpy_helper.from_array(rng.standard_normal((k, n), dtype=np.float32), "B")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["A", "B"], ["Y"])],
        "fp32_gemm",
        [helper.make_tensor_value_info("A", TensorProto.FLOAT, ["m", k])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["m", n])],
        initializer=[weights],
    )
    feed = {"A": rng.standard_normal((tokens, k), dtype=np.float32)}
    return _ort_rate(graph, feed, 2 * tokens * k * n, threads, runs)


def int8_peak(tokens: int, k: int, n: int, threads: int, runs: int) -> float:
    """int8 GEMM through onnxruntime's integer kernels: a one-node ``MatMulInteger`` graph, u8 x s8."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    weights = numpy_helper.from_array(rng.integers(-64, 64, (k, n), dtype=np.int8), "B")
    a_zero = numpy_helper.from_array(np.array(128, dtype=np.uint8), "a_zero")
    b_zero = numpy_helper.from_array(np.array(0, dtype=np.int8), "b_zero")
    node = helper.make_node("MatMulInteger", ["A", "B", "a_zero", "b_zero"], ["Y"])
    graph = helper.make_graph(
        [node],
        "int8_gemm",
        [helper.make_tensor_value_info("A", TensorProto.UINT8, ["m", k])],
        [helper.make_tensor_value_info("Y", TensorProto.INT32, ["m", n])],
        initializer=[weights, a_zero, b_zero],
    )
    feed = {"A": rng.integers(0, 256, (tokens, k), dtype=np.uint8)}
    return _ort_rate(graph, feed, 2 * tokens * k * n, threads, runs)


def _ort_rate(graph, feed: dict, flops: int, threads: int, runs: int) -> float:
    import onnxruntime as ort
    from onnx import helper

    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    if session.get_session_options().intra_op_num_threads != threads:
        sys.exit("roofline: onnxruntime did not take the thread limit")
    return best_rate(lambda: session.run(None, feed), flops, runs)


def measure_peaks(tokens: int, threads: int, runs: int) -> dict[str, dict[str, float]]:
    """``{model: {"fp32": GFLOP/s, "int8": GFLOP/s}}``, each the best over the model's GEMM shapes (and,
    for fp32, over torch's and onnxruntime's kernels)."""
    kernels = (
        ("fp32", "torch", fp32_peak),
        ("fp32", "onnxruntime", ort_fp32_peak),
        ("int8", "onnxruntime", int8_peak),
    )
    peaks: dict[str, dict[str, float]] = {}
    for model, (hidden, intermediate) in SHAPES.items():
        for precision, library, measure in kernels:
            rates = {
                (k, n): measure(tokens, k, n, threads, runs) for k, n in gemm_shapes(hidden, intermediate)
            }
            shapes = ", ".join(f"{k}x{n} {rate:7.1f}" for (k, n), rate in rates.items())
            print(f"peak {model:9s} {precision} {library:11s}: {shapes} GFLOP/s ({tokens} rows)", flush=True)
            best = max(peaks.get(model, {}).get(precision, 0.0), *rates.values())
            peaks.setdefault(model, {})[precision] = best
    return peaks


def encode_results(path: Path, limit: int, threads: int, smoke: bool = False) -> dict:
    """``bench/encode.py --json`` results: read ``path``, or run the bench now (small) to write it."""
    if not path.is_file():
        size = ["--smoke"] if smoke else ["--limit", str(limit), "--repeats", "2"]
        command = [sys.executable, str(ROOT / "bench" / "encode.py"), *size]
        command += ["--threads", str(threads), "--json", str(path)]
        print(f"running: {' '.join(command)}", flush=True)
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return json.loads(path.read_text(encoding="utf-8"))


def report_backends(results: dict, peaks: dict[str, dict[str, float]]) -> None:
    model = results.get("shape_name", "MiniLM")
    print(
        f"backends of bench/encode.py ({results['sentences']} distinct sentences, "
        f"{results['real_tokens']} real tokens, threads {results['threads']}, "
        f"load at the run {results.get('load', '?')}):"
    )
    for name, row in results["backends"].items():
        peak = peaks[model][row["precision"]]
        rate = row["real_flops"] / row["seconds"] / 1e9
        padding = row.get("padded_flops")
        pad_text = (
            f"padding {1 - row['real_flops'] / padding:5.1%} of the work" if padding else "padding unknown"
        )
        print(
            f"  {name:34s} {row['sentences_per_s']:8.1f} sentences/s  {rate:7.1f} GFLOP/s effective = "
            f"{rate / peak:6.1%} of the {model} {row['precision']} peak ({peak:.0f}); {pad_text}"
        )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="threads for every measurement (default: cores)"
    )
    parser.add_argument("--tokens", type=int, default=2048, help="rows of every GEMM (tokens in a batch)")
    parser.add_argument("--runs", type=int, default=20, help="timed calls per GEMM shape (best kept)")
    parser.add_argument("--encode-json", type=Path, default=Path("bench_out/encode.json"))
    parser.add_argument(
        "--limit", type=int, default=600, help="sentences for bench/encode.py when it runs here"
    )
    parser.add_argument("--peaks-only", action="store_true", help="only the CPU and the peaks")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="smallest real run: 64-row GEMMs timed once, and bench/encode.py --smoke's results (run when "
        "absent); measures nothing",
    )
    args = parser.parse_args()
    if args.smoke:
        import _smoke

        args.tokens, args.runs, args.encode_json = 64, 1, _smoke.WORK_DIR / "encode-smoke.json"
    return args


def main() -> None:
    args = parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    from jtcse.engines import resolve_threads
    from jtcse.tools.cpu import describe_cpu

    threads = resolve_threads(args.threads)
    print(describe_cpu())
    print(f"threads: {threads}  load (1 min): {os.getloadavg()[0]:.1f}", flush=True)
    peaks = measure_peaks(args.tokens, threads, args.runs)
    if not args.peaks_only:
        report_backends(encode_results(args.encode_json, args.limit, threads, args.smoke), peaks)


if __name__ == "__main__":
    main()
