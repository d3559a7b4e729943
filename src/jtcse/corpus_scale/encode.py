"""Encode a text file of any size into a folder of shards, resumably, on one process or several.

Memory is bounded by the shard size (lines are read shard by shard and encoded in chunks), not by the file.
With several processes (``torchrun``), rank 0 plans the run and shares the plan; every rank then encodes its
own contiguous range of the shards still to do, and whichever rank writes the last shard completes the
manifest. A resumed run recomputes "still to do" from the shard entries on disk, so it may use any number
of processes.
"""

from __future__ import annotations

import errno
import shutil
import warnings
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np

from jtcse.corpus_scale.lines import LinePlan, plan_lines, read_shard_lines
from jtcse.corpus_scale.manifest import (
    SHARD_FORMATS,
    check_resumable,
    new_manifest,
    read_manifest,
    write_manifest,
)
from jtcse.corpus_scale.parquet_shards import pyarrow_modules
from jtcse.corpus_scale.progress import Progress
from jtcse.corpus_scale.shards import completed_entries, remove_orphans, write_shard
from jtcse.errors import JtcseError, JtcseWarning
from jtcse.locks import LOCK_NAME, output_lock
from jtcse.model.identity import model_identity
from jtcse.tools.encode_file import SupportsEncode
from jtcse.tools.similarity import normalize_rows

DEFAULT_SHARD_SIZE = 100_000
_MIN_CHUNK = 4096  # lines encoded per call (progress granularity; the encoder batches inside)


@dataclass(frozen=True)
class ShardOptions:
    """How :func:`encode_to_shards` writes: rows per shard, the shard format (``npy``, ``safetensors`` or
    ``parquet``), unit-length vectors or raw, the encoder's batch size (None = its own), resume, progress
    lines, and for Parquet a text column with each input line."""

    shard_size: int = DEFAULT_SHARD_SIZE
    shard_format: str = "npy"
    normalize: bool = False
    batch_size: int | None = None
    resume: bool = False
    progress: bool = True
    with_text: bool = False  # parquet: a text column with the input line


T = TypeVar("T")  # what rank 0 broadcasts comes back to every rank as the same type


class Coordinator(Protocol):
    """How ranks agree: rank 0's object handed to every rank (a single process: itself)."""

    rank: int
    world_size: int

    def broadcast(self, obj: T) -> T: ...

    def wait_for_all(self) -> None:
        """Return once every rank has called it (no time limit: machines may be uneven)."""


class SingleProcess:
    rank = 0
    world_size = 1

    def broadcast(self, obj: T) -> T:
        return obj

    def wait_for_all(self) -> None:
        pass


@dataclass(frozen=True)
class EncodeResult:
    """What :func:`encode_to_shards` did: the folder, its manifest, whether every shard is written, and the
    shards this process wrote and found already done."""

    folder: Path
    manifest: dict[str, Any]  # the complete manifest when ``complete``, else the plan
    complete: bool
    encoded: int  # shards this process wrote
    already_done: int  # shards found complete at the start (--resume)


def encode_to_shards(
    encoder: SupportsEncode,
    input_path: str | Path,
    folder: str | Path,
    options: ShardOptions = ShardOptions(),
    coordinator: Coordinator | None = None,
) -> EncodeResult:
    """Encode every line of ``input_path`` into ``folder``: shards of ``options.shard_size`` rows (row i of
    the shards in order is line i + 1; a blank line is a zero row) and ``manifest.json`` (model identity,
    checksums, line ranges: :mod:`jtcse.corpus_scale.manifest`). What ``jtcse encode --output DIR`` runs.

    With ``options.resume`` the shards already complete are kept and a half-written one is redone; resuming
    with another model, input or settings is a one-line error. ``coordinator`` shares the plan between
    processes (``torchrun``: each rank encodes its share of the shards); None = this process alone. The
    folder is locked while it is written: a second writer stops with one line.
    """
    coordinator = coordinator or SingleProcess()
    folder = Path(folder)
    with ExitStack() as held:  # rank 0 holds the folder's lock (jtcse.locks) until every rank is done
        setup: Any = None
        if coordinator.rank == 0:
            try:
                created = not folder.exists()
                held.enter_context(output_lock(folder, what="--output"))  # a second writer stops here
                setup = _prepare(encoder, Path(input_path), folder, options, created)
            except JtcseError as exc:
                setup = ("error", str(exc))  # every rank must stop, not only rank 0
        setup = coordinator.broadcast(setup)
        if setup[0] == "error":
            raise JtcseError(setup[1])
        result = _encode_rank_share(encoder, folder, options, coordinator, setup[1:])
        coordinator.wait_for_all()  # every rank has written its shards before rank 0 lets go of the lock
    return result


