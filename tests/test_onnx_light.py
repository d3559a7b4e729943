"""An ONNX export runs without torch and transformers: ``tokenizer.json`` through the ``tokenizers`` library
gives the Hugging Face tokenizer's ids, vectors summed in numpy equal the torch-side sum, and a process that
loads an export and encodes (the library, and ``jtcse similarity``) imports neither."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from jtcse.encoder import Encoder
from jtcse.engines import physical_cores, resolve_threads
from jtcse.model.fast_tokenizer import FastTokenizer

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")


REPO_ROOT = Path(__file__).resolve().parents[1]
SENTENCES = [
    "A man is playing a guitar.",
    "hello",
    "Two dogs run across a snowy field while their owner watches from the porch, drinking hot coffee.",
    "A man is playing a guitar.",
    "Numbers 3.14 and 2026; punctuation!? Ünïcödé café — naïve",
]


@pytest.fixture(scope="module")
def onnx_dir(tiny_onnx_dir: Path) -> Path:
    return tiny_onnx_dir


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO_ROOT / "src"), "HF_HUB_OFFLINE": "1"}


def test_loading_an_export_and_encoding_imports_neither_torch_nor_transformers(onnx_dir: Path) -> None:
    code = (
        "import sys\n"
        "from jtcse.encoder import Encoder\n"
        f"vectors = Encoder({str(onnx_dir)!r}).encode(['a sentence', 'another one'], normalize=True)\n"
        "assert vectors.shape[0] == 2\n"
        "print(sorted(m for m in ('torch', 'transformers', 'scipy') if m in sys.modules))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=_env(), timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_jtcse_similarity_on_an_export_imports_neither(onnx_dir: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "jtcse", "similarity", "--model", str(onnx_dir), "a", "b"],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    float(proc.stdout.strip())
    imported = {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if "|" in line}
    assert not imported & {"torch", "transformers", "scipy", "jtcse.evaluation.sts"}
    assert "onnxruntime" in imported and "tokenizers" in imported


def test_numpy_sum_equals_the_torch_side_sum_and_torch(onnx_dir: Path, tiny_bert_dir: Path) -> None:
    light = Encoder(onnx_dir, batch_size=2)
    assert light._on_numpy()
    through_torch = Encoder.ensemble([onnx_dir], [1.0], device="cpu", batch_size=2)
    assert not isinstance(through_torch.members[0].tokenizer, type(None))
    got = light.encode(SENTENCES)
    np.testing.assert_allclose(got, through_torch.encode(SENTENCES), atol=1e-6, rtol=0)
    want = Encoder(tiny_bert_dir, pooler="avg", device="cpu").encode(SENTENCES)
    cosine = np.sum(got * want, axis=1) / (np.linalg.norm(got, axis=1) * np.linalg.norm(want, axis=1))
    assert cosine.min() >= 0.9999
    unit = light.encode(SENTENCES, normalize=True)
    np.testing.assert_allclose(np.linalg.norm(unit, axis=1), 1.0, atol=1e-6)
    assert light.encode("hello").shape == (light.dim,)
    np.testing.assert_array_equal(light.encode("hello"), got[1])
    assert light.encode([]).shape == (0, light.dim)
    tensor = light.encode(SENTENCES, convert_to_tensor=True)
    np.testing.assert_allclose(tensor.numpy(), got)
    assert str(light.device) == "cpu"


def test_fast_tokenizer_gives_the_hf_ids_on_the_sts_sentences(
    minilm_dir: Path, shared_data_dir: Path, tmp_path: Path
) -> None:
    from transformers import AutoTokenizer

    from jtcse.benchmark import TASKS
    from jtcse.data.sts import read_task

    sentences = [
        s
        for task in TASKS
        for pairs in read_task(shared_data_dir, task, "test").values()
        for s in pairs.sentences1 + pairs.sentences2
    ]
    sentences = list(dict.fromkeys(sentences)) + SENTENCES
    for variant, kwargs in {
        "uncased": {},
        "cased-left": {"do_lower_case": False, "truncation_side": "left"},
    }.items():
        hf = AutoTokenizer.from_pretrained(minilm_dir, **kwargs)
        hf.save_pretrained(tmp_path / variant)
        fast = FastTokenizer(tmp_path / variant, ["input_ids", "token_type_ids", "attention_mask"])
        assert fast.pad_token_id == hf.pad_token_id
        for limit in (None, 8):
            call = {"add_special_tokens": True, "padding": False, "truncation": limit is not None}
            want = hf(sentences, max_length=limit, return_attention_mask=False, **call)
            got = fast(sentences, max_length=limit, **call)
            assert got["input_ids"] == want["input_ids"], (variant, limit)
            assert got["token_type_ids"] == want["token_type_ids"], (variant, limit)


def test_threads_default_without_torch_is_the_physical_cores() -> None:
    code = (
        "import sys\nfrom jtcse.engines import physical_cores, resolve_threads\n"
        "print(resolve_threads(None), physical_cores(), 'torch' in sys.modules)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=_env(), timeout=60
    )
    threads, cores, torch_loaded = proc.stdout.split()
    assert threads == cores and torch_loaded == "False" and int(cores) >= 1
    assert 1 <= physical_cores() <= (os.cpu_count() or 1)
    assert resolve_threads(3) == 3


def test_throughput_mode_gives_the_one_session_vectors(onnx_dir: Path, tiny_bert_dir: Path) -> None:
    many = [f"sentence number {i} with {'some ' * (i % 9)}words" for i in range(40)] + SENTENCES
    fast = Encoder(onnx_dir, batch_size=4, threads=2)
    graph = fast.members[0].graph
    assert graph.workers(1) == 1 and graph._single is None  # one batch: the multi-threaded session
    got = fast.encode(many)
    assert graph._single is not None  # many batches: two at once, one core each
    assert graph._single.get_session_options().intra_op_num_threads == 1
    slow = Encoder(onnx_dir, batch_size=4, threads=2)
    slow.members[0].graph.throughput = False
    np.testing.assert_allclose(got, slow.encode(many), atol=1e-5, rtol=0)
    assert slow.members[0].graph._single is None
    want = Encoder(tiny_bert_dir, pooler="avg", device="cpu").encode(many)
    cosine = np.sum(got * want, axis=1) / (np.linalg.norm(got, axis=1) * np.linalg.norm(want, axis=1))
    assert cosine.min() >= 0.9999
