"""TwinTower: towers equal the plain HF models, CA modes, inference embedding, save/load, bad input."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import AutoModel, AutoTokenizer, BertConfig, BertModel, DistilBertConfig, DistilBertModel

from jtcse.errors import JtcseError
from jtcse.model.format import read_spec
from jtcse.model.twin_tower import TwinTower, TwinTowerOutput

SENTENCES = [
    "a man is playing a guitar .",
    "hi",
    "the quick brown fox jumps over the lazy dog near the river",
]


@pytest.fixture(scope="module")
def batch(tiny_bert_dir) -> dict:
    enc = AutoTokenizer.from_pretrained(tiny_bert_dir)(SENTENCES, padding=True, return_tensors="pt")
    return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}


def _plain(path, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
    model = AutoModel.from_pretrained(path).eval()
    with torch.no_grad():
        out = model(**batch)
    return out.last_hidden_state[:, 0], out.pooler_output


def _tiny_bert(**overrides) -> BertModel:
    config = dict(
        vocab_size=30522, hidden_size=32, num_hidden_layers=4, num_attention_heads=4, intermediate_size=64
    )
    return BertModel(BertConfig(**{**config, **overrides}))


# ----------------------------------------------------------------------------------------------- fidelity
@pytest.mark.parametrize("mode", ["side_all", "side_last", "in_stream"])
@pytest.mark.parametrize("with_ca", [False, True])
def test_towers_equal_plain_hf_models(
    mode: str, with_ca: bool, tiny_bert_dir, tiny_bert_dir_b, batch
) -> None:
    """Without CA (any mode) and with CA in the side modes, each tower's outputs are the plain model's."""
    twin = TwinTower.from_pretrained(tiny_bert_dir, tiny_bert_dir_b, num_ca_layers=2, ca_mode=mode).eval()
    with torch.no_grad():
        out = twin(**batch, with_cross_attention=with_ca)
    cls_a, pooled_a = _plain(tiny_bert_dir, batch)
    cls_b, pooled_b = _plain(tiny_bert_dir_b, batch)
    if with_ca and mode == "in_stream":
        assert (out.cls_a - cls_a).abs().max() > 1e-3  # CA changes the main stream there
        assert len(out.ca_a) == len(out.ca_b) == 2
        return
    assert torch.equal(out.cls_a, cls_a) and torch.equal(out.cls_b, cls_b)
    assert torch.equal(out.pooled_a, pooled_a) and torch.equal(out.pooled_b, pooled_b)
    expected_ca = 0 if not with_ca else (1 if mode == "side_last" else 2)
    assert len(out.ca_a) == len(out.ca_b) == expected_ca


def test_roberta_towers_equal_plain_models(tiny_roberta_dir, batch) -> None:
    twin = TwinTower.from_pretrained(tiny_roberta_dir, tiny_roberta_dir, num_ca_layers=4).eval()
    with torch.no_grad():
        out = twin(**batch)
    cls, pooled = _plain(tiny_roberta_dir, batch)
    assert torch.equal(out.cls_a, cls) and torch.equal(out.pooled_b, pooled)
    assert len(out.ca_a) == 4 and out.ca_a[0].shape == cls.shape


def test_side_last_is_the_last_side_all_state(tiny_bert_dir, tiny_bert_dir_b, batch) -> None:
    twin = TwinTower.from_pretrained(tiny_bert_dir, tiny_bert_dir_b, num_ca_layers=4).eval()
    with torch.no_grad():
        every = twin(**batch)
        twin.set_cross_attention(ca_mode="side_last")
        last = twin(**batch)
    assert len(every.ca_a) == 4 and len(last.ca_a) == len(last.ca_b) == 1
    assert torch.equal(last.ca_a[0], every.ca_a[-1]) and torch.equal(last.ca_b[0], every.ca_b[-1])


def test_zero_ca_layers_means_no_cross_attention(tiny_bert_dir, tiny_bert_dir_b, batch) -> None:
    for mode in ("side_all", "in_stream"):
        twin = TwinTower.from_pretrained(tiny_bert_dir, tiny_bert_dir_b, num_ca_layers=0, ca_mode=mode).eval()
        assert twin.ca_layer_indices == []
        with torch.no_grad():
            out = twin(**batch)
        assert out.ca_a == [] and out.ca_b == []
        assert torch.equal(out.cls_a, _plain(tiny_bert_dir, batch)[0])


def test_output_shapes_and_default_settings(tiny_bert_dir, tiny_bert_dir_b, batch) -> None:
    twin = TwinTower.from_pretrained(tiny_bert_dir, tiny_bert_dir_b, num_ca_layers=4)
    out = twin(batch["input_ids"], batch["attention_mask"])
    assert isinstance(out, TwinTowerOutput)
    n = batch["input_ids"].shape[0]
    for t in (out.cls_a, out.cls_b, out.pooled_a, out.pooled_b, *out.ca_a, *out.ca_b):
        assert t.shape == (n, 32)
    assert twin.ca_mode == "side_all" and twin.ca_placement == "end" and twin.ca_layer_indices == [0, 1, 2, 3]
    assert isinstance(twin.tower_a, BertModel) and isinstance(twin.tower_b, BertModel)


# ----------------------------------------------------------------------------------------------- inference
def test_embed_is_the_sum_of_plain_cls_vectors(tiny_bert_dir, tiny_bert_dir_b, batch) -> None:
    # dropout off via the option, and the model left in training mode: embed must not depend on CA or mode
    twin = TwinTower.from_pretrained(tiny_bert_dir, tiny_bert_dir_b, dropout=0.0, num_ca_layers=2).train()
    with torch.no_grad():
        embedding = twin.embed(**batch)
    expected = _plain(tiny_bert_dir, batch)[0] + _plain(tiny_bert_dir_b, batch)[0]
    torch.testing.assert_close(embedding, expected, atol=1e-6, rtol=0)
    twin.eval()
    with torch.no_grad():
        assert torch.equal(twin.embed(**batch), expected)


def test_dropout_option(tiny_bert_dir, tiny_bert_dir_b) -> None:
    kept = TwinTower.from_pretrained(tiny_bert_dir, tiny_bert_dir_b, num_ca_layers=2)
    assert kept.tower_a.config.hidden_dropout_prob == 0.1
    tncse = TwinTower.from_pretrained(tiny_bert_dir, tiny_bert_dir_b, dropout=2.5e-4, num_ca_layers=2)
    for tower in (tncse.tower_a, tncse.tower_b):
        assert tower.config.hidden_dropout_prob == tower.config.attention_probs_dropout_prob == 2.5e-4
        assert tower.encoder.layer[0].output.dropout.p == 2.5e-4
        assert tower.encoder.layer[0].attention.self.dropout.p == 2.5e-4
    with pytest.raises(JtcseError, match=r"dropout 1\.5: must be a number in \[0, 1\)"):
        TwinTower.from_pretrained(tiny_bert_dir, tiny_bert_dir_b, dropout=1.5)


# ----------------------------------------------------------------------------------------------- save / load
def test_save_load_round_trip(tmp_path, tiny_bert_dir, tiny_bert_dir_b, batch) -> None:
    twin = TwinTower.from_pretrained(
        tiny_bert_dir, tiny_bert_dir_b, num_ca_layers=2, ca_mode="side_last", ca_placement="start"
    ).eval()
    with torch.no_grad():  # move the weights away from the checkpoints, so the save really matters
        for p in twin.parameters():
            p.mul_(1.01)
    out_dir = tmp_path / "twin"
    twin.save_pretrained(out_dir, AutoTokenizer.from_pretrained(tiny_bert_dir), extra={"config": "run.toml"})

    spec = read_spec(out_dir)
    assert spec.kind == "twin" and spec.method == "jtcse"
    assert [(m.path, m.pooler, m.weight) for m in spec.members] == [
        ("tower_a", "cls_before_pooler", 1.0),
        ("tower_b", "cls_before_pooler", 1.0),
    ]
    assert spec.extra == {
        "num_ca_layers": 2,
        "ca_mode": "side_last",
        "ca_placement": "start",
        "ca_layer_indices": [0, 2],
        "config": "run.toml",
    }
    assert json.loads((out_dir / "jtcse.json").read_text())["format"] == "jtcse-model"

    loaded = TwinTower.load(out_dir).eval()
    assert (loaded.num_ca_layers, loaded.ca_mode, loaded.ca_placement) == (2, "side_last", "start")
    with torch.no_grad():
        before, after = twin(**batch), loaded(**batch)
    for x, y in zip(
        [before.cls_a, before.cls_b, before.pooled_a, *before.ca_a, *before.ca_b],
        [after.cls_a, after.cls_b, after.pooled_a, *after.ca_a, *after.ca_b],
        strict=True,
    ):
        assert torch.equal(x, y)

    for name, cls_state in (("tower_a", before.cls_a), ("tower_b", before.cls_b)):
        plain = AutoModel.from_pretrained(out_dir / name).eval()
        tokenizer = AutoTokenizer.from_pretrained(out_dir / name)
        enc = tokenizer(SENTENCES, padding=True, return_tensors="pt")
        with torch.no_grad():
            assert torch.equal(plain(**enc).last_hidden_state[:, 0], cls_state)

    overridden = TwinTower.load(out_dir, num_ca_layers=4, dropout=0.0)  # overrides win
    assert overridden.ca_layer_indices == [0, 1, 2, 3] and overridden.ca_mode == "side_last"
    assert overridden.tower_a.config.hidden_dropout_prob == 0.0

    spec_file = out_dir / "jtcse.json"
    spec_file.write_text(spec_file.read_text().replace('"num_ca_layers": 2', '"num_ca_layers": 3'))
    with pytest.raises(JtcseError, match=r"jtcse\.json: extra: num_ca_layers 3: .*valid values: 0, 1, 2, 4"):
        TwinTower.load(out_dir)


def test_set_cross_attention(tiny_bert_dir, tiny_bert_dir_b) -> None:
    twin = TwinTower.from_pretrained(tiny_bert_dir, tiny_bert_dir_b, num_ca_layers=2)
    twin.set_cross_attention(num_ca_layers=1, ca_placement="start")
    assert (twin.num_ca_layers, twin.ca_placement, twin.ca_layer_indices) == (1, "start", [0])
    with pytest.raises(JtcseError, match="ca_mode 'sideways'"):
        twin.set_cross_attention(ca_mode="sideways")
    with pytest.raises(JtcseError, match="num_ca_layers 3"):
        twin.set_cross_attention(num_ca_layers=3)
    assert (twin.num_ca_layers, twin.ca_mode, twin.ca_layer_indices) == (1, "side_all", [0])  # unchanged


def test_stage_one_single_jtcse_dir_is_a_valid_tower(tmp_path, tiny_bert_dir, tiny_bert_dir_b) -> None:
    from jtcse.model.format import MemberSpec, ModelSpec, write_spec

    stage1 = tmp_path / "stage1"
    AutoModel.from_pretrained(tiny_bert_dir).save_pretrained(stage1 / "encoder")
    write_spec(stage1, ModelSpec(kind="single", members=[MemberSpec(path="encoder")], method="simcse"))
    twin = TwinTower.from_pretrained(stage1, tiny_bert_dir_b, num_ca_layers=1)
    assert isinstance(twin.tower_a, BertModel)
    write_spec(stage1, ModelSpec(kind="twin", members=[MemberSpec("a"), MemberSpec("b")]))
    with pytest.raises(JtcseError, match="is a jtcse 'twin' model, not a single encoder"):
        TwinTower.from_pretrained(stage1, tiny_bert_dir_b, num_ca_layers=1)


def test_save_without_tokenizer_copies_the_sources(tmp_path, tiny_bert_dir, tiny_bert_dir_b) -> None:
    TwinTower.from_pretrained(tiny_bert_dir, tiny_bert_dir_b, num_ca_layers=1).save_pretrained(tmp_path / "m")
    for name in ("tower_a", "tower_b"):
        assert AutoTokenizer.from_pretrained(tmp_path / "m" / name).vocab_size == 30522


def test_load_rejects_a_non_twin_dir(tmp_path, tiny_bert_dir) -> None:
    (tmp_path / "jtcse.json").write_text(
        json.dumps(
            {"format": "jtcse-model", "format_version": 1, "kind": "single", "members": [{"path": "."}]}
        )
    )
    with pytest.raises(JtcseError, match=r"jtcse\.json: kind 'single' with 1 member.*not a twin tower"):
        TwinTower.load(tmp_path)
    with pytest.raises(JtcseError, match="not found"):
        TwinTower.load(tmp_path / "nothing")


# ----------------------------------------------------------------------------------------------- bad input
def test_different_architectures_error(tiny_bert_dir, tiny_roberta_dir) -> None:
    with pytest.raises(
        JtcseError, match=r"towers differ in architecture \(model_type: tower A bert, tower B roberta\)"
    ):
        TwinTower.from_pretrained(tiny_bert_dir, tiny_roberta_dir)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"hidden_size": 48, "num_attention_heads": 4}, "hidden size"),
        ({"num_hidden_layers": 2}, "number of layers"),
        ({"num_attention_heads": 8}, "number of attention heads"),
        ({"vocab_size": 100}, "different vocabularies.*share one tokenizer"),
    ],
)
def test_incompatible_towers_error(overrides: dict, message: str) -> None:
    with pytest.raises(JtcseError, match=message) as info:
        TwinTower(_tiny_bert(), _tiny_bert(**overrides))
    assert "\n" not in str(info.value)


def test_non_bert_style_tower_and_same_module_error() -> None:
    distil = DistilBertModel(DistilBertConfig(vocab_size=30522, dim=32, n_layers=2, n_heads=4, hidden_dim=64))
    with pytest.raises(
        JtcseError, match="tower B \\(model type distilbert\\) is not a BERT/RoBERTa-style encoder"
    ):
        TwinTower(_tiny_bert(), distil)
    no_pooler = BertModel(
        BertConfig(
            vocab_size=30522, hidden_size=32, num_hidden_layers=4, num_attention_heads=4, intermediate_size=64
        ),
        add_pooling_layer=False,
    )
    with pytest.raises(JtcseError, match="no pooler"):
        TwinTower(_tiny_bert(), no_pooler)
    tower = _tiny_bert()
    with pytest.raises(JtcseError, match="same module"):
        TwinTower(tower, tower)


def test_bad_options_error(tiny_bert_dir, tiny_bert_dir_b) -> None:
    with pytest.raises(JtcseError, match="ca_mode 'both': must be one of side_all, side_last, in_stream"):
        TwinTower(_tiny_bert(), _tiny_bert(), ca_mode="both")
    with pytest.raises(JtcseError, match=r"num_ca_layers 3: .*4 encoder layers; valid values: 0, 1, 2, 4"):
        TwinTower.from_pretrained(tiny_bert_dir, tiny_bert_dir_b, num_ca_layers=3)
    with pytest.raises(JtcseError, match=r"tower B \./no/such/dir: no such directory"):
        TwinTower.from_pretrained(tiny_bert_dir, "./no/such/dir")
