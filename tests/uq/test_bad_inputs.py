"""Bad inputs: non-finite values near the mode, a mode that is not a minimum, too small a budget;
bounds (transforms), diagnostics and plots."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import zo_scipy.uq as uq


def quad(x):
    return 0.5 * float(x @ x)


def test_too_small_a_budget_is_a_clear_error():
    with pytest.raises(ValueError, match="too small"):
        uq.laplace(quad, np.zeros(3), find_mode=False, budget=4)
    with pytest.raises(ValueError, match="coordinate diagonal"):
        uq.laplace(quad, np.zeros(3), find_mode=False, budget=9, diagonal="coordinate")
    with pytest.raises(ValueError, match="estimator"):
        uq.laplace(quad, np.zeros(3), estimator="bogus")  # type: ignore[arg-type]


def test_non_finite_at_the_mode_is_an_error():
    with pytest.raises(FloatingPointError, match="not finite at the mode"):
        uq.laplace(lambda x: math.nan, np.zeros(2), find_mode=False)


def test_non_finite_values_near_the_mode_are_dropped_and_flagged():
    def f(x):  # undefined in a half-space close to the mode
        return math.inf if x[0] > 0.05 else quad(x)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        post = uq.laplace(f, np.zeros(2), find_mode=False, diagonal="isotropic", mu=0.1, budget=61, seed=0)
    assert any("non-finite" in m for m in post.messages)
    assert post._queries.n_nonfinite > 0
    assert np.all(post.var() > 0)
    with pytest.raises(FloatingPointError, match="coordinate queries"):
        uq.laplace(f, np.zeros(2), find_mode=False, diagonal="coordinate", mu=0.1, budget=61, seed=0)


def test_a_saddle_is_flagged_and_the_covariance_stays_valid():
    with pytest.warns(RuntimeWarning, match="not be a minimum"):
        post = uq.laplace(lambda x: x[0] ** 2 - x[1] ** 2, np.zeros(2), find_mode=False, seed=0)
    assert not post.is_minimum and post.repair.repaired
    assert np.array_equal(post.mean, post.mode)  # no Newton step along a repaired curvature
    assert np.all(np.linalg.eigvalsh(post.cov_dense()) > 0)


def test_bounds_give_samples_and_intervals_in_the_users_space():
    # a Gamma(5, 1) density on theta > 0 and a Beta(4, 3) on (0, 1)
    def nlp(t):
        return -(4 * math.log(t[0]) - t[0]) - (3 * math.log(t[1]) + 2 * math.log(1 - t[1]))

    post = uq.laplace(nlp, np.array([2.0, 0.5]), bounds=[(0, None), (0, 1)], seed=0)
    X = post.sample(2000, 0)
    assert np.all(X[:, 0] > 0) and np.all((X[:, 1] > 0) & (X[:, 1] < 1))
    lo, hi = post.interval(0.9)
    assert np.all(lo < hi) and lo[0] > 0 and 0 < lo[1] and hi[1] < 1
    # in log coordinates Gamma(5, 1) has mode log 5 and curvature 5 (Laplace exact up to the skew)
    assert post.mean[0] == pytest.approx(math.log(5), abs=0.02)
    assert post.std()[0] == pytest.approx(1 / math.sqrt(5), rel=0.02)
    assert np.isfinite(post.logpdf(np.array([5.0, 0.6])))


def test_diagnose_flags_a_banana_and_passes_a_gaussian():
    def banana(x):
        return 0.5 * x[0] ** 2 + 0.5 * 5.0 * (x[1] - x[0] ** 2 + 1) ** 2

    post = uq.laplace(banana, np.array([0.0, -1.0]), find_mode=False, seed=0)
    dg = post.diagnose(num_samples=400, seed=1)
    assert dg.khat > 0.7 and not dg.ok and dg.nfev == 400
    good = uq.laplace(quad, np.zeros(3), find_mode=False, seed=0).diagnose(num_samples=400, seed=1)
    assert good.khat < 0.5 and good.ok
    assert good.log_evidence_is == pytest.approx(1.5 * math.log(2 * math.pi), abs=1e-6)


def test_plots(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    post = uq.laplace(quad, np.zeros(3), find_mode=False, seed=0)
    fig = uq.plot_marginals(post, reference={"mean": np.zeros(3), "std": np.ones(3)}, truth=np.zeros(3))
    fig.savefig(tmp_path / "m.png")
    fig2 = uq.plot_pairs(post, coords=(0, 1), reference=np.random.default_rng(0).normal(size=(500, 3)))
    fig2.savefig(tmp_path / "p.png")
    assert (tmp_path / "m.png").stat().st_size > 0 and (tmp_path / "p.png").stat().st_size > 0
