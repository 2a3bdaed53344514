"""The ``zoar`` SciPy method: contract, every option, every bad-input case."""
from __future__ import annotations

import math
import json
import pickle
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import scipy.optimize
import torch
from scipy.optimize import Bounds, OptimizeResult, OptimizeWarning, minimize

import zo_scipy as zs
from zo_scipy import Status

from _objectives import rosen, shifted_sphere, sphere

OPTS = dict(seed=0, maxfev=200)


class Recorder:
    """Counts calls and keeps every point and value the objective saw."""

    def __init__(self, f=sphere):
        self.f, self.points, self.values = f, [], []

    def __call__(self, x):
        v = self.f(x)
        self.points.append(np.array(x, copy=True))
        self.values.append(v)
        return v


def run(fun=sphere, x0=None, callback=None, bounds=None, **options):
    x0 = np.linspace(-1, 1, 5) if x0 is None else x0
    return minimize(fun, x0, method=zs.zoar, callback=callback, bounds=bounds, options={**OPTS, **options})


# -- the result contract ---------------------------------------------------------------
def test_result_is_a_real_optimize_result_and_fun_was_evaluated_at_x():
    rec = Recorder()
    res = run(rec)
    assert isinstance(res, OptimizeResult)
    assert res.nfev == len(rec.values) == 200 and res.status == Status.MAXFEV and not res.success
    assert res.nit == 20
    # fun is a value actually returned by the objective at exactly x, and it is the best one
    i = int(np.argmin(rec.values))
    assert res.fun == rec.values[i] and np.array_equal(res.x, rec.points[i])
    assert res.fun == sphere(res.x)
    assert res.fun < sphere(np.linspace(-1, 1, 5))
    for key in ("x_iterate", "lr", "mu", "n_nonfinite", "state", "message"):
        assert key in res


def test_x_keeps_the_shape_of_x0_and_objective_sees_that_shape():
    shapes = []

    def f(x):
        shapes.append(x.shape)
        return float(np.sum(x**2))

    res = zs.zoar(f, np.ones((2, 3)), **OPTS)  # minimize() itself flattens x0; the method keeps any shape
    assert res.x.shape == (2, 3) and res.x_iterate.shape == (2, 3)
    assert set(shapes) == {(2, 3)}


def test_partial_last_batch_spends_the_budget_exactly():
    rec = Recorder()
    res = run(rec, maxfev=25, num_queries=10)
    # two full iterations; the last 5 values are held in the state for a resume, not a step
    assert res.nfev == 25 == len(rec.values) and res.nit == 2
    assert res.state["held"]["shape"] == [5] and res.fun == min(rec.values)


@pytest.mark.parametrize("split", [305, 300, 1])
def test_resume_after_a_mid_batch_stop_equals_the_uninterrupted_run(split):
    full = run(maxfev=600)
    first = run(maxfev=split)
    second = run(maxfev=600 - split, resume=json.loads(json.dumps(first.state)))
    assert np.array_equal(second.x_iterate, full.x_iterate)
    assert min(first.fun, second.fun) == full.fun and first.nfev + second.nfev == 600


def test_maxiter():
    res = run(maxiter=3, maxfev=10_000)
    assert res.nit == 3 and res.nfev == 30 and res.status == Status.MAXITER and not res.success


def test_converges_successfully_on_a_quadratic_with_tol():
    # tol sets xtol: success once the adaptive lr fell below tol * lr0 (~20 halvings for 1e-6)
    res = minimize(sphere, np.linspace(-2, 2, 10), method=zs.zoar, tol=1e-6, options=dict(seed=1, maxfev=100_000))
    assert res.success and res.status == Status.CONVERGED and res.nfev < 100_000
    assert res.lr <= 1e-6 * 0.05 * np.sqrt(np.mean(np.linspace(-2, 2, 10) ** 2)) * 1.0001
    assert res.fun < 1e-8


def test_defaults_make_progress_on_rosenbrock_without_diverging():
    x0 = np.random.default_rng(5).standard_normal(100)
    res = minimize(rosen, x0, method=zs.zoar, options=dict(seed=0, maxfev=5000))
    assert np.isfinite(res.fun) and res.fun < 0.1 * rosen(x0)


