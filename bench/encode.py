"""Side-by-side CPU speed of jtcse (torch fp32, ONNX fp32, ONNX int8, ONNX int8-rowwise) and
sentence-transformers' own backends (torch, ONNX, ONNX int8), and how far each backend's vectors move: against
torch fp32, and batched against one sentence per call (``--single-limit`` sentences; per-batch int8 scales
make a sentence's vector depend on its batch).

All encode the same sentences with all-MiniLM-L6-v2, with the same batch size and the same thread count
(``--threads``, set for torch and every onnxruntime session alike and read back from the live sessions), in
interleaved repeats (the order of the backends rotates between repeats, so drifting machine load hits all
alike; one backend runs at a time). sentence-transformers' ONNX backends need optimum-onnx, which needs
transformers 4: they run in their own environment (``make bench-peers`` -> ``.venv-peers``; ``--peer-python``)
as a worker process (``bench/st_peers.py``), exported by sentence-transformers' own functions, the int8 one
with the quantisation config for this CPU (``avx512_vnni`` where the CPU has VNNI, else ``avx2``). Without
that environment the bench says so in one line and compares against sentence-transformers' torch backend
in this process. Two workloads:

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
sentences. The last line is the headline: jtcse's fastest backend over sentence-transformers' fastest, on
distinct sentences. ``--json PATH`` writes every rate with its FLOPs (real tokens, and padding included) for
``bench/roofline.py``.

    python bench/encode.py [--repeats 2] [--batch-size 64] [--limit N] [--threads T] [--sts] [--export-dir D]
                           [--peer-python .venv-peers/bin/python] [--json bench_out/encode.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
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

GOAL = (
    "goal: fastest jtcse / fastest sentence-transformers backend >= 2.0 on distinct sentences; "
    "int8 STS avg within 0.5 of fp32"
)
ROOT = Path(__file__).resolve().parents[1]
PEER_PYTHON = ROOT / ".venv-peers" / "bin" / "python"


def stsb_test_sentences(data_dir: str | None) -> tuple[list[str], str]:
    """Both sides of every pair of STS-B's test split: longer sentences than --limit's first pairs."""
    from jtcse.data.paths import resolve_data_dir
    from jtcse.data.sts import read_task

    try:
        root = resolve_data_dir(data_dir, need="sts", download=False)
    except JtcseError as exc:
        sys.exit(f"bench: no STS data ({exc})")
    pairs = read_task(root, "STSBenchmark", "test")["test"]
    return list(pairs.sentences1) + list(pairs.sentences2), f"STS-B's test split under {root}"


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


def exported(kind: str, export_dir: Path, threads: int, data_dir: str | None, model: str = "minilm") -> Path:
    """``export_dir/<model's name>-<kind>``, exported now unless a previous run left it there."""
    from jtcse.export.onnx import export_onnx
    from jtcse.model.format import is_jtcse_dir, read_spec

    out = export_dir / f"{Path(model).name}-{kind}"
    if is_jtcse_dir(out) and read_spec(out).extra.get("onnx", {}).get("precision") == kind:
        return out
    started = time.perf_counter()
    result = export_onnx(
        model,
        out,
        quantize=None if kind == "fp32" else kind,
        overwrite=True,
        threads=threads,
        data_dir=data_dir,
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


def mean_width(shapes: list[tuple[int, int]]) -> float:
    return sum(n * width for n, width in shapes) / max(sum(n for n, _ in shapes), 1)


def jtcse_batches(ours: Encoder, texts: list[str]) -> list[tuple[int, int]]:
    """(rows, padded width) of every batch jtcse runs on ``texts`` (the ONNX backends share this plan)."""
    probe = PaddingProbe(ours.members[0].model, features_dict=False)
    ours.encode(texts, show_progress=False)
    probe.handle.remove()
    return probe.shapes


def st_batches(theirs, texts: list[str], batch_size: int) -> list[tuple[int, int]]:
    probe = PaddingProbe(theirs[0], features_dict=True)
    theirs.encode(texts, batch_size=batch_size, show_progress_bar=False)
    probe.handle.remove()
    return probe.shapes


def check_padding(ours: list[tuple[int, int]], theirs: list[tuple[int, int]], lengths: list[int]) -> None:
    """Print the mean padded length (tokens per sentence) each side actually runs; stop if
    sentence-transformers pads beyond the longest sentence (a fixed length: an unfair comparison)."""
    unpadded = float(np.mean(lengths))
    print(
        f"mean padded length per sentence (distinct workload): jtcse {mean_width(ours):.1f}, "
        f"sentence-transformers {mean_width(theirs):.1f} tokens (unpadded mean {unpadded:.1f}; "
        f"batches: jtcse {len(ours)}, sentence-transformers {len(theirs)}); "
        "the ONNX backends share their side's batching",
        flush=True,
    )
    if max(w for _, w in theirs) > max(lengths):
        sys.exit("bench: sentence-transformers pads to a fixed length here; the comparison would be unfair")


def timed(fn: Callable[[], object]) -> tuple[float, float]:
    """Wall seconds, CPU seconds of this process (all threads)."""
    start, start_cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - start, time.process_time() - start_cpu


class Peers:
    """sentence-transformers' backends in the worker process ``bench/st_peers.py`` (their own venv)."""

    def __init__(self, python: Path, settings: dict, export_dir: Path) -> None:
        export_dir.mkdir(parents=True, exist_ok=True)
        file = export_dir / "st_peers_settings.json"
        file.write_text(json.dumps(settings), encoding="utf-8")
        env = {**os.environ, "PYTHONPATH": "", "TOKENIZERS_PARALLELISM": "false"}
        self.process = subprocess.Popen(
            [str(python), str(ROOT / "bench" / "st_peers.py"), str(file)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        hello = self._read()
        self.names: list[str] = hello["backends"]
        self.verified: dict = hello["verified"]

    def _read(self) -> dict:
        line = self.process.stdout.readline() if self.process.stdout else ""
        if not line:
            sys.exit(f"bench: the sentence-transformers worker stopped (exit {self.process.wait()})")
        return json.loads(line)

    def ask(self, request: dict) -> dict:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        return self._read()

    def runner(self, name: str) -> Callable[[str], tuple[float, float]]:
        def run(workload: str) -> tuple[float, float]:
            answer = self.ask({"run": name, "workload": workload})
            return answer["seconds"], answer["cpu"]

        return run

    def vectors(self, name: str, path: Path, alone: list[str] | None = None) -> np.ndarray:
        """The distinct sentences' vectors in batches, or (``alone``) these sentences one per call."""
        self.ask({"vectors": name, "path": str(path), "alone": alone})
        return np.load(path)

    def close(self) -> None:
        if self.process.poll() is None and self.process.stdin is not None:
            self.process.stdin.write(json.dumps({"quit": True}) + "\n")
            self.process.stdin.close()
        self.process.wait(timeout=60)


def run_repeats(
    backends: dict[str, Callable[[str], tuple[float, float]]], workloads: dict[str, list[str]], repeats: int
) -> dict[tuple[str, str], list[float]]:
    """Interleaved repeats (the backend order rotates); seconds per (backend, workload)."""
    seconds: dict[tuple[str, str], list[float]] = {}
    names = list(backends)
    for repeat in range(repeats):
        order = names[repeat % len(names) :] + names[: repeat % len(names)]
        for workload, texts in workloads.items():
            for name in order:
                elapsed, cpu = backends[name](workload)
                seconds.setdefault((name, workload), []).append(elapsed)
                print(
                    f"  repeat {repeat + 1} {workload:8s} {name:32s} {elapsed:8.2f} s "
                    f"{len(texts) / elapsed:8.1f} sentences/s  "
                    f"(cpu {cpu:6.1f} s, load {os.getloadavg()[0]:.1f})",
                    flush=True,
                )
    return seconds


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
    parser.add_argument(
        "--stsb-test",
        action="store_true",
        help="the large workload of issue 29: every sentence of STS-B's test split (2,758, 2,552 distinct), "
        "instead of the 7 STS test sets",
    )
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for all (default: torch's)")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--export-dir", type=Path, default=Path("bench_out"), help="where the exports go")
    parser.add_argument("--sts", action="store_true", help="also score fp32 and int8 on the 7 STS tasks")
    parser.add_argument(
        "--single-limit",
        type=int,
        default=1000,
        help="batch vs single: encode this many distinct sentences one per call (default 1000)",
    )
    parser.add_argument(
        "--peer-python",
        type=Path,
        default=PEER_PYTHON if PEER_PYTHON.exists() else None,
        help="interpreter of the sentence-transformers ONNX environment (default: .venv-peers if present)",
    )
    parser.add_argument(
        "--json", type=Path, default=None, help="write rates and FLOPs here (bench/roofline.py)"
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="smallest real run: a tiny random BERT, 48 generated sentences, fp32 only, 1 repeat, "
        "sentence-transformers' torch backend in this process; measures nothing",
    )
    args = parser.parse_args()
    args.model = "minilm"
    if args.smoke:
        import _smoke

        args.model, args.repeats, args.sts, args.peer_python = str(_smoke.tiny_model()), 1, False, None
        args.export_dir = _smoke.WORK_DIR
        args.json = args.json or _smoke.WORK_DIR / "encode-smoke.json"  # bench/roofline.py --smoke reads it
        _smoke.skipped("int8 and the sentence-transformers ONNX peers", "int8's STS-B dev gate would reject "
                       "a random model; the peers' environment is a separate, optional one")  # fmt: skip
    return args


def workload_sentences(args: argparse.Namespace) -> tuple[list[str], str]:
    if not args.smoke:
        return (
            stsb_test_sentences(args.data_dir) if args.stsb_test else sts_sentences(args.data_dir, args.limit)
        )
    import _smoke

    distinct = _smoke.sentences(48)
    return distinct + distinct[::4], "generated (--smoke), every 4th twice"


def check_threads(threads: int, encoders: dict[str, Encoder], peers: Peers | None) -> None:
    """The thread limit, read back from torch and every live onnxruntime session; stop on a mismatch."""
    seen = {"jtcse torch": torch.get_num_threads()}
    for name, encoder in encoders.items():
        for member in encoder.members:
            graph = member.graph
            if graph is not None:
                seen[name] = graph.session.get_session_options().intra_op_num_threads
                if graph._single is not None:  # throughput mode: workers x one intra-op thread each
                    single = graph._single.get_session_options().intra_op_num_threads
                    seen[f"{name} (throughput)"] = graph.workers(graph.threads) * single
    if peers is not None:
        seen["sentence-transformers torch"] = peers.verified["torch_threads"]
        seen |= {name: peers.verified[name] for name in peers.names if "onnx" in name}
    print("threads verified from the live sessions: " + ", ".join(f"{k} {v}" for k, v in seen.items()))
    if set(seen.values()) != {threads}:
        sys.exit(f"bench: not every backend runs with {threads} threads: {seen}")


def main() -> None:
    args = parse_args()
    from jtcse.engines import resolve_threads
    from jtcse.tools.flops import EncoderShape

    threads = resolve_threads(args.threads)
    torch.set_num_threads(threads)
    sentences, origin = workload_sentences(args)
    distinct = list(dict.fromkeys(sentences))
    workloads = {"distinct": distinct, "all": sentences}
    print(GOAL)
    print(f"sentences: {len(sentences)} ({len(distinct)} distinct) from {origin}")
    kinds = ("fp32",) if args.smoke else ("fp32", "int8", "int8-rowwise")
    dirs = {kind: exported(kind, args.export_dir, threads, args.data_dir, args.model) for kind in kinds}
    encoders = {
        "jtcse torch fp32": Encoder(args.model, device="cpu", batch_size=args.batch_size, threads=threads)
    }
    for kind, path in dirs.items():
        encoders[f"jtcse onnx {kind}"] = Encoder(
            path, device="cpu", batch_size=args.batch_size, threads=threads
        )
    one = "int8" if "int8" in dirs else kinds[-1]  # throughput mode: one single-threaded session per core
    encoders[f"jtcse onnx {one} one session"] = one_session(dirs[one], args.batch_size, threads)
    peers = start_peers(args, threads, workloads)
    single = distinct[: args.single_limit]
    # after the warm-up every session exists
    backends, vector_fns = local_backends(encoders, workloads, single)
    check_threads(threads, encoders, peers)
    ours = jtcse_batches(encoders["jtcse torch fp32"], distinct)
    if peers is None:
        from sentence_transformers import SentenceTransformer

        theirs = SentenceTransformer(str(model_dir(args.model)), device="cpu")
        st_shapes = st_batches(theirs, distinct, args.batch_size)
        run_st = lambda texts, m=theirs: m.encode(  # noqa: E731
            texts, batch_size=args.batch_size, normalize_embeddings=True, show_progress_bar=False
        )
        run_st(distinct[:256])  # warm-up
        backends["sentence-transformers torch"] = lambda w: timed(lambda: run_st(workloads[w]))
        vector_fns["sentence-transformers torch"] = lambda alone: (
            np.concatenate([run_st([s]) for s in single]) if alone else run_st(distinct)
        )
    else:
        st_shapes = [tuple(shape) for shape in peers.verified["batches"]]
        for name in peers.names:
            backends[name] = peers.runner(name)
            vector_fns[name] = lambda alone, n=name: peers.vectors(
                n, args.export_dir / "st_vectors.npy", single if alone else None
            )
    lengths = [len(ids) for ids in encoders["jtcse torch fp32"].members[0].tokenizer(distinct)["input_ids"]]
    check_padding(ours, st_shapes, lengths)
    print(
        f"model: {args.model}  device: cpu  threads: {threads}  batch size: {args.batch_size}  "
        f"repeats: {args.repeats}  cpu: {os.cpu_count()} cores  load: {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    seconds = run_repeats(backends, workloads, args.repeats)
    agreement(
        {name: np.asarray(fn(False)) for name, fn in vector_fns.items()},
        {name: np.asarray(fn(True)) for name, fn in vector_fns.items()},
    )
    if peers is not None:
        peers.close()
    rates = report(seconds, workloads, list(backends))
    if args.json:
        shape = EncoderShape.from_config(json.loads((model_dir(args.model) / "config.json").read_text()))
        write_json(args, threads, seconds, rates, shape, lengths, {"jtcse": ours, "st": st_shapes})
    if args.sts:
        scores = {kind: sts_avg(path, args.data_dir, args.batch_size) for kind, path in dirs.items()}
        print(
            f"7-task STS avg (jtcse eval sts --model {args.export_dir}/minilm-*): fp32 {scores['fp32']:.2f}, "
            + ", ".join(
                f"{kind} {scores[kind]:.2f} (difference {scores['fp32'] - scores[kind]:+.2f})"
                for kind in ("int8", "int8-rowwise")
            )
        )
    headline(rates)


def model_dir(model: str) -> Path:
    """The packaged all-MiniLM-L6-v2 for ``minilm``, else the directory itself (--smoke's tiny model)."""
    return packaged_model_dir(model) if model == "minilm" else Path(model)


def one_session(model_dir: Path, batch_size: int, threads: int) -> Encoder:
    """The ONNX encoder as it ran before throughput mode: every batch in one multi-threaded session."""
    encoder = Encoder(model_dir, device="cpu", batch_size=batch_size, threads=threads)
    for member in encoder.members:
        if member.graph is not None:
            member.graph.throughput = False
    return encoder


def start_peers(args: argparse.Namespace, threads: int, workloads: dict[str, list[str]]) -> Peers | None:
    if args.peer_python is None or not Path(args.peer_python).exists():
        print(
            "sentence-transformers ONNX / ONNX int8: skipped (no peer environment; `make bench-peers` builds "
            ".venv-peers, or pass --peer-python); comparing against its torch backend in this process"
        )
        return None
    from jtcse.tools.cpu import has_vnni

    settings = {
        "threads": threads,
        "batch_size": args.batch_size,
        "workloads": workloads,
        "model_dir": str(model_dir(args.model)),
        "export_dir": str(args.export_dir.resolve()),
        "quantization_config": "avx512_vnni" if has_vnni() else "avx2",
    }
    peers = Peers(Path(args.peer_python), settings, args.export_dir)
    print(
        f"sentence-transformers peers: {peers.verified['versions']}, int8 file {peers.verified['int8_file']}"
    )
    return peers


def local_backends(
    encoders: dict[str, Encoder], workloads: dict[str, list[str]], single: list[str]
) -> tuple[dict[str, Callable[[str], tuple[float, float]]], dict[str, Callable[[bool], object]]]:
    """Timed runs per workload, and the vectors: the distinct sentences in batches, or ``single`` one per
    call (``encode([s])``: batch_size=1 would still group short sentences)."""
    backends: dict[str, Callable[[str], tuple[float, float]]] = {}
    vector_fns: dict[str, Callable[[bool], object]] = {}
    for name, encoder in encoders.items():

        def run(texts: list[str], e: Encoder = encoder) -> object:
            return e.encode(texts, normalize=True, show_progress=False)

        run(workloads["distinct"][:256])  # warm-up: first-call allocations and lazy initialisation
        backends[name] = lambda w, r=run: timed(lambda: r(workloads[w]))
        vector_fns[name] = lambda alone, r=run: (
            np.concatenate([r([s]) for s in single]) if alone else r(workloads["distinct"])
        )
    return backends, vector_fns


def agreement(batched: dict[str, np.ndarray], alone: dict[str, np.ndarray]) -> None:
    """Per backend: its batched vectors against torch fp32's, and against its own one-sentence calls (the
    first ``--single-limit`` distinct sentences): per-batch int8 scales make a vector depend on its batch."""
    reference = batched["jtcse torch fp32"]
    for name, got in batched.items():
        cos = np.sum(got * reference, axis=1)
        own = np.sum(got[: len(alone[name])] * alone[name], axis=1)
        print(
            f"agreement {name:32s} vs jtcse torch fp32: min cosine {cos.min():.6f}, mean {cos.mean():.6f}; "
            f"batch vs single ({len(own)} sentences): min {own.min():.6f}, mean {own.mean():.6f}"
        )


def report(
    seconds: dict[tuple[str, str], list[float]], workloads: dict[str, list[str]], names: list[str]
) -> dict[tuple[str, str], float]:
    """Medians, per-backend ratios over sentence-transformers' fastest, and the dedup gain."""
    rates = {}
    for workload, texts in workloads.items():
        for name in names:
            median = statistics.median(seconds[(name, workload)])
            rates[(name, workload)] = len(texts) / median
            print(
                f"{workload:8s} {name:32s} median {median:8.2f} s  {rates[(name, workload)]:8.1f} sentences/s"
            )
    st = max(
        (n for n in names if n.startswith("sentence-transformers")), key=lambda n: rates[(n, "distinct")]
    )
    for name in names:
        if name != st:
            print(
                f"ratio {name} / {st}: distinct {rates[(name, 'distinct')] / rates[(st, 'distinct')]:.2f}, "
                f"all {rates[(name, 'all')] / rates[(st, 'all')]:.2f}"
            )
    share = len(workloads["distinct"]) / len(workloads["all"])
    print(f"dedup: {share:.1%} of the sentences are distinct (jtcse encodes each once; see the 'all' rows)")
    return rates


def write_json(args, threads, seconds, rates, shape, lengths, batches) -> None:
    real = shape.real_flops(lengths)
    rows = {}
    for (name, workload), rate in rates.items():
        if workload != "distinct":
            continue
        side = "st" if name.startswith("sentence-transformers") else "jtcse"
        rows[name] = {
            "precision": "int8" if "int8" in name else "fp32",
            "seconds": statistics.median(seconds[(name, workload)]),
            "sentences_per_s": rate,
            "real_flops": real,
            "padded_flops": shape.padded_flops(batches[side]),
        }
    result = {
        "shape_name": "MiniLM",
        "sentences": len(lengths),
        "real_tokens": int(sum(lengths)),
        "threads": threads,
        "load": round(os.getloadavg()[0], 1),
        "backends": rows,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.json}")


def headline(rates: dict[tuple[str, str], float]) -> None:
    names = {name for name, _ in rates}
    ours = max((n for n in names if n.startswith("jtcse")), key=lambda n: rates[(n, "distinct")])
    st = max(
        (n for n in names if n.startswith("sentence-transformers")), key=lambda n: rates[(n, "distinct")]
    )
    ratio = rates[(ours, "distinct")] / rates[(st, "distinct")]
    print(
        f"ratio fastest jtcse ({ours}) / fastest sentence-transformers ({st}), "
        f"distinct sentences: {ratio:.2f}"
    )


if __name__ == "__main__":
    main()
