"""The running curvature model (zo_scipy.core.curvature) on quadratics with a known Hessian.

Fixed seeds; statistical bands are derived in comments from the update's mean-square
contraction, never tuned.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from zo_scipy.core.curvature import (
    CurvatureModel, DenseHessian, antithetic_queries, lstsq_gradient, solve_shifted,
)
from zo_scipy.core.directions import make_generator, sample_directions
from zo_scipy.core.hessian import zovh_gradient, zovh_hessian
from zo_scipy.core.lowrank import LowRankHessian

f64 = torch.float64


def _spd(d: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    Q, _ = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=f64))
    return Q @ torch.diag(torch.linspace(1.0, 4.0, d, dtype=f64)) @ Q.T


def _quadratic(d: int, seed: int):
    A = _spd(d, seed)
    b = torch.linspace(-1, 1, d, dtype=f64)
    return A, b, (lambda X: 0.5 * ((X @ A) * X).sum(-1) + X @ b)


def _run(model: CurvatureModel, f, x0: torch.Tensor, steps: int, seed: int, mu: float = 1e-3):
    """Update the model along a slowly moving path; returns the last estimate."""
    gen = make_generator(seed)
    est = None
    for t in range(steps):
        x = x0 + 0.01 * t
        V, X = antithetic_queries(x, model.num_pairs, mu, generator=gen)
        est = model.update(x, V, f(X), mu)
    return est


@pytest.mark.parametrize("d, num_queries, rate, steps, bound", [(20, 40, None, 400, 1e-2), (6, 12, 0.1, 300, 1e-3)])
def test_model_converges_to_the_hessian_of_a_quadratic(d, num_queries, rate, steps, bound):
    # On a quadratic the residual estimate R has mean A - H_{t-1} (Stein) and
    # E|R - (A - H)|_F^2 = c |A - H|_F^2 (the linear term cancels inside each pair), so
    # E|e_t|^2 = ((1 - a)^2 + a^2 c) E|e_{t-1}|^2. Measured c: 15 at d = 20, M = 40, and
    # 9.5 at d = 6, M = 12, giving factors 0.95 (default a = M/(M+d^2) = 1/11) and 0.905
    # (a = 0.1); relative rms errors after the steps ~ 0.95^200 = 4e-5 and 0.905^150 = 3e-7.
    # Markov on |e|^2: P(relative error > bound) <= 1e-9 / 1e-4 and 1e-13 / 1e-6.
    # (The default rate does not contract at d = 6, M = 12: 0.75^2 + 0.25^2 * 9.5 > 1.)
    A, b, f = _quadratic(d, 0)
    model = CurvatureModel(d, num_queries, rate=rate)
    est = _run(model, f, torch.linspace(0.5, -0.5, d, dtype=f64), steps, seed=1)
    assert est is not None and isinstance(est.hessian, DenseHessian)  # max_rank = d: the dense case
    assert float((est.hessian.dense() - A).norm() / A.norm()) < bound
    # with n = d pairs the gradient is a central difference: exact on a quadratic up to
    # round-off eps |f| / mu amplified by cond(V) (~1e-12 relative here)
    x = torch.linspace(0.5, -0.5, d, dtype=f64) + 0.01 * (steps - 1)
    torch.testing.assert_close(est.gradient, A @ x + b, rtol=1e-7, atol=1e-7)


def test_dense_special_case_equals_the_low_rank_model():
    d, nq = 6, 8
    A, _, f = _quadratic(d, 2)
    x0 = torch.full((d,), 0.3, dtype=f64)
    dense = _run(CurvatureModel(d, nq, dense=True), f, x0, 30, seed=3)
    low = _run(CurvatureModel(d, nq, dense=False, max_rank=d), f, x0, 30, seed=3)
    assert isinstance(dense.hessian, DenseHessian) and isinstance(low.hessian, LowRankHessian)
    # the same queries; compress is exact at rank d, so the two differ by round-off only
    torch.testing.assert_close(low.hessian.dense(), dense.hessian.dense(), rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(low.gradient, dense.gradient, rtol=1e-9, atol=1e-9)


def test_rank_cap_is_honoured_and_keeps_the_largest_eigenpairs():
    d, nq, cap = 12, 6, 4
    _, _, f = _quadratic(d, 4)
    model = CurvatureModel(d, nq, max_rank=cap, rate=0.5)
    gen = make_generator(5)
    x = torch.zeros(d, dtype=f64)
    for _ in range(5):
        before = model.hessian
        V, X = antithetic_queries(x, nq // 2, 1e-2, generator=gen)
        est = model.update(x, V, f(X), 1e-2)
        assert isinstance(est.hessian, LowRankHessian) and est.hessian.rank_bound <= cap
    # the last update kept the cap largest |eigenvalues| of H_{t-1} + a R
    assert isinstance(before, LowRankHessian)
    U = torch.cat([V, -V])
    quad = 0.5 * 1e-4 * (U * before.matvec(U.T).T).sum(1)
    R = zovh_hessian(U, f(X) - quad, 1e-2, antithetic=True)
    full = before.dense() + 0.5 * R.dense()
    evals, vecs = torch.linalg.eigh(full)
    top = evals.abs().argsort(descending=True)[:cap]
    torch.testing.assert_close(est.hessian.dense(), (vecs[:, top] * evals[top]) @ vecs[:, top].T,
                               rtol=1e-9, atol=1e-9)


def test_gradients_lstsq_prior_and_stein():
    d, n, mu = 6, 3, 1e-3
    A, b, f = _quadratic(d, 6)
    gen = make_generator(7)
    x = torch.linspace(-0.2, 0.4, d, dtype=f64)
    V, X = antithetic_queries(x, n, mu, generator=gen)
    assert torch.equal(X[:n], x + mu * V) and torch.equal(X[n:], x - mu * V)
    y = f(X)
    s = (y[:n] - y[n:]) / (2 * mu)
    # n < d: the fit matches every directional derivative and moves the prior only in span(V)
    prior = torch.randn(d, generator=gen, dtype=f64)
    g = lstsq_gradient(V, y, mu, prior)
    torch.testing.assert_close(V @ g, s, rtol=1e-10, atol=1e-10)
    P = V.T @ torch.linalg.pinv(V.T)  # projector onto span of the rows of V
    torch.testing.assert_close(g - prior, P @ (g - prior), rtol=1e-10, atol=1e-10)
    # an exact prior is returned unchanged (up to the O(mu^2)-free central difference)
    torch.testing.assert_close(lstsq_gradient(V, y, mu, A @ x + b), A @ x + b, rtol=1e-8, atol=1e-8)
    # the model's prior g_prev + H (x - x_prev): with the exact previous gradient and the
    # exact Hessian it is exact, so the gradient is exact beyond span(V) as well
    model = CurvatureModel(d, 2 * n, dense=True)
    model.hessian = DenseHessian(A.clone())
    model.last = (x, A @ x + b)
    x2 = x + 0.1
    V2, X2 = antithetic_queries(x2, n, mu, generator=gen)
    est = model.update(x2, V2, f(X2), mu)
    torch.testing.assert_close(est.gradient, A @ x2 + b, rtol=1e-7, atol=1e-7)
    without_prior = lstsq_gradient(V2, f(X2), mu)
    assert float((without_prior - (A @ x2 + b)).norm()) > 0.1  # n < d: the prior matters
    # "stein": the unbiased antithetic ZoVH gradient
    stein = CurvatureModel(d, 2 * n, gradient="stein").update(x, V, y, mu)
    torch.testing.assert_close(stein.gradient, zovh_gradient(torch.cat([V, -V]), y, mu, antithetic=True))


def test_variants_are_cached_and_positive_definite():
    d, nq = 8, 8
    _, _, f = _quadratic(d, 8)
    for dense in (True, False):
        model = CurvatureModel(d, nq, dense=dense, max_rank=16 if not dense else None, rate=1.0)
        gen = make_generator(9)
        V, X = antithetic_queries(torch.zeros(d, dtype=f64), nq // 2, 0.1, generator=gen)
        est = model.update(torch.zeros(d, dtype=f64), V, f(X) + torch.randn(nq, generator=gen, dtype=f64), 0.1)
        assert est.variant() is est.hessian
        raw = est.hessian.dense()
        assert float(torch.linalg.eigvalsh(raw).min()) < 0  # noisy ZoVH: indefinite
        damped = est.variant(None, 0.5)
        torch.testing.assert_close(damped.dense(), raw + 0.5 * torch.eye(d, dtype=f64), rtol=1e-10, atol=1e-10)
        for method in ("clip", "abs"):
            P = est.variant(method)
            assert est.variant(method) is P  # cached per (method, damping)
            ev = torch.linalg.eigvalsh(P.dense())
            assert isinstance(P, LowRankHessian) and P.diag == pytest.approx(1e-8 * float(P.coef.max()))
            assert float(ev.min()) > 0
        ev_raw = torch.linalg.eigvalsh(raw)
        ev_abs = torch.linalg.eigvalsh(est.variant("abs", 1e-3).dense()) - 1e-3
        torch.testing.assert_close(ev_abs.sort()[0], ev_raw.abs().sort()[0], rtol=1e-9, atol=1e-9)


def test_solve_shifted_dense_and_low_rank():
    d = 7
    gen = make_generator(10)
    H = LowRankHessian(torch.randn(3, d, generator=gen, dtype=f64), torch.tensor([1.0, -0.5, 2.0], dtype=f64))
    v = torch.randn(d, generator=gen, dtype=f64)
    ref = np.linalg.solve(H.dense().numpy() + 0.9 * np.eye(d), v.numpy())
    for M in (H, DenseHessian(H.dense())):
        np.testing.assert_allclose(solve_shifted(M, v, 0.9).numpy(), ref, rtol=1e-10, atol=1e-12)


def test_bad_input():
    with pytest.raises(ValueError, match="num_queries"):
        CurvatureModel(3, 5)
    with pytest.raises(ValueError, match="rate"):
        CurvatureModel(3, 4, rate=1.5)
    with pytest.raises(ValueError, match="max_rank"):
        CurvatureModel(3, 4, max_rank=0)
    with pytest.raises(ValueError, match="gradient"):
        CurvatureModel(3, 4, gradient="fd")  # type: ignore[arg-type]  # the error path under test
    model = CurvatureModel(3, 4)
    V = sample_directions(2, 3, generator=make_generator(0))
    with pytest.raises(ValueError, match="shape"):
        model.update(torch.zeros(3, dtype=f64), V, torch.zeros(3, dtype=f64), 0.1)
    with pytest.raises(FloatingPointError, match="non-finite"):
        model.update(torch.zeros(3, dtype=f64), V, torch.tensor([0.0, 1.0, float("inf"), 2.0], dtype=f64), 0.1)
    assert model.num_updates == 0 and model.last is None
