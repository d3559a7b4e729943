"""Peak memory of ``jtcse index`` over shards: bounded by the training sample and the index, not the corpus.

Writes a vectors folder of ``--n`` unit vectors (a Gaussian mixture as in bench/search.py, 2,000 centres,
seed 0) in shards of ``--shard-size`` with the real shard writer, one shard in memory at a time, then runs
``python -m jtcse index --vectors DIR --kind KIND`` as a child process and samples its memory every 20 ms
from /proc (Linux): the peak resident set (VmHWM: it includes the pages of the memory-mapped shard being
read, which the kernel can drop) and the peak anonymous memory (RssAnon: what the process itself holds).
For scale it prints the float vectors' size on disk, the training sample (vectors x dim x 4 bytes), the
index (bytes per vector in memory x vectors, from index.json), one shard, and the baseline of the same
command with ``--help`` (the interpreter, faiss and jtcse's imports).

    python bench/index_memory.py [--n 1000000] [--dim 384] [--shard-size 100000] [--kind ivfpq] [--threads T]

The last line is the peak anonymous memory above the baseline as a share of the bound (the training sample
twice: read, then normalised, + the index + one shard + the row map twice); at or below 1.0, the memory does
not grow with the corpus.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from jtcse.corpus_scale.encode import finish
from jtcse.corpus_scale.faiss_kinds import resolve_params, training_size
from jtcse.corpus_scale.lines import plan_lines
from jtcse.corpus_scale.manifest import new_manifest, write_manifest
from jtcse.corpus_scale.shards import write_shard

MIB = 2**20


def write_folder(root: Path, n: int, dim: int, shard_size: int) -> Path:
    """A finished vectors folder of ``n`` mixture vectors, written one shard at a time."""
    text = root / "lines.txt"
    with open(text, "w", encoding="utf-8") as fh:
        for i in range(n):
            fh.write(f"line {i}\n")
    plan = plan_lines(text, shard_size)
    folder = root / "vectors"
    folder.mkdir()
    identity = {"members": [{"source": "bench/index_memory.py mixture"}], "dim": dim}
    manifest = new_manifest(plan, identity, dim=dim, normalize=True, shard_format="npy")
    write_manifest(folder, manifest)
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((2000, dim)).astype(np.float32)
    for k, planned in enumerate(manifest["shards"]):
        size = planned["stop"] - planned["start"]
        block = centres[rng.integers(0, len(centres), size)] + rng.standard_normal((size, dim), np.float32)
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        write_shard(
            folder, k, block, file=planned["file"], start=planned["start"], stop=planned["stop"], blank=0
        )
    assert finish(folder, manifest) is not None
    return folder


def _status(pid: int) -> dict[str, int]:
    """VmHWM and RssAnon of ``pid`` in bytes (empty once it has exited)."""
    found = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmHWM", "RssAnon"):
                found[key] = int(value.split()[0]) * 1024
    except OSError:
        pass
    return found


def peak_memory(argv: list[str]) -> tuple[int, int, float, str]:
    """(peak resident set, peak anonymous memory, seconds, stderr) of a child process."""
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err, text=True)
        hwm = anon = 0
        while proc.poll() is None:
            now = _status(proc.pid)
            hwm, anon = max(hwm, now.get("VmHWM", 0)), max(anon, now.get("RssAnon", 0))
            time.sleep(0.02)
        err.seek(0)
        log = err.read()
    if proc.returncode:
        raise SystemExit(f"{' '.join(argv)} failed:\n{log}")
    return hwm, anon, time.perf_counter() - started, log


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--shard-size", type=int, default=100_000)
    parser.add_argument("--kind", default="ivfpq")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--workdir", type=Path, help="where the vectors folder goes (default: a temp dir)")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="smallest real run: 10,000 x 16 (ivfpq needs 9,984) in 4 shards; measures nothing",
    )
    args = parser.parse_args()
    if args.smoke:
        args.n, args.dim, args.shard_size = 10_000, 16, 2_500
    with tempfile.TemporaryDirectory(dir=args.workdir) as work:
        started = time.perf_counter()
        folder = write_folder(Path(work), args.n, args.dim, args.shard_size)
        corpus = args.n * args.dim * 4
        took = time.perf_counter() - started
        print(f"data: {args.n:,} x {args.dim} float32 = {corpus / MIB:,.0f} MiB, written in {took:.0f} s")
        command = [sys.executable, "-m", "jtcse", "index", "--vectors", str(folder), "--kind", args.kind]
        command += ["--threads", str(args.threads)]
        base_hwm, base_anon, _, _ = peak_memory([*command, "--help"])
        hwm, anon, seconds, log = peak_memory(command)
        meta = json.loads((folder / f"index-{args.kind}" / "index.json").read_text())
    params = resolve_params(args.kind, args.n, dim=args.dim)
    sample = min(args.n, training_size(params)) * args.dim * 4 if params.nlist else 0
    index = meta["bytes_per_vector"] * args.n
    shard = min(args.shard_size, args.n) * args.dim * 4
    rows = args.n * 8 * 2  # the row map, and its concatenation
    bound = 2 * sample + index + shard + rows  # the sample is read, then normalised into a copy
    print(log.strip().splitlines()[-1])
    print(
        f"baseline (jtcse index --help): peak resident {base_hwm / MIB:,.0f} MiB, "
        f"anonymous {base_anon / MIB:,.0f} MiB"
    )
    print(
        f"{args.kind}: built in {seconds:.0f} s; peak resident {hwm / MIB:,.0f} MiB, peak anonymous "
        f"{anon / MIB:,.0f} MiB; corpus {corpus / MIB:,.0f} MiB"
    )
    print(
        f"bound: training sample 2 x {sample / MIB:,.0f} + index {index / MIB:,.0f} + one shard "
        f"{shard / MIB:,.0f} + row map {rows / MIB:,.0f} = {bound / MIB:,.0f} MiB"
    )
    print(f"peak anonymous memory above the baseline / bound: {(anon - base_anon) / bound:.2f}")


if __name__ == "__main__":
    main()
