"""Cross-attention between two towers: layer positions, and the CA states against from-scratch references.

The references below recompute each layer from the raw weights (``F.linear``, ``F.layer_norm``, an explicit
masked softmax) and take the layer inputs from the plain Hugging Face forward (``output_hidden_states``), so
they share no code with :mod:`jtcse.model.cross_attention`.
"""

from __future__ import annotations

import copy
import math
import threading

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from transformers import AutoModel

from jtcse.errors import JtcseError
from jtcse.model.cross_attention import ca_layer_indices, tap_layers, valid_ca_counts
from jtcse.model.twin_tower import TwinTower

ATOL = 1e-5


# ----------------------------------------------------------------------------------------------- positions
@pytest.mark.parametrize(
    ("num_layers", "n", "placement", "expected"),
    [
        (4, 0, "end", []),
        (4, 1, "end", [3]),
        (4, 2, "end", [1, 3]),
        (4, 4, "end", [0, 1, 2, 3]),
        (4, 1, "start", [0]),
        (4, 2, "start", [0, 2]),
        (4, 4, "start", [0, 1, 2, 3]),
        # official choices for 12 layers; "end": after layers s, 2s, ..., 12 (1-indexed), 0-based s-1, ..., 11
        (12, 1, "end", [11]),
        (12, 2, "end", [5, 11]),
        (12, 3, "end", [3, 7, 11]),
        (12, 4, "end", [2, 5, 8, 11]),
        (12, 6, "end", [1, 3, 5, 7, 9, 11]),
        (12, 12, "end", list(range(12))),
        (12, 1, "start", [0]),
        (12, 3, "start", [0, 4, 8]),
        (12, 6, "start", [0, 2, 4, 6, 8, 10]),
    ],
)
def test_ca_layer_positions(num_layers: int, n: int, placement: str, expected: list[int]) -> None:
    assert ca_layer_indices(num_layers, n, placement) == expected


def test_end_placement_always_includes_last_layer() -> None:
    for n in valid_ca_counts(12)[1:]:
        indices = ca_layer_indices(12, n)
        assert indices[-1] == 11 and len(indices) == n


@pytest.mark.parametrize(
    ("num_layers", "n", "listed"),
    [(12, 5, "0, 1, 2, 3, 4, 6, 12"), (4, 3, "0, 1, 2, 4"), (4, 8, "0, 1, 2, 4"), (4, -1, "0, 1, 2, 4")],
)
def test_invalid_num_ca_layers_lists_valid_values(num_layers: int, n: int, listed: str) -> None:
    with pytest.raises(JtcseError, match=r"num_ca_layers") as info:
        ca_layer_indices(num_layers, n)
    assert listed in str(info.value) and "\n" not in str(info.value)


def test_invalid_placement_and_non_int_count() -> None:
    with pytest.raises(JtcseError, match=r"ca_placement 'middle'.*end, start"):
        ca_layer_indices(12, 6, "middle")
    with pytest.raises(JtcseError, match="num_ca_layers"):
        ca_layer_indices(12, 6.0)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------------------- references
