"""The Encoder's batch plan: spans over longest-first lengths that minimise padded tokens plus a cost per
batch, within the row and token limits; checked against an exhaustive search on small inputs."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from jtcse.encoder import _TOKENS_PER_SENTENCE, _batches


def plan_cost(lengths: np.ndarray, spans: list[tuple[int, int]], batch_cost: int) -> int:
    return sum((end - start) * max(int(lengths[start]), 1) + batch_cost for start, end in spans)


def allowed(lengths: np.ndarray, start: int, end: int, batch_size: int) -> bool:
    longest = max(int(lengths[start]), 1)
    return end - start <= max(batch_size, batch_size * _TOKENS_PER_SENTENCE // longest)


def exhaustive_best(lengths: np.ndarray, batch_size: int, batch_cost: int) -> int:
    """Every way to cut the sequence (2^(n-1) of them) that respects the limits: the least cost."""
    n, best = len(lengths), None
    for cuts in itertools.product((False, True), repeat=n - 1):
        bounds = [0, *[i + 1 for i, cut in enumerate(cuts) if cut], n]
        spans = list(itertools.pairwise(bounds))
        if all(allowed(lengths, a, b, batch_size) for a, b in spans):
            cost = plan_cost(lengths, spans, batch_cost)
            best = cost if best is None else min(best, cost)
    return best


@pytest.mark.parametrize("seed", range(20))
def test_plan_is_optimal_against_exhaustive_search(seed):
    rng = np.random.default_rng(seed)
    lengths = np.sort(rng.integers(1, 40, size=int(rng.integers(1, 11))))[::-1]
    batch_size, batch_cost = int(rng.integers(1, 4)), int(rng.integers(0, 30))
    spans = _batches(lengths, batch_size, batch_cost)
    assert spans[0][0] == 0 and spans[-1][1] == len(lengths)
    assert all(a < b for a, b in spans) and all(b == c for (_, b), (c, _) in itertools.pairwise(spans))
    assert all(allowed(lengths, a, b, batch_size) for a, b in spans)
    assert plan_cost(lengths, spans, batch_cost) == exhaustive_best(lengths, batch_size, batch_cost)


def test_small_mixed_input_is_not_padded_to_its_longest():
    """The plain fill-to-the-limit rule ran these 100 lengths as one batch padded to 40 (4,000 tokens)."""
    lengths = np.sort(np.random.default_rng(0).integers(5, 41, size=100))[::-1]
    spans = _batches(lengths, 64, 64)
    padded = sum((b - a) * int(lengths[a]) for a, b in spans)
    assert len(spans) > 1
    assert padded < 1.15 * lengths.sum()


def test_a_huge_batch_cost_keeps_batches_few_and_empty_input_has_none():
    lengths = np.full(300, 10)
    assert _batches(lengths, 64, 10**9) == [(0, 300)]  # 300 x 10 tokens fit 64 x 64
    assert _batches(np.zeros(0, np.int64), 64, 64) == []
