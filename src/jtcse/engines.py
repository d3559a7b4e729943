"""Backends of :class:`jtcse.Encoder`: how one padded batch becomes pooled (weighted) vectors.

The encoder does the rest (dedup, one tokenizer call, length-sorted batches, padding); an engine only maps
``input_ids``, ``attention_mask`` (and ``token_type_ids``), int64 ``[n, L]``, to float32 vectors ``[n, dim]``:

* :class:`TorchEngine`: a Hugging Face model plus a pooler, on the model's device (a torch tensor out);
* :class:`OnnxEngine`: an ONNX graph written by ``jtcse export --format onnx`` (pooling, twin sum and
  ensemble sum inside the graph), run by onnxruntime on the CPU (a numpy array out). onnxruntime is the
  optional extra ``onnx``.

This module imports neither torch nor transformers: an ONNX export loads and encodes without them (their
imports cost seconds of a command's start); :class:`TorchEngine` imports torch when it is built.
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from jtcse.errors import JtcseError, JtcseWarning

if TYPE_CHECKING:
    import torch

ONNX_EXTRA_HINT = "pip install 'jtcse[onnx]'"


class Engine(Protocol):
    dim: int

    def __call__(self, arrays: dict[str, np.ndarray]) -> torch.Tensor | np.ndarray: ...


class TorchEngine:
    """``pool(model(**inputs))`` under the caller's ``torch.inference_mode()``."""

    def __init__(self, model: Any, pooler: str) -> None:
        from jtcse.model.pooling import needs_hidden_states

        self.model = model
        self.pooler = pooler
        self.hidden = needs_hidden_states(pooler)
        self.dim = int(model.config.hidden_size)
        self.device = next(model.parameters()).device

    def __call__(self, arrays: dict[str, np.ndarray]) -> torch.Tensor:
        import torch

        from jtcse.model.pooling import pool

        inputs = {key: torch.from_numpy(value).to(self.device) for key, value in arrays.items()}
        outputs = self.model(**inputs, output_hidden_states=self.hidden, return_dict=True)
        return pool(self.pooler, outputs, inputs["attention_mask"]).float()


def import_onnxruntime(what: str) -> Any:
    """The onnxruntime module, or a one-line error naming the extra that brings it."""
    try:
        import onnxruntime
    except ImportError as exc:
        raise JtcseError(f"{what}: needs onnxruntime, which is not installed; {ONNX_EXTRA_HINT}") from exc
    return onnxruntime


def physical_cores() -> int:
    """Physical cores among the CPUs this process may run on (torch's default thread count), read from
    ``/proc/cpuinfo``; the usable CPU count where that file is missing or says nothing."""
    allowed = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set(range(os.cpu_count() or 1))
    cores: set[tuple[str, str]] = set()
    try:
        blocks = Path("/proc/cpuinfo").read_text(encoding="utf-8").split("\n\n")
    except OSError:
        return max(len(allowed), 1)
    for block in blocks:
        fields = dict(
            (key.strip(), value.strip())
            for key, _, value in (line.partition(":") for line in block.splitlines())
        )
        if fields.get("processor", "").isdigit() and int(fields["processor"]) in allowed:
            cores.add((fields.get("physical id", "0"), fields.get("core id", fields["processor"])))
    return max(len(cores) or len(allowed), 1)


def resolve_threads(threads: int | None) -> int:
    """The thread count both backends use: ``threads``, else torch's current setting when torch is loaded
    (its default is the machine's physical cores), else the physical cores: torch and onnxruntime run with
    the same number, and an ONNX-only process never imports torch to learn it."""
    if threads is None:
        if "torch" in sys.modules:
            return int(sys.modules["torch"].get_num_threads())
        return physical_cores()
    if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
        raise JtcseError(f"--threads {threads}: must be a positive integer")
    return threads


# onnxruntime's session optimizer fuses Add + Gelu back into BiasGelu, whose CPU kernel the export had split
# (jtcse.export.onnx_rewrites): in its profiler (MiniLM, batch 64, loaded 2-core EPYC, 1 thread) Add + Gelu
# took 45 vs 88 ms per run of the fp32 graph and 38 vs 57 ms of the int8-rowwise one (the int8 graph's bias
# sits inside its quantised product, so there is nothing to fuse).
_DISABLED_FUSIONS = ["BiasGeluFusion"]


def _session(ort: Any, graph_file: str | Path, threads: int) -> Any:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    try:
        return ort.InferenceSession(
            str(graph_file),
            sess_options=options,
            providers=["CPUExecutionProvider"],
            disabled_optimizers=_DISABLED_FUSIONS,
        )
    except Exception as exc:  # onnxruntime raises its own exception types (Fail, InvalidGraph, ...)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise JtcseError(f"{graph_file}: onnxruntime cannot load this graph ({first})") from exc