def _heads(layer: nn.Module, x: Tensor) -> Tensor:
    n, length, hidden = x.shape
    heads = layer.attention.self.num_attention_heads
    return x.view(n, length, heads, hidden // heads).permute(0, 2, 1, 3)


def ref_probs(layer: nn.Module, h: Tensor, mask: Tensor) -> Tensor:
    """softmax(Q K^T / sqrt(d) + mask) from the layer's raw weights: [N, heads, L, L]."""
    sa = layer.attention.self
    q = _heads(layer, F.linear(h, sa.query.weight, sa.query.bias))
    k = _heads(layer, F.linear(h, sa.key.weight, sa.key.bias))
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    scores = scores.masked_fill(mask[:, None, None, :] == 0, float("-inf"))
    return scores.softmax(dim=-1)


def ref_values(layer: nn.Module, h: Tensor) -> Tensor:
    sa = layer.attention.self
    return _heads(layer, F.linear(h, sa.value.weight, sa.value.bias))


def ref_rest_of_layer(layer: nn.Module, context: Tensor, h: Tensor) -> Tensor:
    """Output sublayer + FFN from raw weights; ``context`` is [N, heads, L, d]."""
    n, heads, length, d = context.shape
    x = context.permute(0, 2, 1, 3).reshape(n, length, heads * d)
    so, it, out = layer.attention.output, layer.intermediate, layer.output
    hidden = x.shape[-1]
    a = F.layer_norm(
        F.linear(x, so.dense.weight, so.dense.bias) + h,
        (hidden,),
        so.LayerNorm.weight,
        so.LayerNorm.bias,
        so.LayerNorm.eps,
    )
    inter = F.gelu(F.linear(a, it.dense.weight, it.dense.bias))
    return F.layer_norm(
        F.linear(inter, out.dense.weight, out.dense.bias) + a,
        (hidden,),
        out.LayerNorm.weight,
        out.LayerNorm.bias,
        out.LayerNorm.eps,
    )


def ref_side_cls(tower_a: nn.Module, tower_b: nn.Module, batch: dict, index: int) -> tuple[Tensor, Tensor]:
    """CLS of the cross-attended layer ``index`` (A's probs on B's values, and B on A), from plain towers."""
    mask = batch["attention_mask"]
    hs_a = tower_a(**batch, output_hidden_states=True).hidden_states
    hs_b = tower_b(**batch, output_hidden_states=True).hidden_states
    la, lb = tower_a.encoder.layer[index], tower_b.encoder.layer[index]
    ha, hb = hs_a[index], hs_b[index]  # hidden_states[i] is the input of layer i
    out_a = ref_rest_of_layer(la, ref_probs(la, ha, mask) @ ref_values(lb, hb), ha)
    out_b = ref_rest_of_layer(lb, ref_probs(lb, hb, mask) @ ref_values(la, ha), hb)
    return out_a[:, 0], out_b[:, 0]


def ref_in_stream(
    tower_a: nn.Module, tower_b: nn.Module, batch: dict, indices: list[int]
) -> tuple[Tensor, Tensor]:
    """Last hidden states of both towers, stepped by hand; CA layers take the other tower's values."""
    mask = batch["attention_mask"]
    ha = tower_a(**batch, output_hidden_states=True).hidden_states[0]  # embeddings do not depend on CA
    hb = tower_b(**batch, output_hidden_states=True).hidden_states[0]
    for i, (la, lb) in enumerate(zip(tower_a.encoder.layer, tower_b.encoder.layer, strict=True)):
        va, vb = ref_values(la, ha), ref_values(lb, hb)
        if i in indices:
            va, vb = vb, va
        ha, hb = (
            ref_rest_of_layer(la, ref_probs(la, ha, mask) @ va, ha),
            ref_rest_of_layer(lb, ref_probs(lb, hb, mask) @ vb, hb),
        )
    return ha, hb


# ----------------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def batch(tiny_bert_dir) -> dict:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_bert_dir)
    sentences = [
        "a man is playing a guitar .",
        "hi",
        "the quick brown fox jumps over the lazy dog near the river",
    ]
    enc = tok(sentences, padding=True, return_tensors="pt")  # padded rows exercise the mask
    return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}


def _pair(dir_a, dir_b, **kw) -> tuple[nn.Module, nn.Module]:
    return AutoModel.from_pretrained(dir_a, **kw).eval(), AutoModel.from_pretrained(dir_b, **kw).eval()


PAIRS = ["bert", "roberta"]


def _dirs(kind: str, request: pytest.FixtureRequest):
    if kind == "bert":
        return request.getfixturevalue("tiny_bert_dir"), request.getfixturevalue("tiny_bert_dir_b")
    # two different RoBERTa towers: the fixture and a perturbed copy of it
    return request.getfixturevalue("tiny_roberta_dir"), None


def _towers(kind: str, request: pytest.FixtureRequest, **kw) -> tuple[nn.Module, nn.Module]:
    from transformers import BertModel, RobertaModel

    if (
        kw.get("attn_implementation") == "sdpa"
        and not {"bert": BertModel, "roberta": RobertaModel}[kind]._supports_sdpa
    ):
        pytest.skip(f"this transformers version has no SDPA attention for {kind}")
    dir_a, dir_b = _dirs(kind, request)
    if dir_b is not None:
        return _pair(dir_a, dir_b, **kw)
    a, b = _pair(dir_a, dir_a, **kw)
    torch.manual_seed(5)
    with torch.no_grad():
        for p in b.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return a, b


