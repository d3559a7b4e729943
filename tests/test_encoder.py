"""jtcse.Encoder on tiny random BERT/RoBERTa: poolers, padding, dedup, order, composite models, errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoModel, AutoTokenizer, BertConfig, BertModel

from jtcse.encoder import Encoder
from jtcse.errors import JtcseError
from jtcse.model.format import MemberSpec, ModelSpec, write_spec
from jtcse.model.pooling import POOLERS

SENTENCES = [
    "a man is playing a guitar .",
    "the cat sat on the mat",
    "a considerably longer sentence , which needs a good deal more padding than the others in its batch",
    "hi",
    "three people are walking down a busy street in the rain",
]
ATOL = 1e-5


def manual_embeddings(model_dir: Path, pooler: str, sentences: list[str]) -> np.ndarray:
    """Run the HF model on each sentence alone (no padding at all) and pool by hand."""
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModel.from_pretrained(model_dir).eval()
    rows = []
    for sentence in sentences:
        inputs = tokenizer(sentence, return_tensors="pt")
        with torch.no_grad():
            out = model(**inputs, output_hidden_states=True, return_dict=True)
        hs = out.hidden_states
        if pooler == "cls":
            cls_state = hs[-1][0, 0]
            vector = torch.tanh(model.pooler.dense.weight @ cls_state + model.pooler.dense.bias)
        elif pooler == "cls_before_pooler":
            vector = hs[-1][0, 0]
        elif pooler == "avg":
            vector = hs[-1][0].mean(0)
        else:
            vector = ((hs[1][0] + hs[-1][0]) / 2).mean(0)
        rows.append(vector.detach().numpy())
    return np.stack(rows)


@pytest.mark.parametrize("pooler", POOLERS)
def test_each_pooler_matches_manual_computation(tiny_bert_dir, pooler):
    encoder = Encoder(tiny_bert_dir, pooler=pooler, device="cpu", batch_size=2)
    got = encoder.encode(SENTENCES)
    assert got.dtype == np.float32 and got.shape == (len(SENTENCES), encoder.dim)
    np.testing.assert_allclose(got, manual_embeddings(tiny_bert_dir, pooler, SENTENCES), atol=ATOL, rtol=0)


@pytest.mark.parametrize("fixture", ["tiny_bert_dir", "tiny_roberta_dir"])
@pytest.mark.parametrize("pooler", ["cls_before_pooler", "avg", "avg_first_last"])
def test_padding_does_not_change_vectors(request, fixture, pooler):
    encoder = Encoder(request.getfixturevalue(fixture), pooler=pooler, device="cpu")
    alone = encoder.encode(["hi"])
    in_batch = encoder.encode(["hi", *SENTENCES[:3]])  # "hi" is padded to the longest sentence here
    np.testing.assert_allclose(alone[0], in_batch[0], atol=ATOL, rtol=0)


def test_order_preserved_across_batches(tiny_bert_dir):
    encoder = Encoder(tiny_bert_dir, pooler="avg", device="cpu")
    together = encoder.encode(SENTENCES, batch_size=1)
    one_by_one = np.stack([encoder.encode([s])[0] for s in SENTENCES])
    np.testing.assert_allclose(together, one_by_one, atol=ATOL, rtol=0)


def test_duplicates_get_identical_vectors(tiny_bert_dir):
    encoder = Encoder(tiny_bert_dir, pooler="avg", device="cpu")
    texts = ["b", "a", "b", SENTENCES[2], "a", "b"]
    got = encoder.encode(texts, batch_size=2)
    assert np.array_equal(got[0], got[2]) and np.array_equal(got[0], got[5])
    assert np.array_equal(got[1], got[4])
    assert not np.allclose(got[0], got[1])


def test_normalize_gives_unit_vectors_in_same_direction(tiny_bert_dir):
    encoder = Encoder(tiny_bert_dir, pooler="cls", device="cpu")
    raw = encoder.encode(SENTENCES)
    unit = encoder.encode(SENTENCES, normalize=True)
    np.testing.assert_allclose(np.linalg.norm(unit, axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(unit, raw / np.linalg.norm(raw, axis=1, keepdims=True), atol=1e-6)


def test_single_string_tensor_and_empty_inputs(tiny_bert_dir):
    encoder = Encoder(tiny_bert_dir, device="cpu")
    one = encoder.encode("the cat sat on the mat")
    assert one.shape == (encoder.dim,)  # like sentence-transformers: a str gives one vector
    np.testing.assert_array_equal(one, encoder.encode(["the cat sat on the mat"])[0])
    tensor = encoder.encode(SENTENCES, convert_to_tensor=True)
    assert isinstance(tensor, torch.Tensor) and tensor.dtype == torch.float32
    assert tensor.shape == (len(SENTENCES), encoder.dim)
    assert encoder.encode([]).shape == (0, encoder.dim)
    with pytest.raises(TypeError):
        encoder.encode(["fine", 3])


def test_progress_bar_when_asked(tiny_bert_dir, capsys):
    encoder = Encoder(tiny_bert_dir, device="cpu")
    encoder.encode(SENTENCES, batch_size=1, show_progress=True)
    assert "Encoding" in capsys.readouterr().err


def test_truncates_only_at_the_position_limit(tiny_roberta_dir, tiny_bert_dir):
    roberta = Encoder(tiny_roberta_dir, device="cpu")
    # 128 positions; RoBERTa numbers positions from padding_idx + 1 = 1, so 127 tokens fit
    assert roberta.members[0].max_length == 127
    assert Encoder(tiny_bert_dir, device="cpu").members[0].max_length == 128
    long_text = " ".join(["word"] * 400)
    assert np.isfinite(roberta.encode([long_text, "short"])).all()


def test_explicit_max_length_truncates(tiny_bert_dir):
    encoder = Encoder(tiny_bert_dir, pooler="avg", device="cpu", max_length=8)
    # [CLS] + 6 single-token words + [SEP] = 8 tokens
    cut = encoder.encode(["the cat sat on the mat and then ran far away"])
    np.testing.assert_allclose(cut, encoder.encode(["the cat sat on the mat"]), atol=ATOL, rtol=0)


# ---------------------------------------------------------------- composite models


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _single(dir_: Path, pooler: str) -> np.ndarray:
    return Encoder(dir_, pooler=pooler, device="cpu").encode(SENTENCES)


def test_twin_dir_is_sum_of_tower_cls_vectors(tmp_path, tiny_bert_dir, tiny_bert_dir_b):
    twin = tmp_path / "twin"
    _copy(tiny_bert_dir, twin / "tower_a")
    _copy(tiny_bert_dir_b, twin / "tower_b")
    write_spec(
        twin, ModelSpec(kind="twin", members=[MemberSpec("tower_a"), MemberSpec("tower_b")], method="jtcse")
    )
    encoder = Encoder(twin, device="cpu")
    assert [m.pooler for m in encoder.members] == ["cls_before_pooler"] * 2
    expected = _single(tiny_bert_dir, "cls_before_pooler") + _single(tiny_bert_dir_b, "cls_before_pooler")
    np.testing.assert_allclose(encoder.encode(SENTENCES), expected, atol=ATOL, rtol=0)


def test_nested_ensemble_dir_is_weighted_sum(tmp_path, tiny_bert_dir, tiny_bert_dir_b, tiny_roberta_dir):
    twin = tmp_path / "twin"
    write_spec(
        twin,
        ModelSpec(
            kind="twin",
            members=[
                MemberSpec(str(tiny_bert_dir), external=True),
                MemberSpec(str(tiny_bert_dir_b), external=True),
            ],
        ),
    )
    ensemble = tmp_path / "ensemble"
    write_spec(
        ensemble,
        ModelSpec(
            kind="ensemble",
            members=[
                MemberSpec(str(twin), weight=0.3, external=True),
                MemberSpec(str(tiny_roberta_dir), pooler="avg", weight=0.7, external=True),
            ],
        ),
    )
    encoder = Encoder(ensemble, device="cpu")
    assert [round(m.weight, 6) for m in encoder.members] == [0.3, 0.3, 0.7]
    expected = 0.3 * (
        _single(tiny_bert_dir, "cls_before_pooler") + _single(tiny_bert_dir_b, "cls_before_pooler")
    ) + 0.7 * _single(tiny_roberta_dir, "avg")
    np.testing.assert_allclose(encoder.encode(SENTENCES), expected, atol=ATOL, rtol=0)


def test_single_kind_dir_uses_itself_and_its_pooler(tmp_path, tiny_bert_dir):
    model_dir = _copy(tiny_bert_dir, tmp_path / "single")
    write_spec(model_dir, ModelSpec(kind="single", members=[MemberSpec(".", pooler="avg")]))
    encoder = Encoder(model_dir, device="cpu")
    assert len(encoder.members) == 1 and encoder.members[0].pooler == "avg"
    np.testing.assert_allclose(encoder.encode(SENTENCES), _single(tiny_bert_dir, "avg"), atol=ATOL, rtol=0)
    # an explicit pooler overrides jtcse.json
    np.testing.assert_allclose(
        Encoder(model_dir, pooler="cls", device="cpu").encode(SENTENCES),
        _single(tiny_bert_dir, "cls"),
        atol=ATOL,
    )


def test_in_memory_ensemble(tiny_bert_dir, tiny_bert_dir_b):
    first = Encoder(tiny_bert_dir, pooler="avg", device="cpu")
    ensemble = Encoder.ensemble([first, tiny_bert_dir_b], [0.25, 2.0], device="cpu")
    expected = 0.25 * first.encode(SENTENCES) + 2.0 * _single(tiny_bert_dir_b, "cls_before_pooler")
    np.testing.assert_allclose(ensemble.encode(SENTENCES), expected, atol=ATOL, rtol=0)
    assert ensemble.members[0].model is first.members[0].model  # shared, not reloaded


def test_ensemble_count_mismatch_is_one_line_error(tiny_bert_dir):
    with pytest.raises(JtcseError, match=r"2 member.*1 weight") as info:
        Encoder.ensemble([tiny_bert_dir, tiny_bert_dir], [1.0])
    assert "\n" not in str(info.value)


# ---------------------------------------------------------------- default poolers and errors


def _with_st_pooling(tmp_path: Path, tiny_bert_dir: Path, config: dict) -> Path:
    model_dir = _copy(tiny_bert_dir, tmp_path / "st")
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    ]
    (model_dir / "modules.json").write_text(json.dumps(modules))
    (model_dir / "1_Pooling").mkdir()
    (model_dir / "1_Pooling" / "config.json").write_text(json.dumps(config))
    return model_dir


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"pooling_mode_mean_tokens": True, "pooling_mode_cls_token": False}, "avg"),
        ({"pooling_mode_cls_token": True, "pooling_mode_mean_tokens": False}, "cls_before_pooler"),
        ({"pooling_mode": "mean"}, "avg"),
    ],
)
def test_default_pooler_from_sentence_transformers_config(tmp_path, tiny_bert_dir, config, expected):
    model_dir = _with_st_pooling(tmp_path, tiny_bert_dir, config)
    assert Encoder(model_dir, device="cpu").members[0].pooler == expected


def test_unsupported_sentence_transformers_pooling_asks_for_pooler(tmp_path, tiny_bert_dir):
    model_dir = _with_st_pooling(tmp_path, tiny_bert_dir, {"pooling_mode": "max"})
    with pytest.raises(JtcseError, match="--pooler"):
        Encoder(model_dir, device="cpu")
    assert Encoder(model_dir, pooler="avg", device="cpu").members[0].pooler == "avg"


def test_plain_dir_defaults_to_cls_before_pooler(tiny_bert_dir):
    assert Encoder(tiny_bert_dir, device="cpu").members[0].pooler == "cls_before_pooler"


def test_unknown_pooler(tiny_bert_dir):
    with pytest.raises(JtcseError, match=r"--pooler max: .*avg_first_last"):
        Encoder(tiny_bert_dir, pooler="max")


def test_bad_pooler_in_jtcse_json_names_file(tmp_path, tiny_bert_dir):
    write_spec(
        tmp_path,
        ModelSpec(kind="single", members=[MemberSpec(str(tiny_bert_dir), pooler="max", external=True)]),
    )
    with pytest.raises(JtcseError, match=r"jtcse\.json: members\[0\]"):
        Encoder(tmp_path, device="cpu")


def test_missing_model_path(tmp_path):
    with pytest.raises(JtcseError, match="no such directory"):
        Encoder(str(tmp_path / "nope") + "/")
    with pytest.raises(JtcseError, match="--model"):
        Encoder(tmp_path)  # exists, but holds no model


def test_cls_needs_trained_pooler_weights(tmp_path, tiny_bert_dir):
    model = BertModel(BertConfig.from_pretrained(tiny_bert_dir), add_pooling_layer=False)
    model.save_pretrained(tmp_path)
    AutoTokenizer.from_pretrained(tiny_bert_dir).save_pretrained(tmp_path)
    with pytest.raises(JtcseError, match="pooler weights"):
        Encoder(tmp_path, pooler="cls", device="cpu")
    Encoder(tmp_path, pooler="cls_before_pooler", device="cpu")  # fine without them


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_unavailable_device(tiny_bert_dir):
    with pytest.raises(JtcseError, match="--device cuda"):
        Encoder(tiny_bert_dir, device="cuda")


def test_bad_device_name_and_batch_size(tiny_bert_dir):
    with pytest.raises(JtcseError, match="--device"):
        Encoder(tiny_bert_dir, device="gpu7")
    with pytest.raises(JtcseError, match="--batch-size"):
        Encoder(tiny_bert_dir, batch_size=0)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu(tiny_bert_dir):
    gpu = Encoder(tiny_bert_dir, pooler="avg")  # CUDA is the default where present
    assert gpu.device.type == "cuda"
    assert gpu.encode(SENTENCES, convert_to_tensor=True).device.type == "cuda"
    cpu = Encoder(tiny_bert_dir, pooler="avg", device="cpu")
    np.testing.assert_allclose(gpu.encode(SENTENCES), cpu.encode(SENTENCES), atol=1e-4, rtol=0)
    texts = ["b", "a", "b"]
    got = gpu.encode(texts)
    assert np.array_equal(got[0], got[2])


@pytest.mark.slow
def test_minilm_matches_sentence_transformers(minilm_dir):
    from sentence_transformers import SentenceTransformer

    texts = [*SENTENCES, "a woman is slicing an onion .", "a woman is slicing an onion ."]
    ours = Encoder("minilm", device="cpu")
    assert ours.members[0].pooler == "avg" and ours.dim == 384
    theirs = SentenceTransformer(str(minilm_dir), device="cpu").encode(texts, normalize_embeddings=True)
    got = ours.encode(texts, normalize=True)
    np.testing.assert_allclose(got, theirs, atol=1e-5, rtol=0)
