"""Data-parallel training over several processes: launch, device, sharding, gathering with gradient.

Launching (every rank runs the same command; the launcher sets ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``,
``MASTER_ADDR``, ``MASTER_PORT``)::

    torchrun --nproc_per_node 4 -m jtcse train CONFIG            # one machine, 4 GPUs (or 4 CPU processes)
    torchrun --nnodes 2 --node_rank R --master_addr HOST --master_port 29500 --nproc_per_node 8 \\
        -m jtcse train CONFIG                                     # two machines; OUT on a shared filesystem
    accelerate launch --multi_gpu --num_processes 4 -m jtcse train CONFIG   # the same environment variables
    torchrun --nproc_per_node 4 -m jtcse distill CONFIG         # distillation, alike

(``accelerate launch`` only starts the processes; jtcse does not use the ``accelerate`` library, so its own
config file's mixed-precision setting is ignored: use ``train.precision``.)

With ``WORLD_SIZE`` > 1, :func:`init_distributed` joins the process group: **nccl** on CUDA (rank ``r`` uses
``cuda:LOCAL_RANK``), **gloo** on CPU. Plain ``python`` (or ``jtcse train``) with several GPUs visible trains
on one GPU and says so: jtcse never uses ``torch.nn.DataParallel``, which splits a batch across GPUs inside
the forward pass, so each GPU would see only its own in-batch negatives (SimCSE's crashes #28/#156).

One step with world size W and global batch B (``train.batch_size``, the same as on one process):

* every rank plans the same epoch order (seeded) and takes **its contiguous slice** of each global batch
  (:func:`shard_sizes`: sizes differ by at most one): a distributed sampler over the batches. A batch with
  fewer sentences than ranks is dropped from the plan (only possible for a tiny last batch);
* each rank tokenises and encodes only its slice (both towers, cross-attention, all on the same rank);
* the vectors are **all-gathered with gradient** (:func:`gather_rows`, built on
  ``torch.distributed.nn.functional.all_gather``) in rank order, so the gathered rows are the global batch in
  its single-process order, interleaving ``[x0, x0, x1, x1, ...]`` included, and the label formula
  ``p(i) = i ^ 1`` stays right. Every rank computes the *global* InfoNCE / ICNCE terms;
* per-sentence terms (the modulus constraint) stay **local**: a rank computes them on its own rows only,
  as the mean over its sentences times ``local_weight = W * n_local / B``, which makes the average over
  ranks the global mean even when the shards differ in size (uneven last batches are exact, no drop needed);
* the backward of the gather sums each rank's gradient over all ranks (each computed the same global terms,
  so a rank's vectors get W times the single-process gradient of the global terms); DDP then *averages* the
  parameter gradients over ranks, giving exactly the single-process gradient (tests/test_distributed.py
  checks this to 1e-5 for simcse and jtcse). No loss rescaling by W, no learning-rate change;
* logged loss values are averaged over ranks (:func:`mean_across_ranks`): the global batch's values.

Rank 0 alone prints, evaluates on STS-B dev, exports the model and writes metrics, environment and
checkpoints; the others wait for the dev score (:func:`broadcast_object`). A checkpoint holds every rank's
RNG state, so a resumed run with the same world size continues on exactly the same curve.
"""

from __future__ import annotations

import atexit
import sys
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar, cast

import numpy as np
import torch
from torch import Tensor, nn

from jtcse.errors import JtcseError
from jtcse.launcher import launched_world

T = TypeVar("T")  # an object sent between processes comes back as the same type

# gloo's default is 30 min; a dev evaluation on rank 0 keeps the others waiting, but never that long
_TIMEOUT = timedelta(minutes=30)


