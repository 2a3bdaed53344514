"""Closed-form checks of zo_scipy.uq.laplace on linear-Gaussian models (exact posterior and evidence).

Tolerances. The regression estimator is exact on a quadratic once it has d(d+1)/2 second differences,
so without objective noise its only error is round-off: a second difference carries about
4 eps |f| / mu^2 (eps = 2.2e-16), i.e. ~1e-12 relative here; 1e-6 leaves room for the Woodbury
algebra. With objective noise the error is random and its standard error is estimated from the
residual variance of the fit: the test asks |error| < 4 SE for each seed and that the SE is not
over-stated by more than 5x. The mean-baseline ZoVH estimate has relative Frobenius error about
d / sqrt(M) (Stein's identity; the estimator's variance), which sets its tolerance below.
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from _uq_models import LinearGaussian

import zo_scipy.uq as uq

ALPHA = 1.0


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_regression_is_exact_on_a_linear_gaussian_model(seed):
    mdl = LinearGaussian(d=5, seed=seed)
    m, S, logz = mdl.exact(ALPHA)
    post = uq.laplace(mdl, np.zeros(5), prior_precision=ALPHA, find_mode=False, seed=seed)
    assert post.nfev == post.nfev_curvature <= 1 + 2 * 5 + 5 * 6 + 2 * 5 + 1  # + 1: the model check
    sd = np.sqrt(np.diag(S))
    assert np.max(np.abs(post.mean - m) / sd) < 1e-6  # the Newton step from 0 lands on the mean
    assert np.max(np.abs(post.std() / sd - 1)) < 1e-6
    assert np.max(np.abs(post.cov_dense() - S)) < 1e-6 * np.max(np.abs(S))
    assert np.max(np.abs(post.cov.matvec(np.ones(5)) - S @ np.ones(5))) < 1e-6 * np.max(np.abs(S))
    ev = post.log_evidence()
    assert abs(ev.value - logz) < 1e-6 * max(1.0, abs(logz))
    assert not post.repair.repaired and post.is_minimum


def test_samples_intervals_and_logpdf_match_the_exact_gaussian():
    mdl = LinearGaussian(d=4, seed=3)
    m, S, _ = mdl.exact(ALPHA)
    post = uq.laplace(mdl, m, prior_precision=ALPHA, find_mode=False, seed=0)
    X = post.sample(20000, rng=np.random.default_rng(1))
    sd = np.sqrt(np.diag(S))
    # sample mean within 5 standard errors, sample covariance within 5 of its standard errors
    assert np.all(np.abs(X.mean(0) - m) < 5 * sd / math.sqrt(20000))
    C = np.cov(X.T)
    se_c = np.sqrt((S ** 2 + np.outer(np.diag(S), np.diag(S))) / 20000)
    assert np.all(np.abs(C - S) < 5 * se_c)
    lo, hi = post.interval(0.95)
    assert np.allclose(lo, m - 1.959963984540054 * sd) and np.allclose(hi, m + 1.959963984540054 * sd)
    from scipy.stats import multivariate_normal

    assert np.allclose(post.logpdf(X[:5]), multivariate_normal(m, S).logpdf(X[:5]), atol=1e-8)
    assert post.logpdf(X[0]) == pytest.approx(float(multivariate_normal(m, S).logpdf(X[0])), abs=1e-8)
    # the same rng gives the same draws; torch generators are accepted too
    assert np.array_equal(post.sample(3, 7), post.sample(3, 7))


def test_evidence_standard_error_is_calibrated_under_objective_noise():
    errs, ses = [], []
    for seed in range(8):
        mdl = LinearGaussian(d=4, seed=0, noise_sd=1e-3)
        mdl._rng = np.random.default_rng(100 + seed)  # independent noise per run
        m, _, logz = mdl.exact(ALPHA)
        post = uq.laplace(mdl, m, prior_precision=ALPHA, find_mode=False, seed=seed, mu=0.3, budget=200)
        ev = post.log_evidence()
        assert math.isfinite(ev.se) and ev.se > 0
        errs.append(ev.value - logz)
        ses.append(ev.se)
    z = np.abs(errs) / np.asarray(ses)
    assert np.all(z < 4)
    assert np.std(errs) > np.mean(ses) / 5  # not over-stated by more than 5x


def test_zovh_estimator_within_its_variance():
    d, M = 4, 600
    errs = []
    for seed in range(4):
        mdl = LinearGaussian(d=d, seed=0)
        m, S, logz = mdl.exact(ALPHA)
        post = uq.laplace(mdl, m, prior_precision=ALPHA, find_mode=False, seed=seed, estimator="zovh",
                          diagonal="none", budget=M)
        P = np.linalg.inv(post.cov_dense())
        H = np.linalg.inv(S) - ALPHA * np.eye(d)
        errs.append(np.linalg.norm(P - ALPHA * np.eye(d) - H) / np.linalg.norm(H))
        assert post.log_evidence().se > 0
    # relative Frobenius error ~ d / sqrt(M) = 0.16 per estimate; the median within 4x of it
    assert float(np.median(errs)) < 4 * d / math.sqrt(M)


def test_default_finds_the_mode_itself():
    mdl = LinearGaussian(d=3, seed=4)
    m, S, logz = mdl.exact(ALPHA)
    post = uq.laplace(mdl, np.zeros(3), prior_precision=ALPHA, seed=0)
    assert post.nfev_mode > 0 and post.nfev == post.nfev_mode + post.nfev_curvature
    assert np.max(np.abs(post.mean - m) / np.sqrt(np.diag(S))) < 1e-5
    assert post.log_evidence().value == pytest.approx(logz, abs=1e-6)
    assert "mode search" in post.summary()


def test_precision_is_low_rank_plus_diagonal_and_float32_works():
    mdl = LinearGaussian(d=6, seed=5)
    m, S, logz = mdl.exact(ALPHA)
    post = uq.laplace(mdl, m, prior_precision=ALPHA, find_mode=False, seed=0, dtype="float32")
    P = post.precision
    assert P.U.shape[1] == 6 and P.diagonal_part().shape == (6,)
    assert np.allclose(P.dense().double().numpy(), np.linalg.inv(S), rtol=1e-3, atol=1e-3 * np.abs(np.linalg.inv(S)).max())
    assert np.all(post.var() > 0)
    assert post.log_evidence().value == pytest.approx(logz, rel=1e-4)
    assert 0 <= post.lowrank_variance_fraction <= 1 and 0 < post.prior_variance_fraction < 1
