"""jtcse.losses against plain per-pair loop references of the official semantics (tests/reference_losses.py).

Values and gradients are compared in float64 to 1e-6; each kept quirk of the modulus constraint has its own
test; half precision and autocast must give finite results.
"""

from __future__ import annotations

import math

import pytest
import torch

import reference_losses as ref
from jtcse.errors import JtcseError
from jtcse.losses import (
    LossWeights,
    cross_tower_info_nce,
    distillation_loss,
    info_nce,
    jtcse_objective,
    large_negative,
    modulus_constraint,
    one_sided_info_nce,
    partner_labels,
    simcse_objective,
)

ATOL = 1e-6
DIM = 6
BATCHES = [1, 2, 7]
NEG_LOG_CONST = -math.log(1e-4)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # The tensors here are tiny: intra-op threads only add contention on the shared 2-core machine.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def rand(rows: int, dim: int = DIM, seed: int = 0, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(rows, dim, generator=generator, dtype=torch.float64).to(dtype).requires_grad_()


def twin_inputs(sentences: int, seed: int = 0, dim: int = DIM) -> list[torch.Tensor]:
    """a, b, pooled_a, pooled_b with the LTN cosines well away from 0, both signs present (B >= 2)."""
    generator = torch.Generator().manual_seed(seed)
    a = torch.randn(2 * sentences, dim, generator=generator, dtype=torch.float64)
    b = torch.randn(2 * sentences, dim, generator=generator, dtype=torch.float64)
    signs = torch.tensor([1.0 if k % 2 == 0 else -1.0 for k in range(sentences)], dtype=torch.float64)
    b[1::2] = signs[:, None] * a[0::2] + 0.4 * b[1::2]  # A->B pairs: positive, negative, positive, ...
    a[1::2] = signs[:, None] * b[0::2] + 0.4 * a[1::2]  # B->A pairs likewise
    pooled = torch.tanh(torch.randn(2, 2 * sentences, dim, generator=generator, dtype=torch.float64))
    return [t.clone().requires_grad_() for t in (a, b, pooled[0], pooled[1])]


def assert_same_value_and_grad(fast: torch.Tensor, slow: torch.Tensor, inputs: list[torch.Tensor]) -> None:
    torch.testing.assert_close(fast, slow, atol=ATOL, rtol=0)
    fast_grads = torch.autograd.grad(fast, inputs, allow_unused=True)
    slow_grads = torch.autograd.grad(slow, inputs, allow_unused=True)
    for fast_grad, slow_grad in zip(fast_grads, slow_grads, strict=True):
        fast_grad = torch.zeros_like(inputs[0]) if fast_grad is None else fast_grad
        slow_grad = torch.zeros_like(inputs[0]) if slow_grad is None else slow_grad
        torch.testing.assert_close(fast_grad, slow_grad, atol=ATOL, rtol=0)


