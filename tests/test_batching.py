"""Epoch order (seeded; random or length-bucketed) and per-batch tokenisation into interleaved rows."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from transformers import AutoTokenizer

from jtcse.data.batching import PairTokenizer, pack_batches, plan_epoch, unpack_batches


def _lengths(n: int = 1000, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(5, 300, size=n)


BATCHINGS = ["random", "length_bucketed"]


@pytest.mark.parametrize("batching", BATCHINGS)
def test_every_sentence_once_per_epoch(batching):
    lengths = _lengths(1003)
    batches = plan_epoch(lengths, 64, seed=1, epoch=0, batching=batching)
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(1003))
    sizes = sorted(len(b) for b in batches)
    assert sizes[0] == 1003 % 64 and set(sizes[1:]) == {64} and len(batches) == -(-1003 // 64)


@pytest.mark.parametrize("batching", BATCHINGS)
def test_order_depends_on_seed_and_epoch_only(batching):
    lengths = _lengths()
    first = plan_epoch(lengths, 32, seed=3, epoch=0, batching=batching)
    np.random.seed(123)  # the global RNGs must not matter
    torch.manual_seed(123)
    again = plan_epoch(lengths, 32, seed=3, epoch=0, batching=batching)
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    other_epoch = plan_epoch(lengths, 32, seed=3, epoch=1, batching=batching)
    other_seed = plan_epoch(lengths, 32, seed=4, epoch=0, batching=batching)
    assert not np.array_equal(np.concatenate(first), np.concatenate(other_epoch))
    assert not np.array_equal(np.concatenate(first), np.concatenate(other_seed))


def test_bucketing_cuts_padding():
    lengths = _lengths(6400)

    def padded(batches):  # total padded size: each batch costs its longest sentence per row
        return sum(len(b) * lengths[b].max() for b in batches)

    plain = plan_epoch(lengths, 64, seed=0, epoch=0, batching="random")
    bucketed = plan_epoch(lengths, 64, seed=0, epoch=0, batching="length_bucketed", bucket_window=50)
    assert padded(bucketed) < 0.7 * padded(plain)
    # batches are still shuffled: the first batches are not the shortest ones
    firsts = [lengths[b].mean() for b in bucketed[:10]]
    assert not all(x <= y for x, y in itertools.pairwise(firsts))


def test_random_batches_are_a_uniform_shuffle():
    """random: one permutation cut in order (the DataLoader(shuffle=True) order): every batch spans the
    lengths, unlike length_bucketed batches, and which sentences share a batch is not a function of length."""
    lengths = _lengths(6400)
    batches = plan_epoch(lengths, 64, seed=0, epoch=0, batching="random")
    rng = np.random.default_rng([0, 0])
    assert np.array_equal(np.concatenate(batches), rng.permutation(6400))
    spread = np.median([np.ptp(lengths[b]) for b in batches])
    bucketed = plan_epoch(lengths, 64, seed=0, epoch=0, batching="length_bucketed")
    assert spread > 200 and np.median([np.ptp(lengths[b]) for b in bucketed]) < 20
    # position in the epoch does not depend on length: the first and second halves have similar means
    flat = lengths[np.concatenate(batches)]
    assert abs(flat[:3200].mean() - flat[3200:].mean()) < 10
    with pytest.raises(ValueError, match="batching must be one of random, length_bucketed"):
        plan_epoch(lengths, 64, seed=0, epoch=0, batching="sorted")


@pytest.mark.parametrize("batching", BATCHINGS)
def test_drop_last(batching):
    batches = plan_epoch(_lengths(100), 32, seed=0, epoch=0, batching=batching, drop_last=True)
    assert len(batches) == 3 and all(len(b) == 32 for b in batches)
    assert plan_epoch(_lengths(10), 32, seed=0, epoch=0, batching=batching, drop_last=True) == []


def test_pack_round_trip():
    batches = plan_epoch(_lengths(77), 16, seed=0, epoch=2)
    flat, offsets = pack_batches(batches)
    assert flat.dtype == torch.int64
    again = unpack_batches(flat, offsets)
    assert all(np.array_equal(a, b) for a, b in zip(batches, again, strict=True))


@pytest.fixture(scope="module")
def tokenizer(minilm_dir):
    return AutoTokenizer.from_pretrained(minilm_dir)


def test_rows_are_interleaved_and_padded_to_the_longest(tokenizer):
    sentences = ["a short one", "a somewhat longer sentence than the first", "mid length here"]
    batch = PairTokenizer(tokenizer, max_len=64)(sentences)
    ids, mask = batch["input_ids"], batch["attention_mask"]
    assert ids.shape[0] == 6
    for i in range(3):
        assert torch.equal(ids[2 * i], ids[2 * i + 1])
    single = tokenizer(sentences[1])["input_ids"]
    assert ids.shape[1] == len(single) and mask[2].sum() == len(single)
    assert torch.equal(ids[0, : int(mask[0].sum())], torch.tensor(tokenizer(sentences[0])["input_ids"]))


def test_truncation_and_fixed_padding(tokenizer):
    long = " ".join(["word"] * 200)
    batch = PairTokenizer(tokenizer, max_len=16)([long, "hi"])
    assert batch["input_ids"].shape == (4, 16)
    fixed = PairTokenizer(tokenizer, max_len=64, pad_to_max_length=True)(["hi", "there"])
    assert fixed["input_ids"].shape == (4, 64)
