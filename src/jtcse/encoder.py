"""``jtcse.Encoder``: sentences in, sentence embeddings out.

One encoder is a weighted sum of members, ``sum_i weight_i * pool_i(member_i(x))`` on raw vectors (see
:mod:`jtcse.model.format`): a plain Hugging Face model is one member, a twin tower two, an ensemble any
number. Each member keeps its own tokenizer, pooler and truncation limit.

Speed comes from doing as little as possible per batch: every distinct sentence is tokenized once (one call
to the fast tokenizer for the whole input) and encoded once; sentences are sorted by token count so each
batch pads only to its own longest member; the batch boundaries are planned to keep padding low, and short
sentences travel in larger batches (a token budget); the model runs under ``torch.inference_mode()`` with
its default (SDPA) attention.

The model call itself is an engine (:mod:`jtcse.engines`): torch for Hugging Face members, onnxruntime for
the graphs that ``jtcse export --format onnx`` writes; dedup, sorting, batching and padding are shared.

Importing this module loads neither torch nor transformers. An encoder over ONNX exports on the CPU runs
without them (``tokenizer.json`` through the ``tokenizers`` library, vectors summed in numpy): a command that
uses an export starts in well under a second instead of spending seconds on those imports. Hugging Face
members import them when they load.
"""

from __future__ import annotations

import itertools
import sys
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, overload

import numpy as np
import numpy.typing as npt

from jtcse.engines import Engine, OnnxEngine, TorchEngine, load_onnx_member, resolve_threads
from jtcse.errors import JtcseError
from jtcse.integrity import check_finite_weights, check_model_folder
from jtcse.model.format import (
    CONFIG_NAME,
    is_jtcse_dir,
    read_spec,
    resolve_member_path,
    resolve_member_tokenizer,
    verify_model_dir,
)
from jtcse.model.names import DEFAULT_MODEL, resolve_model
from jtcse.model.pooling import POOLERS, check_pooler

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

# adds ``weight * vectors`` into the rows ``rows`` of an encoder's running sum
_Add = Callable[[np.ndarray, "torch.Tensor | np.ndarray", float], None]

# A batch holds at most batch_size sentences, or more when they are short: up to this many padded tokens per
# allowed sentence (batch_size=64 allows 64 * 64 = 4096 tokens). Long sentences keep the plain batch_size.
# On a 2-core CPU, 2-4k-token batches ran MiniLM ~10% faster than 8k-token ones (activations outgrow caches)
# and much faster than ~1k-token ones (small matrix products use the cores poorly).
_TOKENS_PER_SENTENCE = 64
# What one more batch costs, in padded tokens: the batch plan weighs it against padding. On a 2-core CPU a
# MiniLM batch costs about as much as 64 tokens (64 ran 470-sentence calls fastest of 24/64/128, 1.4x the
# fill-every-batch rule). Accelerators are launch-bound: there a batch costs about as much as a full one,
# so the plan keeps batches few and full and only splits where that saves as much padding.
_BATCH_COST_TOKENS = {"cpu": 64}
_BATCH_COST_TOKENS_OTHER = 64 * _TOKENS_PER_SENTENCE
# Nested jtcse directories deeper than this are taken to be a cycle.
_MAX_NESTING = 8
# Show a progress bar by default only for inputs that take more than a moment.
_PROGRESS_MIN_BATCHES = 8


@dataclass
class Member:
    """One model of an encoder and how its vectors enter the sum."""

    model: PreTrainedModel | None  # None for an ONNX graph
    tokenizer: Any  # a PreTrainedTokenizerBase, or a FastTokenizer (tokenizer.json only) for an ONNX graph
    pooler: str  # "graph" for an ONNX graph (its pooling is inside)
    weight: float
    source: str  # the directory or hub id it was loaded from
    max_length: int | None  # truncation limit in tokens (None: the model has no known limit)
    graph: OnnxEngine | None = None
    tokenizer_source: str | None = None  # where the tokenizer came from when not ``source`` (jtcse.json)

    def engine(self) -> Engine:
        """What turns a padded batch into this member's pooled vectors."""
        return self.graph if self.graph is not None else TorchEngine(self.model, self.pooler)