# ----------------------------------------------------------------------------------------------- side branch
@pytest.mark.parametrize("kind", PAIRS)
@pytest.mark.parametrize("attn", ["eager", "sdpa"])
def test_side_branch_matches_reference(kind: str, attn: str, batch: dict, request) -> None:
    tower_a, tower_b = _towers(kind, request, attn_implementation=attn)
    twin = TwinTower(tower_a, tower_b, num_ca_layers=4).eval()
    with torch.no_grad():
        out = twin(**batch)
        assert len(out.ca_a) == len(out.ca_b) == 4
        for k, index in enumerate(twin.ca_layer_indices):
            ref_a, ref_b = ref_side_cls(tower_a, tower_b, batch, index)
            torch.testing.assert_close(out.ca_a[k], ref_a, atol=ATOL, rtol=0)
            torch.testing.assert_close(out.ca_b[k], ref_b, atol=ATOL, rtol=0)
            assert not torch.allclose(out.ca_a[k], out.ca_b[k])


def test_side_branch_of_identical_towers_is_the_plain_layer_output(tiny_bert_dir, batch) -> None:
    """With B a copy of A, 'A's probs on B's values' is plain self-attention: the CA state at layer i must
    equal the HF model's CLS after layer i; ties the side branch to transformers' own layer computation."""
    tower_a = AutoModel.from_pretrained(tiny_bert_dir).eval()
    twin = TwinTower(tower_a, copy.deepcopy(tower_a), num_ca_layers=4).eval()
    with torch.no_grad():
        out = twin(**batch)
        hidden = tower_a(**batch, output_hidden_states=True).hidden_states
    for k, index in enumerate(twin.ca_layer_indices):
        torch.testing.assert_close(out.ca_a[k], hidden[index + 1][:, 0], atol=ATOL, rtol=0)
    torch.testing.assert_close(out.ca_a[-1], out.cls_a, atol=ATOL, rtol=0)


def test_side_branch_under_no_grad_equals_grad_mode(tiny_bert_dir, tiny_bert_dir_b, batch) -> None:
    twin = TwinTower(*_pair(tiny_bert_dir, tiny_bert_dir_b), num_ca_layers=2).eval()
    with torch.no_grad():
        quiet = twin(**batch)
    loud = twin(**batch)
    assert loud.ca_a[0].requires_grad and not quiet.ca_a[0].requires_grad
    for x, y in zip(quiet.ca_a + quiet.ca_b, loud.ca_a + loud.ca_b, strict=True):
        assert torch.equal(x, y.detach())


# ----------------------------------------------------------------------------------------------- in-stream
@pytest.mark.parametrize("kind", PAIRS)
@pytest.mark.parametrize("attn", ["eager", "sdpa"])
def test_in_stream_matches_hand_stepped_reference(kind: str, attn: str, batch: dict, request) -> None:
    tower_a, tower_b = _towers(kind, request, attn_implementation=attn)
    twin = TwinTower(tower_a, tower_b, num_ca_layers=2, ca_mode="in_stream").eval()
    with torch.no_grad():
        out = twin(**batch)
        ref_a, ref_b = ref_in_stream(tower_a, tower_b, batch, twin.ca_layer_indices)
        plain_a = tower_a(**batch).last_hidden_state[:, 0]
    torch.testing.assert_close(out.cls_a, ref_a[:, 0], atol=ATOL, rtol=0)
    torch.testing.assert_close(out.cls_b, ref_b[:, 0], atol=ATOL, rtol=0)
    torch.testing.assert_close(out.pooled_a, tower_a.pooler(ref_a), atol=ATOL, rtol=0)
    assert (out.cls_a - plain_a).abs().max() > 1e-3  # CA really is in the main stream
    assert len(out.ca_a) == 2
    # the last CA layer is the last layer ("end" placement), so its CLS state is the final CLS
    torch.testing.assert_close(out.ca_a[-1], out.cls_a)


def test_in_stream_of_identical_towers_is_the_plain_model(tiny_roberta_dir, batch) -> None:
    """Stepping the HF layers by hand (embeddings, 4-D mask, padding) must reproduce the HF forward."""
    tower_a = AutoModel.from_pretrained(tiny_roberta_dir).eval()
    twin = TwinTower(tower_a, copy.deepcopy(tower_a), num_ca_layers=2, ca_mode="in_stream").eval()
    with torch.no_grad():
        out = twin(**batch)
        plain = tower_a(**batch)
    torch.testing.assert_close(out.cls_a, plain.last_hidden_state[:, 0], atol=ATOL, rtol=0)
    torch.testing.assert_close(out.pooled_a, plain.pooler_output, atol=ATOL, rtol=0)


