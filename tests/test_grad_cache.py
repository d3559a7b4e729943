"""Gradient caching: chunked embedding without a graph, loss on cached vectors, replayed re-embedding.

With dropout ON the grad-cached gradient equals that of the one-graph computation drawing the same masks
(the same chunks, from the same RNG state), thanks to the RNG replay; without the replay it does not.
With dropout off it equals the plain one-pass step.
"""

from __future__ import annotations

import random

import pytest
import torch

from jtcse.data.batching import PairTokenizer
from jtcse.training.config import config_from_dict, resolve
from jtcse.training.grad_cache import grad_cached_backward, split_sentences
from jtcse.training.metrics import read_metrics
from jtcse.training.precision import resolve_precision
from jtcse.training.seeding import seed_everything
from jtcse.training.step import StepExecutor, Vectors
from jtcse.training.tasks import build_task
from jtcse.training.trainer import train
from train_fixtures import WORDS, tiny_config

CPU = torch.device("cpu")
N_SENTENCES = 6
CHUNK = 2
ATOL = 1e-5


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: extra threads only spin on a shared CPU
    yield
    torch.set_num_threads(threads)


def _raw(tmp_path, tiny_a, tiny_b, method, dropout):
    model = {"dropout": dropout}
    if method == "jtcse":
        model.update(tower_a=str(tiny_a), tower_b=str(tiny_b))  # CA on 2 layers, all four terms
    return tiny_config(tmp_path, tiny_a, method=method, model=model)


def _task(raw):
    config = resolve(config_from_dict(raw))
    seed_everything(config.seed)
    task = build_task(config)
    task.train()
    return task


def _batch(task):
    rng = random.Random(11)
    texts = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 12))) for _ in range(N_SENTENCES)]
    return PairTokenizer(task.tokenizer, 16)(texts)


def _grads(task):
    return {n: p.grad.clone() for n, p in task.named_parameters() if p.grad is not None}


def _max_difference(a, b):
    assert a.keys() == b.keys()
    return max(float((a[n] - b[n]).abs().max()) for n in a)


def _one_graph_chunked(task, batch):
    """The reference: the same chunks embedded *with* a graph, from the same RNG state, one backward."""
    torch.manual_seed(123)
    random.seed(5)
    parts = [task.embed_rows(part) for part in split_sentences(batch, N_SENTENCES, CHUNK)]
    vectors = {key: torch.cat([p[key] for p in parts]) for key in parts[0]}
    terms = task.loss_from_vectors(Vectors.single(vectors))
    terms["loss"].backward()
    return terms, _grads(task), torch.rand(3)


def _grad_cached(task, batch, *, replay_rng=True):
    torch.manual_seed(123)
    random.seed(5)
    if replay_rng:  # the trainer's path
        step = StepExecutor(task, CPU, resolve_precision("fp32", CPU), grad_cache_chunk=CHUNK)
        terms = step(batch, [N_SENTENCES])
    else:
        terms = grad_cached_backward(
            batch,
            N_SENTENCES,
            CHUNK,
            embed=task.embed_rows,
            embed_with_graph=task.embed_rows,
            loss_from_vectors=lambda local: task.loss_from_vectors(Vectors.single(local)),
            device=CPU,
            autocast=resolve_precision("fp32", CPU).autocast,
            replay_rng=False,
        )
    return terms, _grads(task), torch.rand(3)