class Encoder:
    """Sentence encoder over one or more Hugging Face models.

    ``model`` is a short name (``"minilm"``), a hub id, a Hugging Face model directory or a jtcse model
    directory (one with ``jtcse.json``). ``pooler`` overrides the poolers of every member; when None it comes
    from ``jtcse.json``, else from the sentence-transformers ``Pooling`` config (mean -> ``avg``,
    cls -> ``cls_before_pooler``), else ``cls_before_pooler``. ``device`` defaults to CUDA when available,
    else CPU. ``max_length`` truncates inputs (in tokens); by default only at the model's position limit, as
    SentEval evaluation does not truncate. ``threads`` sets the CPU threads of torch (process-wide) and of
    onnxruntime alike; by default both use torch's setting (the machine's cores). A directory written by
    ``jtcse export --format onnx`` runs with onnxruntime on the CPU (extra ``onnx``); when every member is
    such a graph and ``device`` is None or ``"cpu"``, the encoder stays on the CPU and never imports torch.
    """

    dim: int
    """The length of every vector (all members have it)."""

    def __init__(
        self,
        model: str | Path = DEFAULT_MODEL,
        *,
        pooler: str | None = None,
        device: str | None = None,
        max_length: int | None = None,
        batch_size: int = 64,
        threads: int | None = None,
    ) -> None:
        cpu_graphs = device in (None, "cpu") and not isinstance(model, Encoder) and _is_onnx_export(model)
        self._setup(
            device="cpu" if cpu_graphs else device,
            max_length=max_length,
            batch_size=batch_size,
            pooler=pooler,
            threads=threads,
            lazy_device=cpu_graphs,
        )
        self.members = self._load(model, weight=1.0, pooler=pooler, depth=0)
        self.dim = self._common_dim()

    @classmethod
    def ensemble(
        cls,
        members: Sequence[str | Path | Encoder],
        weights: Sequence[float],
        *,
        pooler: str | None = None,
        device: str | None = None,
        max_length: int | None = None,
        batch_size: int = 64,
        threads: int | None = None,
    ) -> Encoder:
        """An in-memory ensemble, ``sum_i weights[i] * members[i](x)``.

        Members are anything ``Encoder`` takes, or ``Encoder`` objects (their models are shared, not copied).
        """
        from jtcse.ensemble import check_members

        members, weights = list(members), list(weights)
        check_members(members, weights)
        self = cls.__new__(cls)
        self._setup(
            device=device, max_length=max_length, batch_size=batch_size, pooler=pooler, threads=threads
        )
        self.members = []
        for member, weight in zip(members, weights, strict=True):
            self.members += self._load(member, weight=float(weight), pooler=pooler, depth=0)
        self.dim = self._common_dim()
        return self

    # ------------------------------------------------------------------ loading

    def _setup(
        self,
        *,
        device: str | None,
        max_length: int | None,
        batch_size: int,
        pooler: str | None,
        threads: int | None,
        lazy_device: bool = False,
    ) -> None:
        """``lazy_device``: the device is the CPU and torch is not imported for it (ONNX graphs only)."""
        if pooler is not None:
            check_pooler(pooler)
        _check_batch_size(batch_size)
        self._device: torch.device | None = None
        if not lazy_device:
            from jtcse.model.loading import select_device

            self._device = select_device(device)  # imports torch, so threads below default to torch's
        self.threads = resolve_threads(threads)
        if threads is not None and "torch" in sys.modules:
            sys.modules["torch"].set_num_threads(threads)
        self.max_length = max_length
        self.batch_size = batch_size
        # (model path, tokenizer path or None) -> what load_member gave
        self._loaded: dict[
            tuple[str, str | None], tuple[PreTrainedModel, PreTrainedTokenizerBase, set[str]]
        ] = {}
        self._graphs: dict[str, tuple[OnnxEngine, Any, int | None]] = {}

    @property
    def device(self) -> torch.device:
        """The torch device vectors are summed on (an encoder over ONNX graphs imports torch only when this
        is read)."""
        if self._device is None:
            import torch

            self._device = torch.device("cpu")
        return self._device

    @device.setter
    def device(self, value: torch.device) -> None:
        self._device = value

    def _on_numpy(self) -> bool:
        """Whether vectors are summed in numpy: every member is an ONNX graph and the device is the CPU."""
        cpu = self._device is None or self._device.type == "cpu"
        return cpu and all(m.graph is not None for m in self.members)

    def _load(
        self, source: str | Path | Encoder, *, weight: float, pooler: str | None, depth: int
    ) -> list[Member]:
        if isinstance(source, Encoder):
            if source.device != self.device:
                raise JtcseError(f"ensemble: member is on {source.device} but the ensemble on {self.device}")
            if pooler is not None and any(m.graph is not None for m in source.members):
                raise JtcseError(
                    f"--pooler {pooler}: a member is an ONNX export; its pooling is in the graph"
                )
            if pooler == "cls" and any(getattr(m.model, "pooler", None) is None for m in source.members):
                raise JtcseError("--pooler cls: a member model has no pooler layer; use cls_before_pooler")
            return [replace(m, weight=m.weight * weight, pooler=pooler or m.pooler) for m in source.members]
        path = resolve_model(source)
        if not is_jtcse_dir(path):
            from jtcse.model.loading import sentence_transformers_pooler

            default = pooler or sentence_transformers_pooler(path) or "cls_before_pooler"
            return [self._member(path, pooler=default, weight=weight)]
        if depth >= _MAX_NESTING:
            raise JtcseError(
                f"{Path(path) / CONFIG_NAME}: jtcse directories nested deeper than {_MAX_NESTING}"
            )
        spec = read_spec(path)
        verify_model_dir(path, spec)  # the checksums written with jtcse.json: no damaged file loads
        here = Path(path).resolve()
        members: list[Member] = []
        for i, entry in enumerate(spec.members):
            if entry.backend == "onnx":
                members.append(
                    self._onnx_member(resolve_member_path(path, entry), entry.weight * weight, pooler)
                )
                continue
            if entry.pooler not in POOLERS:
                raise JtcseError(
                    f"{here / CONFIG_NAME}: members[{i}] pooler {entry.pooler!r} is not one of "
                    f"{', '.join(POOLERS)}"
                )
            member_path = resolve_member_path(path, entry)
            is_self = Path(member_path).exists() and Path(member_path).resolve() == here
            if not is_self and Path(member_path).is_dir() and is_jtcse_dir(member_path):
                # a nested jtcse model brings its own poolers; only an explicit override replaces them
                members += self._load(
                    member_path, weight=weight * entry.weight, pooler=pooler, depth=depth + 1
                )
            else:
                tokenizer = resolve_member_tokenizer(path, entry)
                members.append(
                    self._member(
                        member_path,
                        pooler=pooler or entry.pooler,
                        weight=weight * entry.weight,
                        tokenizer=tokenizer,
                    )
                )
        return members

    def _member(self, path: str, *, pooler: str, weight: float, tokenizer: str | None = None) -> Member:
        from jtcse.model.loading import load_member, max_input_length

        cache_key = (path, tokenizer)
        if cache_key not in self._loaded:  # members that name the same model share one copy
            check_model_folder(path, "--model")  # an empty folder, a truncated .safetensors: one line
            try:
                self._loaded[cache_key] = load_member(path, self.device, tokenizer)
            except JtcseError as exc:
                if Path(path).exists():
                    raise
                # not here, and the hub (offline, unreachable, or no such id) could not give it either
                raise JtcseError(
                    f"--model {path}: no such directory, and no Hugging Face hub model of that name could "
                    f"be loaded ({exc})"
                ) from exc
            check_finite_weights(self._loaded[cache_key][0], path)  # NaN weights would give NaN vectors
        model, loaded_tokenizer, missing = self._loaded[cache_key]
        if pooler == "cls":
            if getattr(model, "pooler", None) is None:
                raise JtcseError(
                    f"--pooler cls: {path} has no pooler layer (dense+tanh); use cls_before_pooler"
                )
            if any("pooler" in key.split(".") for key in missing):
                raise JtcseError(
                    f"--pooler cls: {path} has no trained pooler weights (they would be random); "
                    "use cls_before_pooler"
                )
        return Member(
            model=model,
            tokenizer=loaded_tokenizer,
            pooler=pooler,
            weight=weight,
            source=path,
            max_length=max_input_length(model, loaded_tokenizer, self.max_length),
            tokenizer_source=tokenizer,
        )

    def _onnx_member(self, path: str, weight: float, pooler: str | None) -> Member:
        if pooler is not None:
            raise JtcseError(
                f"--pooler {pooler}: {path} is an ONNX export whose pooling is inside the graph; "
                f"export the model again with --pooler {pooler}"
            )
        if path not in self._graphs:  # members that name the same graph share one session
            self._graphs[path] = load_onnx_member(path, threads=self.threads)
        graph, tokenizer, limit = self._graphs[path]
        if self.max_length is not None:
            if not isinstance(self.max_length, int) or self.max_length < 2:
                raise JtcseError(f"--max-length {self.max_length}: must be an integer >= 2")
            limit = self.max_length if limit is None else min(limit, self.max_length)
        return Member(None, tokenizer, "graph", weight, path, limit, graph=graph)

    def _common_dim(self) -> int:
        dims = {m.engine().dim for m in self.members}
        if len(dims) != 1:
            sources = ", ".join(f"{m.source} ({m.engine().dim})" for m in self.members)
            raise JtcseError(f"members have different hidden sizes and cannot be summed: {sources}")
        return dims.pop()

    def __repr__(self) -> str:
        parts = ", ".join(f"{m.weight:g}*{m.pooler}({m.source})" for m in self.members)
        return f"Encoder({parts}, dim={self.dim}, device={self.device})"

    # ------------------------------------------------------------------ encoding

    @overload
    def encode(
        self,
        sentences: str | Sequence[str],
        *,
        batch_size: int | None = None,
        normalize: bool = False,
        show_progress: bool | None = None,
        convert_to_tensor: Literal[False] = False,
    ) -> npt.NDArray[np.float32]: ...

    @overload
    def encode(
        self,
        sentences: str | Sequence[str],
        *,
        batch_size: int | None = None,
        normalize: bool = False,
        show_progress: bool | None = None,
        convert_to_tensor: Literal[True],
    ) -> torch.Tensor: ...

    @overload
    def encode(
        self,
        sentences: str | Sequence[str],
        *,
        batch_size: int | None = None,
        normalize: bool = False,
        show_progress: bool | None = None,
        convert_to_tensor: bool = False,
    ) -> npt.NDArray[np.float32] | torch.Tensor: ...

    def encode(
        self,
        sentences: str | Sequence[str],
        *,
        batch_size: int | None = None,
        normalize: bool = False,
        show_progress: bool | None = None,
        convert_to_tensor: bool = False,
    ) -> npt.NDArray[np.float32] | torch.Tensor:
        """Embed sentences; float32 ``[n, dim]`` in input order (``[dim]`` for a single string, like
        sentence-transformers).

        ``normalize`` scales every vector to unit length. ``show_progress`` None shows a bar on a terminal for
        inputs of more than a few batches. ``convert_to_tensor`` returns a torch tensor on the encoder's
        device. Identical sentences are encoded once and receive identical vectors.
        """
        single = isinstance(sentences, str)
        items: list[str] = [sentences] if isinstance(sentences, str) else list(sentences)
        for i, s in enumerate(items):
            if not isinstance(s, str):
                raise TypeError(f"encode expects strings; item {i} is {type(s).__name__}")
        batch_size = self.batch_size if batch_size is None else batch_size
        _check_batch_size(batch_size)

        position: dict[str, int] = {}
        inverse = [position.setdefault(s, len(position)) for s in items]
        distinct = list(position)
        if self._on_numpy():
            total = self._sum_numpy(distinct, batch_size, show_progress)
            if normalize:
                total = total / np.maximum(np.linalg.norm(total, axis=-1, keepdims=True), 1e-12)
            result_np = total[np.asarray(inverse, dtype=np.int64)]
            result_np = result_np[0] if single else result_np
            if convert_to_tensor:
                import torch

                return torch.from_numpy(np.ascontiguousarray(result_np))
            return result_np
        import torch

        tensor = self._sum_torch(distinct, batch_size, show_progress)
        if normalize:
            tensor = torch.nn.functional.normalize(tensor, p=2.0, dim=-1)
        if inverse:
            tensor = tensor[torch.as_tensor(inverse, dtype=torch.long, device=self.device)]
        if single:
            tensor = tensor[0]
        return tensor if convert_to_tensor else tensor.cpu().numpy()

    def _sum_numpy(self, distinct: list[str], batch_size: int, show_progress: bool | None) -> np.ndarray:
        """The weighted sum over members of every distinct sentence's vector, in numpy (ONNX graphs only)."""
        total = np.zeros((len(distinct), self.dim), dtype=np.float32)

        def add(rows: np.ndarray, pooled: torch.Tensor | np.ndarray, weight: float) -> None:
            vectors = np.asarray(pooled, dtype=np.float32)
            total[rows] += vectors if weight == 1.0 else np.float32(weight) * vectors

        self._run_members(distinct, batch_size, show_progress, add)
        return total

    def _sum_torch(self, distinct: list[str], batch_size: int, show_progress: bool | None) -> torch.Tensor:
        """The weighted sum over members of every distinct sentence's vector, on the encoder's device."""
        import torch

        total = torch.zeros((len(distinct), self.dim), dtype=torch.float32, device=self.device)

        def add(rows: np.ndarray, pooled: torch.Tensor | np.ndarray, weight: float) -> None:
            vectors = torch.as_tensor(pooled).to(self.device)
            index = torch.from_numpy(rows).to(self.device)
            if weight == 1.0:
                total.index_add_(0, index, vectors)
            else:
                total.index_add_(0, index, vectors, alpha=weight)

        with torch.inference_mode():
            self._run_members(distinct, batch_size, show_progress, add)
        return total

    def _run_members(
        self, distinct: list[str], batch_size: int, show_progress: bool | None, add: _Add
    ) -> None:
        if not distinct:
            return
        progress = _progress_bar(len(distinct) * len(self.members), batch_size, show_progress)
        for member in self.members:
            self._accumulate(member, distinct, batch_size, add, progress)
        if progress is not None:
            progress.close()

    def _accumulate(
        self, member: Member, sentences: list[str], batch_size: int, add: _Add, progress: _Progress | None
    ) -> None:
        """``add`` ``member.weight * pooled vectors`` of ``sentences`` (rows in sentence order)."""
        features = _tokenize(member, sentences)
        lengths = np.fromiter(
            (len(ids) for ids in features["input_ids"]), dtype=np.int64, count=len(sentences)
        )
        # longest first: the first batch shows at once whether memory suffices
        order = np.argsort(-lengths, kind="stable")
        run = member.engine()
        pad_values = _pad_values(member.tokenizer)
        device_type = "cpu" if self._device is None else self._device.type
        cost = _BATCH_COST_TOKENS.get(device_type, _BATCH_COST_TOKENS_OTHER)
        spans = _batches(lengths[order], batch_size, cost)

        def padded(span: tuple[int, int]) -> dict[str, np.ndarray]:
            rows = order[span[0] : span[1]]
            return _pad(features, rows, lengths[rows], pad_values)

        graph = member.graph
        workers = graph.workers(len(spans)) if graph is not None else 1
        if graph is not None and workers > 1:  # throughput mode: one batch per core at once
            single = graph.run_single
            done: Iterator[tuple[tuple[int, int], Any]] = _in_order(
                spans, lambda span: single(padded(span)), workers
            )
        else:
            done = ((span, run(padded(span))) for span in spans)
        for (start, end), vectors in done:
            add(order[start:end], vectors, member.weight)
            if progress is not None:
                progress.update(end - start)