def test_minimize_convenience_and_pass_through():
    a = zs.minimize(sphere, np.ones(4), method="zoar", options=OPTS)
    b = minimize(sphere, np.ones(4), method=zs.zoar, options=OPTS)
    assert np.array_equal(a.x, b.x) and a.nfev == b.nfev
    c = zs.minimize(sphere, np.ones(4), method="Powell")
    d = minimize(sphere, np.ones(4), method="Powell")
    assert np.array_equal(c.x, d.x)
    assert zs.METHODS["zoar"] is zs.zoar


def test_basinhopping_accepts_zoar():
    res = scipy.optimize.basinhopping(sphere, np.ones(3), niter=2, seed=0,
                                      minimizer_kwargs={"method": zs.zoar, "options": OPTS})
    assert np.isfinite(res.fun) and res.fun < sphere(np.ones(3))


# -- reproducibility ---------------------------------------------------------------------
def test_same_seed_same_result_different_seed_different_result():
    a, b, c = run(seed=3), run(seed=3), run(seed=4)
    assert np.array_equal(a.x, b.x) and np.array_equal(a.x_iterate, b.x_iterate)
    assert not np.array_equal(a.x_iterate, c.x_iterate)


def test_rng_is_accepted_like_scipy():
    a = run(seed=None, rng=np.random.default_rng(1))
    b = run(seed=None, rng=np.random.default_rng(1))
    assert np.array_equal(a.x, b.x)
    with pytest.raises(ValueError, match="'seed' or option 'rng'"):
        run(rng=1)


# -- evaluation modes give the same trajectory ---------------------------------------------
def test_vectorized_batches_and_same_trajectory():
    calls = []

    def fb(X):
        calls.append(X.shape)
        return 0.5 * np.sum(X**2, axis=1)

    a = run(fb, vectorized=True)
    b = run(sphere)
    assert set(calls) == {(10, 5)} and len(calls) == 20
    assert np.allclose(a.x_iterate, b.x_iterate, rtol=1e-12, atol=1e-14) and a.nfev == b.nfev


def test_tensor_input_torch_objective():
    seen = []

    def ft(x):
        seen.append(type(x))
        return 0.5 * (x**2).sum()  # a 0-d tensor: coerced to float

    a = run(ft, tensor_input=True)
    b = run(sphere)
    assert set(seen) == {torch.Tensor} and np.allclose(a.x_iterate, b.x_iterate, rtol=1e-12, atol=1e-14)


def test_float32_dtype_and_device_auto():
    res = run(dtype="float32", device="auto")
    assert res.x.dtype == np.float64 and np.isfinite(res.fun)
    assert res.state["dtype"] == "float32" and res.state["x"]["dtype"] == "float32"


def test_workers_process_pool_and_map_like_give_the_serial_result():
    serial = run(shifted_sphere, maxfev=100)
    pooled = run(shifted_sphere, maxfev=100, workers=2)  # a real multiprocessing.Pool
    with ThreadPoolExecutor(2) as ex:
        mapped = run(shifted_sphere, maxfev=100, workers=ex.map)
    for r in (pooled, mapped):
        assert np.array_equal(r.x, serial.x) and r.nfev == serial.nfev == 100


def test_torch_threads_is_applied_and_restored():
    before = torch.get_num_threads()
    inside = []

    def f(x):
        inside.append(torch.get_num_threads())
        return sphere(x)

    run(f, torch_threads=1, maxfev=20)
    assert set(inside) == {1} and torch.get_num_threads() == before


def test_disp_and_progress(capsys):
    run(disp=True, progress=True, maxfev=50)
    out = capsys.readouterr()
    assert "Function evaluations: 50" in out.out
    assert "50/50" in out.err  # tqdm's bar reached the budget


# -- callbacks --------------------------------------------------------------------------
def test_callback_intermediate_result_signature():
    seen = []

    def cb(intermediate_result):
        seen.append(intermediate_result)

    res = run(callback=cb)
    assert len(seen) == res.nit
    last = seen[-1]
    assert isinstance(last, OptimizeResult) and last.fun == sphere(last.x) and last.nfev == res.nfev
    assert {"xk", "lr", "mu", "nit"} <= set(last)


