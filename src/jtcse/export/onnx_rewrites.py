"""Undo two of onnxruntime's transformer fusions that run slower on the CPU than the ops they replace.

onnxruntime's transformer optimizer fuses each residual add + layer norm into ``SkipLayerNormalization`` and
each bias add + GELU into ``BiasGelu`` (both in its ``com.microsoft`` domain). On the CPU their kernels are
the slow part of a small encoder: in onnxruntime 1.32's profile of MiniLM int8 they took 18% and 13% of the
time, per element several times the standard ``LayerNormalization``. Rewritten back into ``Add`` +
``LayerNormalization`` and ``Add`` + ``Gelu`` (same formulas, so the vectors stay within float rounding; the
export's checks compare them), the graph ran 1.18x (int8) and 1.11x (fp32) faster on 1,129 STS sentences
(2-core AMD EPYC, AVX-512 VNNI, quiet). The attention fusion, which needs the skip-layer-norm pattern to
match, has already happened by then, so it is kept. onnxruntime's session optimizer would fuse Add + Gelu
into BiasGelu again at load time; ``jtcse.engines`` turns that fusion off.
"""

from __future__ import annotations

from typing import Any

SPLIT_OPS = ("SkipLayerNormalization", "BiasGelu")
_MS_DOMAIN = "com.microsoft"


def _attribute(node: Any, name: str, default: float) -> float:
    return next((float(a.f) for a in node.attribute if a.name == name), default)


def _split_skip_layer_norm(node: Any) -> list[Any]:
    """``LayerNorm(input + skip [+ bias])``; the optional summed output keeps its name."""
    from onnx import helper

    inputs = list(node.input) + [""] * (5 - len(node.input))
    data, skip, gamma, beta, bias = inputs[:5]
    base = node.output[0]  # output names are unique in a graph; node names may be empty
    total = f"{base}_sum"
    nodes = [helper.make_node("Add", [data, skip], [total], name=f"{base}_add")]
    if bias:
        nodes.append(helper.make_node("Add", [total, bias], [f"{total}_bias"], name=f"{base}_bias"))
        total = f"{total}_bias"
    outputs = list(node.output)
    if len(outputs) > 3 and outputs[3]:  # input + skip + bias, when a later node reads it
        nodes.append(helper.make_node("Identity", [total], [outputs[3]], name=f"{base}_sum_out"))
    norm_inputs = [total, gamma] + ([beta] if beta else [])
    epsilon = _attribute(node, "epsilon", 1e-12)
    nodes.append(
        helper.make_node(
            "LayerNormalization", norm_inputs, [outputs[0]], name=f"{base}_ln", axis=-1, epsilon=epsilon
        )
    )
    return nodes


def _split_bias_gelu(node: Any) -> list[Any]:
    from onnx import helper

    base = node.output[0]
    total = f"{base}_sum"
    return [
        helper.make_node("Add", [node.input[0], node.input[1]], [total], name=f"{base}_add"),
        helper.make_node("Gelu", [total], [base], name=f"{base}_gelu", domain=_MS_DOMAIN),
    ]


def split_slow_fusions(model: Any) -> int:
    """Rewrite ``model`` (an ``onnx.ModelProto``) in place; returns how many fused nodes were split. A
    ``SkipLayerNormalization`` whose mean / inverse-std outputs are used is left alone."""
    nodes: list[Any] = []
    split = 0
    for node in model.graph.node:
        stats_used = node.op_type == "SkipLayerNormalization" and any(o for o in list(node.output)[1:3])
        if node.domain != _MS_DOMAIN or node.op_type not in SPLIT_OPS or stats_used:
            nodes.append(node)
            continue
        rewrite = _split_skip_layer_norm if node.op_type == "SkipLayerNormalization" else _split_bias_gelu
        nodes.extend(rewrite(node))
        split += 1
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return split


def split_attention(model: Any) -> int:
    """Rewrite each fused ``Attention`` (input projection + attention in one op) into ``MatMul`` + ``Split``
    + ``MultiHeadAttention``, in place; returns how many were split. The projection's weight then is an
    ordinary MatMul operand, so a weight-only quantiser (``MatMulNBits``) can take it; the attention itself
    stays the fused kernel. Only the plain form (input, weights, bias, mask; one output) is rewritten."""
    from onnx import helper

    nodes: list[Any] = []
    split = 0
    for node in model.graph.node:
        inputs = list(node.input)
        plain = len(inputs) <= 4 and len(node.output) == 1 and all(inputs[:3])
        if node.domain != _MS_DOMAIN or node.op_type != "Attention" or not plain:
            nodes.append(node)
            continue
        data, weights, bias = inputs[:3]
        mask = inputs[3] if len(inputs) > 3 else ""
        base = node.output[0]
        qkv = [f"{base}_{part}" for part in ("q", "k", "v")]
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        kept = {k: v for k, v in attrs.items() if k in ("num_heads", "scale", "mask_filter_value")}
        if set(attrs) - set(kept) - {"unidirectional"} or attrs.get("unidirectional"):
            nodes.append(node)  # past state, qkv_hidden_sizes, causal masks: not this rewrite's case
            continue
        nodes += [
            helper.make_node("MatMul", [data, weights], [f"{base}_qkv"], name=f"{base}_proj"),
            helper.make_node("Split", [f"{base}_qkv"], qkv, name=f"{base}_split", axis=-1),
            helper.make_node(
                "MultiHeadAttention",
                [*qkv, bias, mask],
                [base],
                name=f"{base}_mha",
                domain=_MS_DOMAIN,
                **kept,
            ),
        ]
        split += 1
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return split