@pytest.mark.parametrize("method", ["simcse", "jtcse"])
def test_grad_cached_step_equals_the_one_graph_step_with_dropout_on(
    tmp_path, tiny_bert_dir, tiny_bert_dir_b, method
):
    raw = _raw(tmp_path, tiny_bert_dir, tiny_bert_dir_b, method, dropout=0.1)
    reference_task, cached_task = _task(raw), _task(raw)
    batch = _batch(reference_task)
    ref_terms, ref_grads, ref_next = _one_graph_chunked(reference_task, batch)
    terms, grads, next_draw = _grad_cached(cached_task, batch)

    for key, value in ref_terms.items():
        assert float(terms[key]) == pytest.approx(float(value.detach()), abs=ATOL), key
    assert _max_difference(grads, ref_grads) <= ATOL
    # the RNG continues from where the first (no-graph) pass left it, as after the reference's one pass
    assert torch.equal(next_draw, ref_next)
    # dropout did act: without it the loss would be another number
    no_dropout_task = _task(_raw(tmp_path, tiny_bert_dir, tiny_bert_dir_b, method, dropout=0.0))
    random.seed(5)
    assert float(no_dropout_task.losses(batch)["loss"].detach()) != pytest.approx(
        float(ref_terms["loss"].detach()), abs=1e-3
    )


@pytest.mark.parametrize("method", ["simcse", "jtcse"])
def test_without_the_rng_replay_the_gradients_differ(tmp_path, tiny_bert_dir, tiny_bert_dir_b, method):
    raw = _raw(tmp_path, tiny_bert_dir, tiny_bert_dir_b, method, dropout=0.1)
    reference_task, cached_task = _task(raw), _task(raw)
    batch = _batch(reference_task)
    ref_terms, ref_grads, _ = _one_graph_chunked(reference_task, batch)
    terms, grads, _ = _grad_cached(cached_task, batch, replay_rng=False)
    # the loss (first pass) is the same; the re-embedding drew fresh masks, so the gradient is wrong
    assert float(terms["loss"].detach()) == pytest.approx(float(ref_terms["loss"].detach()), abs=ATOL)
    assert _max_difference(grads, ref_grads) > 100 * ATOL


def test_with_dropout_off_it_equals_the_plain_one_pass_step(tmp_path, tiny_bert_dir, tiny_bert_dir_b):
    raw = _raw(tmp_path, tiny_bert_dir, tiny_bert_dir_b, "jtcse", dropout=0.0)
    plain_task, cached_task = _task(raw), _task(raw)
    batch = _batch(plain_task)
    random.seed(5)
    plain = plain_task.losses(batch)
    plain["loss"].backward()
    terms, grads, _ = _grad_cached(cached_task, batch)
    assert float(terms["loss"]) == pytest.approx(float(plain["loss"].detach()), abs=ATOL)
    assert _max_difference(grads, _grads(plain_task)) <= ATOL


def test_split_keeps_whole_sentences():
    batch = {"input_ids": torch.arange(14).reshape(7, 2).repeat_interleave(2, dim=0), "x": torch.arange(7)}
    parts = split_sentences(batch, 7, 3)
    assert [p["x"].tolist() for p in parts] == [[0, 1, 2], [3, 4, 5], [6]]
    assert [p["input_ids"].shape[0] for p in parts] == [6, 6, 2]  # 2 rows per sentence, pairs never split
    assert torch.equal(torch.cat([p["input_ids"] for p in parts]), batch["input_ids"])
    with pytest.raises(ValueError, match=r"'x' has 7 rows for 4 sentences"):
        split_sentences({"x": torch.arange(7)}, 4, 2)


def test_trainer_with_grad_cache_and_dropout_off_follows_the_plain_curve(tmp_path, tiny_bert_dir):
    """train.grad_cache_chunk through the trainer: the same objective, so (dropout off) the same curve."""
    curves = []
    for chunk in (0, 3):
        raw = tiny_config(
            tmp_path,
            tiny_bert_dir,
            model={"dropout": 0.0},
            train={"epochs": 1, "grad_cache_chunk": chunk},
            eval={"every": 0},
            output_dir=str(tmp_path / f"chunk{chunk}"),
        )
        result = train(resolve(config_from_dict(raw)))
        curves.append([r["loss"] for r in read_metrics(result.output_dir / "metrics.jsonl") if "loss" in r])
    assert len(curves[0]) == 3
    assert curves[1] == pytest.approx(curves[0], abs=ATOL)