def test_callback_legacy_signature_gets_a_copy_of_the_iterate():
    seen = []
    res = run(callback=lambda xk: seen.append(xk))
    assert len(seen) == res.nit and np.array_equal(seen[-1], res.x_iterate)


def test_callback_stop_iteration():
    def cb(intermediate_result):
        if intermediate_result.nit == 3:
            raise StopIteration

    res = run(callback=cb)
    assert res.status == 99 and not res.success and res.nit == 3 and res.nfev == 30
    assert res.message == "`callback` raised `StopIteration`."


# -- bounds -----------------------------------------------------------------------------
@pytest.mark.parametrize("bounds", [Bounds(0.0, 0.3), [(0.0, 0.3)] * 5, [(0.0, 0.3)] * 4 + [(None, 0.3)]])
def test_no_query_ever_outside_the_bounds(bounds):
    rec = Recorder(shifted_sphere)
    with pytest.warns(OptimizeWarning, match="clipped"):
        res = run(rec, bounds=bounds, maxfev=300)
    P = np.array(rec.points)
    assert P.max() <= 0.3 and P[:, :4].min() >= 0.0
    assert res.x.max() <= 0.3 and res.fun < shifted_sphere(np.clip(np.linspace(-1, 1, 5), 0, 0.3))


@pytest.mark.parametrize(
    "bounds, match",
    [([(0, 1)] * 3, "bounds has 3 pairs but x0 has 5"),
     ([(1, 0)] * 5, "lower bound 1.0 exceeds upper bound 0.0 for variable 0"),
     ([(0, np.nan)] * 5, "bounds contain NaN"),
     (Bounds(np.zeros(2), np.ones(2)), "bounds has 2 lower"),
     (5, "bounds must be a scipy.optimize.Bounds"),
     ([(0, 1, 2)] * 5, r"bounds\[0\] must be a \(min, max\) pair")])
def test_invalid_bounds(bounds, match):
    rec = Recorder()
    with pytest.raises(ValueError, match=match):
        run(rec, bounds=bounds)
    assert rec.values == []  # validated before the first evaluation


# -- options validation -------------------------------------------------------------------
@pytest.mark.parametrize(
    "option, value",
    [("maxfev", 0), ("maxfev", 2.5), ("maxiter", 0), ("num_queries", 0), ("num_histories", -1),
     ("mu", -1.0), ("mu", math.nan), ("lr", 0.0), ("adapt_mu", "yes"), ("update", "lbfgs"),
     ("betas", (0.9, 1.0)), ("betas", 0.9), ("eps", 0), ("bias_correction", 1), ("schedule", "cosine"),
     ("xtol", -1.0), ("directions", "cube"), ("normalization", "sum"), ("seed", -3), ("seed", 1.5),
     ("rng", "abc"), ("device", "tpu"), ("dtype", "int8"), ("vectorized", "no"), ("tensor_input", None),
     ("workers", 0), ("workers", "four"), ("torch_threads", 0), ("disp", "loud"), ("progress", 2),
     ("resume", "state")])
def test_invalid_option_is_named(option, value):
    rec = Recorder()
    with pytest.raises(ValueError, match=f"'?{option}'?"):
        run(rec, **{option: value})
    assert rec.values == []


def test_cuda_requested_without_cuda():
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    with pytest.raises(ValueError, match="'device'.*CUDA is not available"):
        run(device="cuda")


def test_unknown_option_warns_like_scipy():
    with pytest.warns(OptimizeWarning, match="Unknown solver options for zoar: frobnicate"):
        run(frobnicate=1)


def test_budget_smaller_than_one_batch_evaluates_and_holds_it():
    rec = Recorder()
    res = run(rec, maxfev=5)
    assert res.nfev == 5 == len(rec.values) and res.nit == 0 and res.status == Status.MAXFEV
    assert res.fun == min(rec.values) and res.state["held"]["shape"] == [5]


