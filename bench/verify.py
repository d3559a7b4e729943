"""What checking shard and index checksums costs a search (issue 26): per search, and the first time.

Writes a vectors folder of ``--n`` unit vectors (the Gaussian mixture of bench/index_memory.py, 2,000 centres,
seed 0, ``.npy`` shards of ``--shard-size`` through the real shard writer), builds the ``ivfsq8`` index of it
with ``jtcse index``'s own function (a compressed kind: every search re-ranks its candidates from the shards)
and then times what ``jtcse search --index`` does before it prints hits, as a fresh process would (a new
:class:`~jtcse.corpus_scale.index.VectorIndex` each time): load the index and search ``--queries`` query
vectors (top 10, the index's default re-ranking of 100 candidates), in four ways, interleaved round by round,
best of ``--repeats`` rounds kept:

* **unchecked**: no checksum of any file (the lower bound; what the shards had before this issue);
* **before**: the index's own files hashed on every load, shards and ``rerank.npy`` never (jtcse up to this
  issue: a flipped byte in a shard went unnoticed);
* **remembered** (the default now): every file the search uses checked against its recorded sha256, read only
  when its stat (size, mtime_ns, ctime_ns, inode, device) differs from the last verified one, so here: one
  ``stat`` per file and one small JSON record;
* **--verify**: every file the search uses hashed again.

It also times a full first verification (what the first search after a file changed pays, and ``jtcse
index`` pays anyway). The page cache is warm (the files were just written and read), so hashing runs at
SHA-256 speed, not disk speed.

    python bench/verify.py [--n 1000000] [--dim 384] [--shard-size 100000] [--queries 1] [--repeats 5]

It times the remembered checks by themselves too (fresh records, as a new process reads them): end-to-end
differences of a few per cent drown in the noise of a shared machine, this does not. The last line is that
time as a share of the unchecked load + search (0.0010: the checks add a thousandth).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from index_memory import write_folder
from jtcse.corpus_scale import verified
from jtcse.corpus_scale.faiss_kinds import set_threads
from jtcse.corpus_scale.index import VectorIndex, build_index
from jtcse.fs import sha256_file
from jtcse.tools.cpu import describe_cpu

MIB = 2**20


def search_once(out: Path, queries: np.ndarray, *, rehash: bool = False) -> float:
    started = time.perf_counter()
    index = VectorIndex.load(out, rehash=rehash)
    index.search_vectors(queries, 10)
    return time.perf_counter() - started


def without_checks(run: Callable[[], float], *, index_files: bool) -> float:
    """``run`` with the checksum checks off (``index_files``: except the index's own, hashed each time)."""
    original = verified.FileChecks.check_all

    def check_all(self: verified.FileChecks, files: list[tuple[str, str]], **kwargs: str) -> None:
        if index_files and self.folder.name.startswith("index-"):
            for name, digest in files:
                if name != "rerank.npy" and sha256_file(self.folder / name) != digest:
                    raise AssertionError(name)

    verified.FileChecks.check_all = check_all  # type: ignore[method-assign]  # the bench's own switch
    try:
        return run()
    finally:
        verified.FileChecks.check_all = original  # type: ignore[method-assign]


def measure(out: Path, queries: np.ndarray, repeats: int) -> dict[str, float]:
    ways: dict[str, Callable[[], float]] = {
        "unchecked": lambda: without_checks(lambda: search_once(out, queries), index_files=False),
        "before": lambda: without_checks(lambda: search_once(out, queries), index_files=True),
        "remembered": lambda: search_once(out, queries),
        "--verify": lambda: search_once(out, queries, rehash=True),
    }
    best = dict.fromkeys(ways, float("inf"))
    for _ in range(repeats):
        for name, way in ways.items():
            best[name] = min(best[name], way())
    return best


def checks_alone(out: Path, folder: Path, repeats: int) -> tuple[float, int]:
    """Seconds of the remembered checks by themselves (a fresh FileChecks per folder, as a new process),
    best of ``repeats``, and the number of files they cover."""
    index = VectorIndex.load(out)
    assert index.vectors is not None
    shards = [(e["file"], e["sha256"]) for e in index.vectors.entries]
    own = list(index.meta["files"].items())
    best = float("inf")
    for _ in range(repeats * 20):
        started = time.perf_counter()
        verified.FileChecks(out).check_all(own, recorded_in="", fix="")
        checks = verified.FileChecks(folder)
        checks.check_all(shards, recorded_in="", fix="")
        best = min(best, time.perf_counter() - started)
        assert checks.hashed == 0
    return best, len(shards) + len(own)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--shard-size", type=int, default=100_000)
    parser.add_argument("--nlist", type=int, default=256, help="IVF cells (small: a quick build)")
    parser.add_argument("--queries", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--workdir", type=Path, help="where the vectors folder goes (default: a temp dir)")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="the smallest real run (4,000 x 32, one repeat)",
    )
    args = parser.parse_args()
    if args.smoke:
        args.n, args.dim, args.shard_size, args.nlist, args.repeats = 4_000, 32, 1_000, 8, 1
    print(describe_cpu())
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    busy = os.getloadavg()[0] > args.threads + 0.5  # more than the bench's own threads: other jobs
    note = "other jobs share this machine: times are noisy" if busy else "quiet: the bench's own threads"
    print(f"threads: {args.threads}; load average {load} ({note})")
    set_threads(args.threads)
    with tempfile.TemporaryDirectory(dir=args.workdir) as work:
        os.environ["XDG_CACHE_HOME"] = str(Path(work) / "cache")  # the bench's own verified-files records
        started = time.perf_counter()
        folder = write_folder(Path(work), args.n, args.dim, args.shard_size)
        size = args.n * args.dim * 4
        print(
            f"data: {args.n:,} x {args.dim} float32 = {size / MIB:,.0f} MiB in .npy shards of "
            f"{args.shard_size:,}, written in {time.perf_counter() - started:.0f} s"
        )
        started = time.perf_counter()
        out, _ = build_index(folder, kind="ivfsq8", nlist=args.nlist)
        print(f"index: ivfsq8, nlist {args.nlist}, built in {time.perf_counter() - started:.0f} s")
        started = time.perf_counter()
        shards = verified.FileChecks(folder, rehash=True)
        index = VectorIndex.load(out)
        assert index.vectors is not None
        shards.check_all([(e["file"], e["sha256"]) for e in index.vectors.entries], recorded_in="", fix="")
        first = time.perf_counter() - started
        print(
            f"first verification of every shard ({shards.hashed} files, {size / MIB:,.0f} MiB): "
            f"{first:.2f} s ({size / MIB / first:,.0f} MiB/s)"
        )
        rng = np.random.default_rng(1)
        queries = rng.standard_normal((args.queries, args.dim)).astype(np.float32)
        best = measure(out, queries, args.repeats)
        alone, files = checks_alone(out, folder, args.repeats)
    for name, seconds in best.items():
        print(
            f"load + search of {args.queries} quer{'y' if args.queries == 1 else 'ies'}, {name}: "
            f"{seconds * 1000:,.1f} ms ({seconds / best['unchecked']:.2f}x unchecked)"
        )
    print(
        f"the remembered checks alone ({files} files: a stat each, two small records): {alone * 1000:.2f} ms"
    )
    print("share of an unchecked load + search that the remembered checks take:")
    print(f"{alone / best['unchecked']:.4f}")


if __name__ == "__main__":
    main()
