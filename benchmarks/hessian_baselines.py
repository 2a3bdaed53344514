r"""The Hessian estimators the ZoVH paper compares against, on zo_scipy's query machinery.

Only the benchmarks use these (the optimizers use :mod:`zo_scipy.core.hessian`); each
returns a :class:`~zo_scipy.core.lowrank.LowRankHessian`, so its error against a
reference is :meth:`~zo_scipy.core.lowrank.LowRankHessian.frobenius_error`.
Central-difference estimators spend a budget of ``K`` evaluations on
:math:`n = \lfloor (K-1)/2 \rfloor` pairs plus :math:`f(x)` (see ``docs/zovh.md``).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch

from zo_scipy.core.lowrank import LowRankHessian

ClassicalKind = Literal["cd", "s1", "s2", "s3"]


@dataclass
class SymmetricOperator:
    r"""A reference matrix known only through products: ``matmat(V)`` for a ``(d, k)``
    ``V``, its ``diagonal`` and its squared Frobenius norm ``fro2``. Enough for
    :meth:`~zo_scipy.core.lowrank.LowRankHessian.frobenius_error` without forming ``d x d``."""

    matmat: Callable[[torch.Tensor], torch.Tensor]
    diagonal: torch.Tensor
    fro2: float


def classical_budget_split(kind: str, budget: int) -> int:
    r"""Directions a classical estimator can afford with ``budget`` evaluations:
    ``cd``/``s3``: :math:`n = \lfloor (K-1)/2 \rfloor` pairs plus :math:`f(x)`;
    ``s2``: :math:`K-1` directions plus :math:`f(x)`; ``s1``: :math:`K` directions;
    ``hizoo``: like ``cd``."""
    if kind in ("cd", "s3", "hizoo"):
        n = (budget - 1) // 2
    elif kind == "s2":
        n = budget - 1
    elif kind == "s1":
        n = budget
    else:
        raise ValueError(f"kind must be one of 'cd', 's1', 's2', 's3', 'hizoo', got {kind!r}")
    if n < 1:
        raise ValueError(f"a budget of {budget} evaluations is too small for {kind!r}")
    return n


def classical_hessian(kind: ClassicalKind, U: torch.Tensor, mu: float, *, y_plus: torch.Tensor,
                      y_minus: torch.Tensor | None = None, f0: float | torch.Tensor | None = None) -> LowRankHessian:
    r"""The classical Hessian estimators the paper compares against, ``n`` directions:

    - ``cd``: :math:`\frac{1}{2n}\sum \frac{y^+ - 2f_0 + y^-}{\mu^2} u u^T`
      (biased: :math:`E = H + \operatorname{tr}(H)/2\, I` on a quadratic);
    - ``s3``: the same with :math:`(uu^T - I)` (unbiased);
    - ``s1``: :math:`\frac1n \sum \frac{y^+}{\mu^2}(uu^T - I)` (zero baseline);
    - ``s2``: :math:`\frac1n \sum \frac{y^+ - f_0}{\mu^2}(uu^T - I)` (baseline :math:`f(x)`).

    :math:`(uu^T - I)` terms are stored as the low-rank part plus the scalar diagonal
    :math:`-\sum_i c_i`.
    """
    n = U.shape[0]
    if n < 1:
        raise ValueError("need at least one direction")
    if kind in ("cd", "s3"):
        if y_minus is None or f0 is None:
            raise ValueError(f"{kind!r} needs y_minus and f0")
        c = (y_plus - 2 * f0 + y_minus) / (2 * n * mu * mu)
    elif kind == "s1":
        c = y_plus / (n * mu * mu)
    elif kind == "s2":
        if f0 is None:
            raise ValueError("'s2' needs f0")
        c = (y_plus - f0) / (n * mu * mu)
    else:
        raise ValueError(f"kind must be one of 'cd', 's1', 's2', 's3', got {kind!r}")
    return LowRankHessian(U, c, 0.0 if kind == "cd" else -float(c.sum()))


def hizoo_diagonal_update(h: torch.Tensor, U: torch.Tensor, y_plus: torch.Tensor, y_minus: torch.Tensor,
                          f0: float | torch.Tensor, mu: float, rate: float = 1e-6) -> torch.Tensor:
    r"""One update of HiZOO's diagonal Hessian estimate:

    .. math:: h \leftarrow (1-\alpha)\, h + \alpha\, \frac1n \sum \frac{|y^+ + y^- - 2f_0|}{2\mu^2}\, h \odot u^2,

    started at :math:`h = 1`; stays positive. Use ``LowRankHessian(U[:0], coef[:0], h)``
    to compare it with the others.
    """
    n = U.shape[0]
    s = (y_plus + y_minus - 2 * f0).abs() / (2 * mu * mu)
    return (1 - rate) * h + rate * (s @ U.pow(2)) / n * h


def hizoo_gradient(h: torch.Tensor, U: torch.Tensor, y_plus: torch.Tensor, y_minus: torch.Tensor,
                   mu: float) -> torch.Tensor:
    r"""HiZOO's preconditioned gradient :math:`\frac1n \sum \frac{y^+ - y^-}{2\mu}\, h \odot u`."""
    return h * (((y_plus - y_minus) / (2 * mu)) @ U) / U.shape[0]
