"""Length-sorted sub-batches (train.length_sorted_sub_batch): less padding, the same loss and gradients.

With dropout off, a random batch encoded in length-sorted sub-batches gives the loss and gradients of the
one-pass step (single tower and twin tower with cross-attention), through the trainer's StepExecutor.
"""

from __future__ import annotations

import random

import pytest
import torch

from jtcse.data.batching import PairTokenizer
from jtcse.training.config import config_from_dict, resolve
from jtcse.training.metrics import read_metrics
from jtcse.training.precision import resolve_precision
from jtcse.training.seeding import seed_everything
from jtcse.training.step import StepExecutor
from jtcse.training.sub_batching import embed_length_sorted, length_sorted_split
from jtcse.training.tasks import build_task
from jtcse.training.trainer import train
from train_fixtures import WORDS, tiny_config

CPU = torch.device("cpu")
N_SENTENCES = 7
SUB_BATCH = 3
ATOL = 1e-5


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _task(tmp_path, tiny_a, tiny_b, method):
    model = {"dropout": 0.0}
    if method == "jtcse":
        model.update(tower_a=str(tiny_a), tower_b=str(tiny_b))  # CA on 2 layers, all four terms
    config = resolve(config_from_dict(tiny_config(tmp_path, tiny_a, method=method, model=model)))
    seed_everything(config.seed)
    task = build_task(config)
    task.train()
    return task


def _batch(task):
    rng = random.Random(3)
    texts = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 14))) for _ in range(N_SENTENCES)]
    return PairTokenizer(task.tokenizer, 32)(texts)


def _step(task, batch, sub_batch):
    random.seed(5)  # the JTCSE ICNCE direction
    step = StepExecutor(task, CPU, resolve_precision("fp32", CPU), length_sorted_sub_batch=sub_batch)
    terms = step(batch, [N_SENTENCES])
    return terms, {n: p.grad.clone() for n, p in task.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("method", ["simcse", "jtcse"])
def test_sub_batched_step_equals_the_one_pass_step_with_dropout_off(
    tmp_path, tiny_bert_dir, tiny_bert_dir_b, method
):
    plain_task = _task(tmp_path, tiny_bert_dir, tiny_bert_dir_b, method)
    sorted_task = _task(tmp_path, tiny_bert_dir, tiny_bert_dir_b, method)
    batch = _batch(plain_task)
    plain_terms, plain_grads = _step(plain_task, batch, 0)
    terms, grads = _step(sorted_task, batch, SUB_BATCH)
    for key, value in plain_terms.items():
        assert float(terms[key]) == pytest.approx(float(value), abs=ATOL), key
    assert grads.keys() == plain_grads.keys() and len(grads) > 10
    assert max(float((grads[n] - plain_grads[n]).abs().max()) for n in grads) <= ATOL
    # the vectors themselves come back in the batch's order
    with torch.no_grad():
        whole = plain_task.embed_rows(batch)
        chunked = embed_length_sorted(plain_task.embed_rows, batch, N_SENTENCES, SUB_BATCH)
    for key in whole:
        torch.testing.assert_close(chunked[key], whole[key], atol=ATOL, rtol=0)


def test_split_sorts_by_length_and_trims_each_sub_batch(tiny_bert_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_bert_dir)
    texts = ["a b c d e f g h", "a", "a b c", "a b", "a b c d e"]
    batch = PairTokenizer(tokenizer, 32)(texts)
    batch["teacher0.input_ids"] = batch["input_ids"][::2].clone()  # another row count, prefix-trimmed too
    batch["teacher0.attention_mask"] = batch["attention_mask"][::2].clone()
    parts, order = length_sorted_split(batch, 5, 2)
    assert order.tolist() == [1, 3, 2, 4, 0]  # shortest first
    assert [p["input_ids"].shape for p in parts] == [(4, 4), (4, 7), (2, 10)]  # [CLS] + words + [SEP]
    assert [p["teacher0.input_ids"].shape for p in parts] == [(2, 4), (2, 7), (1, 10)]
    assert all(bool(p["attention_mask"][:, -1].any()) for p in parts)  # no all-padding column kept
    rounded, _ = length_sorted_split(batch, 5, 2, pad_multiple=8)
    assert [p["input_ids"].shape[1] for p in rounded] == [8, 8, 10]  # rounded up, capped at the width


def test_trainer_with_sub_batches_and_dropout_off_follows_the_plain_curve(tmp_path, tiny_bert_dir):
    curves = []
    for sub_batch in (0, 3):
        raw = tiny_config(
            tmp_path,
            tiny_bert_dir,
            model={"dropout": 0.0},
            train={"epochs": 1, "length_sorted_sub_batch": sub_batch},
            eval={"every": 0},
            output_dir=str(tmp_path / f"sub{sub_batch}"),
        )
        result = train(resolve(config_from_dict(raw)))
        curves.append([r["loss"] for r in read_metrics(result.output_dir / "metrics.jsonl") if "loss" in r])
    assert len(curves[0]) == 3
    assert curves[1] == pytest.approx(curves[0], abs=ATOL)
