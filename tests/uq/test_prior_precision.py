"""Evidence as a function of the prior precision from the same queries, and fit_prior_precision."""
from __future__ import annotations

import math

import numpy as np
import pytest
from _uq_models import LinearGaussian
from scipy.optimize import minimize_scalar

import zo_scipy.uq as uq


def test_prior_precision_identity_zero_extra_evaluations():
    mdl = LinearGaussian(d=5, seed=7)
    m1, _, _ = mdl.exact(1.0)
    post = uq.laplace(mdl, m1, prior_precision=1.0, find_mode=False, seed=0)
    calls = mdl.calls
    for alpha in (1e-3, 0.1, 10.0, 300.0):
        m, S, logz = mdl.exact(alpha)
        ev = post.log_evidence(alpha)
        assert ev.value == pytest.approx(logz, abs=1e-6 * max(1, abs(logz)))
        other = post.with_prior_precision(alpha)
        assert np.allclose(other.mean, m, atol=1e-6 * np.sqrt(np.diag(S)).min())
        assert np.allclose(other.std(), np.sqrt(np.diag(S)), rtol=1e-6)
        # the same answer as a fresh run at that prior (which spends new evaluations)
        fresh = uq.laplace(mdl, m, prior_precision=alpha, find_mode=False, seed=1)
        assert fresh.log_evidence().value == pytest.approx(ev.value, abs=1e-6 * max(1, abs(logz)))
        calls = mdl.calls
    post.log_evidence(2.0)
    assert mdl.calls == calls  # no evaluation for a new alpha


def test_fit_prior_precision_maximizes_the_exact_evidence():
    mdl = LinearGaussian(n=30, d=6, beta=2.0, seed=8)
    post = uq.laplace(mdl, mdl.exact(1.0)[0], prior_precision=1.0, find_mode=False, seed=0)
    before = mdl.calls
    alpha, best = post.fit_prior_precision()
    assert mdl.calls == before
    ref = minimize_scalar(lambda t: -mdl.exact(math.exp(t))[2], bounds=(math.log(1e-6), math.log(1e6)),
                          method="bounded", options={"xatol": 1e-6})
    assert math.log(alpha) == pytest.approx(float(ref.x), abs=1e-2)
    assert best.log_evidence().value == pytest.approx(-float(ref.fun), abs=1e-5)


def test_log_evidence_of_a_new_alpha_needs_a_stated_prior():
    post = uq.laplace(lambda x: 0.5 * x @ x, np.zeros(2), find_mode=False, seed=0)
    assert post.log_evidence().value == pytest.approx(math.log(2 * math.pi), abs=1e-8)
    with pytest.raises(ValueError, match="stated"):
        post.log_evidence(1.0)
    with pytest.raises(ValueError, match="stated"):
        post.fit_prior_precision()
