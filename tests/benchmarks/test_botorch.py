"""The benchmarks' BoTorch adapters: test problems (values, bounds, optimum, noise) and BO as a peer."""
from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("botorch")
from botorch.test_functions import synthetic  # noqa: E402

from benchmarks.botorch_bo import botorch_minimize  # noqa: E402
from benchmarks.botorch_problems import BoTorchObjective, make_problem  # noqa: E402

NAMES = ["Ackley", "Levy", "Rosenbrock", "StyblinskiTang", "Griewank", "Rastrigin"]


def _points_in_box(obj: BoTorchObjective, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform(obj.lower, obj.upper, size=(n, obj.dim))


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dim", [3, 12])
def test_values_match_evaluate_true(name: str, dim: int) -> None:
    problem = getattr(synthetic, name)(dim=dim)
    obj = BoTorchObjective(problem)
    X = _points_in_box(obj, 16, seed=dim)
    expected = problem.evaluate_true(torch.as_tensor(X)).numpy()
    np.testing.assert_allclose(obj.batch(X), expected, rtol=1e-12, atol=0)
    # the scalar form agrees with the vectorized one and returns a builtin float
    v = obj(X[3])
    assert isinstance(v, float) and v == pytest.approx(expected[3], rel=1e-12, abs=0)
    assert obj.nfev == 17


@pytest.mark.parametrize("name", NAMES)
def test_bounds_and_optimum(name: str) -> None:
    obj = BoTorchObjective(name, dim=5)
    problem = obj.problem
    np.testing.assert_array_equal(obj.lower, problem.bounds[0].numpy())
    np.testing.assert_array_equal(obj.upper, problem.bounds[1].numpy())
    np.testing.assert_array_equal(obj.bounds.lb, obj.lower)
    assert obj.optimal_value == pytest.approx(float(problem.optimal_value))
    # f at a known minimiser equals the optimum; BoTorch stores StyblinskiTang's minimiser
    # and optimum to 7 significant digits (-2.903534, -39.166166 d), hence rel 1e-7.
    assert obj.true(obj.optimizers[0]) == pytest.approx(obj.optimal_value, rel=1e-7, abs=1e-9)
    # and random points of the box are not better than the optimum
    assert (obj.true_batch(_points_in_box(obj, 64, 0)) >= obj.optimal_value - 1e-9).all()


def test_maximisation_problem_is_negated() -> None:
    # Cosine8 is maximised by BoTorch's convention (optimum 0.8); the adapter minimises -f.
    problem = synthetic.Cosine8()
    obj = BoTorchObjective(problem)
    X = _points_in_box(obj, 8, 1)
    np.testing.assert_allclose(obj.batch(X), -problem.evaluate_true(torch.as_tensor(X)).numpy(), rtol=1e-12)
    assert obj.optimal_value == pytest.approx(-0.8)


def test_points_outside_the_box_use_the_same_formula() -> None:
    obj = BoTorchObjective("Levy", dim=4)
    x = obj.upper * 1.5
    assert math.isfinite(obj(x))
    assert obj(x) == pytest.approx(float(obj.problem._evaluate_true(torch.as_tensor(x[None]))[0]), rel=1e-12)


def test_noise_is_seeded_and_true_is_noise_free() -> None:
    x = np.full(6, 0.3)
    a = BoTorchObjective("Rosenbrock", dim=6, noise="additive", noise_level=0.5, seed=7)
    b = BoTorchObjective("Rosenbrock", dim=6, noise="additive", noise_level=0.5, seed=7)
    c = BoTorchObjective("Rosenbrock", dim=6, noise="additive", noise_level=0.5, seed=8)
    ya, yb, yc = [np.array([o(x) for _ in range(5)]) for o in (a, b, c)]
    np.testing.assert_array_equal(ya, yb)
    assert not np.allclose(ya, yc)
    assert a.true(x) == BoTorchObjective("Rosenbrock", dim=6).true(x)


@pytest.mark.parametrize("kind", ["additive", "multiplicative"])
def test_noise_level(kind: str) -> None:
    # n = 4000 draws at one point: the sample std of N(0, s^2) has standard error
    # ~ s / sqrt(2 n) = 0.011 s, so |std/s - 1| < 0.06 is a > 5-sigma band.
    sigma, n = 0.2, 4000
    obj = BoTorchObjective("StyblinskiTang", dim=3, noise=kind, noise_level=sigma, seed=0)
    x = np.array([1.0, -2.0, 0.5])
    f = obj.true(x)
    y = obj.batch(np.tile(x, (n, 1)))
    resid = (y - f) if kind == "additive" else (y / f - 1.0)
    assert abs(resid.std() / sigma - 1) < 0.06
    assert abs(resid.mean()) < 5 * sigma / math.sqrt(n)


def test_bad_arguments_name_the_argument() -> None:
    with pytest.raises(ValueError, match="noise"):
        BoTorchObjective("Levy", dim=2, noise="gaussian")
    with pytest.raises(ValueError, match="noise_level"):
        BoTorchObjective("Levy", dim=2, noise="additive", noise_level=-1.0)
    with pytest.raises(ValueError, match="name"):
        make_problem("NoSuchFunction", 2)
    with pytest.raises(ValueError, match="dim"):
        BoTorchObjective(synthetic.Levy(dim=3), dim=4)
    with pytest.raises(ValueError, match="shape"):
        BoTorchObjective("Levy", dim=3).true_batch(np.zeros((2, 4)))


def test_import_is_lazy() -> None:
    code = "import sys, benchmarks.botorch_problems, benchmarks.botorch_bo; print('botorch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[2])
    assert out.stdout.strip() == "False"


def test_botorch_bo_spends_exactly_the_budget() -> None:
    obj = BoTorchObjective("Branin")
    calls: list[int] = []

    def f(X: np.ndarray) -> np.ndarray:
        assert ((X >= obj.lower) & (X <= obj.upper)).all()
        calls.append(len(X))
        return obj.batch(X)

    res = botorch_minimize(f, obj.lower, obj.upper, budget=7, n_init=5, seed=0, num_restarts=2, raw_samples=32)
    assert sum(calls) == 7 == res["nfev"] == obj.nfev
    assert calls[0] == 5 and all(c == 1 for c in calls[1:])
    assert res["fun"] == pytest.approx(obj.true(res["x"]))
    # 5 Sobol points + 2 BO steps on Branin (f* = 0.398, box mean ~ 54): it must
    # find a point better than the median of its own initial design.
    assert res["fun"] < 54.0
    with pytest.raises(ValueError, match="budget"):
        botorch_minimize(f, obj.lower, obj.upper, budget=0)
