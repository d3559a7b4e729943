"""Export a jtcse model (or anything ``jtcse.Encoder`` loads) as ONNX graphs that compute the whole embedding.

One graph per tokenizer group maps ``input_ids``, ``attention_mask`` (and ``token_type_ids`` for BERT-style
tokenizers) to the final vector: pooling (cls, cls_before_pooler, avg, avg_first_last), a twin tower's sum of
its two CLS vectors and an ensemble's weighted sum over the members sharing the tokenizer happen inside.
Members with another tokenizer get their own graph; ``jtcse.Encoder`` sums the graphs' vectors outside.

The output directory::

    OUT/jtcse.json          members with "backend": "onnx", one per graph
    OUT/graph_0/model.onnx  the graph (fp32, or int8 with --quantize int8)
    OUT/graph_0/graph.json  truncation limit, precision, what the graph holds
    OUT/graph_0/tokenizer*  the group's tokenizer
    OUT/README.md           model card, with the verification scores

The export checks itself before OUT is moved into place: on probe sentences every fp32 vector must have
cosine >= 0.9999 with the torch vector; for int8 both precisions are scored on STS-B dev and the export is
refused when int8 loses more than ``max_loss`` points (Spearman x100), unless ``accept_loss``.
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from jtcse.engines import GRAPH_FILE, GRAPH_INFO, import_onnxruntime, read_graph_info
from jtcse.errors import JtcseError
from jtcse.export.onnx_quant import quantize_graph
from jtcse.fs import atomic_write_text, staged_directory
from jtcse.model.format import MemberSpec, ModelSpec, is_jtcse_dir, read_spec, write_spec
from jtcse.model.identity import SOURCE_KEY, model_identity
from jtcse.model.names import resolve_model
from jtcse.model.tokenizer_groups import group_by_tokenizer

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from jtcse.encoder import Encoder

FORMAT_NAME = "onnx"
QUANTIZE_CHOICES = ("int8", "int8-rowwise")  # int8: one activation range per batch; see .onnx_quant
MAX_INT8_LOSS = 0.5  # STS-B dev Spearman x100 points int8 may lose against fp32
MIN_FP32_COSINE = 0.9999
OPSET = 17
PROBE_SENTENCES = (
    "A woman slices an onion on a wooden board.",
    "Kids are splashing in a pool",
    "the quarterly report was delayed again .",
    "Rain.",
    "An orchestra rehearses a symphony while the conductor, frowning, taps the stand; 12 violins, 3 cellos.",
    "What time does the last train to the airport leave?",
)


def check_quantize(quantize: str | None) -> str | None:
    if quantize is not None and quantize not in QUANTIZE_CHOICES:
        raise JtcseError(f"--quantize {quantize}: choose {', '.join(QUANTIZE_CHOICES)}")
    return quantize


def export_onnx(
    model: str | Path,
    out_dir: str | Path,
    *,
    overwrite: bool = False,
    pooler: str | None = None,
    max_length: int | None = None,
    quantize: str | None = None,
    accept_loss: bool = False,
    max_loss: float = MAX_INT8_LOSS,
    threads: int | None = None,
    data_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Write the ONNX directory (see the module doc); returns what the checks found: ``path``, ``graphs``,
    ``min_cosine`` (fp32 vs torch) and, with ``quantize``, ``int8_min_cosine`` and ``stsb_dev`` scores."""
    from jtcse.encoder import Encoder
    from jtcse.export.sentence_transformers import check_export_dir, refuse_self_overwrite

    check_quantize(quantize)
    out = check_export_dir(out_dir, overwrite=overwrite, model=model)
    import_onnxruntime("--format onnx")
    _require_exporter()
    if quantize:  # the gate needs STS-B dev: fail before the slow part when it is missing
        from jtcse.data.paths import resolve_data_dir

        data_dir = resolve_data_dir(data_dir, need="sts")
    source = resolve_model(model)
    encoder = Encoder(source, pooler=pooler, max_length=max_length, device="cpu", threads=threads)
    if any(m.graph is not None for m in encoder.members):
        raise JtcseError(f"--model {model}: is already an ONNX export; export the original model")
    refuse_self_overwrite(out, encoder)
    groups = group_by_tokenizer(encoder.members)
    with staged_directory(out, prefix="jtcse_onnx_tmp_") as staging:
        names = [_export_group(group, staging / f"graph_{i}") for i, group in enumerate(groups)]
        _write_spec(encoder, staging, names, source, quantize)
        result: dict[str, Any] = {"path": out, "graphs": len(names)}
        result["min_cosine"] = _check_fp32(encoder, staging, encoder.threads)
        if quantize:
            result.update(
                _quantize_and_gate(staging, names, quantize, encoder.threads, data_dir, max_loss, accept_loss)
            )
        _record_checks(staging, result)
        _write_card(staging, source, result)
    return result