def test_num_queries_times_histories_needs_two_values():
    with pytest.raises(ValueError, match="num_queries"):
        run(num_queries=1, num_histories=0)


def test_jac_is_ignored_with_a_warning_and_constraints_raise():
    with pytest.warns(RuntimeWarning, match="does not use jac"):
        minimize(sphere, np.ones(3), method=zs.zoar, jac=lambda x: x, options=OPTS)
    with pytest.raises(ValueError, match="constraints"):
        minimize(sphere, np.ones(3), method=zs.zoar, constraints=[{"type": "eq", "fun": lambda x: x[0]}])


def test_workers_and_vectorized_conflict():
    with pytest.raises(ValueError, match="'workers' and 'vectorized'"):
        run(vectorized=True, workers=2)


# -- bad x0 -----------------------------------------------------------------------------
@pytest.mark.parametrize("x0, match", [(np.array([1.0, np.nan]), "x0 contains NaN"),
                                       (np.array(["a", "b"]), "x0 must be a real numeric array"),
                                       (np.array([1 + 2j]), "x0 must be a real numeric array"),
                                       (np.array([]), "x0 must have at least one element"),
                                       ([[1.0, 2.0], [3.0]], "x0 must be a real numeric array")])
def test_bad_x0(x0, match):
    with pytest.raises(ValueError, match=match):
        zs.zoar(sphere, x0, **OPTS)


def test_scalar_x0_is_one_dimensional():
    res = zs.zoar(sphere, 3.0, **OPTS)
    assert res.x.shape == (1,) and res.fun < sphere(np.array([3.0]))


# -- bad objective values -------------------------------------------------------------------
def test_non_scalar_objective_raises_naming_fun():
    with pytest.raises(ValueError, match="fun must return a scalar, got an array of shape \\(5,\\)"):
        run(lambda x: x)
    with pytest.raises(ValueError, match="fun must return a real scalar"):
        run(lambda x: "abc")
    with pytest.raises(ValueError, match="one value per row"):
        run(lambda X: np.ones(3), vectorized=True)


def test_nan_region_never_yields_nan_x():
    # NaN whenever x[0] > 0.2: the optimum of the sphere (0) is still reachable
    rec = Recorder(lambda x: math.nan if x[0] > 0.2 else sphere(x))
    res = run(rec, maxfev=1000)
    assert np.all(np.isfinite(res.x)) and np.isfinite(res.fun) and res.x[0] <= 0.2
    assert res.n_nonfinite == sum(1 for v in rec.values if not np.isfinite(v)) > 0
    assert res.fun == min(v for v in rec.values if np.isfinite(v))


def test_inf_values_are_handled_like_nan():
    res = run(lambda x: math.inf if x[1] < -0.5 else sphere(x), maxfev=500)
    assert np.isfinite(res.fun) and res.x[1] >= -0.5


def test_objective_that_is_never_finite():
    x0 = np.ones(3)
    res = zs.zoar(lambda x: math.nan, x0, **OPTS)
    assert res.status == Status.NONFINITE and not res.success
    assert np.array_equal(res.x, x0) and math.isnan(res.fun) and res.nfev == 30


def test_exception_in_objective_returns_best_so_far():
    rec = Recorder()

    def f(x):
        if len(rec.values) == 57:
            raise ZeroDivisionError("boom")
        return rec(x)

    with pytest.warns(RuntimeWarning, match="ZeroDivisionError"):
        res = run(f)
    assert res.status == Status.OBJECTIVE_ERROR and not res.success
    assert isinstance(res.exception, ZeroDivisionError)
    assert res.nfev == 58  # the failing call counts: it happened
    assert res.fun == min(rec.values) and res.fun == sphere(res.x)
    assert "boom" in res.message


def test_keyboard_interrupt_returns_best_so_far():
    rec = Recorder()

    def f(x):
        if len(rec.values) == 45:
            raise KeyboardInterrupt
        return rec(x)

    res = run(f)
    assert res.status == Status.INTERRUPTED and not res.success
    assert res.fun == min(rec.values) and np.array_equal(res.x, rec.points[int(np.argmin(rec.values))])
    # the optimizer state is consistent: a resume continues without "ask() called twice"
    more = run(sphere, resume=res.state, maxfev=50)
    assert more.nfev == 50


