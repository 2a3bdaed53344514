"""``zo_scipy.zovh``: the curvature-aware method behind scipy.optimize.minimize."""
from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest
import torch
from scipy.optimize import OptimizeWarning, minimize

import zo_scipy as zs
from zo_scipy.core.zovh import CurvatureZoAR


def quad(x):
    return 0.5 * float(np.sum(np.arange(1, x.size + 1) * x**2))


def test_registered_and_minimizes_a_quadratic():
    assert zs.METHODS["zovh"] is zs.zovh and "zovh" in zs.__all__
    x0 = np.ones(10)
    res = zs.minimize(quad, x0, method="zovh", options=dict(maxfev=3000, seed=0))
    assert res.nfev <= 3000 and np.all(np.isfinite(res.x))
    # f(x0) = 27.5; a seed-0 run reaches < 1e-2 (measured 2e-4)
    assert res.fun < 1e-2 and res.fun == pytest.approx(quad(res.x))
    assert res.state["kind"] == "CurvatureZoAR" and CurvatureZoAR.from_state_dict(res.state).nit == res.nit


@pytest.mark.parametrize("opts", [dict(inverse="woodbury"), dict(lam=0.5), dict(correction=False),
                                  dict(num_queries=3, num_histories=3, update="sgd", lr=1e-3),
                                  dict(directions="orthogonal", num_queries=4)])
def test_options_run_without_diverging(opts):
    x0 = np.full(6, 0.5)  # (these options shape the direction loop: step="direction")
    res = minimize(quad, x0, method=zs.zovh, options=dict(maxfev=600, seed=1, step="direction", **opts))
    assert np.all(np.isfinite(res.x)) and res.fun <= quad(x0)
    assert res.nfev <= 600


def test_same_seed_same_result_and_pickle_resume():
    a = minimize(quad, np.ones(5), method=zs.zovh, options=dict(maxfev=300, seed=3))
    b = minimize(quad, np.ones(5), method=zs.zovh, options=dict(maxfev=300, seed=3))
    np.testing.assert_array_equal(a.x, b.x)
    state = pickle.loads(pickle.dumps(a.state))
    c = minimize(quad, np.ones(5), method=zs.zovh, options=dict(maxfev=100, resume=state))
    assert c.nfev <= 100 and np.isfinite(c.fun) and state == a.state  # the snapshot is unchanged
    # resuming from the snapshot continues the same run: 300 + 100 evaluations = one of 400
    full = minimize(quad, np.ones(5), method=zs.zovh, options=dict(maxfev=400, seed=3))
    np.testing.assert_array_equal(c.x_iterate, full.x_iterate)
    with pytest.raises(ValueError, match="'resume'.*'kind'"):
        minimize(quad, np.ones(5), method=zs.zoar, options=dict(maxfev=10, resume=a.state))


def test_bounds_callback_and_budget():
    seen = []

    def cb(intermediate_result):
        seen.append(intermediate_result.nfev)
        if len(seen) == 5:
            raise StopIteration

    res = minimize(quad, np.full(4, 2.0), method=zs.zovh, bounds=[(1.0, 3.0)] * 4, callback=cb,
                   options=dict(maxfev=1000, seed=0))
    assert res.status == 99 and not res.success and len(seen) == 5
    assert np.all(res.x >= 1.0) and np.all(res.x <= 3.0)


def test_bad_input_names_the_option():
    with pytest.raises(ValueError, match="lam"):
        minimize(quad, np.ones(3), method=zs.zovh, options=dict(lam=-1.0))
    with pytest.raises(ValueError, match="inverse"):
        minimize(quad, np.ones(3), method=zs.zovh, options=dict(inverse="cholesky"))
    with pytest.raises(ValueError, match="correction"):
        minimize(quad, np.ones(3), method=zs.zovh, options=dict(correction="yes"))
    with pytest.raises(ValueError, match="num_queries"):
        minimize(quad, np.ones(3), method=zs.zovh, options=dict(num_queries=0))
    with pytest.raises(ValueError, match="resume"):
        minimize(quad, np.ones(3), method=zs.zovh, options=dict(resume=zs.ZoAR(torch.zeros(3))))
    with pytest.raises(ValueError, match="x0"):
        minimize(quad, [np.nan, 1.0], method=zs.zovh)
    with pytest.warns(OptimizeWarning, match="zovh"):
        minimize(quad, np.ones(3), method=zs.zovh, options=dict(maxfev=30, bogus=1))


def test_objective_errors_and_nonfinite_values():
    def boom(x):
        if x[0] < 0.9:
            raise RuntimeError("boom")
        return quad(x)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        res = minimize(boom, np.ones(3), method=zs.zovh, options=dict(maxfev=500, seed=0))
    assert res.status == 4 and not res.success and np.all(np.isfinite(res.x))
    res = minimize(lambda x: np.nan, np.ones(3), method=zs.zovh, options=dict(maxfev=100, seed=0))
    assert res.status == 3 and np.array_equal(res.x, np.ones(3))


def test_auto_lam_is_a_bounded_correction():
    # lam="auto" sets lambda = 10 median |c_i||u_i|^2, so the step lam*d stays within
    # a factor ~1 of the gradient g (curvature a bounded correction): |lam d| / |g| in
    # [0.5, 2] on a random buffer.
    opt = CurvatureZoAR(torch.zeros(30), num_queries=10, num_histories=0, seed=0, mu=0.1)
    X = opt.ask()
    opt.tell(torch.as_tensor([quad(x.numpy() + 1.0) for x in X]))
    from zo_scipy.core.estimators import zoar_gradient

    g = zoar_gradient(opt.history.directions(), opt.history.values(), opt.mu)
    ratio = float(opt._direction().norm() / g.norm())
    assert 0.5 < ratio < 2.0


def test_noise_free_rosenbrock_does_not_freeze_mu():
    # Regression: with a one-halving noise test this run froze mu at 0.027 after 2000
    # evaluations (|grad f| grew between two levels) and stalled at f = 208, a floor of
    # about mu^2 tr(H) / 2 above the iterate. Noise-free, so mu must never freeze.
    from scipy.optimize import rosen

    x0 = np.random.default_rng(0).standard_normal(200)
    res = minimize(rosen, x0, method=zs.zovh, options=dict(maxfev=20_000, seed=0, step="direction"))
    assert res.state["mu_floor"] == 0.0
    assert res.nfev == 20_000 and res.fun < rosen(res.x) + 1e-12
