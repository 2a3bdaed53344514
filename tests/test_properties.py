"""Property-based sweep of the SciPy methods and the ZoVH hooks (hypothesis).

The fast profile (derandomized, a fixed set of examples) runs in ``make test``; a longer
one is ``HYPOTHESIS_PROFILE=long python -m pytest tests/test_properties.py``.
Properties, for random d, K, N, budgets, seeds, bounds, objectives with NaN/+-inf regions,
vectorized or not, float64 or float32, ``zoar`` and ``zovh``:

- ``nfev <= maxfev`` and the objective was called exactly ``nfev`` times;
- every query is inside the bounds; ``res.x`` is finite and inside them;
- ``res.fun == f(res.x)`` exactly (or ``nan`` with ``x = x0`` when nothing finite was seen);
- the same seed gives the same result; a run split in two with ``resume`` ends where the
  uninterrupted run ends.
"""
from __future__ import annotations

import math
import os
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.optimize import Bounds, OptimizeWarning, minimize

import zo_scipy as zs
from zo_scipy.core.zovh import auto_step

settings.register_profile("fast", max_examples=30, derandomize=True, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("long", max_examples=600, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "fast"))

BOUND_KINDS = ("none", "finite", "half-infinite", "tight", "Bounds")
REGIONS = ("none", "nan", "inf", "-inf")


@st.composite
def problems(draw):
    d = draw(st.integers(1, 6))
    K = draw(st.integers(1, 6))
    N = draw(st.integers(0 if K >= 2 else 1, 3))
    kind = draw(st.sampled_from(BOUND_KINDS))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    lo, hi = -rng.uniform(0.05, 2, d), rng.uniform(0.05, 2, d)
    if kind == "none":
        bounds = None
    elif kind == "half-infinite":
        bounds = [(float(a), None) for a in lo]
        hi = np.full(d, np.inf)
    elif kind == "tight":
        hi = lo + 1e-6
        bounds = list(zip(lo.tolist(), hi.tolist()))
    elif kind == "Bounds":
        bounds = Bounds(lo, hi)
    else:
        bounds = list(zip(lo.tolist(), hi.tolist()))
    if bounds is None:
        lo, hi = np.full(d, -np.inf), np.full(d, np.inf)
    x0 = rng.uniform(-1, 1, d)
    return dict(d=d, K=K, N=N, bounds=bounds, lo=lo, hi=hi, x0=x0,
                maxfev=draw(st.integers(1, 120)), seed=draw(st.integers(0, 2**32)),
                region=draw(st.sampled_from(REGIONS)), vectorized=draw(st.booleans()),
                dtype=draw(st.sampled_from(["float64", "float32"])),
                method=draw(st.sampled_from(["zoar", "zovh"])),
                step=draw(st.sampled_from(["auto", "direction", "newton"])))  # zovh's step


def _value(x: np.ndarray, region: str) -> float:
    v = float(np.sum((x - 0.25) ** 2))
    if region != "none" and x[0] > 0.1:
        return {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}[region]
    return v


class Counted:
    def __init__(self, region: str, vectorized: bool):
        self.region, self.vectorized, self.calls, self.points = region, vectorized, 0, []

    def __call__(self, x):
        if self.vectorized:
            X = np.array(x, dtype=np.float64, copy=True)
            self.calls += X.shape[0]
            self.points.extend(X)
            return np.array([_value(r, self.region) for r in X])
        self.calls += 1
        self.points.append(np.array(x, dtype=np.float64, copy=True))
        return _value(np.asarray(x), self.region)


def _run(p, fun, **extra):
    options = dict(maxfev=p["maxfev"], num_queries=p["K"], num_histories=p["N"], seed=p["seed"],
                   vectorized=p["vectorized"], dtype=p["dtype"], **extra)
    if p["method"] == "zovh":
        options["step"] = p["step"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", (RuntimeWarning, OptimizeWarning))
        return minimize(fun, p["x0"], method=getattr(zs, p["method"]), bounds=p["bounds"],
                        options=options)


@given(problems())
def test_contract_holds_on_random_problems(p):
    f = Counted(p["region"], p["vectorized"])
    res = _run(p, f)
    assert res.nfev <= p["maxfev"] and f.calls == res.nfev
    P = np.array(f.points).reshape(-1, p["d"])
    assert np.all((P >= p["lo"]) & (P <= p["hi"])), "a query left the box"
    assert np.all(np.isfinite(res.x)) and np.all((res.x >= p["lo"]) & (res.x <= p["hi"]))
    if math.isnan(res.fun):
        assert np.array_equal(res.x, np.clip(p["x0"], p["lo"], p["hi"]))
    else:
        assert res.fun == _value(res.x, p["region"]) and math.isfinite(res.fun)
    again = _run(p, Counted(p["region"], p["vectorized"]))
    assert np.array_equal(again.x, res.x) and (again.fun == res.fun or math.isnan(res.fun))


@given(problems(), st.floats(0.1, 0.9))
def test_a_resumed_run_ends_where_the_uninterrupted_one_ends(p, cut):
    if p["method"] == "zovh" and p["step"] == "auto":
        # "auto" picks by the call's own budget; a run split into parts names the full run's step
        p = dict(p, step=auto_step(p["d"], p["maxfev"]))
    full = _run(p, Counted(p["region"], p["vectorized"]))
    first_budget = max(1, int(cut * p["maxfev"]))
    if first_budget >= p["maxfev"]:
        return
    first = _run(dict(p, maxfev=first_budget), Counted(p["region"], p["vectorized"]))
    if first.status not in (0, 1):  # stopped for another reason (no finite value, converged)
        return
    rest = dict(p, maxfev=p["maxfev"] - first_budget)
    f = Counted(p["region"], p["vectorized"])
    options = dict(maxfev=rest["maxfev"], vectorized=p["vectorized"], resume=first.state)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", (RuntimeWarning, OptimizeWarning))
        second = minimize(f, p["x0"], method=getattr(zs, p["method"]), options=options)
    if full.status == 1 and second.status == 1:
        assert np.array_equal(second.x_iterate, full.x_iterate)
        assert first.nfev + second.nfev == full.nfev


@given(st.integers(1, 6), st.integers(0, 2**32), st.sampled_from(["float64", "float32"]),
       st.sampled_from(["none", "nan"]))
def test_curvature_hooks_count_and_stay_finite(d, seed, dtype, region):
    f = Counted(region, False)
    curv = zs.ZoVHCurvature(f, seed=seed, dtype=dtype)
    x = np.full(d, -0.5)  # outside the NaN region (x[0] > 0.1)
    g, Hp = curv.grad(x), curv.hessp(x, np.ones(d))
    assert f.calls == curv.nfev and np.all(np.isfinite(g)) and np.all(np.isfinite(Hp))
    assert g.shape == (d,) and Hp.shape == (d,)
