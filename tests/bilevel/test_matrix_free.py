"""The matrix-free hypergradient (value-only Hessian-vector products + CG), the warm start of CG
across outer points, the Newton-stall rule and the Richardson bias check.

Tolerances: on quadratics the value-only products are exact up to round-off (about
``1e-16 |g| / mu^2`` per entry), so CG to 1e-10 reproduces the closed form to 1e-6; on the
non-quadratic hyper-cleaning problem the one-sided differences carry an ``O(mu)`` bias, relative
size ``mu`` times (third / second derivative) ~ ``mu |a|`` <= 1e-4 * 8 here, checked to 1e-2.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

import zo_scipy.bilevel as zb
from zo_scipy.bilevel.problems import HyperCleaning, PerFeatureLogistic, PerFeatureRidge, RandomQuadratic
from zo_scipy.core.mixed import conjugate_gradient


def rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def test_products_match_the_closed_form_on_a_quadratic():
    prob = RandomQuadratic(p=4, q=6, seed=3)
    x = np.array([0.5, -1.0, 2.0, 0.0])
    r = zb.hypergradient(prob.upper, prob.lower, x, prob.y_star(x), hessian="products", cg_tol=1e-10,
                         cg_maxiter=24, seed=0, vectorized=True)
    assert rel(r.grad, prob.hypergradient(x)) < 1e-6
    assert r.hessian is None and r.inner_solved and 1 <= r.cg_iterations <= 12 and r.solve_residual < 1e-6
    lo, hi = r.hessian_eigenvalues  # Rayleigh quotients lie inside the spectrum
    ev = np.linalg.eigvalsh(prob.A[4:, 4:])
    assert ev[0] - 1e-6 <= lo <= hi <= ev[-1] + 1e-6


def test_products_on_hyper_cleaning_match_the_analytic_hypergradient():
    prob = HyperCleaning(n_train=60, n_val=60)
    x = np.random.default_rng(0).uniform(-1, 1, prob.p)
    w = prob.y_star(x)
    r = zb.hypergradient(prob.upper, prob.lower, x, w, hessian="products", cg_tol=1e-6, cg_maxiter=300,
                         mu=1e-4, seed=0, vectorized=True)
    assert rel(r.grad, prob.hypergradient_at(x, w)) < 1e-2 and r.inner_solved


def test_products_reject_block_and_bad_names():
    prob = RandomQuadratic(p=2, q=3, seed=1)
    x, y = np.zeros(2), prob.y_star(np.zeros(2))
    with pytest.raises(ValueError, match="mixed='block' needs hessian='zovh'"):
        zb.hypergradient(prob.upper, prob.lower, x, y, hessian="products", mixed="block")
    with pytest.raises(ValueError, match="'products'"):
        zb.hypergradient(prob.upper, prob.lower, x, y, hessian="dense")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="v0 must have 3"):
        zb.hypergradient(prob.upper, prob.lower, x, y, hessian="products", v0=np.zeros(2))


def test_cg_warm_start():
    A = torch.tensor([[4.0, 1.0, 0.0], [1.0, 3.0, 0.5], [0.0, 0.5, 2.0]], dtype=torch.float64)
    b = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    exact = torch.linalg.solve(A, b)
    cold = conjugate_gradient(lambda v: A @ v, b, tol=1e-12)
    warm = conjugate_gradient(lambda v: A @ v, b, tol=1e-12, x0=exact)
    assert torch.allclose(cold.x, exact, atol=1e-10) and cold.iterations == 3
    assert warm.iterations == 0 and torch.allclose(warm.x, exact)
    with pytest.raises(ValueError, match="x0 must have shape"):
        conjugate_gradient(lambda v: A @ v, b, x0=torch.zeros(2, dtype=torch.float64))


def test_reusing_v_saves_cg_iterations_at_the_same_tolerance():
    prob = RandomQuadratic(p=3, q=25, seed=4)
    runs = {}
    for reuse in (True, False):
        runs[reuse] = zb.minimize(prob.upper, prob.lower, np.zeros(3), np.zeros(25), method="sgd", lr=0.05,
                                  maxiter=6, seed=0, vectorized=True, hessian="products", cg_tol=1e-8,
                                  cg_maxiter=100, reuse_v=reuse)
    # the same answer (both CG solves run to 1e-8) for fewer iterations
    np.testing.assert_allclose(runs[True].x, runs[False].x, rtol=0, atol=1e-6)
    assert runs[True].cg_iterations < runs[False].cg_iterations


def test_newton_steps_stop_at_the_precision_floor():
    prob = PerFeatureLogistic()
    x = np.zeros(prob.p)
    y = prob.y_star(x) + 0.01
    r = zb.hypergradient(prob.upper, prob.lower, x, y, newton_steps=10, inner_tol=1e-15, seed=0,
                         vectorized=True, on_inexact="ignore")
    q = prob.q
    # an unattainable tolerance: the steps stop once one fails to halve the distance, long before 10
    assert r.newton_stalled and not r.inner_solved and "stalled" in r.message
    base = q * (q + 1) + 1 + 4 * (prob.p + 1)
    assert r.nfev_lower < base + 6 * (2 * q + 4)
    np.testing.assert_allclose(r.y, prob.y_star(x), atol=1e-5)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_bias_check_explains_the_error(seed):
    prob = PerFeatureRidge()
    x = np.random.default_rng([seed, 17]).uniform(-2, 2, prob.p)
    exact = prob.hypergradient(x)
    r = zb.hypergradient(prob.upper, prob.lower, x, prob.y_star(x), seed=seed, vectorized=True, bias_check=True)
    plain = zb.hypergradient(prob.upper, prob.lower, x, prob.y_star(x), seed=seed, vectorized=True)
    assert r.bias is not None and plain.bias is None and r.nfev == 2 * plain.nfev
    err = r.grad - exact
    # the O(mu^2) bias dominates the error; Richardson leaves O(mu^4): far below it (mu = 1e-3)
    assert np.linalg.norm(err - r.bias) < 0.05 * np.linalg.norm(err)
    assert np.mean(np.abs(err) <= 2 * r.stderr) >= 0.9


def test_outer_loop_skips_the_fresh_hessian_at_the_floor():
    prob = PerFeatureLogistic()
    x = np.zeros(prob.p)
    J = zb.jac(prob.upper, prob.lower, prob.y_star(x) + 0.01, inner_tol=1e-15, inner_tol_min=1e-15, seed=0,
               vectorized=True)
    with pytest.warns(RuntimeWarning, match="stalled"):
        J.evaluate(x)
    q = prob.q
    one_hessian = q * (q + 1) + 1 + 4 * (prob.p + 1)  # a second attempt would add at least this again
    assert J.last is not None and J.last.newton_stalled
    assert J.nfev_lower < 2 * one_hessian


def test_preconditioned_cg():
    rng = np.random.default_rng(0)
    Q, _ = np.linalg.qr(rng.standard_normal((8, 8)))
    A = torch.from_numpy(Q @ np.diag(np.logspace(-3, 0, 8)) @ Q.T)
    b = torch.from_numpy(rng.standard_normal(8))
    exact = torch.linalg.solve(A, b)
    Ainv = torch.linalg.inv(A)
    plain = conjugate_gradient(lambda v: A @ v, b, tol=1e-10)
    exact_pre = conjugate_gradient(lambda v: A @ v, b, tol=1e-10, precondition=lambda r: Ainv @ r)
    poor = conjugate_gradient(lambda v: A @ v, b, tol=1e-10, precondition=lambda r: 2.0 * r)  # M = I / 2
    assert exact_pre.iterations == 1 and torch.allclose(exact_pre.x, exact, rtol=1e-8, atol=0)
    # a poor preconditioner costs iterations, never accuracy
    for res in (plain, poor):
        assert float((A @ res.x - b).norm() / b.norm()) <= 1e-9


def test_hypergradient_with_a_reused_hessian_as_preconditioner():
    prob = RandomQuadratic(p=3, q=25, seed=5)
    x = np.array([0.3, -0.2, 1.0])
    y = prob.y_star(x)
    first = zb.hypergradient(prob.upper, prob.lower, x, y, seed=0, vectorized=True)
    pre = zb.hypergradient(prob.upper, prob.lower, x, y, hessian="products", preconditioner=first.hessian,
                           cg_tol=1e-10, seed=1, vectorized=True)
    plain = zb.hypergradient(prob.upper, prob.lower, x, y, hessian="products", cg_tol=1e-10, cg_maxiter=100,
                             seed=1, vectorized=True)
    exact = prob.hypergradient(x)
    assert rel(pre.grad, exact) < 1e-6 and rel(plain.grad, exact) < 1e-6
    # H_yy is constant on a quadratic: the measured one is exact up to round-off, so PCG needs 1-2 iterations
    assert pre.cg_iterations <= 2 < plain.cg_iterations
    small = RandomQuadratic(p=2, q=4, seed=0)
    wrong = zb.hypergradient(small.upper, small.lower, np.zeros(2), small.y_star(np.zeros(2)), seed=0).hessian
    with pytest.raises(ValueError, match="preconditioner must be a 25 x 25"):
        zb.hypergradient(prob.upper, prob.lower, x, y, hessian="products", preconditioner=wrong)


def test_outer_loop_reusing_the_hessian_costs_less_for_the_same_iterates():
    prob = RandomQuadratic(p=3, q=25, seed=4)
    runs = {}
    for reuse in (True, False):
        runs[reuse] = zb.minimize(prob.upper, prob.lower, np.zeros(3), np.zeros(25), method="sgd", lr=0.05,
                                  maxiter=6, seed=0, vectorized=True, reuse_hessian=reuse, cg_tol=1e-10)
    # q(q+1) + 1 = 651 evaluations of H_yy at every point without reuse, once with it
    np.testing.assert_allclose(runs[True].x, runs[False].x, rtol=0, atol=1e-6)
    assert runs[True].nfev_lower < 0.6 * runs[False].nfev_lower