@dataclass(frozen=True)
class DistContext:
    """Where this process stands: its rank among ``world_size`` processes (a single process: 0 of 1)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard_sizes(self, n_sentences: int) -> list[int]:
        return shard_sizes(n_sentences, self.world_size)

    def local_part(self, indices: np.ndarray) -> np.ndarray:
        """This rank's contiguous slice of a global batch's sentence indices."""
        sizes = self.shard_sizes(len(indices))
        start = sum(sizes[: self.rank])
        return indices[start : start + sizes[self.rank]]

    def describe(self) -> dict[str, Any]:
        return {"world_size": self.world_size, "rank": self.rank, "backend": self.backend}


_current = DistContext()


def current() -> DistContext:
    """The context :func:`init_distributed` set up (a single process before that)."""
    return _current


def is_main_process() -> bool:
    return _current.is_main


# ------------------------------------------------------------------------------------------ setup
def init_distributed(device_setting: str = "auto") -> tuple[DistContext, torch.device, list[str]]:
    """Join the process group when launched with ``WORLD_SIZE`` > 1; pick this process's device.

    ``device_setting`` is ``train.device``. Returns the context, the device and notices for the user.
    Idempotent: a second call in the same process reuses the group.
    """
    global _current
    rank, local_rank, world = launched_world()
    if world <= 1:
        from jtcse.model.loading import select_device

        device = select_device(None if device_setting == "auto" else device_setting)
        notices = []
        if device.type == "cuda" and torch.cuda.device_count() > 1:
            notices.append(
                f"{torch.cuda.device_count()} CUDA devices are visible; training on {device} only (jtcse "
                "never uses DataParallel). For data parallelism over them: torchrun --nproc_per_node "
                f"{torch.cuda.device_count()} -m jtcse train CONFIG"
            )
        _current = DistContext()
        return _current, device, notices

    device = _rank_device(device_setting, local_rank)
    backend = "nccl" if device.type == "cuda" else "gloo"
    import torch.distributed as dist

    if not dist.is_available():
        raise JtcseError(f"WORLD_SIZE={world}: this torch build has no torch.distributed")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if dist.is_initialized():
        if dist.get_world_size() != world or dist.get_rank() != rank:
            raise JtcseError(
                f"a process group of {dist.get_world_size()} is already set up, but WORLD_SIZE={world}"
            )
        backend = str(dist.get_backend())
    else:
        dist.init_process_group(backend=backend, rank=rank, world_size=world, timeout=_TIMEOUT)
        atexit.register(_destroy)
    _current = DistContext(rank=rank, world_size=world, local_rank=local_rank, backend=backend)
    return _current, device, []


def _rank_device(device_setting: str, local_rank: int) -> torch.device:
    setting = device_setting.strip().lower()
    if setting == "cpu":
        return torch.device("cpu")
    if setting in ("auto", "cuda"):
        if not torch.cuda.is_available():
            if setting == "cuda":
                raise JtcseError("train.device = cuda: CUDA is not available on this machine")
            return torch.device("cpu")
        count = torch.cuda.device_count()
        if local_rank >= count:
            raise JtcseError(
                f"LOCAL_RANK={local_rank}, but this machine has {count} CUDA device(s); start at most "
                f"{count} processes per machine (torchrun --nproc_per_node {count})"
            )
        return torch.device("cuda", local_rank)
    raise JtcseError(
        f"train.device = {device_setting}: under torchrun each process uses cuda:LOCAL_RANK (or the CPU); "
        "set train.device to auto, cuda or cpu"
    )


def _destroy() -> None:
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()


def rank_seed(seed: int, rank: int) -> int:
    """Torch's seed for ``rank``'s dropout masks: ranks must not share masks (rank 0 included, by design)."""
    return int(np.random.SeedSequence([seed, rank, 0x6A7]).generate_state(1)[0])


# ------------------------------------------------------------------------------------------ sharding
def shard_sizes(n_sentences: int, world_size: int) -> list[int]:
    """Sentences per rank for a global batch of ``n_sentences``: contiguous, the first ranks one more."""
    base, extra = divmod(n_sentences, world_size)
    return [base + (1 if r < extra else 0) for r in range(world_size)]


def drop_unshardable(batches: list[np.ndarray], world_size: int) -> list[np.ndarray]:
    """The batches every rank gets at least one sentence of (all but, at most, a tiny last batch)."""
    if world_size <= 1:
        return batches
    return [b for b in batches if len(b) >= world_size]


# ------------------------------------------------------------------------------------------ collectives
def gather_rows(tensor: Tensor, counts: Sequence[int]) -> Tensor:
    """Every rank's ``tensor`` concatenated along dim 0 in rank order, **with gradient** to every rank.

    ``counts``: the row count of each rank's tensor (they may differ by rank: shorter ones are padded for
    the collective and trimmed after). The backward sums, for each rank's rows, the gradients that every
    rank computed for them.
    """
    import torch.distributed as dist
    import torch.distributed.nn.functional as dist_nn

    rank = dist.get_rank()
    if tensor.shape[0] != counts[rank]:
        raise ValueError(f"gather_rows: rank {rank} has {tensor.shape[0]} rows, counts say {counts[rank]}")
    longest = max(counts)
    padded = tensor
    if tensor.shape[0] < longest:
        filler = tensor.new_zeros((longest - tensor.shape[0], *tensor.shape[1:]))
        padded = torch.cat([tensor, filler])
    with warnings.catch_warnings():
        # torch >= 2.10 calls it deprecated in favour of a private API; it is the documented autograd gather
        warnings.simplefilter("ignore", FutureWarning)
        parts = dist_nn.all_gather(padded)
    return torch.cat([part[:count] for part, count in zip(parts, counts, strict=True)])


def gather_vectors(local: dict[str, Tensor], sentence_counts: Sequence[int]) -> dict[str, Tensor]:
    """:func:`gather_rows` for a dict of ``[rows, ...]`` tensors in one collective per (dtype, rows/sentence).

    Tensors with the same dtype and rows per sentence are concatenated along their features, gathered
    once, and split again (a twin tower's 4 + 2 x CA-layers vectors cost one collective, not 16).
    """
    import torch.distributed as dist

    n_local = sentence_counts[dist.get_rank()]
    groups: dict[tuple[torch.dtype, int], list[str]] = {}
    for key, value in local.items():
        per_sentence, rest = divmod(value.shape[0], n_local)
        if rest or per_sentence < 1:
            raise ValueError(
                f"gather_vectors: {key!r} has {value.shape[0]} rows for {n_local} sentences (not a multiple)"
            )
        groups.setdefault((value.dtype, per_sentence), []).append(key)
    gathered: dict[str, Tensor] = {}
    for (_, per_sentence), keys in groups.items():
        flats = [local[k].reshape(local[k].shape[0], -1) for k in keys]
        widths = [f.shape[1] for f in flats]
        merged = gather_rows(torch.cat(flats, dim=1), [per_sentence * c for c in sentence_counts])
        for key, part in zip(keys, torch.split(merged, widths, dim=1), strict=True):
            gathered[key] = part.reshape(-1, *local[key].shape[1:])
    return {key: gathered[key] for key in local}


def mean_across_ranks(values: Tensor) -> Tensor:
    """The mean over ranks of a float tensor (detached); the tensor itself in a single process."""
    values = values.detach()
    if not _current.enabled:
        return values
    import torch.distributed as dist

    out = values.clone().float()
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return (out / _current.world_size).to(values.dtype)


def any_across_ranks(flag: bool, device: torch.device) -> bool:
    """True on every rank when it is true on any (so all ranks stop at the same step)."""
    if not _current.enabled:
        return flag
    import torch.distributed as dist

    value = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item() > 0)


def broadcast_object(obj: T, src: int = 0) -> T:
    """``obj`` from rank ``src`` on every rank (picklable values)."""
    if not _current.enabled:
        return obj
    import torch.distributed as dist

    holder = [obj]
    dist.broadcast_object_list(holder, src=src)
    return holder[0]


def gather_objects(obj: T) -> list[T]:
    """Every rank's ``obj``, in rank order, on every rank."""
    if not _current.enabled:
        return [obj]
    import torch.distributed as dist

    out: list[Any] = [None] * _current.world_size
    dist.all_gather_object(out, obj)
    return out


def barrier() -> None:
    if _current.enabled:
        import torch.distributed as dist

        dist.barrier()


# ------------------------------------------------------------------------------------------ the model
class RowEmbedder(nn.Module):
    """``forward(batch) = task.embed_rows(batch)``: the module DDP wraps, so its gradient hooks see the
    forward passes that matter (the loss is computed outside, on the gathered vectors)."""

    def __init__(self, task: nn.Module) -> None:
        super().__init__()
        self.task = task

    def forward(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        # a Task; nn.Module types its attributes Tensor | Module
        embed_rows = cast(Callable[[dict[str, Tensor]], dict[str, Tensor]], self.task.embed_rows)
        return embed_rows(batch)


def wrap_for_data_parallel(task: nn.Module, device: torch.device) -> nn.Module:
    """The task's row embedder, under ``DistributedDataParallel`` when several processes train.

    ``find_unused_parameters``: some parameters legitimately get no gradient (SimCSE never uses BERT's own
    pooler; the twin tower's poolers are unused when ``loss.ictm = 0``). Wrapping broadcasts rank 0's
    parameters to every rank.
    """
    embedder = RowEmbedder(task)
    if not _current.enabled:
        return embedder
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(
        embedder,
        device_ids=[device.index] if device.type == "cuda" else None,
        find_unused_parameters=True,
        broadcast_buffers=False,  # position-id buffers are constants
    )


class NoMetrics:
    """What ranks other than 0 log to."""

    def log(self, record: dict[str, Any]) -> None:
        pass

    def __enter__(self) -> NoMetrics:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def say(message: str) -> None:
    """A line on stderr from the main process only, above any progress bar."""
    if is_main_process():
        from tqdm import tqdm

        tqdm.write(message, file=sys.stderr)