# ----------------------------------------------------------------------------------------------- gradients
@pytest.mark.parametrize("mode", ["side_all", "side_last", "in_stream"])
def test_gradients_of_ca_state_reach_both_towers(mode: str, tiny_bert_dir, tiny_bert_dir_b, batch) -> None:
    twin = TwinTower(*_pair(tiny_bert_dir, tiny_bert_dir_b), num_ca_layers=2, ca_mode=mode).train()
    out = twin(**batch)
    out.ca_a[-1].pow(2).sum().backward()
    index = twin.ca_layer_indices[-1]
    la, lb = twin.tower_a.encoder.layer[index], twin.tower_b.encoder.layer[index]

    def has_grad(p: nn.Parameter) -> bool:
        return p.grad is not None and p.grad.abs().sum() > 0

    assert has_grad(lb.attention.self.value.weight)  # B's values feed A's CA state
    assert has_grad(la.attention.self.query.weight) and has_grad(la.attention.self.key.weight)
    assert has_grad(la.intermediate.dense.weight)  # A's FFN is applied to the CA output
    # A's CA state at the last CA layer uses B only through V_B: B's query/key there are not involved
    assert not has_grad(lb.attention.self.query.weight) and not has_grad(lb.attention.self.key.weight)


@pytest.mark.parametrize("reentrant", [True, False])
def test_side_branch_survives_gradient_checkpointing(
    reentrant: bool, tiny_bert_dir, tiny_bert_dir_b, batch
) -> None:
    torch.manual_seed(0)
    ref = TwinTower(
        *_pair(tiny_bert_dir, tiny_bert_dir_b, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0),
        num_ca_layers=2,
    ).train()
    ckpt = copy.deepcopy(ref)
    for tower in (ckpt.tower_a, ckpt.tower_b):
        # transformers 5 renamed the method (the old name warns); 4.x only has the old one
        kwargs = {"use_reentrant": reentrant}
        if hasattr(tower, "activation_checkpointing_enable"):
            tower.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
        else:
            tower.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
    # not a plain sum: the sum of a LayerNorm output with unit gain is constant, its gradient zero
    weight = torch.randn(ref.tower_a.config.hidden_size)
    grads = []
    for twin in (ref, ckpt):
        out = twin(**batch)
        ((out.ca_a[0] + out.ca_b[-1] + out.cls_a) @ weight).pow(2).sum().backward()
        grads.append(twin.tower_b.encoder.layer[twin.ca_layer_indices[0]].attention.self.value.weight.grad)
    assert grads[1] is not None
    torch.testing.assert_close(grads[0], grads[1], atol=ATOL, rtol=1e-4)


# ----------------------------------------------------------------------------------------------- hooks
def _hook_count(tower: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in tower.modules())


def test_hooks_are_removed_and_leave_plain_forward_alone(tiny_bert_dir, tiny_bert_dir_b, batch) -> None:
    tower_a, tower_b = _pair(tiny_bert_dir, tiny_bert_dir_b)
    before_hooks = _hook_count(tower_a)
    with torch.no_grad():
        before = tower_a(**batch).last_hidden_state
        TwinTower(tower_a, tower_b, num_ca_layers=4)(**batch)
        after = tower_a(**batch).last_hidden_state
    assert _hook_count(tower_a) == before_hooks
    assert torch.equal(before, after)


def test_hooks_are_removed_when_forward_raises(tiny_bert_dir, tiny_bert_dir_b, batch) -> None:
    tower_a, tower_b = _pair(tiny_bert_dir, tiny_bert_dir_b)
    before_hooks = _hook_count(tower_a) + _hook_count(tower_b)
    twin = TwinTower(tower_a, tower_b, num_ca_layers=4)
    bad = dict(
        batch, input_ids=batch["input_ids"] + 10**6
    )  # out of the vocabulary: the embedding lookup fails
    with pytest.raises(IndexError):
        twin(**bad)
    assert _hook_count(tower_a) + _hook_count(tower_b) == before_hooks


def test_taps_record_only_the_opening_thread(tiny_bert_dir, batch) -> None:
    tower = AutoModel.from_pretrained(tiny_bert_dir).eval()
    with torch.no_grad(), tap_layers(tower, [1, 3]) as taps:
        worker = threading.Thread(target=lambda: tower(**batch))
        worker.start()
        worker.join()
        assert not any(t.complete() or t.key is not None for t in taps.values())
        tower(**batch)
        assert all(t.complete() for t in taps.values())
        assert taps[1].query_cls.shape[1] == 1
