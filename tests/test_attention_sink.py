"""The attention-sink metrics against hand computations, and the diagnostic on tiny real models."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from jtcse.analysis.attention_sink import (
    DiagnoseReport,
    cls_attention_mass,
    cls_norm_ratio,
    diagnose,
    model_sources,
)
from jtcse.errors import JtcseError

SENTENCES = [
    "A man is playing a guitar.",
    "Two dogs run across the snowy field while children watch.",
    "Hello.",
    "The committee postponed its decision until the next meeting.",
    "",
]


def test_cls_attention_mass_by_hand() -> None:
    # B=2, heads=2, T=3; sentence 1 has a padding token at position 2.
    probs = torch.zeros(2, 2, 3, 3)
    # mass on key 0 per (head, query): sentence 0
    probs[0, 0, :, 0] = torch.tensor([0.9, 0.2, 0.4])
    probs[0, 1, :, 0] = torch.tensor([0.7, 0.6, 0.0])
    # sentence 1: the padding query (position 2) carries junk that must be ignored
    probs[1, 0, :, 0] = torch.tensor([0.5, 0.3, 0.99])
    probs[1, 1, :, 0] = torch.tensor([0.1, 0.1, 0.99])
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]])

    got = cls_attention_mass([probs, 2 * probs], mask)
    # sentence 0: queries 1, 2 -> head means 0.4 and 0.2 -> 0.3; sentence 1: query 1 -> (0.3 + 0.1) / 2 = 0.2
    expected = torch.tensor([[0.3, 0.6], [0.2, 0.4]], dtype=torch.float64)
    assert got.shape == (2, 2)
    torch.testing.assert_close(got, expected)

    with_cls = cls_attention_mass([probs], mask, include_cls_query=True)
    # sentence 0: head means per query (0.8, 0.4, 0.2) -> 1.4 / 3; sentence 1: (0.3, 0.2) -> 0.25
    torch.testing.assert_close(with_cls[:, 0], torch.tensor([1.4 / 3, 0.25], dtype=torch.float64))


def test_cls_norm_ratio_by_hand() -> None:
    states = torch.zeros(2, 4, 2)
    states[0] = torch.tensor([[3.0, 4.0], [1.0, 0.0], [0.0, 2.0], [100.0, 0.0]])  # last one is padding
    states[1] = torch.tensor([[0.0, 1.0], [0.0, 4.0], [3.0, 4.0], [6.0, 8.0]])
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]])

    got = cls_norm_ratio([states, 3 * states], mask)
    # sentence 0: 5 / mean(1, 2) = 10/3; sentence 1: 1 / mean(4, 5, 10) = 3/19; scaling changes nothing
    expected = torch.tensor([[10 / 3, 10 / 3], [3 / 19, 3 / 19]], dtype=torch.float64)
    torch.testing.assert_close(got, expected)


def test_metrics_are_nan_without_other_tokens() -> None:
    mask = torch.tensor([[1, 0, 0]])
    assert math.isnan(cls_norm_ratio([torch.ones(1, 3, 2)], mask).item())
    assert math.isnan(cls_attention_mass([torch.full((1, 1, 3, 3), 1 / 3)], mask).item())


def _reference(model_dir: Path, sentences: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Each sentence alone (no padding), with plain numpy loops: mean over sentences of both metrics."""
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModel.from_pretrained(model_dir, attn_implementation="eager").eval()
    attn_rows, ratio_rows = [], []
    for text in sentences:
        encoded = tokenizer(text, return_tensors="pt", truncation=True, max_length=64)
        with torch.no_grad():
            out = model(**encoded, output_attentions=True, output_hidden_states=True)
        attn_rows.append([a[0, :, 1:, 0].double().mean().item() for a in out.attentions])
        ratios = []
        for h in out.hidden_states:
            norms = h[0].double().norm(dim=-1).numpy()
            ratios.append(norms[0] / norms[1:].mean())
        ratio_rows.append(ratios)
    return np.mean(attn_rows, axis=0), np.mean(ratio_rows, axis=0)


