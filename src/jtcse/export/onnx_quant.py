"""The int8 quantisations of an exported graph (in place); ``jtcse export --quantize NAME`` picks one.

* ``int8`` (:func:`quantize_dynamic_graph`): onnxruntime's ``quantize_dynamic``: 7-bit per-channel weights;
  each matrix product's input quantised with ONE range for the whole batch (``DynamicQuantizeLinear``), so
  a sentence's vector depends on the other sentences of its batch (MiniLM, STS-B test: cosine down to 0.95
  between a sentence alone and in a batch of 64, down to 0.96 to fp32).
* ``int8-rowwise`` (:func:`quantize_rowwise_graph`): every constant-weight product (the attention's input
  projection split out first, :func:`~jtcse.export.onnx_rewrites.split_attention`) gets its input quantised
  per row (token) in plain ops: ``ReduceMax(Abs)`` -> scale -> u8 around 128 -> ``MatMulIntegerToFloat``
  -> times the row's scale. No scale spans two tokens, so a sentence's vector is the same in any batch
  (float rounding apart). Weights: 8-bit per output channel, which the per-row inputs need to stay within
  0.98 of fp32 (7-bit: min 0.969); on CPUs without VNNI the u8 x s8 kernel sums pairs of products in 16
  bits and can saturate with them (the engine warns there).
* :func:`quantize_blockwise_graph` (a measured candidate, no option): ``MatMulNBits`` with 8-bit weights per
  block and ``accuracy_level=4`` (inputs quantised per block of each row): the closest to fp32, and batch
  independent, but on onnxruntime 1.32's CPU kernels no faster than fp32.

The figures behind the choice: ``bench/int8_candidates.py`` and the README's ONNX section.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

ROWWISE_WEIGHT_BITS = 8


def quantize_graph(path: Path, scheme: str) -> dict[str, Any]:
    """Quantise ``path`` in place with ``scheme`` (a ``--quantize`` choice); returns graph.json's record."""
    if scheme == "int8-rowwise":
        quantize_rowwise_graph(path, weight_bits=ROWWISE_WEIGHT_BITS)
        return {
            "int8_activations": "per row (token): the same vector in any batch",
            "int8_weights": f"{ROWWISE_WEIGHT_BITS}-bit per channel",
            "int8_weight_bits": ROWWISE_WEIGHT_BITS,
        }
    quantize_dynamic_graph(path)
    return {
        "int8_activations": "per batch (dynamic): vectors depend on the batch",
        "int8_weights": "7-bit per channel (AVX2-safe)",
        "int8_weight_bits": 7,
    }


