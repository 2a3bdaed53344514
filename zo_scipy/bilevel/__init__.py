r"""Bilevel optimization from function values: implicit hypergradients without autodiff.

:math:`\min_x F(x) = f(x, y^*(x))`, :math:`y^*(x) = \arg\min_y g(x, y)`, with ``upper`` = f and
``lower`` = g known by their values only. :func:`hypergradient` estimates
:math:`\nabla F = \nabla_x f - H_{xy} (H_{yy} + \lambda I)^{-1} \nabla_y f` with a standard error
and diagnostics; :func:`minimize` runs the outer loop (warm-started inner solves with
:func:`zo_scipy.zoar`, tightening tolerances); :func:`jac` adapts it to
``scipy.optimize.minimize(..., jac=...)``. The docs page is ``docs/bilevel.md``.

Not imported by ``import zo_scipy``: ``import zo_scipy.bilevel``.
"""
from __future__ import annotations

from ._hypergradient import (
    CurvatureError, HypergradientResult, InexactInnerWarning, InnerNotSolvedError, auto_damping, hypergradient,
)
from ._minimize import HypergradientJac, jac, minimize

__all__ = [
    "CurvatureError", "HypergradientJac", "HypergradientResult", "InexactInnerWarning", "InnerNotSolvedError",
    "auto_damping", "hypergradient", "jac", "minimize",
]