def ltn_cosines(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.cosine_similarity(a[0::2], b[1::2], dim=-1).detach()


# ---------------------------------------------------------------- loop references, values and gradients


@pytest.mark.parametrize("sentences", BATCHES)
def test_info_nce_matches_loop(sentences: int) -> None:
    z = rand(2 * sentences, seed=sentences)
    assert_same_value_and_grad(info_nce(z), ref.info_nce(z), [z])


@pytest.mark.parametrize("temperature", [0.05, 1.0])
def test_info_nce_temperature(temperature: float) -> None:
    z = rand(8, seed=3)
    assert_same_value_and_grad(info_nce(z, temperature), ref.info_nce(z, temperature), [z])


@pytest.mark.parametrize("sentences", BATCHES)
@pytest.mark.parametrize("temperature", [0.05, 1.0])
def test_one_sided_info_nce_matches_loop(sentences: int, temperature: float) -> None:
    z = rand(2 * sentences, seed=sentences)
    fast, slow = one_sided_info_nce(z, temperature), ref.one_sided_info_nce(z, temperature)
    assert_same_value_and_grad(fast, slow, [z])


def test_one_sided_is_not_the_interleaved_form() -> None:
    z = rand(8, seed=4)
    assert abs(float(one_sided_info_nce(z).detach()) - float(info_nce(z).detach())) > 1e-2
    # orthogonal first copies, each second copy equal to its first: B - 1 negatives at cos 0
    first = torch.eye(4, dtype=torch.float64)
    z = torch.stack([first, first], dim=1).reshape(8, 4)
    expected = math.log(math.exp(20) + 3) - 20  # temperature 0.05: positive logit 20, three logits 0
    torch.testing.assert_close(one_sided_info_nce(z), torch.tensor(expected, dtype=torch.float64))


@pytest.mark.parametrize("sentences", BATCHES)
def test_cross_tower_matches_loop(sentences: int) -> None:
    u, v = rand(2 * sentences, seed=sentences), rand(2 * sentences, seed=100 + sentences)
    assert_same_value_and_grad(cross_tower_info_nce(u, v), ref.cross_tower_info_nce(u, v), [u, v])


@pytest.mark.parametrize("sentences", BATCHES)
@pytest.mark.parametrize("floor", [None, 1e-4])
def test_modulus_matches_loop(sentences: int, floor: float | None) -> None:
    a, b, pa, pb = (rand(2 * sentences, seed=10 * sentences + i) for i in range(4))
    fast = modulus_constraint(a, b, pa, pb, small_cos_floor=floor)
    assert_same_value_and_grad(fast, ref.modulus_constraint(a, b, pa, pb, floor), [a, b, pa, pb])


def test_modulus_loop_comparison_covers_both_cosine_signs() -> None:
    a, b, _, _ = twin_inputs(7)
    cosines = ltn_cosines(a, b)
    assert (cosines < 0).any() and (cosines > 0).any()
    a, b = (rand(14, seed=70 + i) for i in range(2))  # the B=7 random case above
    cosines = ltn_cosines(a, b)
    assert (cosines < 0).any() and (cosines > 0).any()


@pytest.mark.parametrize("sentences", BATCHES)
@pytest.mark.parametrize("k", [0.01, 0.1, 0.0, 1.0])
def test_distillation_matches_loop(sentences: int, k: float) -> None:
    student, teacher = rand(sentences, seed=sentences), rand(sentences, seed=50 + sentences)
    fast = distillation_loss(student, teacher, k=k)
    assert_same_value_and_grad(fast, ref.distillation_loss(student, teacher, k), [student])


def test_distillation_treats_teacher_as_constant() -> None:
    student, teacher = rand(4, seed=1), rand(4, seed=2)
    loss = distillation_loss(student, teacher, k=0.1)
    (teacher_grad,) = torch.autograd.grad(loss, [teacher], allow_unused=True)
    assert teacher_grad is None


def test_distillation_layout_puts_teacher_first_in_each_pair() -> None:
    # With k = 1 the loss is the InfoNCE of [T(x0), S(x0), T(x1), S(x1), ...] exactly.
    student, teacher = rand(3, seed=4), rand(3, seed=5)
    interleaved = torch.stack([teacher[0], student[0], teacher[1], student[1], teacher[2], student[2]])
    torch.testing.assert_close(
        distillation_loss(student, teacher, k=1.0), info_nce(interleaved), atol=1e-12, rtol=0
    )
    l1 = (student - teacher).abs().mean()
    torch.testing.assert_close(distillation_loss(student, teacher, k=0.0), l1, atol=1e-12, rtol=0)


@pytest.mark.parametrize("direction", [0, 1])
@pytest.mark.parametrize("layers", [0, 1, 3])
@pytest.mark.parametrize("sentences", BATCHES)
def test_jtcse_objective_matches_loop(direction: int, layers: int, sentences: int) -> None:
    a, b, pa, pb = twin_inputs(sentences, seed=sentences)
    ca_a = [rand(2 * sentences, seed=200 + i) for i in range(layers)]
    ca_b = [rand(2 * sentences, seed=300 + i) for i in range(layers)]
    out = jtcse_objective(a, b, pa, pb, ca_a, ca_b, direction=direction, small_cos_floor=None)
    expected = ref.jtcse_terms(a, b, pa, pb, ca_a, ca_b, direction)
    for term, value in expected.items():
        torch.testing.assert_close(out[term], value, atol=ATOL, rtol=0)
    assert_same_value_and_grad(out["loss"], sum(expected.values()), [a, b, pa, pb, *ca_a, *ca_b])


# ---------------------------------------------------------------- gradcheck (float64, small sizes)


def test_gradcheck_info_nce() -> None:
    assert torch.autograd.gradcheck(info_nce, (rand(6, 4, seed=1),))


def test_gradcheck_one_sided_info_nce() -> None:
    assert torch.autograd.gradcheck(one_sided_info_nce, (rand(6, 4, seed=1),))


def test_gradcheck_cross_tower() -> None:
    assert torch.autograd.gradcheck(cross_tower_info_nce, (rand(6, 4, seed=1), rand(6, 4, seed=2)))


@pytest.mark.parametrize("floor", [None, 1e-4])
def test_gradcheck_modulus(floor: float | None) -> None:
    inputs = tuple(twin_inputs(3, seed=4))
    assert (ltn_cosines(inputs[0], inputs[1]) < 0).any()

    def fn(a, b, pa, pb):
        return modulus_constraint(a, b, pa, pb, small_cos_floor=floor)

    assert torch.autograd.gradcheck(fn, inputs)


def test_gradcheck_distillation() -> None:
    teacher = rand(3, 4, seed=2).detach()
    assert torch.autograd.gradcheck(lambda s: distillation_loss(s, teacher, k=0.1), (rand(3, 4, seed=1),))


@pytest.mark.parametrize("direction", [0, 1])
def test_gradcheck_jtcse_objective(direction: int) -> None:
    a, b, pa, pb = twin_inputs(2, seed=5, dim=3)
    assert (ltn_cosines(a, b) < 0).any() and (ltn_cosines(b, a) < 0).any()
    ca = [rand(4, 3, seed=20 + i) for i in range(4)]

    def fn(a, b, pa, pb, ca_a0, ca_a1, ca_b0, ca_b1):
        return jtcse_objective(a, b, pa, pb, [ca_a0, ca_a1], [ca_b0, ca_b1], direction=direction)["loss"]

    assert torch.autograd.gradcheck(fn, (a, b, pa, pb, *ca))


# ---------------------------------------------------------------- the masked diagonal and the labels


def test_partner_labels() -> None:
    assert partner_labels(6, torch.device("cpu")).tolist() == [1, 0, 3, 2, 5, 4]
    assert [ref.partner(i) for i in range(6)] == [1, 0, 3, 2, 5, 4]


def test_info_nce_excludes_self() -> None:
    # Orthogonal rows: every candidate j != i has cos 0, self has cos 1. Masked: uniform over 3 -> log 3.
    # Unmasked, self would dominate (logit 20) and the loss would be about 20.
    z = torch.eye(4, dtype=torch.float64)
    torch.testing.assert_close(info_nce(z), torch.tensor(math.log(3), dtype=torch.float64))
    # Identical partners, orthogonal sentences: masked loss ~ 0 (unmasked it would be ~log 2).
    z = torch.eye(2, dtype=torch.float64).repeat_interleave(2, dim=0)
    assert info_nce(z).item() < 1e-6


def test_cross_tower_excludes_same_row_of_other_tower() -> None:
    # v_i = u_i exactly (cos 1), everything else orthogonal: masked -> log 3; unmasked -> ~20.
    u = torch.eye(4, dtype=torch.float64)
    torch.testing.assert_close(
        cross_tower_info_nce(u, u.clone()), torch.tensor(math.log(3), dtype=torch.float64)
    )
    # The positive is the other copy in the other tower: v_p(i) = u_i -> loss ~ 0.
    v = u[[1, 0, 3, 2]]
    assert cross_tower_info_nce(u, v).item() < 1e-6


def test_cross_tower_is_directional() -> None:
    u, v = rand(8, seed=1), rand(8, seed=2)
    assert abs(cross_tower_info_nce(u, v).item() - cross_tower_info_nce(v, u).item()) > 1e-3


def test_mask_value_is_finite_in_every_dtype() -> None:
    for dtype in (torch.float16, torch.bfloat16, torch.float32, torch.float64):
        value = torch.tensor(large_negative(dtype), dtype=dtype)
        assert torch.isfinite(value) and value < -6e4
    with pytest.raises(ValueError, match="floating"):
        large_negative(torch.int64)


# ---------------------------------------------------------------- modulus constraint quirks


def test_ltn_uses_only_even_rows_of_a_and_odd_rows_of_b() -> None:
    a, b, pa, pb = twin_inputs(4, seed=7)
    loss = modulus_constraint(a, b, pa, pb)
    grads = torch.autograd.grad(loss, [a, b, pa, pb])
    for grad, unused_rows in zip(grads, (slice(1, None, 2), slice(0, None, 2)) * 2, strict=True):
        assert torch.equal(grad[unused_rows], torch.zeros_like(grad[unused_rows]))
    positive = ltn_cosines(a, b) > 0
    assert (grads[0][0::2][positive].abs().sum(-1) > 0).all()  # a_e used where the cosine is kept
    assert (grads[1][1::2][positive].abs().sum(-1) > 0).all()  # b_o likewise
    assert (grads[2][0::2].abs().sum(-1) > 0).all() and (grads[3][1::2].abs().sum(-1) > 0).all()
    # Changing the unused rows leaves the value bit-identical.
    with torch.no_grad():
        a2, b2, pa2, pb2 = (t.detach().clone() for t in (a, b, pa, pb))
        a2[1::2] += 3.0
        b2[0::2] -= 2.0
        pa2[1::2] *= -1.0
        pb2[0::2] = 0.5
        assert torch.equal(modulus_constraint(a2, b2, pa2, pb2), loss.detach())


def test_ltn_pairs_copy0_of_a_with_copy1_of_b() -> None:
    a, b, pa, pb = (t.detach() for t in twin_inputs(3, seed=8))
    b = b.clone()
    b[1::2] = 2.5 * a[0::2]  # c_k = cos(a_e, b_o) = 1 for every sentence -> -log c = 0
    assert modulus_constraint(a, b, pa, pb).abs().item() < 1e-12
    # The other pairing (copy 1 of A vs copy 0 of B) is not aligned, so it would not vanish.
    swap = torch.tensor([1, 0, 3, 2, 5, 4])
    assert modulus_constraint(a[swap], b[swap], pa[swap], pb[swap]).item() > 0.01


def test_ltn_modulus_uses_pooler_outputs() -> None:
    a, b, pa, pb = (t.detach() for t in twin_inputs(3, seed=9))
    pb = pb.clone()
    pb[1::2] = pa[0::2]  # M_k = 0 whatever the CLS states are
    assert modulus_constraint(a, b, pa, pb).item() == 0.0
    # Scaling the CLS states changes nothing (cosine); scaling the pooler of B by s gives M = |1-s|/(1+s)/2.
    scale = 3.0
    pb[1::2] = scale * pa[0::2]
    value = modulus_constraint(5.0 * a, 0.1 * b, pa, pb)
    cosines = torch.where(ltn_cosines(a, b) < 0, 1e-4, ltn_cosines(a, b))
    expected = (-torch.log(cosines) * (scale - 1) / (scale + 1) / 2).mean()
    torch.testing.assert_close(value, expected)


def test_ltn_is_a_mean_over_sentences_not_rows() -> None:
    a, b, pa, pb = (t.detach() for t in twin_inputs(3, seed=10))
    per_sentence = [modulus_constraint(*(t[2 * k : 2 * k + 2] for t in (a, b, pa, pb))) for k in range(3)]
    whole = modulus_constraint(a, b, pa, pb)
    torch.testing.assert_close(whole, sum(per_sentence) / 3)
    assert abs(whole.item() - sum(per_sentence).item() / 6) > 1e-3


def test_ltn_divides_the_modulus_ratio_by_two() -> None:
    # c = cos(a_e, b_o) = 0.5; PB_o = -PA_e -> ||diff|| / (||PA|| + ||PB||) = 1, so M = 0.5 (not 1).
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    b = torch.tensor([[0.3, 0.7], [0.5, math.sqrt(0.75)]], dtype=torch.float64)
    pa = torch.tensor([[0.6, -0.2], [0.1, 0.1]], dtype=torch.float64)
    pb = torch.tensor([[0.9, 0.9], [-0.6, 0.2]], dtype=torch.float64)
    torch.testing.assert_close(
        modulus_constraint(a, b, pa, pb), torch.tensor(-math.log(0.5) * 0.5, dtype=torch.float64)
    )


def test_ltn_negative_cosine_is_a_constant() -> None:
    # Sentence 0: c > 0, gradient flows; sentence 1: c < 0 -> -log(1e-4) * M, no gradient to a_2 / b_3.
    a, b, pa, pb = twin_inputs(2, seed=11)
    cosines = ltn_cosines(a, b)
    assert cosines[0] > 0 > cosines[1]
    loss = modulus_constraint(a, b, pa, pb)
    grad_a, grad_b, grad_pa, grad_pb = torch.autograd.grad(loss, [a, b, pa, pb])
    assert torch.equal(grad_a[2], torch.zeros(DIM, dtype=torch.float64))
    assert torch.equal(grad_b[3], torch.zeros(DIM, dtype=torch.float64))
    assert grad_a[0].abs().sum() > 0 and grad_b[1].abs().sum() > 0
    assert grad_pa[2].abs().sum() > 0 and grad_pb[3].abs().sum() > 0  # the modulus factor still learns
    # The value of the clamped sentence is -log(1e-4) * M_1 whatever the (negative) cosine is.
    with torch.no_grad():
        second = [t[2:].detach().clone() for t in (a, b, pa, pb)]
        m1 = (second[2][0] - second[3][1]).norm() / (second[2][0].norm() + second[3][1].norm()) / 2
        torch.testing.assert_close(modulus_constraint(*second), NEG_LOG_CONST * m1)
        second[1][1] = -second[0][0]  # c = -1
        torch.testing.assert_close(modulus_constraint(*second), NEG_LOG_CONST * m1)


def test_ltn_small_cosine_floor() -> None:
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    pa = torch.tensor([[0.5, 0.5], [0.1, 0.1]], dtype=torch.float64)
    pb = torch.tensor([[0.9, 0.9], [0.2, -0.4]], dtype=torch.float64)
    m = ((pa[0] - pb[1]).norm() / (pa[0].norm() + pb[1].norm()) / 2).item()
    orthogonal = torch.tensor([[0.4, 0.4], [0.0, 2.0]], dtype=torch.float64)  # c = 0 exactly
    assert math.isinf(modulus_constraint(a, orthogonal, pa, pb, small_cos_floor=None).item())  # official
    assert modulus_constraint(a, orthogonal, pa, pb).item() == pytest.approx(NEG_LOG_CONST * m)  # default
    # c = 5e-5 (in [0, 1e-4)): official keeps it with its gradient, the default replaces it by 1e-4.
    tiny = torch.tensor([[0.4, 0.4], [5e-5, math.sqrt(1 - 25e-10)]], dtype=torch.float64, requires_grad=True)
    official = modulus_constraint(a, tiny, pa, pb, small_cos_floor=None)
    assert official.item() == pytest.approx(-math.log(5e-5) * m)
    assert torch.autograd.grad(official, tiny)[0][1].abs().sum() > 0
    floored = modulus_constraint(a, tiny, pa, pb)
    assert floored.item() == pytest.approx(NEG_LOG_CONST * m)
    assert torch.equal(torch.autograd.grad(floored, tiny)[0], torch.zeros_like(tiny))
    # A larger floor never changes the official constant for negative cosines.
    negative = torch.tensor([[0.4, 0.4], [-1.0, 0.0]], dtype=torch.float64)  # c = -1
    assert modulus_constraint(a, negative, pa, pb, small_cos_floor=1e-2).item() == pytest.approx(
        NEG_LOG_CONST * m
    )
    assert modulus_constraint(a, tiny, pa, pb, small_cos_floor=1e-2).item() == pytest.approx(
        -math.log(1e-2) * m
    )


# ---------------------------------------------------------------- the objective: direction, CA, weights


def test_direction_switch_is_shared_by_both_inter_tower_terms() -> None:
    a, b, pa, pb = twin_inputs(3, seed=12)
    ca_a, ca_b = [rand(6, seed=1)], [rand(6, seed=2)]
    zero = jtcse_objective(a, b, pa, pb, ca_a, ca_b, direction=0)
    one = jtcse_objective(a, b, pa, pb, ca_a, ca_b, direction=1)
    assert torch.equal(zero["icnce"], cross_tower_info_nce(a, b))
    assert torch.equal(zero["icnce_ca"], cross_tower_info_nce(ca_a[0], ca_b[0]))
    assert torch.equal(one["icnce"], cross_tower_info_nce(b, a))
    assert torch.equal(one["icnce_ca"], cross_tower_info_nce(ca_b[0], ca_a[0]))
    assert zero["icnce"].item() != pytest.approx(one["icnce"].item())
    assert torch.equal(zero["nce"], one["nce"]) and torch.equal(zero["ictm"], one["ictm"])


def test_ictm_is_the_symmetric_sum() -> None:
    a, b, pa, pb = twin_inputs(3, seed=13)
    out = jtcse_objective(a, b, pa, pb, direction=0)
    expected = modulus_constraint(a, b, pa, pb) + modulus_constraint(b, a, pb, pa)
    assert torch.equal(out["ictm"], expected)
    assert torch.equal(out["nce"], info_nce(a) + info_nce(b))


def test_ca_term_is_averaged_over_layers() -> None:
    a, b, pa, pb = twin_inputs(2, seed=14)
    ca_a = [rand(4, seed=10 + i) for i in range(3)]
    ca_b = [rand(4, seed=20 + i) for i in range(3)]
    per_layer = [cross_tower_info_nce(u, v) for u, v in zip(ca_a, ca_b, strict=True)]
    out = jtcse_objective(a, b, pa, pb, ca_a, ca_b, direction=0)
    torch.testing.assert_close(out["icnce_ca"], sum(per_layer) / 3, atol=1e-12, rtol=0)
    single = jtcse_objective(a, b, pa, pb, ca_a[:1], ca_b[:1], direction=0)
    assert torch.equal(single["icnce_ca"], per_layer[0])
    empty = jtcse_objective(a, b, pa, pb, [], [], direction=0)
    assert empty["icnce_ca"].item() == 0.0
    torch.testing.assert_close(
        empty["loss"], empty["nce"] + empty["icnce"] + empty["ictm"], atol=1e-12, rtol=0
    )


def test_weights_turn_terms_on_and_off() -> None:
    a, b, pa, pb = twin_inputs(3, seed=15)
    ca_a, ca_b = [rand(6, seed=1)], [rand(6, seed=2)]
    full = jtcse_objective(a, b, pa, pb, ca_a, ca_b, direction=1)
    torch.testing.assert_close(full["loss"], full["nce"] + full["icnce"] + full["icnce_ca"] + full["ictm"])

    weights = LossWeights(nce=0.5, icnce=2.0, icnce_ca=0.25, ictm=3.0)
    weighted = jtcse_objective(a, b, pa, pb, ca_a, ca_b, direction=1, weights=weights)
    expected = 0.5 * full["nce"] + 2.0 * full["icnce"] + 0.25 * full["icnce_ca"] + 3.0 * full["ictm"]
    torch.testing.assert_close(weighted["loss"], expected)
    for term in ("nce", "icnce", "icnce_ca", "ictm"):
        assert torch.equal(weighted[term], full[term])  # logged terms are unweighted

    for term in ("nce", "icnce", "icnce_ca", "ictm"):
        off = jtcse_objective(a, b, pa, pb, ca_a, ca_b, direction=1, weights=LossWeights(**{term: 0.0}))
        assert off[term].item() == 0.0
        torch.testing.assert_close(off["loss"], full["loss"] - full[term])

    no_ca = jtcse_objective(a, b, pa, pb, ca_a, ca_b, direction=1, weights=LossWeights(icnce_ca=0.0))
    (ca_grad,) = torch.autograd.grad(no_ca["loss"], ca_a, allow_unused=True)
    assert ca_grad is None


def test_tncse_preset() -> None:
    a, b, pa, pb = twin_inputs(3, seed=16)
    ca_a, ca_b = [rand(6, seed=1)], [rand(6, seed=2)]
    out = jtcse_objective(a, b, pa, pb, ca_a, ca_b, direction=1, weights=LossWeights.tncse())
    assert out["icnce_ca"].item() == 0.0
    assert torch.equal(out["icnce"], cross_tower_info_nce(a, b))  # fixed direction 0 overrides the draw
    expected = info_nce(a) + info_nce(b) + cross_tower_info_nce(a, b)
    expected = expected + modulus_constraint(a, b, pa, pb) + modulus_constraint(b, a, pb, pa)
    torch.testing.assert_close(out["loss"], expected)
    assert LossWeights.jtcse() == LossWeights()


def test_simcse_objective() -> None:
    z = rand(6, seed=3)
    out = simcse_objective(z)  # SimCSE as published by default
    assert set(out) == {"loss", "nce"}
    assert torch.equal(out["loss"], one_sided_info_nce(z))
    assert torch.equal(simcse_objective(z, form="interleaved")["loss"], info_nce(z))
    with pytest.raises(ValueError, match="form must be one of one_sided, interleaved"):
        simcse_objective(z, form="both")


def test_loss_weights_validation() -> None:
    with pytest.raises(JtcseError, match="'ictm' must be >= 0"):
        LossWeights(ictm=-1.0)
    with pytest.raises(JtcseError, match="finite"):
        LossWeights(nce=float("nan"))
    with pytest.raises(JtcseError, match="fixed_direction"):
        LossWeights(fixed_direction=2)
    with pytest.raises(JtcseError, match="use_nce"):
        LossWeights(use_nce="yes")  # type: ignore[call-arg]  # the removed switch: a one-line error
    with pytest.raises(JtcseError, match="at least one"):
        LossWeights(nce=0.0, icnce=0.0, icnce_ca=0.0, ictm=0.0)


def test_objective_argument_errors() -> None:
    a, b, pa, pb = twin_inputs(2, seed=17)
    with pytest.raises(ValueError, match="direction"):
        jtcse_objective(a, b, pa, pb)
    with pytest.raises(ValueError, match="direction must be 0 or 1"):
        jtcse_objective(a, b, pa, pb, direction=2)
    with pytest.raises(ValueError, match="ca_a has 2 layers but ca_b has 1"):
        jtcse_objective(a, b, pa, pb, [a, a], [b], direction=0)
    with pytest.raises(ValueError, match=r"ca_a\[0\] must be \[N=4"):
        jtcse_objective(a, b, pa, pb, [a[:2]], [b[:2]], direction=0)
    only_ca = LossWeights(nce=0.0, icnce=0.0, ictm=0.0)
    with pytest.raises(ValueError, match="no loss term is active"):
        jtcse_objective(a, b, pa, pb, [], [], direction=0, weights=only_ca)


# ---------------------------------------------------------------- shape and argument checks


def test_shape_errors() -> None:
    z = torch.randn(6, 4)
    with pytest.raises(ValueError, match="N must be even"):
        info_nce(torch.randn(5, 4))
    with pytest.raises(ValueError, match="N must be even"):
        info_nce(torch.randn(0, 4))
    with pytest.raises(ValueError, match="2-D"):
        info_nce(torch.randn(4))
    with pytest.raises(ValueError, match="same shape"):
        cross_tower_info_nce(z, torch.randn(6, 5))
    with pytest.raises(ValueError, match="same shape"):
        modulus_constraint(z, z, z, torch.randn(4, 4))
    with pytest.raises(ValueError, match="pooler outputs have N=4"):
        modulus_constraint(z, z, torch.randn(4, 4), torch.randn(4, 4))
    with pytest.raises(ValueError, match="small_cos_floor"):
        modulus_constraint(z, z, z, z, small_cos_floor=0.0)
    with pytest.raises(ValueError, match="temperature"):
        info_nce(z, temperature=0.0)
    with pytest.raises(ValueError, match="shapes differ"):
        distillation_loss(torch.randn(3, 4), torch.randn(2, 4))
    with pytest.raises(ValueError, match="B >= 1"):
        distillation_loss(torch.randn(0, 4), torch.randn(0, 4))
    with pytest.raises(ValueError, match=r"k must be in \[0, 1\]"):
        distillation_loss(torch.randn(3, 4), torch.randn(3, 4), k=1.5)
    with pytest.raises(ValueError, match="floating-point"):
        info_nce(torch.ones(4, 4, dtype=torch.int64))


# ---------------------------------------------------------------- half precision and autocast


def all_losses(a, b, pa, pb, ca_a, ca_b) -> dict[str, torch.Tensor]:
    out = jtcse_objective(a, b, pa, pb, [ca_a], [ca_b], direction=0)
    out["distill"] = distillation_loss(a[0::2], b[0::2], k=0.1)
    out["modulus"] = modulus_constraint(a, b, pa, pb)
    return out


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_is_finite_and_close_to_float32(dtype: torch.dtype) -> None:
    # Magnitudes like real CLS states: a sum of squares in half precision would overflow (> 65504).
    generator = torch.Generator().manual_seed(0)
    base = [60.0 * torch.randn(16, 64, generator=generator) for _ in range(6)]
    half = [t.to(dtype).requires_grad_() for t in base]
    reference = all_losses(*[t.to(dtype).float() for t in base])
    result = all_losses(*half)
    result["loss"].backward()
    for name, value in result.items():
        assert value.dtype == torch.float32, name
        assert torch.isfinite(value), name
        torch.testing.assert_close(value, reference[name], rtol=1e-5, atol=1e-5)
    for tensor in half:
        assert tensor.grad is not None and tensor.grad.dtype == dtype
        assert torch.isfinite(tensor.grad).all()


def test_autocast_does_not_lower_loss_precision() -> None:
    a, b, pa, pb = (t.detach().float() for t in twin_inputs(4, seed=18))
    ca_a, ca_b = rand(8, seed=1).detach().float(), rand(8, seed=2).detach().float()
    plain = all_losses(a, b, pa, pb, ca_a, ca_b)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        autocast = all_losses(a, b, pa, pb, ca_a, ca_b)
    for name, value in autocast.items():
        assert value.dtype == torch.float32
        torch.testing.assert_close(value, plain[name], rtol=1e-6, atol=1e-6)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_fp16_autocast_is_finite() -> None:
    generator = torch.Generator().manual_seed(0)
    base = [60.0 * torch.randn(128, 768, generator=generator) for _ in range(6)]
    cuda = [t.cuda().requires_grad_() for t in base]
    with torch.autocast("cuda", dtype=torch.float16):
        result = all_losses(*(t.half() for t in cuda))  # half activations, as autocast produces
    result["loss"].backward()
    cpu = all_losses(*(t.half().float() for t in base))
    for name, value in result.items():
        assert torch.isfinite(value), name
        torch.testing.assert_close(value.cpu(), cpu[name], rtol=1e-4, atol=1e-4)
    assert all(torch.isfinite(t.grad).all() for t in cuda)


def test_the_modulus_term_on_other_rows_than_the_batch_terms() -> None:
    """ictm_rows / ictm_scale: the modulus term averaged over given rows (one process's under DDP) and scaled
    to its share of the batch mean; the batch terms are unchanged. Given the batch's own rows and scale 1, the
    result is the plain objective's."""
    a, b, pa, pb = twin_inputs(4, seed=18)
    plain = jtcse_objective(a, b, pa, pb, direction=0)
    same = jtcse_objective(a, b, None, None, direction=0, ictm_rows=(a, b, pa, pb))
    for key in plain:
        assert torch.equal(same[key], plain[key])
    half = (a[:4], b[:4], pa[:4], pb[:4])  # the first 2 of 4 sentences
    local = jtcse_objective(a, b, None, None, direction=0, ictm_rows=half, ictm_scale=0.5)
    alone = modulus_constraint(*half) + modulus_constraint(half[1], half[0], half[3], half[2])
    torch.testing.assert_close(local["ictm"], 0.5 * alone)
    for key in ("nce", "icnce"):
        assert torch.equal(local[key], plain[key])
    torch.testing.assert_close(local["loss"], plain["nce"] + plain["icnce"] + 0.5 * alone)
    with pytest.raises(ValueError, match="ictm term needs pooled_a and pooled_b"):
        jtcse_objective(a, b, None, None, direction=0)


def test_a_term_is_on_exactly_when_its_weight_is_positive() -> None:
    weights = LossWeights(nce=0.0, icnce=1e-3, icnce_ca=0.0, ictm=2.0)
    assert [weights.is_on(t) for t in ("nce", "icnce", "icnce_ca", "ictm")] == [False, True, False, True]
    assert set(weights.to_dict()) == {"nce", "icnce", "icnce_ca", "ictm", "fixed_direction"}
    with pytest.raises(JtcseError, match=r"'use_ictm' was removed.*set ictm = 0") as info:
        LossWeights(use_ictm=False)  # type: ignore[call-arg]
    assert "\n" not in str(info.value)
