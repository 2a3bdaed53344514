"""zo_scipy.bilevel.minimize and the jac= adapter."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.optimize

import zo_scipy.bilevel as zb
from zo_scipy.bilevel.problems import PerFeatureRidge, RandomQuadratic


@pytest.fixture(scope="module")
def ridge() -> PerFeatureRidge:
    return PerFeatureRidge()


@pytest.fixture(scope="module")
def ridge_opt(ridge):
    b = [(-8.0, 8.0)] * ridge.p
    return scipy.optimize.minimize(ridge.value, np.zeros(ridge.p), jac=ridge.hypergradient, method="L-BFGS-B",
                                   bounds=b, options={"gtol": 1e-10, "ftol": 1e-14}).fun


def test_lbfgs_outer_reaches_one_percent_on_ridge(ridge, ridge_opt):
    res = zb.minimize(ridge.upper, ridge.lower, np.zeros(10), np.zeros(10), method="L-BFGS-B",
                      bounds=[(-8.0, 8.0)] * 10, seed=0, vectorized=True, maxiter=40)
    assert (ridge.value(res.x) - ridge_opt) / ridge_opt < 0.01
    assert res.nfev == res.nfev_upper + res.nfev_lower and res.trace and res.inner_solved
    assert np.all(res.x >= -8) and np.all(res.x <= 8)
    np.testing.assert_allclose(res.y, ridge.y_star(res.x), atol=1e-6)


def test_adam_outer_with_bounds_and_a_callback():
    prob = RandomQuadratic(p=3, q=4, seed=2)
    seen = []
    res = zb.minimize(prob.upper, prob.lower, np.zeros(3), np.zeros(4), bounds=[(-0.5, 0.5)] * 3, method="adam", lr=0.05,
                      maxiter=15, seed=0, callback=lambda r: seen.append(r.nit))
    assert np.all(np.abs(res.x) <= 0.5) and seen == list(range(1, len(seen) + 1))
    assert prob.value(res.x) < prob.value(np.zeros(3))
    assert [r["inner_tol"] for r in res.trace] == sorted((r["inner_tol"] for r in res.trace), reverse=True)


def test_jac_adapter_with_scipy_directly():
    prob = RandomQuadratic(p=3, q=4, seed=4)
    J = zb.jac(prob.upper, prob.lower, np.zeros(4), seed=0)
    res = scipy.optimize.minimize(J.fun, np.zeros(3), method="L-BFGS-B", jac=J)
    exact = scipy.optimize.minimize(prob.value, np.zeros(3), jac=prob.hypergradient, method="L-BFGS-B")
    assert res.success and abs(res.fun - exact.fun) < 1e-6 * max(1.0, abs(exact.fun))


def test_black_box_inner_solver():
    prob = RandomQuadratic(p=2, q=3, seed=5)
    exact = scipy.optimize.minimize(prob.value, np.zeros(2), jac=prob.hypergradient, method="BFGS")
    # with lower: the implicit hypergradient at the user's solution
    res = zb.minimize(prob.upper, prob.lower, np.zeros(2), np.zeros(3), y_star=prob.y_star, method="BFGS", seed=0)
    assert abs(res.fun - exact.fun) < 1e-6 * max(1.0, abs(exact.fun)) and res.nfev_y_star > 0
    # without lower: central differences of f(x, y_star(x))
    res2 = zb.minimize(prob.upper, None, np.zeros(2), np.zeros(3), y_star=prob.y_star, method="BFGS")
    assert abs(res2.fun - exact.fun) < 1e-6 * max(1.0, abs(exact.fun)) and res2.nfev_lower == 0


def test_a_wrong_black_box_inner_solver_is_flagged():
    prob = RandomQuadratic(p=2, q=3, seed=5)
    with pytest.warns(RuntimeWarning, match="not a minimizer"):
        zb.minimize(prob.upper, prob.lower, np.zeros(2), np.zeros(3), y_star=lambda x: prob.y_star(x) + 0.5,
                    maxiter=1, seed=0)
    with pytest.raises(zb.InnerNotSolvedError):
        zb.minimize(prob.upper, prob.lower, np.zeros(2), np.zeros(3), y_star=lambda x: prob.y_star(x) + 0.5,
                    maxiter=1, seed=0, strict=True)


def test_zoar_inner_and_maxfev():
    prob = RandomQuadratic(p=2, q=3, seed=6)
    res = zb.minimize(prob.upper, prob.lower, np.zeros(2), np.zeros(3), inner="zoar", inner_maxfev=60,
                      maxiter=100, maxfev=1500, seed=0)
    exact = scipy.optimize.minimize(prob.value, np.zeros(2), jac=prob.hypergradient, method="BFGS")
    assert res.success and abs(res.fun - exact.fun) < 1e-5 * max(1.0, abs(exact.fun)) and res.inner_solved
    capped = zb.minimize(prob.upper, prob.lower, np.zeros(2), np.zeros(3), method="adam", inner="zoar",
                         inner_maxfev=60, maxiter=100, maxfev=1000, seed=0)
    assert capped.status == 2 and 600 <= capped.nfev <= 1000
    with pytest.raises(ValueError, match="lower"):
        zb.minimize(prob.upper, None, np.zeros(2), np.zeros(3))