def _in_order(
    spans: list[tuple[int, int]], run: Callable[[tuple[int, int]], np.ndarray], workers: int
) -> Iterator[tuple[tuple[int, int], np.ndarray]]:
    """``(span, run(span))`` in span order, ``workers`` spans running at once on a thread pool, at most
    ``2 * workers`` finished or running ahead of the caller (bounded memory on long inputs)."""
    from concurrent.futures import Future, ThreadPoolExecutor

    with ThreadPoolExecutor(workers, thread_name_prefix="jtcse-encode") as pool:
        pending: deque[tuple[tuple[int, int], Future[np.ndarray]]] = deque()
        upcoming = iter(spans)
        for span in itertools.islice(upcoming, 2 * workers):
            pending.append((span, pool.submit(run, span)))
        while pending:
            span, future = pending.popleft()
            result = future.result()
            following = next(upcoming, None)
            if following is not None:
                pending.append((following, pool.submit(run, following)))
            yield span, result


def _is_onnx_export(model: str | Path) -> bool:
    """Whether ``model`` names a jtcse directory whose members are all ONNX graphs (a bad name or directory
    says False here; loading it then raises the usual error)."""
    try:
        path = resolve_model(model)
        return is_jtcse_dir(path) and all(m.backend == "onnx" for m in read_spec(path).members)
    except (JtcseError, OSError, ValueError):
        return False


