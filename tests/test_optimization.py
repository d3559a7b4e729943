"""jtcse.training.optimization.adamw: fused AdamW where available, the same update as the default one."""

from __future__ import annotations

import torch

from jtcse.training.optimization import adamw


def test_fused_adamw_makes_the_default_update():
    torch.manual_seed(0)
    weights = [torch.randn(5, 3, requires_grad=True), torch.randn(3, requires_grad=True)]
    copies = [w.detach().clone().requires_grad_() for w in weights]
    start = [w.detach().clone() for w in weights]
    groups = [{"params": weights[:1], "weight_decay": 0.01}, {"params": weights[1:], "weight_decay": 0.0}]
    fast = adamw(groups, 1e-2)
    assert fast.defaults.get("fused") is True  # CPU has a fused kernel in the pinned torch
    plain = torch.optim.AdamW(
        [{"params": copies[:1], "weight_decay": 0.01}, {"params": copies[1:], "weight_decay": 0.0}], lr=1e-2
    )
    for _ in range(3):
        for optimizer, params in ((fast, weights), (plain, copies)):
            optimizer.zero_grad()
            sum((p**2).sum() for p in params).backward()
            optimizer.step()
    for w, c in zip(weights, copies, strict=True):
        torch.testing.assert_close(w, c, atol=1e-6, rtol=0)
    assert all((w - s).abs().max() > 1e-3 for w, s in zip(weights, start, strict=True))  # it did move
