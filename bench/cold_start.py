"""Cold start: one-pair ``jtcse similarity`` as a fresh process, on an ONNX export and on the torch model.

What a serverless function or a CLI in a shell loop pays on every call: interpreter start, imports, model
load, one encode. Each command runs ``--runs`` times as a new process (alternating, so drifting load hits
both); the medians are printed with the goals (ONNX export <= 1.5 s, torch model <= 4 s wall). The ONNX
directory is ``--onnx DIR`` (default ``bench_out/minilm-int8``, which ``bench/encode.py`` writes; exported
here when absent). Also shows which of torch / transformers / scipy each command imported, and the import
floor of the torch path: a fresh process that only imports torch and transformers' ``BertModel``, which any
command running a Hugging Face model on torch pays before it reads a weight (``--no-floor`` skips it). The
last line is the headline: the torch model's cold start over the ONNX export's.

    python bench/cold_start.py [--runs 5] [--onnx bench_out/minilm-int8] [--model minilm]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOALS = {"onnx": 1.5, "torch": 4.0}
HEAVY = ("torch", "transformers", "scipy")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5, help="fresh processes per command (median kept)")
    parser.add_argument("--onnx", type=Path, default=Path("bench_out/minilm-int8"), help="an ONNX export")
    parser.add_argument("--model", default="minilm", help="the torch model")
    parser.add_argument("--no-floor", action="store_true", help="skip the import floor of the torch path")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="smallest real run: a tiny random BERT and its fp32 export, 1 run each, no floor; times nothing",
    )
    args = parser.parse_args()
    if args.smoke:
        import _smoke

        args.runs, args.no_floor = 1, True
        args.model = str(_smoke.tiny_model())
        args.onnx = _smoke.WORK_DIR / f"{Path(args.model).name}-fp32"  # what bench/encode.py --smoke writes
        _smoke.skipped(
            "the import floor and the int8 export", "a tiny model has no STS-B dev gate worth passing"
        )
    return args


def command(model: str, *extra: str) -> list[str]:
    return [sys.executable, *extra, "-m", "jtcse", "similarity", "--model", model, "a", "b"]


def env() -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(ROOT / "src"), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


FLOOR = [sys.executable, "-c", "import torch; from transformers import BertModel; BertModel"]


def wall(argv: list[str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, env=env())
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"cold_start: {' '.join(argv)} failed: {proc.stderr.strip().splitlines()[-1:]}")
    return elapsed


def heavy_imports(model: str) -> list[str]:
    proc = subprocess.run(command(model, "-X", "importtime"), capture_output=True, text=True, env=env())
    names = {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if "|" in line}
    return [name for name in HEAVY if name in names]


def ensure_export(out: Path, model: str, int8: bool) -> None:
    if (out / "jtcse.json").is_file():
        return
    print(f"exporting {model} to {out} ({'int8, gated on STS-B dev' if int8 else 'fp32'}) ...", flush=True)
    quantize = ["--quantize", "int8"] if int8 else []
    subprocess.run(
        [sys.executable, "-m", "jtcse", "export", "--model", model, "--format", "onnx", *quantize, str(out)],
        check=True,
        env=env(),
    )


def main() -> None:
    from jtcse.tools.cpu import describe_cpu

    args = parse_args()
    ensure_export(args.onnx, args.model if args.smoke else "minilm", int8=not args.smoke)
    commands = {"onnx": command(str(args.onnx)), "torch": command(args.model)}
    if not args.no_floor:
        commands["floor"] = FLOOR
    print(describe_cpu())
    print(f"load (1 min) {os.getloadavg()[0]:.1f}; {args.runs} fresh processes each, in alternating order")
    times: dict[str, list[float]] = {kind: [] for kind in commands}
    for run in range(args.runs):
        for kind in list(commands)[:: 1 if run % 2 == 0 else -1]:
            times[kind].append(wall(commands[kind]))
    medians = {kind: statistics.median(values) for kind, values in times.items()}
    models = {"onnx": str(args.onnx), "torch": args.model}
    for kind, model in models.items():
        verdict = "meets" if medians[kind] <= GOALS[kind] else "misses"
        print(
            f"{kind:5s} jtcse similarity --model {model}: median {medians[kind]:.2f} s wall "
            f"(runs {', '.join(f'{t:.2f}' for t in times[kind])}); {verdict} the goal <= {GOALS[kind]} s; "
            f"imports {', '.join(heavy_imports(model)) or 'none of ' + '/'.join(HEAVY)}"
        )
    if "floor" in medians:
        print(
            f"floor of the torch path (import torch + transformers' BertModel, nothing else): median "
            f"{medians['floor']:.2f} s; jtcse's own share of the torch cold start: "
            f"{medians['torch'] - medians['floor']:.2f} s"
        )
    print(f"cold start, torch model / ONNX export: {medians['torch'] / medians['onnx']:.1f}x")


if __name__ == "__main__":
    main()
