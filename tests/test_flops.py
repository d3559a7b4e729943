"""The FLOP count of a BERT layer (bench/roofline.py's yardstick) against torch's own FLOP counter."""

from __future__ import annotations

import pytest

from jtcse.tools.flops import EncoderShape, bert_layer_flops_per_token


def test_minilm_layer_by_hand() -> None:
    # 4 projections 8*384*384 + feed-forward 4*384*1536 + attention 4*16*384
    assert bert_layer_flops_per_token(384, 1536, 16) == 1_179_648 + 2_359_296 + 24_576


@pytest.mark.parametrize("length", [1, 7, 33])
def test_matches_torch_flop_counter_on_a_bert_encoder(length: int) -> None:
    import torch
    from torch.utils.flop_counter import FlopCounterMode
    from transformers import BertConfig, BertModel

    config = BertConfig(
        vocab_size=50,
        hidden_size=48,
        num_hidden_layers=3,
        num_attention_heads=4,
        intermediate_size=80,
        max_position_embeddings=64,
        attn_implementation="eager",
        add_pooling_layer=False,
    )
    model = BertModel(config, add_pooling_layer=False).eval()
    ids = torch.randint(0, 50, (2, length))
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(input_ids=ids, attention_mask=torch.ones_like(ids))
    shape = EncoderShape.from_config(config.to_dict())
    assert counter.get_total_flops() == 2 * shape.sequence_flops(length)
    assert shape.real_flops([length, length]) == counter.get_total_flops()
    assert shape.padded_flops([(2, length)]) == counter.get_total_flops()


def test_padding_costs_more_than_the_real_tokens() -> None:
    shape = EncoderShape(hidden=384, intermediate=1536, layers=6)
    real = shape.real_flops([5, 9, 12])
    assert shape.padded_flops([(3, 12)]) > real == sum(shape.sequence_flops(n) for n in (5, 9, 12))
    with pytest.raises(ValueError):
        EncoderShape.from_config({"hidden_size": 384})
