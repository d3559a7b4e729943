"""``jtcse ensemble``: the published-checkpoint layout (weights-only towers plus one tokenizer) gives exactly
the official formula, members with their own tokenizers, the ``PATH[:WEIGHT]`` rule, and one-line errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoModel, AutoTokenizer, BertConfig, BertModel, BertTokenizerFast

from jtcse.cli.ensemble import parse_member
from jtcse.cli.main import main
from jtcse.encoder import Encoder
from jtcse.errors import JtcseError
from jtcse.evaluation.sts import evaluate_sts
from jtcse.model.format import read_spec
from sts_toy import write_toy_sts

SENTENCES = [
    "A man is playing a guitar.",
    "hello",
    "Two dogs run across a snowy field at dawn while a third one watches from the hill.",
    "A man is playing a guitar.",
]


def _run(argv: list[str]) -> int:
    with pytest.raises(SystemExit) as info:
        main(argv)
    return int(info.value.code or 0)


def _weights_only(src: Path, dst: Path) -> Path:
    """A copy of a model folder without tokenizer files, as the published JTCSE encoder folders ship."""
    dst.mkdir(parents=True)
    for name in ("config.json", "model.safetensors"):
        shutil.copy(src / name, dst / name)
    return dst


@pytest.fixture(scope="module")
def towers(
    tmp_path_factory: pytest.TempPathFactory, tiny_bert_dir: Path, tiny_bert_dir_b: Path
) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("released")
    return _weights_only(tiny_bert_dir, root / "encoder_1"), _weights_only(
        tiny_bert_dir_b, root / "encoder_2"
    )


def _official_cls_sum(
    paths: list[Path], weights: list[float], tokenizer_dir: Path, sentences: list[str]
) -> np.ndarray:
    """evaluation_CKPT.py / ensemble_UC.py (BERT): one tokenizer, padding=True, no truncation,
    sum_i w_i * last_hidden_state[:, 0]."""
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    # batch_encode_plus there; transformers 5 keeps only the call form, which does the same
    batch = tokenizer(sentences, return_tensors="pt", padding=True)
    total = None
    with torch.no_grad():
        for path, weight in zip(paths, weights, strict=True):
            model = AutoModel.from_pretrained(path).eval()
            cls = model(**batch, output_hidden_states=True, return_dict=True).last_hidden_state[:, 0]
            total = weight * cls if total is None else total + weight * cls
    assert total is not None
    return total.numpy()


def test_released_twin_layout_equals_the_official_formula(
    towers: tuple[Path, Path], tiny_bert_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "jtcse-bert"
    argv = ["ensemble", "--member", str(towers[0]), "--member", str(towers[1])]
    argv += ["--pooler", "cls_before_pooler", "--tokenizer", str(tiny_bert_dir), "--output", str(out)]
    assert _run(argv) == 0
    spec = read_spec(out)
    assert spec.kind == "ensemble" and [m.weight for m in spec.members] == [1.0, 1.0]
    assert all(m.external and m.tokenizer == str(tiny_bert_dir.resolve()) for m in spec.members)
    want = _official_cls_sum(list(towers), [1.0, 1.0], tiny_bert_dir, SENTENCES)
    got = Encoder(out, device="cpu").encode(SENTENCES)
    np.testing.assert_allclose(got, want, atol=1e-6, rtol=0)


def test_eval_sts_scores_the_official_vectors(
    towers: tuple[Path, Path], tiny_bert_dir: Path, tmp_path: Path
) -> None:
    """``jtcse eval sts --model OUT`` scores what the official batcher's vectors score (same protocol)."""
    data = write_toy_sts(tmp_path / "data", pairs=8)
    out = tmp_path / "uc"
    weights = [0.3, 0.3, 0.7]
    members = [str(towers[0]) + ":0.3", str(towers[1]) + ":0.3", str(tiny_bert_dir) + ":0.7"]
    argv = ["ensemble", *(x for m in members for x in ("--member", m)), "--pooler", "cls_before_pooler"]
    assert _run([*argv, "--tokenizer", str(tiny_bert_dir), "--copy", "--output", str(out)]) == 0
    scores = tmp_path / "scores.json"
    argv = ["eval", "sts", "--model", str(out), "--data-dir", str(data), "--device", "cpu", "--quiet"]
    assert _run([*argv, "--no-card", "--output", str(scores)]) == 0
    measured = json.loads(scores.read_text(encoding="utf-8"))
    paths = [towers[0], towers[1], tiny_bert_dir]
    official = evaluate_sts(
        lambda s: _official_cls_sum(paths, weights, tiny_bert_dir, s), data_dir=data, show_progress=False
    )
    for task, score in official.scores.items():
        assert measured[task] == pytest.approx(score, abs=1e-6), task


