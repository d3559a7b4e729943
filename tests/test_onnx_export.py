"""ONNX export: the graphs give jtcse.Encoder's torch vectors (1e-5 fp32), int8 is gated on STS-B dev, and the
exported directory loads everywhere a model does (jtcse.Encoder, `jtcse encode`, `jtcse eval sts`)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from jtcse.encoder import Encoder
from jtcse.errors import JtcseError
from jtcse.model.format import MemberSpec, ModelSpec, read_spec, write_spec

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from jtcse.export.onnx import export_onnx

SENTENCES = [
    "A man is playing a guitar.",
    "hello",
    "Two dogs run across a snowy field while their owner watches from the porch, drinking hot coffee.",
    "the cat sat on the mat .",
    "A man is playing a guitar.",  # a duplicate: encoded once, same vector
    "Numbers 3.14 and 2026; punctuation!?",
    "An old woman reads the newspaper in the quiet library every single morning before work.",
]
INT8_MIN_COSINE = 0.98  # int8 vs fp32, per sentence, on the tiny random models


def torch_and_onnx(model: Path, out: Path, **kw: object) -> tuple[np.ndarray, np.ndarray]:
    want = Encoder(model, device="cpu", batch_size=2, **kw).encode(SENTENCES)
    got = Encoder(out, device="cpu", batch_size=2).encode(SENTENCES)
    return want, got


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


@pytest.fixture(scope="module")
def cased_roberta_dir(
    tmp_path_factory: pytest.TempPathFactory, tiny_roberta_dir: Path, minilm_dir: Path
) -> Path:
    """The tiny RoBERTa with a tokenizer that keeps case: other token ids than the BERT members'."""
    from transformers import AutoTokenizer

    root = tmp_path_factory.mktemp("cased") / "roberta"
    shutil.copytree(tiny_roberta_dir, root)
    AutoTokenizer.from_pretrained(minilm_dir, do_lower_case=False).save_pretrained(root)
    return root


@pytest.fixture(scope="module")
def bert_onnx(tmp_path_factory: pytest.TempPathFactory, tiny_bert_dir: Path) -> Path:
    out = tmp_path_factory.mktemp("onnx") / "bert"
    export_onnx(tiny_bert_dir, out, pooler="avg")
    return out


@pytest.mark.parametrize("pooler", ["cls", "cls_before_pooler", "avg_first_last"])
def test_each_pooler_is_in_the_graph(tiny_bert_dir: Path, tmp_path: Path, pooler: str) -> None:
    result = export_onnx(tiny_bert_dir, tmp_path / "out", pooler=pooler)
    assert result["graphs"] == 1 and result["min_cosine"] >= 0.9999
    want, got = torch_and_onnx(tiny_bert_dir, tmp_path / "out", pooler=pooler)
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)


def test_avg_and_the_directory_layout(tiny_bert_dir: Path, bert_onnx: Path) -> None:
    want, got = torch_and_onnx(tiny_bert_dir, bert_onnx, pooler="avg")
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
    np.testing.assert_array_equal(got[0], got[4])  # dedup: the duplicate gets the same vector
    spec = read_spec(bert_onnx)
    assert [(m.path, m.pooler, m.backend) for m in spec.members] == [("graph_0", "graph", "onnx")]
    assert spec.extra["onnx"]["precision"] == "fp32"
    info = json.loads((bert_onnx / "graph_0" / "graph.json").read_text())
    assert info["members"][0]["pooler"] == "avg" and info["max_length"] == 128
    assert (bert_onnx / "graph_0" / "model.onnx").is_file() and (
        bert_onnx / "graph_0" / "tokenizer.json"
    ).is_file()
    card = (bert_onnx / "README.md").read_text()
    assert "## ONNX export" in card and "fp32 graph vs torch, min cosine" in card
    # a plain jtcse.json member without "backend" is still written as before
    assert "backend" not in json.dumps(ModelSpec("single", [MemberSpec(".")]).to_dict())


