"""Second derivatives of two-block functions from values (zo_scipy.core.mixed)."""
from __future__ import annotations

import math

import pytest
import torch

from zo_scipy.core.curvature import antithetic_queries
from zo_scipy.core.directions import make_generator, sample_directions
from zo_scipy.core.hessian import zovh_hessian
from zo_scipy.core.mixed import (
    block_mixed_product, block_yy, conjugate_gradient, four_point_mixed_product, four_point_points,
    lstsq_gradient_stderr, second_difference_hessian,
)

P, Q = 3, 4


def quadratic(seed: int = 0):
    gen = make_generator(seed)
    B = torch.randn(P + Q, P + Q, generator=gen, dtype=torch.float64)
    A = B @ B.T / (P + Q) + torch.eye(P + Q, dtype=torch.float64)
    b = torch.randn(P + Q, generator=gen, dtype=torch.float64)

    def g(Z: torch.Tensor) -> torch.Tensor:
        return 0.5 * ((Z @ A) * Z).sum(1) + Z @ b

    return A, b, g


def test_lstsq_gradient_and_its_stderr_are_exact_on_a_quadratic():
    A, b, g = quadratic()
    z = torch.linspace(-1, 1, P + Q, dtype=torch.float64)
    V, Z = antithetic_queries(z, P + Q + 3, 1e-3, generator=make_generator(1))
    grad, se = lstsq_gradient_stderr(V, g(Z), 1e-3)
    assert torch.allclose(grad, A @ z + b, atol=1e-9) and float(se.max()) < 1e-8
    # Stein form with fewer pairs than dimensions: finite, positive standard errors
    V2, Z2 = antithetic_queries(z, 4, 1e-3, generator=make_generator(2))
    g2, se2 = lstsq_gradient_stderr(V2, g(Z2), 1e-3)
    assert g2.shape == (P + Q,) and bool((se2 > 0).all())


def test_second_difference_hessian_recovers_a_quadratic():
    A, b, g = quadratic()
    y = torch.ones(Q, dtype=torch.float64)
    x = torch.zeros(P, dtype=torch.float64)
    U = sample_directions(Q * (Q + 1) // 2 + 2, Q, generator=make_generator(3))
    mu = 1e-3

    def gy(Y: torch.Tensor) -> torch.Tensor:
        return g(torch.cat([x.expand(Y.shape[0], -1), Y], 1))

    H = second_difference_hessian(U, gy(y + mu * U), gy(y - mu * U), float(gy(y[None])[0]), mu)
    assert torch.allclose(H.dense(), A[P:, P:], atol=1e-6)


def test_four_point_lstsq_is_exact_and_stein_is_unbiased():
    A, b, g = quadratic()
    x, y = torch.zeros(P, dtype=torch.float64), torch.ones(Q, dtype=torch.float64)
    v = torch.tensor([1.0, -2.0, 0.5, 0.0], dtype=torch.float64)
    truth = A[:P, P:] @ v
    Ux = sample_directions(P + 2, P, generator=make_generator(4))
    est, se = four_point_mixed_product(Ux, g(four_point_points(x, y, Ux, v, 1e-3, 1e-3)), 1e-3, 1e-3)
    assert torch.allclose(est, truth, atol=1e-6) and float(se.max()) < 1e-5
    K = 4000
    Ux = sample_directions(K, P, generator=make_generator(5))
    est, se = four_point_mixed_product(Ux, g(four_point_points(x, y, Ux, v, 1e-2, 1e-2)), 1e-2, 1e-2,
                                       fit="stein")
    z = (est - truth) / se
    assert float(z.abs().max()) < 4.0  # unbiased: every coordinate within 4 standard errors
    with pytest.raises(ValueError, match="K >= p"):
        four_point_mixed_product(Ux[:2], torch.zeros(8, dtype=torch.float64), 1.0, 1.0)


def test_block_estimate_is_unbiased_within_its_stderr():
    A, b, g = quadratic()
    z = torch.zeros(P + Q, dtype=torch.float64)
    n = 6000
    V = sample_directions(n, P + Q, generator=make_generator(6))
    U = torch.cat([V, -V])
    mu = 0.1
    H = zovh_hessian(U, g(z + mu * U), mu, antithetic=True)
    v = torch.tensor([1.0, -1.0, 2.0, 0.5], dtype=torch.float64)
    est, se = block_mixed_product(H, P, v)
    assert float(((est - A[:P, P:] @ v) / se).abs().max()) < 4.0
    Hyy = block_yy(H, P)
    assert Hyy.dim == Q and Hyy.rank_bound == 2 * n
    rel = float((Hyy.dense() - A[P:, P:]).norm() / A[P:, P:].norm())
    assert rel < 4 * (P + Q) / math.sqrt(2 * n)


def test_conjugate_gradient_solves_and_flags_indefinite():
    A, _, _ = quadratic()
    b = torch.arange(1.0, P + Q + 1, dtype=torch.float64)
    res = conjugate_gradient(lambda w: A @ w, b)
    assert res.residual < 1e-9 and not res.nonpositive and torch.allclose(A @ res.x, b)
    bad = conjugate_gradient(lambda w: -w, b)
    assert bad.nonpositive and torch.equal(bad.x, torch.zeros_like(b))
    assert conjugate_gradient(lambda w: A @ w, torch.zeros(3, dtype=torch.float64)).iterations == 0


def test_the_rotated_design_recovers_the_hessian_entry_by_entry():
    from zo_scipy.core.mixed import second_difference_design

    A, _, g = quadratic(7)
    q = P + Q
    z = torch.ones(q, dtype=torch.float64)
    U, R = second_difference_design(q, generator=make_generator(8))
    assert U.shape == (q * (q + 1) // 2, q) and torch.allclose(R @ R.T, torch.eye(q, dtype=torch.float64))
    mu = 1e-3
    yp, ym, y0 = g(z + mu * U), g(z - mu * U), float(g(z[None])[0])
    fast = second_difference_hessian(U, yp, ym, y0, mu, rotation=R).dense()
    slow = second_difference_hessian(U, yp, ym, y0, mu).dense()
    assert torch.allclose(fast, A, atol=1e-6) and torch.allclose(slow, A, atol=1e-6)


def test_spectral_solve_is_stable_for_tiny_damping():
    from zo_scipy.core.lowrank import spectral_form
    from zo_scipy.core.mixed import spectral_solve

    A, _, _ = quadratic(9)
    b = torch.ones(P + Q, dtype=torch.float64)
    S = spectral_form(A)
    assert torch.allclose(spectral_solve(S, b, 1e-14), torch.linalg.solve(A, b), atol=1e-10)
    assert torch.allclose(spectral_solve(S, b, 0.0), torch.linalg.solve(A, b), atol=1e-10)
    low = spectral_form(A)
    low = type(low)(low.U[-2:], low.coef[-2:])  # rank 2 of 7: the rest is 1/lam
    w = spectral_solve(low, b, 0.5)
    assert torch.allclose(0.5 * w + low.matvec(w), b)
