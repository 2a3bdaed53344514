"""The comparison point of the demo and the benchmarks: a MeZO-style two-point SPSA step.

Written from the MeZO paper's description (Malladi et al., NeurIPS 2023, Algorithm 1), not
from its code: one seeded direction :math:`z`, :math:`\\theta + \\mu z` and :math:`\\theta - \\mu z`
formed **in place**, the projected gradient :math:`(f_+ - f_-)/(2\\mu)`, the parameters moved
back and then along :math:`-\\eta\\,g\\,z`. Two forward passes per step. The in-place
``+mu, -2 mu, +mu`` round trip is what drifts in half precision (``docs/torch.md``).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch


@torch.no_grad()
def spsa_step(params: Sequence[torch.Tensor], loss: Callable[[], Any], lr: float, mu: float, seed: int) -> float:
    """One MeZO-style step on ``params`` (in place); returns :math:`(f_+ + f_-)/2`."""
    gen = torch.Generator()

    def perturb(scale: float) -> None:
        gen.manual_seed(seed)
        for p in params:
            p.add_(torch.randn(p.shape, generator=gen, dtype=p.dtype), alpha=scale * mu)

    perturb(1.0)
    lp = float(loss())
    perturb(-2.0)
    lm = float(loss())
    perturb(1.0)
    g = (lp - lm) / (2 * mu)
    gen.manual_seed(seed)
    for p in params:
        p.add_(torch.randn(p.shape, generator=gen, dtype=p.dtype), alpha=-lr * g)
    return 0.5 * (lp + lm)