def quantize_dynamic_graph(path: Path) -> None:
    """Dynamic int8 quantisation of the graph's matrix products, in place.

    Weights are signed int8 per output channel with a 7-bit range (``reduce_range``): on AVX2 CPUs without
    VNNI, onnxruntime's u8 x s8 kernel sums pairs of products in 16 bits (VPMADDUBSW), which can saturate
    with full-range weights; 7-bit weights cannot. Embedding lookups (Gather) stay fp32.
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    tmp = path.with_name(path.stem + ".int8.tmp.onnx")
    logging.disable(logging.WARNING)  # its advice to pre-process is for static quantisation of CNNs
    try:
        quantize_dynamic(
            str(path),
            str(tmp),
            op_types_to_quantize=["MatMul", "Attention"],
            per_channel=True,
            reduce_range=True,
            weight_type=QuantType.QInt8,
            # fused ops (onnxruntime's contrib domain) defeat shape inference; their tensors are fp32
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
        tmp.replace(path)
    finally:
        logging.disable(logging.NOTSET)
        tmp.unlink(missing_ok=True)


def quantize_blockwise_graph(path: Path, *, block_size: int = 32, symmetric: bool = True) -> None:
    """8-bit ``MatMulNBits`` for every matrix product with a constant weight, in place (see the module doc).
    Kept for ``bench/int8_candidates.py``: measured, not offered."""
    import onnx
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    from jtcse.export.onnx_rewrites import split_attention

    model = onnx.load(str(path))
    split_attention(model)
    logging.disable(logging.WARNING)
    try:
        quantizer = MatMulNBitsQuantizer(
            model, bits=8, block_size=block_size, is_symmetric=symmetric, accuracy_level=4
        )
        quantizer.process()
    finally:
        logging.disable(logging.NOTSET)
    tmp = path.with_name(path.stem + ".int8.tmp.onnx")
    try:
        onnx.save(quantizer.model.model, str(tmp))
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def _const_matmuls(model: Any) -> dict[int, Any]:
    """{node position: weight initializer} for every MatMul whose second operand is a constant matrix."""
    graph = model.graph
    weights = {init.name: init for init in graph.initializer if len(init.dims) == 2}
    return {
        i: weights[n.input[1]]
        for i, n in enumerate(graph.node)
        if n.op_type == "MatMul" and n.input[1] in weights
    }


def _rowwise_nodes(node: Any, weight: np.ndarray, bits: int) -> tuple[list[Any], list[Any]]:
    """The nodes and initializers computing ``node`` (MatMul x @ W) with x quantised per row (token)."""
    from onnx import TensorProto, helper, numpy_helper

    top = 2 ** (bits - 1) - 1
    w_scale = np.maximum(np.abs(weight).max(axis=0), 1e-12) / top
    w_int8 = np.clip(np.rint(weight / w_scale), -top, top).astype(np.int8)
    x, out = node.input[0], node.output[0]
    p = f"{out}_rq"
    inits = [
        numpy_helper.from_array(w_int8, f"{p}_w"),
        numpy_helper.from_array(w_scale.astype(np.float32), f"{p}_wscale"),
        numpy_helper.from_array(np.array(1.0 / 127.0, dtype=np.float32), f"{p}_ascale"),
        numpy_helper.from_array(np.array(127.0, dtype=np.float32), f"{p}_127"),
        numpy_helper.from_array(np.array(1e-30, dtype=np.float32), f"{p}_tiny"),
        numpy_helper.from_array(np.array(128.5, dtype=np.float32), f"{p}_shift"),
        numpy_helper.from_array(np.array(128, dtype=np.uint8), f"{p}_zp"),
    ]
    nodes = [
        helper.make_node("Abs", [x], [f"{p}_abs"]),
        helper.make_node("ReduceMax", [f"{p}_abs"], [f"{p}_max"], axes=[-1], keepdims=1),
        helper.make_node("Max", [f"{p}_max", f"{p}_tiny"], [f"{p}_range"]),
        helper.make_node("Div", [f"{p}_127", f"{p}_range"], [f"{p}_inv"]),
        helper.make_node("Mul", [x, f"{p}_inv"], [f"{p}_scaled"]),
        # u8 around 128 (onnxruntime's fast kernels are u8 x s8); + 0.5 and the truncating Cast round
        helper.make_node("Add", [f"{p}_scaled", f"{p}_shift"], [f"{p}_shifted"]),
        helper.make_node("Cast", [f"{p}_shifted"], [f"{p}_q"], to=TensorProto.UINT8),
        helper.make_node(
            "MatMulIntegerToFloat",
            [f"{p}_q", f"{p}_w", f"{p}_ascale", f"{p}_wscale", f"{p}_zp"],
            [f"{p}_unit"],
            domain="com.microsoft",
        ),
        helper.make_node("Mul", [f"{p}_unit", f"{p}_range"], [out]),
    ]
    return nodes, inits


def quantize_rowwise_graph(path: Path, *, weight_bits: int = ROWWISE_WEIGHT_BITS) -> None:
    """int8 per row (token) of every constant-weight MatMul's input, in plain ONNX ops, in place: the
    attention's projection is split out first (:func:`split_attention`); weights per output channel with
    ``weight_bits`` (7: safe on AVX2 without VNNI)."""
    import onnx
    from onnx import numpy_helper

    from jtcse.export.onnx_rewrites import split_attention

    model = onnx.load(str(path))
    split_attention(model)
    replaced: dict[int, list[Any]] = {}
    used: set[str] = set()
    for position, init in _const_matmuls(model).items():
        weight = numpy_helper.to_array(init).astype(np.float32)
        nodes, inits = _rowwise_nodes(model.graph.node[position], weight, weight_bits)
        replaced[position] = nodes
        used.add(init.name)
        model.graph.initializer.extend(inits)
    new_nodes = [n for i, node in enumerate(model.graph.node) for n in replaced.get(i, [node])]
    del model.graph.node[:]
    model.graph.node.extend(new_nodes)
    still = {i for n in model.graph.node for i in n.input}
    keep = [i for i in model.graph.initializer if i.name not in used or i.name in still]
    del model.graph.initializer[:]
    model.graph.initializer.extend(keep)
    tmp = path.with_name(path.stem + ".int8.tmp.onnx")
    try:
        onnx.save(model, str(tmp))
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
