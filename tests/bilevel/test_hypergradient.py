"""zo_scipy.bilevel.hypergradient against closed forms, both mixed-product estimators, flags, bad input.

Tolerances: the least-squares paths are exact up to O(mu^2) finite-difference bias and round-off
(their sampling variance is ~0 on smooth functions), so they are checked to 1e-5 relative; the
Stein paths (unbiased, noisy) are checked as z-scores against their own reported standard error.
"""
from __future__ import annotations

import numpy as np
import pytest

import zo_scipy.bilevel as zb
from zo_scipy.core.evaluation import ObjectiveError
from zo_scipy.bilevel.problems import PerFeatureRidge, RandomQuadratic


@pytest.fixture(scope="module")
def ridge() -> PerFeatureRidge:
    return PerFeatureRidge()


def rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


@pytest.mark.parametrize("x", [np.zeros(10), np.linspace(-2, 2, 10)])
def test_ridge_matches_the_closed_form(ridge, x):
    r = zb.hypergradient(ridge.upper, ridge.lower, x, ridge.y_star(x), seed=0, vectorized=True)
    exact = ridge.hypergradient(x)
    assert rel(r.grad, exact) < 1e-5
    assert r.inner_solved and not r.indefinite and r.solve_residual < 1e-6
    assert r.nfev <= 10 * (ridge.p + ridge.q) + 10  # 10 (p + q) evaluations, the docs' budget
    assert r.grad.shape == x.shape and np.all(np.isfinite(r.stderr))


def test_ridge_cg_with_the_exact_hessp_agrees(ridge):
    x = np.full(10, -1.0)
    r = zb.hypergradient(ridge.upper, ridge.lower, x, ridge.y_star(x), inverse="cg", lower_hessp=ridge.hessp,
                         seed=1)
    assert rel(r.grad, ridge.hypergradient(x)) < 1e-5 and r.solve_residual < 1e-8


def test_random_quadratic_both_estimators():
    prob = RandomQuadratic(p=4, q=6, seed=3)
    x = np.array([0.5, -1.0, 2.0, 0.0])
    y = prob.y_star(x)
    exact = prob.hypergradient(x)
    four = zb.hypergradient(prob.upper, prob.lower, x, y, seed=0)
    assert rel(four.grad, exact) < 1e-6
    # Stein four-point (K = 3000): unbiased, each coordinate within 4 reported standard errors
    stein = zb.hypergradient(prob.upper, prob.lower, x, y, num_mixed=3000, mixed_fit="stein", mu=1e-2, seed=1,
                             vectorized=True)
    assert np.abs((stein.grad - exact) / stein.stderr).max() < 4.0 and rel(stein.grad, exact) < 0.2
    # joint-query block estimate (ZoVH of H_yy and H_xy from the same 40 000 queries)
    block = zb.hypergradient(prob.upper, prob.lower, x, y, mixed="block", num_queries=40_000, mu=1e-2, seed=2,
                             vectorized=True)
    assert block.mixed_kind == "block" and block.nfev_lower == 40_000
    assert np.abs((block.grad - exact) / block.stderr).max() < 4.0


def test_scalar_inputs_give_a_nonzero_exact_gradient():
    # 1-d x and y as Python floats (a classic source of silently zero implicit gradients)
    def lower(x, y):
        return float(0.5 * 2.0 * y**2 - 3.0 * x * y)

    def upper(x, y):
        return float((y - 1.0) ** 2 + x**2)

    x = 0.7
    r = zb.hypergradient(upper, lower, x, 1.5 * x, seed=0)  # y* = 1.5 x, F = (1.5x - 1)^2 + x^2
    assert r.grad.shape == () and abs(float(r.grad) - (2 * 1.5 * (1.5 * x - 1) + 2 * x)) < 1e-6


def test_inexact_inner_solve_is_flagged_or_raised():
    prob = RandomQuadratic(p=3, q=4, seed=0)
    x = np.ones(3)
    y = prob.y_star(x) + 0.2
    with pytest.warns(zb.InexactInnerWarning, match="not solved"):
        r = zb.hypergradient(prob.upper, prob.lower, x, y, seed=0)
    assert not r.inner_solved and r.inner_grad_norm > 0.1
    np.testing.assert_allclose(r.newton_y, prob.y_star(x), atol=1e-6)  # the Newton step lands on y*
    with pytest.raises(zb.InnerNotSolvedError):
        zb.hypergradient(prob.upper, prob.lower, x, y, seed=0, on_inexact="raise")
    ok = zb.hypergradient(prob.upper, prob.lower, x, prob.y_star(x), seed=0, on_inexact="raise")
    assert ok.inner_solved


def test_bad_inputs():
    prob = RandomQuadratic(p=2, q=3, seed=1)
    x, y = np.zeros(2), prob.y_star(np.zeros(2))
    with pytest.raises(ValueError, match="finite"):
        zb.hypergradient(prob.upper, prob.lower, np.array([np.nan, 0.0]), y)
    with pytest.raises(ValueError, match="at least one"):
        zb.hypergradient(prob.upper, prob.lower, np.zeros(0), y)
    with pytest.raises(FloatingPointError, match="lower returned"):
        zb.hypergradient(prob.upper, lambda a, b: float("nan"), x, y)
    with pytest.raises(FloatingPointError, match="upper returned"):
        zb.hypergradient(lambda a, b: np.inf, prob.lower, x, y)
    with pytest.raises(zb.CurvatureError):  # concave in y: no minimum
        zb.hypergradient(prob.upper, lambda a, b: -float(np.sum(b**2)), x, y)
    with pytest.raises(ValueError):  # upper returns a vector: shapes do not match
        zb.hypergradient(lambda a, b: np.concatenate([a, b]), prob.lower, x, y)
    with pytest.raises(ObjectiveError, match="mismatch"):  # upper written for a different y size
        zb.hypergradient(lambda a, b: float(b @ np.ones(5)), prob.lower, x, y)
    with pytest.raises(ValueError, match="lower_hessp must return"):
        zb.hypergradient(prob.upper, prob.lower, x, y, inverse="cg", lower_hessp=lambda a, b, w: np.ones(2))
    with pytest.raises(ValueError, match="mixed"):
        zb.hypergradient(prob.upper, prob.lower, x, y, mixed="nope")  # type: ignore[arg-type]


def test_indefinite_estimate_is_flagged_and_damped():
    # g has a saddle in y: the regression Hessian is indefinite, clipped and damped, and flagged
    def lower(x, y):
        return float(y[0] ** 2 - 0.5 * y[1] ** 2 + x[0] * y[0])

    r = zb.hypergradient(lambda x, y: float(np.sum(y**2)), lower, np.zeros(1), np.zeros(2), seed=0)
    assert r.indefinite and "indefinite" in r.message and r.damping > 0.4


def test_workers_get_each_stage_as_one_batch():
    prob = RandomQuadratic(p=2, q=3, seed=2)
    batches = []

    def mapper(fn, items):
        items = list(items)
        batches.append(len(items))
        return [fn(i) for i in items]

    x = np.zeros(2)
    r = zb.hypergradient(prob.upper, prob.lower, x, prob.y_star(x), workers=mapper, seed=0)
    # lower: centre + second differences (one batch), four-point (one batch); upper: one batch
    assert sorted(batches) == sorted([1 + 2 * 6, 4 * 3, 2 * 7]) and sum(batches) == r.nfev
    assert rel(r.grad, prob.hypergradient(x)) < 1e-6


def test_import_zo_scipy_does_not_import_bilevel():
    import subprocess
    import sys

    code = "import sys, zo_scipy; assert 'zo_scipy.bilevel' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
