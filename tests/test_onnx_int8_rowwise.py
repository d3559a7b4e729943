"""``--quantize int8-rowwise``: a sentence's int8 vector is the same alone and inside batches of mixed
lengths, stays within the stated cosine of fp32, and the STS-B dev gate still guards the export."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from jtcse.encoder import Encoder
from jtcse.errors import JtcseError, JtcseWarning

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from jtcse.export.onnx import export_onnx
from test_onnx_export import INT8_MIN_COSINE, SENTENCES, cosines, outlier_model, write_self_scored_dev

BATCH_MIN_COSINE = 0.99999  # the same sentence alone vs in any batch: float rounding only


@pytest.fixture(scope="module")
def rowwise(tmp_path_factory: pytest.TempPathFactory, tiny_bert_dir: Path) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("rowwise")
    data = write_self_scored_dev(root / "data", tiny_bert_dir)
    out = root / "int8-rowwise"
    result = export_onnx(
        tiny_bert_dir, out, pooler="avg", quantize="int8-rowwise", data_dir=data, accept_loss=True
    )
    return out, result


def test_vector_is_the_same_alone_and_in_mixed_batches(rowwise: tuple[Path, dict]) -> None:
    out, _ = rowwise
    alone = np.stack([Encoder(out, batch_size=1).encode([s])[0] for s in SENTENCES])
    for batch_size in (2, 3, len(SENTENCES)):  # one batch holds all lengths (1 to 20 words) at the end
        batched = Encoder(out, batch_size=batch_size).encode(SENTENCES)
        assert cosines(batched, alone).min() >= BATCH_MIN_COSINE
    shuffled = [SENTENCES[i] for i in (2, 1, 6, 0, 3, 5)]  # another company for every sentence
    again = Encoder(out, batch_size=len(shuffled)).encode(shuffled)
    assert cosines(again, alone[[2, 1, 6, 0, 3, 5]]).min() >= BATCH_MIN_COSINE


def test_close_to_fp32_and_recorded(rowwise: tuple[Path, dict], tiny_bert_dir: Path) -> None:
    out, result = rowwise
    fp32 = Encoder(tiny_bert_dir, device="cpu", pooler="avg").encode(SENTENCES)
    assert cosines(Encoder(out).encode(SENTENCES), fp32).min() >= INT8_MIN_COSINE
    assert result["int8_min_cosine"] >= INT8_MIN_COSINE
    info = json.loads((out / "graph_0" / "graph.json").read_text())
    assert info["precision"] == "int8" and info["int8_weight_bits"] == 8
    assert info["int8_activations"].startswith("per row")
    import onnx

    ops = {node.op_type for node in onnx.load(str(out / "graph_0" / "model.onnx")).graph.node}
    assert "MatMulIntegerToFloat" in ops and not ops & {"DynamicQuantizeLinear", "QAttention", "Attention"}


def test_warns_on_a_cpu_without_vnni(rowwise: tuple[Path, dict], monkeypatch: pytest.MonkeyPatch) -> None:
    import jtcse.tools.cpu

    out, _ = rowwise
    monkeypatch.setattr(jtcse.tools.cpu, "has_vnni", lambda: False)
    with pytest.warns(JtcseWarning, match="8-bit int8 weights on a CPU without VNNI"):
        Encoder(out)
    monkeypatch.setattr(jtcse.tools.cpu, "has_vnni", lambda: True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", JtcseWarning)
        Encoder(out)


def test_gate_refuses_a_lossy_rowwise_quantisation(tiny_bert_dir: Path, tmp_path: Path) -> None:
    model = outlier_model(tiny_bert_dir, tmp_path / "outlier")
    data = write_self_scored_dev(tmp_path / "data", model)
    with pytest.raises(JtcseError, match=r"--quantize int8-rowwise: STS-B dev Spearman .* loses"):
        export_onnx(model, tmp_path / "out", pooler="avg", quantize="int8-rowwise", data_dir=data)
    assert not (tmp_path / "out").exists()


def test_split_attention_keeps_the_vectors(tmp_path: Path, tiny_bert_dir: Path) -> None:
    import onnx
    import onnxruntime as ort

    from jtcse.export.onnx_rewrites import split_attention

    out = tmp_path / "fp32"
    export_onnx(tiny_bert_dir, out, pooler="avg")
    graph = out / "graph_0" / "model.onnx"
    model = onnx.load(str(graph))
    fused = sum(node.op_type == "Attention" for node in model.graph.node)
    assert fused > 0 and split_attention(model) == fused
    assert not any(node.op_type == "Attention" for node in model.graph.node)
    onnx.save(model, str(tmp_path / "split.onnx"))
    ids = Encoder(out).members[0].tokenizer(SENTENCES)["input_ids"]
    width = max(map(len, ids))
    feed = {  # right-padded rows of different lengths
        "input_ids": np.array([row + [0] * (width - len(row)) for row in ids], dtype=np.int64),
        "attention_mask": np.array([[1] * len(r) + [0] * (width - len(r)) for r in ids], dtype=np.int64),
    }
    feed["token_type_ids"] = np.zeros_like(feed["input_ids"])
    want, got = (ort.InferenceSession(str(p)).run(None, feed)[0] for p in (graph, tmp_path / "split.onnx"))
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)


def test_twin_tower_graph_is_batch_independent_too(
    twin_dir: Path, tiny_bert_dir: Path, tmp_path: Path
) -> None:
    data = write_self_scored_dev(tmp_path / "data", tiny_bert_dir)  # any scoreable dev file: loss accepted
    out = tmp_path / "twin"
    export_onnx(twin_dir, out, quantize="int8-rowwise", data_dir=data, accept_loss=True)
    alone = np.stack([Encoder(out).encode([s])[0] for s in SENTENCES])
    assert cosines(Encoder(out, batch_size=len(SENTENCES)).encode(SENTENCES), alone).min() >= BATCH_MIN_COSINE
    fp32 = Encoder(twin_dir, device="cpu").encode(SENTENCES)
    assert cosines(alone, fp32).min() >= INT8_MIN_COSINE