def _require_exporter() -> None:
    for name in ("onnx",):
        try:
            __import__(name)
        except ImportError as exc:
            raise JtcseError(
                f"--format onnx: needs the {name} package, which is not installed; pip install 'jtcse[onnx]'"
            ) from exc


# ---------------------------------------------------------------------------------------------- export


def _export_group(members: list[Any], graph_dir: Path) -> str:
    """Trace the group's embedding into ``graph_dir/model.onnx``; save its tokenizer and ``graph.json``."""
    import torch

    from jtcse.model.embedding_graph import EmbeddingGraph, GraphPart

    graph_dir.mkdir()
    models: list[Any] = []
    index: dict[int, int] = {}
    parts = []
    for member in members:  # a model named by several members is stored and run once
        index.setdefault(id(member.model), len(models))
        if len(models) < len(index):
            models.append(member.model)
        parts.append(GraphPart(index[id(member.model)], member.pooler, float(member.weight)))
    tokenizer = members[0].tokenizer
    use_types = "token_type_ids" in tokenizer.model_input_names
    graph = EmbeddingGraph(models, parts, use_token_types=use_types).eval()
    sample = _sample_inputs(tokenizer, use_types)
    with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _trace(graph, sample, graph_dir / GRAPH_FILE)
    fused = _fuse(graph_dir / GRAPH_FILE, sample, _attention_shape(models))
    tokenizer.save_pretrained(str(graph_dir))
    info = {
        "max_length": members[0].max_length,
        "inputs": graph.input_names,
        "precision": "fp32",
        "fused": fused,
        "members": [{"source": m.source, "pooler": m.pooler, "weight": float(m.weight)} for m in members],
    }
    atomic_write_text(graph_dir / GRAPH_INFO, json.dumps(info, indent=2) + "\n")
    return graph_dir.name


def _attention_shape(models: list[Any]) -> tuple[int, int]:
    """(heads, hidden size) for the attention fusion; (0, 0) lets it guess when the models differ."""
    shapes = {(int(m.config.num_attention_heads), int(m.config.hidden_size)) for m in models}
    return shapes.pop() if len(shapes) == 1 else (0, 0)


def _sample_inputs(tokenizer: PreTrainedTokenizerBase, use_types: bool) -> dict[str, Any]:
    """The probe sentences, right-padded: rows of different lengths, so no shape or mask is constant."""
    import torch

    tokenizer.padding_side = "right"
    batch = tokenizer(list(PROBE_SENTENCES), padding=True)
    inputs = {
        "input_ids": torch.tensor(batch["input_ids"]),
        "attention_mask": torch.tensor(batch["attention_mask"]),
    }
    if use_types:
        inputs["token_type_ids"] = torch.zeros_like(inputs["input_ids"])
    return inputs