def _encode_rank_share(
    encoder: SupportsEncode,
    folder: Path,
    options: ShardOptions,
    coordinator: Coordinator,
    setup: tuple[LinePlan, dict[str, Any], list[int], bool],
) -> EncodeResult:
    plan, manifest, todo, created = setup
    mine = rank_share(todo, coordinator.rank, coordinator.world_size)
    prefix = "encode" if coordinator.world_size == 1 else f"encode (rank {coordinator.rank})"
    rows = sum(min(plan.shard_size, plan.lines - k * plan.shard_size) for k in mine)
    progress = Progress(rows, prefix=prefix, enabled=options.progress)
    with _disk_errors(folder, manifest, todo, remove_if_empty=created and coordinator.world_size == 1):
        for k in mine:
            _encode_shard(encoder, plan, manifest, folder, k, options, progress)
        if mine:
            progress.advance(0, force=True)
        final = finish(folder, manifest)
    done_before = plan.shards - len(todo)
    return EncodeResult(folder, final or manifest, final is not None, len(mine), done_before)


def _prepare(
    encoder: SupportsEncode, input_path: Path, folder: Path, options: ShardOptions, created: bool
) -> tuple[str, LinePlan, dict[str, Any], list[int], bool]:
    """Rank 0: plan the lines, check or create the folder (``created``: by this run), list the shards still
    to do."""
    if options.shard_format not in SHARD_FORMATS:
        raise JtcseError(f"--shard-format {options.shard_format}: choose {', '.join(SHARD_FORMATS)}")
    if options.with_text and options.shard_format != "parquet":
        raise JtcseError(f"--with-text: only with --shard-format parquet, not {options.shard_format}")
    if options.shard_format == "parquet":
        pyarrow_modules()  # missing pyarrow: one line before the input is read
    if folder.exists() and not folder.is_dir():
        raise JtcseError(f"--output {folder}: exists and is not a folder")
    plan = plan_lines(input_path, options.shard_size)
    dim = int(getattr(encoder, "dim", 0) or 0) or int(np.asarray(encoder.encode(["dim"])).shape[1])
    wanted = new_manifest(
        plan,
        model_identity(encoder),
        dim=dim,
        normalize=options.normalize,
        shard_format=options.shard_format,
        with_text=options.with_text,
    )
    saved = read_manifest(folder, what="--output")
    if saved is not None:
        if not options.resume:
            state = "finished" if saved.get("complete") else "unfinished"
            raise JtcseError(
                f"--output {folder}: holds an {state} encoding already; pass --resume to continue it, or "
                "use another --output"
            )
        check_resumable(saved, wanted, folder)
        remove_orphans(folder)
        manifest = saved
    else:
        if folder.is_dir():
            remove_orphans(folder)  # a killed run's temporaries (it died before its manifest was written)
        if folder.is_dir() and any(p.name != LOCK_NAME for p in folder.iterdir()):
            raise JtcseError(f"--output {folder}: the folder is not empty and holds no {'manifest.json'}")
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise JtcseError(f"--output {folder}: cannot create the folder ({exc.strerror})") from exc
        manifest = wanted
        with _disk_errors(folder, manifest, list(range(plan.shards)), remove_if_empty=created):
            write_manifest(folder, manifest)
    done = completed_entries(folder, manifest)
    todo = [k for k in range(plan.shards) if k not in done]
    return "ok", plan, manifest, todo, created