def test_copy_makes_a_checksummed_movable_directory(
    towers: tuple[Path, Path], tiny_bert_dir: Path, tmp_path: Path
) -> None:
    built = tmp_path / "built"
    argv = ["ensemble", "--member", f"{towers[0]}:2", "--member", f"{towers[1]}:-0.5"]
    assert _run([*argv, "--tokenizer", str(tiny_bert_dir), "--copy", "--output", str(built)]) == 0
    spec = read_spec(built)
    assert [m.tokenizer for m in spec.members] == ["tokenizer", "tokenizer"]
    assert not any(m.external for m in spec.members)
    assert any(name.startswith("tokenizer/") for name in spec.checksums)
    assert any(name.startswith("members/0_encoder_1/") for name in spec.checksums)
    moved = tmp_path / "elsewhere"
    shutil.move(built, moved)
    want = _official_cls_sum(list(towers), [2.0, -0.5], tiny_bert_dir, SENTENCES)
    np.testing.assert_allclose(Encoder(moved, device="cpu").encode(SENTENCES), want, atol=1e-6, rtol=0)
    # the checksums are checked when it loads: a changed tokenizer file is a one-line error naming it
    name = next(n for n in sorted(spec.checksums) if n.startswith("tokenizer/"))
    (moved / name).write_bytes((moved / name).read_bytes() + b" ")
    with pytest.raises(JtcseError, match=f"{Path(name).name}: does not match its checksum"):
        Encoder(moved, device="cpu")


def _other_tokenizer_model(root: Path) -> Path:
    """A tiny BERT (hidden 32, like the fixtures) with its own small WordPiece vocabulary."""
    root.mkdir()
    words = [
        "[PAD]",
        "[UNK]",
        "[CLS]",
        "[SEP]",
        "[MASK]",
        "a",
        "man",
        "is",
        "playing",
        "guitar",
        "hello",
        ".",
    ]
    (root / "vocab.txt").write_text("\n".join(words) + "\n", encoding="utf-8")
    BertTokenizerFast(vocab_file=str(root / "vocab.txt")).save_pretrained(root)
    torch.manual_seed(5)
    config = BertConfig(
        vocab_size=len(words),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
    )
    BertModel(config).save_pretrained(root)
    return root


def test_members_with_different_tokenizers(tiny_bert_dir: Path, tmp_path: Path) -> None:
    other = _other_tokenizer_model(tmp_path / "other")
    out = tmp_path / "mixed"
    argv = ["ensemble", "--member", f"{tiny_bert_dir}:0.25", "--member", f"{other}:0.75"]
    assert _run([*argv, "--pooler", "cls_before_pooler", "--output", str(out)]) == 0
    assert all(m.tokenizer is None for m in read_spec(out).members)
    want = 0.25 * _official_cls_sum([tiny_bert_dir], [1.0], tiny_bert_dir, SENTENCES)
    want += 0.75 * _official_cls_sum([other], [1.0], other, SENTENCES)
    np.testing.assert_allclose(Encoder(out, device="cpu").encode(SENTENCES), want, atol=1e-6, rtol=0)


def test_a_jtcse_member_keeps_its_own_tokenizer_and_poolers(
    towers: tuple[Path, Path], tiny_bert_dir: Path, tmp_path: Path
) -> None:
    """RoBERTa-UC's shape: the twin (built with its tokenizer) plus an external model with its own."""
    twin = tmp_path / "twin"
    argv = [
        "ensemble",
        "--member",
        str(towers[0]),
        "--member",
        str(towers[1]),
        "--tokenizer",
        str(tiny_bert_dir),
    ]
    assert _run([*argv, "--pooler", "cls_before_pooler", "--output", str(twin)]) == 0
    other = _other_tokenizer_model(tmp_path / "infocse")
    uc = tmp_path / "uc"
    argv = [
        "ensemble",
        "--member",
        f"{twin}:0.3",
        "--member",
        f"{other}:0.7",
        "--pooler",
        "cls_before_pooler",
    ]
    assert _run([*argv, "--tokenizer", str(other), "--output", str(uc)]) == 0
    want = 0.3 * _official_cls_sum(list(towers), [1.0, 1.0], tiny_bert_dir, SENTENCES)
    want += 0.7 * _official_cls_sum([other], [1.0], other, SENTENCES)
    np.testing.assert_allclose(Encoder(uc, device="cpu").encode(SENTENCES), want, atol=1e-6, rtol=0)