def _trace(graph: Any, sample: dict[str, Any], path: Path) -> None:
    """Export with eager attention (its MatMul/Softmax pattern is what onnxruntime fuses into one Attention
    op; SDPA's decomposition is not) through the TorchScript exporter, or torch's newer exporter where the
    TorchScript one is gone."""
    import torch

    names = list(sample)
    previous = [m.config._attn_implementation for m in graph.models]
    for model in graph.models:
        model.set_attn_implementation("eager")
    try:
        if hasattr(torch.onnx, "utils") and hasattr(torch.onnx.utils, "export"):
            torch.onnx.export(
                graph,
                tuple(sample.values()),
                str(path),
                input_names=names,
                output_names=["sentence_embedding"],
                dynamic_axes={name: {0: "batch", 1: "length"} for name in names},
                opset_version=OPSET,
                dynamo=False,
            )
        else:
            batch, length = torch.export.Dim("batch"), torch.export.Dim("length")
            program = torch.onnx.export(
                graph,
                args=(),
                kwargs=sample,
                input_names=names,
                output_names=["sentence_embedding"],
                dynamic_shapes={name: {0: batch, 1: length} for name in names},
                opset_version=OPSET,
                dynamo=True,
            )
            assert program is not None  # dynamo=True returns the program
            program.save(str(path))
    except Exception as exc:  # the exporters raise many types; the model, not the user, is at fault
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise JtcseError(f"--format onnx: torch.onnx.export failed for this model ({first})") from exc
    finally:
        for model, implementation in zip(graph.models, previous, strict=True):
            model.set_attn_implementation(implementation)


def _fuse(path: Path, sample: dict[str, Any], shape: tuple[int, int]) -> bool:
    """Fuse attention with onnxruntime's transformer optimizer (its skip-layer-norm and bias-GELU fusions,
    slower on the CPU, split again: :mod:`.onnx_rewrites`), in place, when the fused graph gives the same
    vectors on ``sample`` (else keep the plain graph); returns whether it did."""
    import onnxruntime as ort
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    from jtcse.export.onnx_rewrites import split_slow_fusions

    fused_path = path.with_name("fused.tmp.onnx")
    logging.getLogger("onnxruntime.transformers").setLevel(logging.ERROR)  # chatty about unmatched patterns
    options = FusionOptions("bert")
    # the embedding fusion assumes one model per graph (a twin tower's second one breaks it); it saves little
    options.enable_embed_layer_norm = False
    heads, hidden = shape
    try:
        try:
            fused = optimize_model(
                str(path),
                "bert",
                num_heads=heads,
                hidden_size=hidden,
                opt_level=0,
                optimization_options=options,
            )
            split_slow_fusions(fused.model)
            fused.save_model_to_file(str(fused_path))
        except Exception:  # a pattern the optimizer mishandles: the plain graph is correct, only slower
            return False
        feed = {name: value.numpy() for name, value in sample.items()}
        plain, new = (
            ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]).run(None, feed)[0]
            for p in (path, fused_path)
        )
        if not np.allclose(new, plain, atol=1e-5, rtol=1e-4):
            return False
        fused_path.replace(path)
        return True
    finally:
        fused_path.unlink(missing_ok=True)


def _write_spec(encoder: Encoder, out: Path, names: list[str], source: str, quantize: str | None) -> None:
    spec = read_spec(source) if is_jtcse_dir(source) else None
    kind = spec.kind if spec is not None else "single"
    members = [MemberSpec(name, "graph", 1.0, backend="onnx") for name in names]
    extra: dict[str, Any] = {
        "exported_from": str(source),
        "export_format": FORMAT_NAME,
        "onnx": {"precision": quantize or "fp32", "opset": OPSET},
        SOURCE_KEY: model_identity(encoder),  # indexes built from the source accept this export's queries
    }
    if encoder.max_length is not None:
        extra["max_length"] = encoder.max_length
    write_spec(out, ModelSpec(kind, members, method=spec.method if spec else "", extra=extra))


# ---------------------------------------------------------------------------------------------- checks


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a64, b64 = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    norms = np.linalg.norm(a64, axis=1) * np.linalg.norm(b64, axis=1)
    return np.sum(a64 * b64, axis=1) / np.maximum(norms, 1e-12)


