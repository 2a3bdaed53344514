"""``zo_scipy.zovh`` with its trust-region step (``step="newton"``, the default at small d):
precision, bounds, resume, bad input and the fall-back on noisy objectives."""
from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from scipy.optimize import minimize

import zo_scipy as zs
from zo_scipy.core.state import StateError
from zo_scipy.core.zovh import CurvatureZoAR


class Counted:
    """A shifted, rotated ill-conditioned quadratic that records every point it sees."""

    def __init__(self, d: int = 8, cond: float = 1e4, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        Q = np.linalg.qr(rng.standard_normal((d, d)))[0]
        self.A = Q @ np.diag(np.logspace(0, np.log10(cond), d)) @ Q.T
        self.x_star = rng.uniform(-3, 3, d)
        self.points: list[np.ndarray] = []

    def __call__(self, x: np.ndarray) -> float:
        self.points.append(np.array(x, copy=True))
        z = x - self.x_star
        return float(0.5 * z @ self.A @ z)


def test_default_step_reaches_full_precision_within_200_d_evaluations():
    f = Counted()
    res = minimize(f, np.zeros(8), method=zs.zovh, bounds=[(-5, 5)] * 8, options=dict(maxfev=200 * 8, seed=0))
    assert res.state["settings"]["step"] == "newton"
    assert res.nfev <= 1600 and len(f.points) == res.nfev
    assert res.fun <= 1e-8 * f(np.zeros(8)) and res.fun == pytest.approx(f(res.x))
    assert res.x == pytest.approx(f.x_star, abs=1e-3)


def test_queries_stay_in_the_box_when_the_optimum_is_outside():
    f = Counted(d=5, cond=10.0, seed=1)
    f.x_star = np.array([3.0, -3.0, 0.5, 2.5, -1.0])  # two coordinates beyond the box [-2, 2]
    res = minimize(f, np.zeros(5), method=zs.zovh, bounds=[(-2, 2)] * 5, options=dict(maxfev=1000, seed=0))
    P = np.array(f.points)
    assert P.min() >= -2.0 and P.max() <= 2.0
    assert res.x[0] == pytest.approx(2.0, abs=1e-6) and res.x[1] == pytest.approx(-2.0, abs=1e-6)


def test_split_run_resumes_bit_identically_through_json():
    f = Counted(d=4, cond=100.0, seed=2)
    full = minimize(f, np.zeros(4), method=zs.zovh, options=dict(maxfev=300, seed=5, step="newton"))
    a = minimize(f, np.zeros(4), method=zs.zovh, options=dict(maxfev=37, seed=5, step="newton"))
    state = json.loads(json.dumps(a.state))  # mid-batch: part of a batch is held in the state
    assert state["held"] is not None and state["extra"]["model"] is not None
    b = minimize(f, np.zeros(4), method=zs.zovh, options=dict(maxfev=263, resume=state))
    np.testing.assert_array_equal(b.x_iterate, full.x_iterate)
    assert b.fun >= full.fun  # the split run only saw its own part of the evaluations
    assert CurvatureZoAR.from_state_dict(b.state).state_dict() == full.state


def test_corrupted_trust_region_state_is_rejected_with_the_field_named():
    res = minimize(Counted(d=3, cond=10.0), np.zeros(3), method=zs.zovh,
                   options=dict(maxfev=60, seed=0, step="newton"))
    bad = json.loads(json.dumps(res.state))
    bad["extra"]["model"]["shape"] = [2, 2]
    with pytest.raises(StateError, match="extra.model"):
        CurvatureZoAR.from_state_dict(bad)
    bad = json.loads(json.dumps(res.state))
    bad["extra"]["grad"] = None
    with pytest.raises(StateError, match="extra.model.*extra.grad"):
        CurvatureZoAR.from_state_dict(bad)
    bad = json.loads(json.dumps(res.state))
    bad["extra"]["radius"] = -1.0
    with pytest.raises(StateError, match="extra.radius"):
        CurvatureZoAR.from_state_dict(bad)


def test_bad_step_option_names_it():
    with pytest.raises(ValueError, match="'step'"):
        minimize(Counted(d=3), np.zeros(3), method=zs.zovh, options=dict(step="cg"))


def test_noisy_objective_falls_back_and_the_noise_rule_still_freezes_mu():
    rng = np.random.default_rng(0)

    def noisy(x):
        return float(np.sum((x - 1.0) ** 2) + 0.05 * rng.standard_normal())

    res = minimize(noisy, np.zeros(5), method=zs.zovh, options=dict(maxfev=20_000, seed=0))
    assert res.state["settings"]["step"] == "newton" and res.state["extra"]["active"] is False
    assert res.noisy and res.state["mu_floor"] > 0  # the direction loop's noise rule took over


def test_nonfinite_region_is_never_the_result():
    def f(x):
        return np.nan if x[0] > 0.5 else float(np.sum((x - 1.0) ** 2))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        res = minimize(f, np.zeros(4), method=zs.zovh, options=dict(maxfev=2000, seed=0, step="newton"))
    assert np.isfinite(res.fun) and res.x[0] <= 0.5 and res.fun == pytest.approx(f(res.x))
    assert res.fun <= f(np.zeros(4))