def test_member_parsing_rule(tmp_path: Path) -> None:
    assert parse_member("runs/a") == ("runs/a", 1.0)
    assert parse_member("runs/a:0.7") == ("runs/a", 0.7)
    assert parse_member("org/model:-1.5e-1") == ("org/model", -0.15)
    assert parse_member("dir:.5") == ("dir", 0.5)
    assert parse_member(r"C:\models\enc_1") == (r"C:\models\enc_1", 1.0)  # a drive letter is no weight
    assert parse_member(r"C:\models\enc_1:0.3") == (r"C:\models\enc_1", 0.3)
    assert parse_member("a:b:c") == ("a:b:c", 1.0)  # the last part is no number: all of it is the path
    assert parse_member("dir:0.5:2") == ("dir:0.5", 2.0)  # a path ending in ':<number>' plus a weight
    folder = tmp_path / "enc"
    folder.mkdir()
    with pytest.raises(JtcseError, match=r"weight 'x0\.3' is not a number"):
        parse_member(f"{folder}:x0.3")
    with pytest.raises(JtcseError, match="is not a number"):
        parse_member(f"{folder}:nan")  # not a plain number
    colon = tmp_path / "with:colon"
    colon.mkdir()
    assert parse_member(str(colon)) == (str(colon), 1.0)  # the folder exists under that name
    assert parse_member(f"{colon}:3") == (str(colon), 3.0)


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing", "jtcse: error: --member {missing}: no such directory"),
        ("weight", "jtcse: error: --member {a}:heavy: weight 'heavy' is not a number"),
        (
            "sizes",
            "jtcse: error: members have different hidden sizes and cannot be summed: --member {a} (32)",
        ),
        ("exists", "jtcse: error: --output {out}: exists and is not empty; pass --overwrite to replace it"),
        ("tokenizer", "jtcse: error: --member {w}: the folder has no tokenizer of its own; pass --tokenizer"),
        ("pooler", "jtcse: error: --pooler max: choose one of"),
        ("hub", "jtcse: error: --member no-such-org/no-such-model: no such folder, and no Hugging Face hub"),
    ],
)
def test_bad_input_is_one_line(
    case: str,
    message: str,
    towers: tuple[Path, Path],
    tiny_bert_dir: Path,
    minilm_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    a, out, missing = str(tiny_bert_dir), tmp_path / "out", tmp_path / "missing"
    members = {
        "missing": [a, str(missing)],
        "weight": [a, f"{a}:heavy"],
        "sizes": [a, str(minilm_dir)],
        "exists": [a],
        "tokenizer": [str(towers[0])],
        "pooler": [a],
        "hub": [a, "no-such-org/no-such-model"],
    }[case]
    if case == "exists":
        out.mkdir()
        (out / "jtcse.json").write_text("{}")
    argv = ["ensemble", *(x for m in members for x in ("--member", m)), "--output", str(out)]
    argv += ["--pooler", "max"] if case == "pooler" else []
    assert _run(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith(message.format(a=a, missing=missing, out=out, w=towers[0])), err
    assert case == "exists" or not out.exists()


@pytest.mark.parametrize("members", [1, 2])
def test_exports_ship_the_named_tokenizer(
    members: int, towers: tuple[Path, Path], tiny_bert_dir: Path, tmp_path: Path
) -> None:
    """sentence-transformers and ONNX exports of weights-only members carry the tokenizer jtcse.json names
    (a lone member cannot be the plain pipeline, which would read its folder's missing tokenizer)."""
    pytest.importorskip("sentence_transformers")
    out = tmp_path / "ens"
    argv = ["ensemble", *(x for t in towers[:members] for x in ("--member", str(t)))]
    assert (
        _run(
            [*argv, "--tokenizer", str(tiny_bert_dir), "--pooler", "cls_before_pooler", "--output", str(out)]
        )
        == 0
    )
    want = _official_cls_sum(list(towers[:members]), [1.0] * members, tiny_bert_dir, SENTENCES)
    st_out = tmp_path / "st"
    assert _run(["export", "--model", str(out), "--format", "sentence-transformers", str(st_out)]) == 0
    from sentence_transformers import SentenceTransformer

    st_model = SentenceTransformer(str(st_out), device="cpu", trust_remote_code=True)
    np.testing.assert_allclose(st_model.encode(SENTENCES), want, atol=1e-5, rtol=0)
    pytest.importorskip("onnxruntime")
    onnx_out = tmp_path / "onnx"
    assert _run(["export", "--model", str(out), "--format", "onnx", str(onnx_out)]) == 0
    np.testing.assert_allclose(Encoder(onnx_out).encode(SENTENCES), want, atol=1e-4, rtol=0)
