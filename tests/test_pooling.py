"""Poolers against a by-hand computation on a tiny random BERT (padded batch, masks honoured)."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModel, AutoTokenizer

from jtcse.errors import JtcseError
from jtcse.model.pooling import POOLERS, check_pooler, masked_mean, needs_hidden_states, pool

SENTENCES = ["a short one", "a much longer sentence with quite a few more words in it than the first"]


@pytest.fixture(scope="module")
def batch(tiny_bert_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert_dir)
    model = AutoModel.from_pretrained(tiny_bert_dir).eval()
    inputs = tokenizer(SENTENCES, padding=True, return_tensors="pt")
    with torch.no_grad():
        outputs = model(**inputs, output_hidden_states=True, return_dict=True)
    lengths = inputs["attention_mask"].sum(1).tolist()
    assert lengths[0] < lengths[1]  # the first row really is padded
    return model, inputs, outputs, lengths


def _mean_of_real_tokens(states: torch.Tensor, lengths: list[int]) -> torch.Tensor:
    return torch.stack([states[i, :n].mean(0) for i, n in enumerate(lengths)])


def test_cls_is_dense_tanh_on_cls_state(batch):
    model, inputs, outputs, _ = batch
    cls_state = outputs.last_hidden_state[:, 0]
    expected = torch.tanh(cls_state @ model.pooler.dense.weight.T + model.pooler.dense.bias)
    torch.testing.assert_close(pool("cls", outputs, inputs["attention_mask"]), expected, rtol=0, atol=1e-6)


def test_cls_before_pooler_is_last_layer_position_zero(batch):
    _, inputs, outputs, _ = batch
    got = pool("cls_before_pooler", outputs, inputs["attention_mask"])
    torch.testing.assert_close(got, outputs.hidden_states[-1][:, 0], rtol=0, atol=0)


def test_avg_ignores_padding(batch):
    _, inputs, outputs, lengths = batch
    expected = _mean_of_real_tokens(outputs.last_hidden_state, lengths)
    torch.testing.assert_close(pool("avg", outputs, inputs["attention_mask"]), expected, rtol=0, atol=1e-6)


def test_avg_first_last_uses_first_transformer_layer_as_simcse_evaluation(batch):
    _, inputs, outputs, lengths = batch
    hs = outputs.hidden_states
    expected = _mean_of_real_tokens((hs[1] + hs[-1]) / 2, lengths)
    got = pool("avg_first_last", outputs, inputs["attention_mask"])
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)
    with_embeddings = _mean_of_real_tokens((hs[0] + hs[-1]) / 2, lengths)
    assert not torch.allclose(got, with_embeddings, atol=1e-3)  # the choice is observable


def test_masked_mean_by_hand():
    states = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])
    mask = torch.tensor([[1, 1, 0]])
    torch.testing.assert_close(masked_mean(states, mask), torch.tensor([[2.0, 3.0]]))


def test_unknown_pooler_names_option_and_choices():
    with pytest.raises(JtcseError) as info:
        check_pooler("max")
    message = str(info.value)
    assert "--pooler max" in message and "\n" not in message
    for name in POOLERS:
        assert name in message


def test_cls_without_pooler_output_is_an_error(tiny_bert_dir):
    model = AutoModel.from_pretrained(tiny_bert_dir, add_pooling_layer=False).eval()
    ids = torch.tensor([[101, 2023, 102]])
    mask = torch.ones_like(ids)
    with torch.no_grad():
        outputs = model(input_ids=ids, attention_mask=mask, return_dict=True)
    with pytest.raises(JtcseError, match="--pooler cls"):
        pool("cls", outputs, mask)


def test_only_avg_first_last_needs_hidden_states():
    assert [p for p in POOLERS if needs_hidden_states(p)] == ["avg_first_last"]