# -- checkpoint / resume ------------------------------------------------------------------
def test_state_pickles_and_resume_continues_the_same_run():
    full = run(maxfev=400)
    first = run(maxfev=200)
    state = pickle.loads(pickle.dumps(first.state))
    second = run(maxfev=200, resume=state)
    assert np.array_equal(second.x_iterate, full.x_iterate)
    assert second.fun >= full.fun or np.isclose(second.fun, full.fun) or second.fun <= first.fun


def test_state_is_json_and_resume_is_bit_identical_through_text():
    full = run(maxfev=400)
    first = run(maxfev=200)
    text = json.dumps(first.state)  # strict JSON: no NaN/inf tokens, no pickle
    second = run(maxfev=200, resume=json.loads(text))
    assert np.array_equal(second.x_iterate, full.x_iterate) and second.lr == full.lr
    assert min(first.fun, second.fun) == full.fun


def test_resuming_never_changes_the_earlier_result():
    first = run(maxfev=100)
    before = json.dumps(first.state)
    run(maxfev=100, resume=first.state)
    assert json.dumps(first.state) == before and first.state["nit"] == first.nit


def test_resume_from_corrupt_state_names_the_field():
    first = run(maxfev=60)
    bad = json.loads(json.dumps(first.state))
    bad["control"]["lr"] = -1.0
    with pytest.raises(ValueError, match="'resume'.*'control.lr'"):
        run(maxfev=10, resume=bad)


def test_resume_dimension_mismatch():
    first = run(maxfev=20)
    with pytest.raises(ValueError, match="'resume' holds a 5-dimensional state but x0 has 3"):
        zs.zoar(sphere, np.ones(3), resume=first.state, **OPTS)


# -- the authors' behaviour stays reachable --------------------------------------------------
def test_authors_settings_reproduce_a_fixed_lr_run():
    res = run(update="radazo", bias_correction=False, schedule="constant", normalization="authors",
              mu=0.05, lr=1e-3, num_histories=5, maxfev=300)
    assert res.lr == 1e-3 and res.mu == 0.05 and res.state["options"]["update"] == "radazo"
    # the first radazo step without bias correction moves every coordinate by ~10 lr
    one = run(update="radazo", bias_correction=False, schedule="constant", mu=0.05, lr=1e-3, maxiter=1)
    assert np.allclose(np.abs(one.x_iterate - np.linspace(-1, 1, 5)), 1e-2, rtol=1e-3)


# -- valid options change the run as documented ---------------------------------------------
@pytest.mark.parametrize("directions", ["sphere", "orthogonal"])
def test_other_direction_kinds_make_progress(directions):
    res = run(directions=directions, maxfev=500)
    assert res.fun < 0.5 * sphere(np.linspace(-1, 1, 5))
    assert not np.array_equal(res.x_iterate, run(maxfev=500).x_iterate)


def test_fixed_mu_and_sgd():
    res = run(mu=0.01, adapt_mu=False, update="sgd", lr=0.1, maxfev=300)
    assert res.mu == 0.01 and res.fun < sphere(np.linspace(-1, 1, 5))
    # sgd on 0.5|x|^2 with lr 0.1 contracts the iterate; the averaged estimate is unbiased
    assert np.linalg.norm(res.x_iterate) < np.linalg.norm(np.linspace(-1, 1, 5))


def test_user_mu_is_fixed_by_default_and_automatic_mu_follows_lr():
    fixed = run(mu=0.02, maxfev=400)
    assert fixed.mu == 0.02
    auto = run(maxfev=400)
    assert auto.mu == pytest.approx(2 * auto.lr)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_tensor_objective_stays_on_the_device():
    devices = []

    def ft(X):
        devices.append(X.device.type)
        return 0.5 * (X**2).sum(1)

    res = run(ft, device="cuda", vectorized=True, tensor_input=True, maxfev=200)
    assert set(devices) == {"cuda"} and np.isfinite(res.fun) and isinstance(res.x, np.ndarray)