def test_roberta(tiny_roberta_dir: Path, tmp_path: Path) -> None:
    export_onnx(tiny_roberta_dir, tmp_path / "out", pooler="avg")
    want, got = torch_and_onnx(tiny_roberta_dir, tmp_path / "out", pooler="avg")
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)


def test_twin_tower_sum_is_inside_one_graph(twin_dir: Path, tmp_path: Path) -> None:
    result = export_onnx(twin_dir, tmp_path / "out")
    assert result["graphs"] == 1
    assert read_spec(tmp_path / "out").kind == "twin"
    want, got = torch_and_onnx(twin_dir, tmp_path / "out")
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)


def test_ensemble_with_two_tokenizers_is_two_graphs(
    twin_dir: Path, tiny_bert_dir: Path, cased_roberta_dir: Path, tmp_path: Path
) -> None:
    root = tmp_path / "uc"
    members = [
        # members stored elsewhere on purpose: a nested twin (its own poolers), a model with the same
        # tokenizer (same graph), and one with another tokenizer (its own graph)
        MemberSpec(str(twin_dir), weight=0.3, external=True),
        MemberSpec(str(tiny_bert_dir), pooler="avg", weight=0.5, external=True),
        MemberSpec(str(cased_roberta_dir), pooler="avg", weight=0.7, external=True),
    ]
    write_spec(root, ModelSpec("ensemble", members, method="ensemble"))
    result = export_onnx(root, tmp_path / "out")
    assert result["graphs"] == 2
    infos = [json.loads((tmp_path / "out" / f"graph_{i}" / "graph.json").read_text()) for i in range(2)]
    assert [len(info["members"]) for info in infos] == [3, 1]
    want, got = torch_and_onnx(root, tmp_path / "out")
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)