def _check_batch_size(batch_size: int) -> None:
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise JtcseError(f"--batch-size {batch_size}: must be a positive integer")


def _tokenize(member: Member, sentences: list[str]) -> dict[str, list[list[int]]]:
    """All sentences in one tokenizer call (the fast tokenizer batches them in Rust), unpadded."""
    encoded = member.tokenizer(
        sentences,
        add_special_tokens=True,
        padding=False,
        truncation=member.max_length is not None,
        max_length=member.max_length,
        return_attention_mask=False,
        verbose=False,
    )
    return {key: value for key, value in encoded.items() if key in ("input_ids", "token_type_ids")}


def _pad_values(tokenizer: Any) -> dict[str, int]:
    pad_id = tokenizer.pad_token_id
    return {
        "input_ids": 0 if pad_id is None else int(pad_id),
        "token_type_ids": int(tokenizer.pad_token_type_id),
    }


def _batches(sorted_lengths: np.ndarray, batch_size: int, batch_cost_tokens: int) -> list[tuple[int, int]]:
    """``(start, end)`` spans over longest-first lengths that minimise the padded tokens run plus
    ``batch_cost_tokens`` per batch (dynamic programming from the end). A batch holds at most ``batch_size``
    sentences, or more while it stays within ``batch_size * _TOKENS_PER_SENTENCE`` padded tokens.

    Filling every batch to the limit (the plain rule) pads short sentences to the longest of a wide range of
    lengths when the input is small: 100 random STS sentences ran at 2.4x their real tokens that way."""
    budget = batch_size * _TOKENS_PER_SENTENCE
    n = len(sorted_lengths)
    best = np.zeros(n + 1)  # best[i]: the least cost of sentences i..n-1
    end = np.zeros(n, dtype=np.int64)
    for i in range(n - 1, -1, -1):
        longest = max(int(sorted_lengths[i]), 1)  # the first row is the longest: it sets the padding
        size = min(n - i, max(batch_size, budget // longest))
        costs = np.arange(1, size + 1) * longest + best[i + 1 : i + size + 1]
        k = int(np.argmin(costs))
        best[i], end[i] = costs[k] + batch_cost_tokens, i + k + 1
    spans, start = [], 0
    while start < n:
        spans.append((start, int(end[start])))
        start = int(end[start])
    return spans


def _pad(
    features: dict[str, list[list[int]]],
    rows: np.ndarray,
    lengths: np.ndarray,
    pad_values: dict[str, int],
) -> dict[str, np.ndarray]:
    """Right-padded int64 arrays for ``rows`` (right padding keeps [CLS] at position 0 for CLS poolers)."""
    width = int(lengths.max())
    mask = np.arange(width)[None, :] < lengths[:, None]
    inputs = {}
    for key, sequences in features.items():
        array = np.full((len(rows), width), pad_values[key], dtype=np.int64)
        for out_row, row in enumerate(rows):
            seq = sequences[row]
            array[out_row, : len(seq)] = seq
        inputs[key] = array
    inputs["attention_mask"] = mask.astype(np.int64)
    return inputs


class _Progress(Protocol):
    """The progress bar's part that encode uses."""

    def update(self, n: float | None = 1) -> bool | None: ...

    def close(self) -> None: ...


def _progress_bar(total: int, batch_size: int, show: bool | None) -> _Progress | None:
    if show is None:
        show = total > _PROGRESS_MIN_BATCHES * batch_size and sys.stderr.isatty()
    if not show:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="sent", desc="Encoding", leave=False)