def _check_fp32(encoder: Encoder, out: Path, threads: int) -> float:
    """Every probe vector of the fp32 graphs must point where the torch vector points."""
    from jtcse.encoder import Encoder

    want = encoder.encode(list(PROBE_SENTENCES), show_progress=False)
    got = Encoder(out, device="cpu", threads=threads).encode(list(PROBE_SENTENCES), show_progress=False)
    cosine = float(_cosines(np.asarray(got), np.asarray(want)).min())
    if not np.isfinite(cosine) or cosine < MIN_FP32_COSINE:
        raise JtcseError(
            f"--format onnx: the exported graph gives other vectors than torch (min cosine {cosine:.6f} < "
            f"{MIN_FP32_COSINE}); please report this model"
        )
    return cosine


def _stsb_dev(encoder: Encoder, data_dir: str | Path | None) -> float:
    from jtcse.evaluation.sts import evaluate_sts

    report = evaluate_sts(encoder, data_dir=data_dir, tasks=["STSBenchmark"], mode="dev", show_progress=False)
    return float(report.scores["STSBenchmark"])


def _quantize_and_gate(
    out: Path,
    names: list[str],
    scheme: str,
    threads: int,
    data_dir: Any,
    max_loss: float,
    accept_loss: bool,
) -> dict[str, Any]:
    """Quantise every graph in place; refuse when int8 loses more than ``max_loss`` STS-B dev points."""
    from jtcse.encoder import Encoder

    probe = list(PROBE_SENTENCES)
    fp32 = Encoder(out, device="cpu", threads=threads)
    fp32_probe = fp32.encode(probe, show_progress=False)
    fp32_score = _stsb_dev(fp32, data_dir)
    del fp32
    for name in names:
        record = quantize_graph(out / name / GRAPH_FILE, scheme)
        info_file = out / name / GRAPH_INFO
        info = {**read_graph_info(out / name), "precision": "int8", **record}
        atomic_write_text(info_file, json.dumps(info, indent=2) + "\n")
    write_spec(out, read_spec(out))  # the checksums now vouch for the int8 graphs
    int8 = Encoder(out, device="cpu", threads=threads)
    int8_score = _stsb_dev(int8, data_dir)
    int8_cosine = float(_cosines(int8.encode(probe, show_progress=False), np.asarray(fp32_probe)).min())
    loss = fp32_score - int8_score
    if loss > max_loss and not accept_loss:
        raise JtcseError(
            f"--quantize {scheme}: STS-B dev Spearman {int8_score:.2f} (int8) vs {fp32_score:.2f} (fp32) "
            f"loses {loss:.2f} points, more than {max_loss:g}; nothing written "
            "(pass --accept-loss to keep it)"
        )
    return {
        "int8_min_cosine": int8_cosine,
        "stsb_dev": {"fp32": fp32_score, "int8": int8_score, "loss": loss, "accepted_loss": accept_loss},
    }


def _record_checks(out: Path, result: dict[str, Any]) -> None:
    """The verification figures go into ``jtcse.json`` (and so into every later model card)."""
    spec = read_spec(out)
    checks = {"fp32_min_cosine_vs_torch": round(result["min_cosine"], 7)}
    if "stsb_dev" in result:
        checks["int8_min_cosine_vs_fp32"] = round(result["int8_min_cosine"], 6)
        checks["stsb_dev_spearman"] = {k: _round(v) for k, v in result["stsb_dev"].items()}
    spec.extra["onnx"]["checks"] = checks
    write_spec(out, spec)


def _round(value: object) -> Any:  # a JSON value: its type depends on the input
    return round(value, 4) if isinstance(value, float) else value


def _write_card(out: Path, source: str, result: dict[str, Any]) -> None:
    from jtcse.model_card import write_model_card

    title = f"{Path(source).name} (ONNX)"
    write_model_card(out, config=None, data=None, metrics_path=None, sts_report=None, title=title)