def write_self_scored_dev(data_dir: Path, model: Path, pooler: str = "avg") -> Path:
    """An STS-B dev file whose gold scores are the model's own fp32 cosines: fp32 scores 100, and every
    point int8 loses is its own error."""
    pairs = [
        (SENTENCES[i], SENTENCES[j]) for i in range(len(SENTENCES)) for j in range(i + 1, len(SENTENCES))
    ]
    pairs = [(a, b) for a, b in pairs if a != b]
    encoder = Encoder(model, device="cpu", pooler=pooler)
    left, right = encoder.encode([a for a, _ in pairs]), encoder.encode([b for _, b in pairs])
    folder = data_dir / "sts" / "STSB" / "senteval"
    folder.mkdir(parents=True, exist_ok=True)
    rows = [
        f"main-captions\tMSRvid\t2012test\t{i:04d}\t{2.5 * (c + 1):.6f}\t{a}\t{b}"
        for i, ((a, b), c) in enumerate(zip(pairs, cosines(left, right), strict=True))
    ]
    (folder / "sts-dev.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return data_dir


def test_int8_within_the_stated_cosine(tiny_bert_dir: Path, bert_onnx: Path, tmp_path: Path) -> None:
    data = write_self_scored_dev(tmp_path / "data", tiny_bert_dir)
    out = tmp_path / "int8"
    result = export_onnx(tiny_bert_dir, out, pooler="avg", quantize="int8", data_dir=data, accept_loss=True)
    fp32 = Encoder(bert_onnx).encode(SENTENCES)
    int8 = Encoder(out).encode(SENTENCES)
    assert cosines(int8, fp32).min() >= INT8_MIN_COSINE
    assert result["int8_min_cosine"] >= INT8_MIN_COSINE
    assert result["stsb_dev"]["fp32"] > 99.9  # the gold scores are fp32's own cosines
    assert json.loads((out / "graph_0" / "graph.json").read_text())["precision"] == "int8"
    checks = read_spec(out).extra["onnx"]["checks"]
    assert checks["stsb_dev_spearman"]["int8"] == pytest.approx(result["stsb_dev"]["int8"], abs=1e-3)
    assert "STS-B dev Spearman x100: fp32" in (out / "README.md").read_text()


def outlier_model(tiny_bert_dir: Path, out: Path) -> Path:
    """The tiny BERT with one huge weight in every output channel of every dense layer: per-channel int8
    scales then round all the other weights of the channel to 0, so quantisation really loses."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    model = AutoModel.from_pretrained(tiny_bert_dir)
    with torch.no_grad():
        for module in model.encoder.modules():
            if isinstance(module, torch.nn.Linear):
                module.weight[:, 0] = 40.0
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(tiny_bert_dir).save_pretrained(out)
    return out


def test_int8_gate_refuses_a_lossy_quantisation(tiny_bert_dir: Path, tmp_path: Path) -> None:
    model = outlier_model(tiny_bert_dir, tmp_path / "outlier")
    data = write_self_scored_dev(tmp_path / "data", model)
    out = tmp_path / "int8"
    with pytest.raises(
        JtcseError, match=r"--quantize int8: STS-B dev Spearman .* \(int8\) vs .* \(fp32\) loses"
    ):
        export_onnx(model, out, pooler="avg", quantize="int8", data_dir=data)
    assert not out.exists()  # nothing written, no staging folder left
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("jtcse_onnx_tmp_")] == []
    result = export_onnx(model, out, pooler="avg", quantize="int8", data_dir=data, accept_loss=True)
    assert result["stsb_dev"]["loss"] > 0.5 and "loss accepted" in (out / "README.md").read_text()


def test_bad_input(bert_onnx: Path, tiny_bert_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(
        JtcseError, match=r"--pooler cls: .* is an ONNX export whose pooling is inside the graph"
    ):
        Encoder(bert_onnx, pooler="cls")
    with pytest.raises(JtcseError, match="is already an ONNX export"):
        export_onnx(bert_onnx, tmp_path / "again")
    with pytest.raises(JtcseError, match="--quantize int4: choose int8"):
        export_onnx(tiny_bert_dir, tmp_path / "x", quantize="int4")
    with pytest.raises(JtcseError, match="--threads 0: must be a positive integer"):
        Encoder(bert_onnx, threads=0)
    broken = tmp_path / "broken"
    shutil.copytree(bert_onnx, broken)
    (broken / "graph_0" / "model.onnx").write_bytes(b"not a graph")
    with pytest.raises(JtcseError, match="onnxruntime cannot load this graph"):
        Encoder(broken)


def test_missing_onnxruntime_is_one_line_naming_the_extra(
    bert_onnx: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from jtcse.cli.main import main

    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # `import onnxruntime` fails, as without the extra
    text = tmp_path / "in.txt"
    text.write_text("hello\n", encoding="utf-8")
    with pytest.raises(SystemExit) as exit_info:
        main(["encode", "--model", str(bert_onnx), "--input", str(text), "--output", str(tmp_path / "v.npy")])
    lines = capsys.readouterr().err.strip().splitlines()
    assert exit_info.value.code == 2 and len(lines) == 1, lines
    assert "needs onnxruntime" in lines[0] and "pip install 'jtcse[onnx]'" in lines[0]
    assert not (tmp_path / "v.npy").exists()


def test_cli_encode_and_eval_sts_run_the_graph(bert_onnx: Path, tiny_bert_dir: Path, tmp_path: Path) -> None:
    data = write_self_scored_dev(tmp_path / "data", tiny_bert_dir)
    jtcse = [sys.executable, "-m", "jtcse"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    text, vectors = tmp_path / "in.txt", tmp_path / "v.npy"
    text.write_text("\n".join(SENTENCES[:3]) + "\n", encoding="utf-8")
    proc = subprocess.run(
        [
            *jtcse,
            "encode",
            "--model",
            str(bert_onnx),
            "--threads",
            "1",
            "--input",
            str(text),
            "--output",
            str(vectors),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    want = Encoder(tiny_bert_dir, pooler="avg").encode(SENTENCES[:3])
    np.testing.assert_allclose(np.load(vectors), want, atol=1e-5, rtol=0)
    proc = subprocess.run(
        [
            *jtcse,
            "eval",
            "sts",
            "--model",
            str(bert_onnx),
            "--mode",
            "dev",
            "--tasks",
            "STSBenchmark",
            "--data-dir",
            str(data),
            "--quiet",
            "--threads",
            "1",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "STS" in proc.stdout


def test_threads_are_the_same_for_torch_and_onnxruntime(bert_onnx: Path, tiny_bert_dir: Path) -> None:
    import torch

    before = torch.get_num_threads()
    try:
        encoder = Encoder.ensemble([bert_onnx, tiny_bert_dir], [1.0, 1.0], threads=1)
        assert torch.get_num_threads() == 1 and encoder.threads == 1
        assert encoder.members[0].graph.session.get_session_options().intra_op_num_threads == 1
        default = Encoder(bert_onnx)  # no --threads: onnxruntime follows torch's setting
        assert default.members[0].graph.session.get_session_options().intra_op_num_threads == 1
    finally:
        torch.set_num_threads(before)
    want = Encoder(tiny_bert_dir, pooler="avg").encode(SENTENCES) + Encoder(tiny_bert_dir).encode(SENTENCES)
    np.testing.assert_allclose(encoder.encode(SENTENCES), want, atol=1e-5, rtol=0)


def test_slow_fusions_are_split_and_attention_stays_fused(tiny_bert_dir: Path, bert_onnx: Path) -> None:
    """onnxruntime's SkipLayerNormalization and BiasGelu run slower on the CPU than what they fuse: the
    export splits them again (jtcse.export.onnx_rewrites) after attention has been fused; same vectors."""
    import onnx

    ops = Counter(node.op_type for node in onnx.load(bert_onnx / "graph_0" / "model.onnx").graph.node)
    layers = json.loads((tiny_bert_dir / "config.json").read_text())["num_hidden_layers"]
    assert ops["Attention"] == layers and ops["Gelu"] == layers
    assert ops["LayerNormalization"] == 2 * layers + 1  # two per layer, one after the embeddings
    assert not {"SkipLayerNormalization", "BiasGelu"} & set(ops)
    assert json.loads((bert_onnx / "graph_0" / "graph.json").read_text())["fused"] is True
    want, got = torch_and_onnx(tiny_bert_dir, bert_onnx, pooler="avg")
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)


def test_split_keeps_the_outputs_of_each_fused_op() -> None:
    """Each rewrite against the fused op it replaces, run by onnxruntime on random inputs."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    from jtcse.export.onnx_rewrites import split_slow_fusions

    rng = np.random.default_rng(0)
    width = 16
    names = ("x", "skip", "gamma", "beta", "bias")
    feeds = {
        n: rng.standard_normal((2, 3, width) if n in ("x", "skip") else (width,)).astype(np.float32)
        for n in names
    }
    ms = "com.microsoft"
    graph = helper.make_graph(
        [
            helper.make_node("SkipLayerNormalization", list(names), ["normed"], domain=ms, epsilon=1e-12),
            helper.make_node("BiasGelu", ["normed", "bias"], ["out"], domain=ms),
        ],
        "fused",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, list(feeds[n].shape)) for n in names],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [2, 3, width])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(ms, 1)])

    def run(m: onnx.ModelProto) -> np.ndarray:
        return ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(
            None, feeds
        )[0]

    want = run(model)
    assert split_slow_fusions(model) == 2
    assert [n.op_type for n in model.graph.node] == ["Add", "Add", "LayerNormalization", "Add", "Gelu"]
    np.testing.assert_allclose(run(model), want, atol=1e-5, rtol=1e-5)