def test_diagnose_matches_unpadded_reference(tiny_bert_dir: Path) -> None:
    # Batched with padding must equal one sentence at a time: padding keys get no attention.
    report = diagnose(str(tiny_bert_dir), SENTENCES, batch_size=2, label="tiny")
    (series,) = report.series
    attn, ratio = _reference(tiny_bert_dir, SENTENCES)

    assert series.label == "tiny" and series.tower is None and series.num_layers == 4
    assert series.n_sentences == len(SENTENCES)
    assert series.cls_attention_mass[0] is None
    np.testing.assert_allclose(series.cls_attention_mass[1:], attn, rtol=1e-5)
    np.testing.assert_allclose(series.e_cls, ratio, rtol=1e-5)
    assert all(0.0 < v < 1.0 for v in series.cls_attention_mass[1:])


def test_twin_towers_are_diagnosed_separately(
    twin_dir: Path, tiny_bert_dir: Path, tiny_bert_dir_b: Path
) -> None:
    sentences = SENTENCES[:3]
    both = diagnose(twin_dir, sentences, label="twin")
    assert [(s.label, s.tower) for s in both.series] == [("twin:a", "a"), ("twin:b", "b")]
    alone_a = diagnose(tiny_bert_dir, sentences).series[0]
    alone_b = diagnose(tiny_bert_dir_b, sentences).series[0]
    np.testing.assert_allclose(both.series[0].e_cls, alone_a.e_cls)
    np.testing.assert_allclose(both.series[1].cls_attention_mass[1:], alone_b.cls_attention_mass[1:])
    assert both.series[0].e_cls != both.series[1].e_cls  # two different towers

    only_b = diagnose(twin_dir, sentences, tower="b")
    assert [s.tower for s in only_b.series] == ["b"]
    np.testing.assert_allclose(only_b.series[0].e_cls, alone_b.e_cls)


def test_model_sources_errors(tiny_bert_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(JtcseError, match="not a twin tower"):
        model_sources(tiny_bert_dir, tower="a")
    with pytest.raises(JtcseError, match="no such directory"):
        model_sources(tmp_path / "missing")
    with pytest.raises(JtcseError, match="--tower"):
        model_sources(tiny_bert_dir, tower="c")
    with pytest.raises(JtcseError, match="no sentences"):
        diagnose(tiny_bert_dir, [])


def test_loaded_model_is_switched_to_eager_and_restored(tiny_bert_dir: Path) -> None:
    from transformers import AutoModel, AutoTokenizer

    model = AutoModel.from_pretrained(tiny_bert_dir, attn_implementation="sdpa")
    if not hasattr(model, "set_attn_implementation"):
        pytest.skip("this transformers cannot switch attention at run time")
    model.train()
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert_dir)
    report = diagnose(model, SENTENCES[:3], tokenizer=tokenizer, label="loaded")
    reference = diagnose(tiny_bert_dir, SENTENCES[:3])
    np.testing.assert_allclose(report.series[0].e_cls, reference.series[0].e_cls, rtol=1e-5)
    np.testing.assert_allclose(
        report.series[0].cls_attention_mass[1:], reference.series[0].cls_attention_mass[1:], rtol=1e-5
    )
    assert model.training
    assert model.config._attn_implementation == "sdpa"


def test_report_merge_table_and_json(tiny_bert_dir: Path) -> None:
    one = diagnose(tiny_bert_dir, SENTENCES[:2], label="m")
    merged = DiagnoseReport.merge([one, one])
    assert [s.label for s in merged.series] == ["m", "m#2"]
    lines = merged.format_table().splitlines()
    assert lines[0].split() == ["layer", "m", "cls_attn", "m", "e_cls", "m#2", "cls_attn", "m#2", "e_cls"]
    assert len(lines) == 1 + 5  # header + layers 0..4
    assert lines[1].split()[1] == "-"  # no attention at the embedding layer
    data = merged.to_json()
    assert data["settings"]["n_sentences"] == 2
    assert len(data["series"]) == 2 and len(data["series"][0]["e_cls"]) == 5
