"""Gram-matrix forms of the ZoVH step (``inverse_hessian_gradient_weights``,
``woodbury_weights``): the same step as the explicit-direction forms, from an M x M matrix."""
from __future__ import annotations

import pytest
import torch

from zo_scipy.core.hessian import (
    guarded_coefficients, inverse_hessian_gradient, inverse_hessian_gradient_weights, sherman_morrison_coefficients,
    zovh_hessian,
)
from zo_scipy.core.lowrank import LowRankHessian, woodbury_solve, woodbury_weights

f64 = torch.float64


def _batch(M: int, d: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(d, d, generator=g, dtype=f64)
    A = A @ A.T / d + torch.eye(d, dtype=f64)
    U = torch.randn(M, d, generator=g, dtype=f64)
    x = torch.randn(d, generator=g, dtype=f64)
    mu = 0.1
    X = x + mu * U
    y = 0.5 * ((X @ A) * X).sum(1)
    return U, y


@pytest.mark.parametrize("correction", [True, False])
def test_weights_reproduce_the_direction_form(correction: bool) -> None:
    # Both sides are the same algebra in float64 with the products grouped differently, so they
    # agree to a few ulps of the step's magnitude.
    U, y = _batch(12, 40, 0)
    for lam in (1e-3, 0.1, 10.0):
        a = inverse_hessian_gradient_weights(U @ U.T, y, 0.1, lam, correction=correction)
        d = inverse_hessian_gradient(U, y, 0.1, lam, correction=correction)
        torch.testing.assert_close(a @ U, d, rtol=1e-10, atol=1e-12 * float(d.abs().max()))


def test_weights_need_three_queries_and_a_square_gram() -> None:
    U, y = _batch(2, 5, 1)
    with pytest.raises(ValueError, match="M >= 3"):
        inverse_hessian_gradient_weights(U @ U.T, y, 0.1, 1.0)
    U, y = _batch(4, 5, 1)
    with pytest.raises(ValueError, match="shape"):
        inverse_hessian_gradient_weights(torch.eye(3, dtype=f64), y, 0.1, 1.0)


def test_guarded_coefficients_match_the_low_rank_form_and_stay_finite() -> None:
    U, y = _batch(6, 8, 2)
    H = zovh_hessian(U, y, 0.1)
    torch.testing.assert_close(guarded_coefficients(H.coef, U.pow(2).sum(1), 0.5),
                               sherman_morrison_coefficients(H, 0.5), rtol=0, atol=0)
    # a denominator exactly at zero (c |u|^2 = -lam) is floored at guard * lam, sign +
    c = torch.tensor([-1.0, 2.0], dtype=f64)
    out = guarded_coefficients(c, torch.tensor([1.0, 1.0], dtype=f64), 1.0, guard=1e-6)
    assert torch.isfinite(out).all() and out[0] == -1.0 / 1e-6
    with pytest.raises(ValueError, match="lam"):
        guarded_coefficients(c, c.abs(), 0.0)


def test_woodbury_weights_give_the_exact_solve_including_indefinite() -> None:
    g = torch.Generator().manual_seed(3)
    U = torch.randn(5, 30, generator=g, dtype=f64)
    b = torch.randn(5, generator=g, dtype=f64)
    for coef in (torch.rand(5, generator=g, dtype=f64), torch.randn(5, generator=g, dtype=f64)):
        H = LowRankHessian(U, coef)
        a = woodbury_weights(U @ U.T, coef, b, 0.7)
        torch.testing.assert_close(U.T @ a, woodbury_solve(H, U.T @ b, 0.7), rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match="lam"):
        woodbury_weights(U @ U.T, coef, b, -1.0)


def test_auto_damping_is_the_median_rule_with_a_fallback() -> None:
    from zo_scipy.core.hessian import auto_damping

    c = torch.tensor([1.0, -2.0, 3.0], dtype=f64)
    n = torch.tensor([1.0, 1.0, 2.0], dtype=f64)
    assert auto_damping(c, n, 10.0) == 10.0 * 2.0  # median of |c| n = (1, 2, 6)
    assert auto_damping(torch.zeros(3, dtype=f64), n, 10.0) == 1.0
    assert auto_damping(torch.full((3,), float("nan"), dtype=f64), n, 10.0) == 1.0