def rank_share(todo: list[int], rank: int, world_size: int) -> list[int]:
    """A contiguous slice of ``todo`` per rank; the first ranks take one more when it does not divide."""
    base, extra = divmod(len(todo), world_size)
    start = rank * base + min(rank, extra)
    return todo[start : start + base + (1 if rank < extra else 0)]


def _encode_shard(
    encoder: SupportsEncode,
    plan: LinePlan,
    manifest: dict[str, Any],
    folder: Path,
    k: int,
    options: ShardOptions,
    progress: Progress,
) -> None:
    lines = read_shard_lines(plan, k)
    dim = int(manifest["dim"])
    vectors = np.zeros((len(lines), dim), np.float32)  # blank lines stay zero rows
    keep = np.flatnonzero([bool(line.strip()) for line in lines])
    chunk = max(_MIN_CHUNK, 16 * (options.batch_size or 64))
    for begin in range(0, len(lines), chunk):
        part = keep[(keep >= begin) & (keep < begin + chunk)]
        if len(part):
            encoded = encoder.encode(
                [lines[i] for i in part], batch_size=options.batch_size, show_progress=False
            )
            vectors[part] = np.asarray(encoded, dtype=np.float32)
        progress.advance(min(chunk, len(lines) - begin))
    if options.normalize and len(keep):
        vectors[keep] = normalize_rows(vectors[keep])
    zero = int(len(keep) - np.count_nonzero(vectors[keep].any(axis=1)))
    planned = manifest["shards"][k]
    write_shard(
        folder,
        k,
        vectors,
        file=planned["file"],
        start=planned["start"],
        stop=planned["stop"],
        blank=len(lines) - len(keep),
        texts=lines if options.with_text else None,
        zero=zero,
    )


def finish(folder: Path, manifest: dict[str, Any]) -> dict[str, Any] | None:
    """Mark the manifest complete when every shard is (by whichever rank sees it first); None if not yet."""
    entries = completed_entries(folder, manifest)
    if len(entries) < len(manifest["shards"]):
        return None
    shards = [{**planned, **entries[k]} for k, planned in enumerate(manifest["shards"])]
    final = {**manifest, "complete": True, "shards": shards, "blank": sum(e["blank"] for e in shards)}
    if all("zero" in e for e in shards):  # shards resumed from an older version's run do not know theirs
        final["zero_vectors"] = sum(e["zero"] for e in shards)
    write_manifest(folder, final)
    if final["normalize"] and final.get("zero_vectors"):
        zero = final["zero_vectors"]
        note = f"--output {folder}: unit length (except {zero} all-zero vector(s): left at zero)"
        warnings.warn(JtcseWarning(note), stacklevel=2)
    return final


@contextmanager
def _disk_errors(
    folder: Path, manifest: dict[str, Any], todo: list[int], *, remove_if_empty: bool
) -> Iterator[None]:
    """A full disk as one line with the space still needed; a folder this run made and could not fill
    is removed (a half-made folder would otherwise block the next run)."""
    try:
        yield
    except BaseException as exc:
        if remove_if_empty and not completed_entries(folder, manifest):
            shutil.rmtree(folder, ignore_errors=True)
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            rows = sum(manifest["shards"][k]["stop"] - manifest["shards"][k]["start"] for k in todo)
            need = rows * int(manifest["dim"]) * 4 / 2**20
            raise JtcseError(
                f"--output {folder}: no space left on the device ({exc.filename or folder}); about "
                f"{need:,.0f} MiB more is needed; free space and rerun with --resume"
            ) from exc
        raise