class OnnxEngine:
    """One exported graph run by onnxruntime on the CPU with ``threads`` cores, in one of two ways:

    * a call of fewer batches than threads runs them one by one in a session with ``threads`` intra-op
      threads (``session``; the lowest latency for one batch);
    * a call of more (``throughput``, the default) runs ``threads`` batches at once, each on one core, in a
      second session with one intra-op thread that the encoder's worker threads share (onnxruntime runs
      concurrent calls of one session; it releases the GIL). Measured on a 2-core AMD EPYC shared with
      other jobs, MiniLM on 1,129 STS sentences, sentences/s over the multi-threaded session: int8 1.54x
      and fp32 1.16x at load ~2.5, 1.5x and 1.4x at load ~11, a tie in one bench/encode.py run at load ~5:
      the cores never wait for each other inside a matrix product. That session loads on the first such
      call.
    """

    def __init__(self, graph_file: str | Path, *, threads: int) -> None:
        self._ort = import_onnxruntime(f"--model {Path(graph_file).parent}")
        self.graph_file = Path(graph_file)
        self.threads = threads
        self.throughput = True
        self.session = _session(self._ort, graph_file, threads)
        self._single: Any = None
        self.input_names = [i.name for i in self.session.get_inputs()]
        dim = self.session.get_outputs()[0].shape[-1]
        if not isinstance(dim, int):
            raise JtcseError(f"{graph_file}: the graph's output has no fixed embedding size")
        self.dim = dim

    def workers(self, batches: int) -> int:
        """How many batches of a call of ``batches`` run at once (1: one by one, multi-threaded)."""
        if not self.throughput or self.threads < 2 or batches < self.threads:
            return 1
        if self._single is None:
            self._single = _session(self._ort, self.graph_file, 1)
        return self.threads

    def __call__(self, arrays: dict[str, np.ndarray]) -> np.ndarray:
        return self._run(self.session, arrays)

    def run_single(self, arrays: dict[str, np.ndarray]) -> np.ndarray:
        """One batch on one core (throughput mode; call :meth:`workers` first, from one thread)."""
        return self._run(self._single, arrays)

    def _run(self, session: Any, arrays: dict[str, np.ndarray]) -> np.ndarray:
        ids = arrays["input_ids"]
        feed = {
            name: arrays[name] if name in arrays else np.zeros_like(ids)  # token types: all 0 when absent
            for name in self.input_names
        }
        (vectors,) = session.run(None, feed)
        return np.ascontiguousarray(vectors, dtype=np.float32)


GRAPH_FILE = "model.onnx"
GRAPH_INFO = "graph.json"


def read_graph_info(graph_dir: str | Path) -> dict[str, Any]:
    """``graph.json`` of an exported graph directory (truncation limit, precision, what is inside)."""
    from jtcse.records import Int, Nullable, Obj, read_record

    file = Path(graph_dir) / GRAPH_INFO
    if not file.is_file():
        raise JtcseError(f"{file}: not found (not a graph written by jtcse export --format onnx)")
    info: dict[str, Any] = read_record(file, Obj(optional={"max_length": Nullable(Int(2))}))
    return info


def _warn_saturation(graph_dir: str | Path, info: dict[str, Any]) -> None:
    """8-bit int8 weights (``--quantize int8-rowwise``) can saturate onnxruntime's u8 x s8 kernel on CPUs
    without VNNI (pairs of products summed in 16 bits): say so once, the vectors may be off there."""
    from jtcse.tools.cpu import has_vnni

    if info.get("int8_weight_bits") == 8 and not has_vnni():
        warnings.warn(
            f"{graph_dir}: 8-bit int8 weights on a CPU without VNNI can saturate; vectors may drift from "
            "fp32 (export with --quantize int8 for AVX2-only CPUs)",
            JtcseWarning,
            stacklevel=3,
        )


def load_onnx_member(graph_dir: str | Path, *, threads: int) -> tuple[OnnxEngine, Any, int | None]:
    """The session, tokenizer and truncation limit of an exported graph directory. The tokenizer is its
    ``tokenizer.json`` run by the ``tokenizers`` library (no transformers import); only a graph saved
    without one (a slow tokenizer) loads transformers' ``AutoTokenizer``."""
    from jtcse.model.fast_tokenizer import TOKENIZER_FILE, FastTokenizer

    info = read_graph_info(graph_dir)
    _warn_saturation(graph_dir, info)
    engine = OnnxEngine(Path(graph_dir) / GRAPH_FILE, threads=threads)
    if (Path(graph_dir) / TOKENIZER_FILE).is_file():
        return engine, FastTokenizer(graph_dir, engine.input_names), info.get("max_length")
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(graph_dir))
    except (OSError, ValueError, KeyError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise JtcseError(f"--model {graph_dir}: cannot load a tokenizer ({first})") from exc
    return engine, tokenizer, info.get("max_length")
