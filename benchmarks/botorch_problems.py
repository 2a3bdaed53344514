r"""BoTorch test problems as SciPy-style objectives (a benchmark dependency, not a runtime one).

>>> from benchmarks.botorch_problems import BoTorchObjective
>>> f = BoTorchObjective("Levy", dim=10, noise="additive", noise_level=0.1, seed=0)
>>> scipy.optimize.minimize(f, x0, bounds=f.bounds)      # f(x) -> float
>>> f.batch(X), f.true(x), f.optimal_value                 # vectorized, noise-free, min f

BoTorch itself is imported only when a problem is built.

:class:`BoTorchObjective` wraps any ``botorch.test_functions`` ``BaseTestProblem``
(e.g. ``Ackley``, ``Levy``, ``Rosenbrock``, ``StyblinskiTang``, ``Griewank``,
``Rastrigin``) as a function of a numpy vector returning a Python float, always
in **minimisation** form:

.. math:: f(x) = s \cdot \mathrm{evaluate\_true}(x), \qquad
          s = +1 \text{ for problems BoTorch minimises by default, else } -1,

independent of the problem's own ``negate`` flag (which only concerns BoTorch's
maximising BO convention). Optional observation noise, drawn from a seeded
``numpy.random.Generator``:

.. math:: y = f(x) + \sigma\,\varepsilon \;(\text{additive}), \qquad
          y = f(x)\,(1 + \sigma\,\varepsilon) \;(\text{multiplicative}), \qquad
          \varepsilon \sim N(0, 1).

The noise-free value stays available as :meth:`BoTorchObjective.true`.
"""
from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
import torch

NoiseKind = Literal["additive", "multiplicative"]


def make_problem(name: str, dim: int | None = None, **kwargs: Any) -> Any:
    """Instantiate ``botorch.test_functions.synthetic.<name>`` (``dim`` where it takes one)."""
    from botorch.test_functions import synthetic

    cls = getattr(synthetic, name, None)
    if cls is None or not isinstance(cls, type):
        raise ValueError(f"name must be a class of botorch.test_functions.synthetic, got {name!r}")
    if dim is not None:
        kwargs["dim"] = dim
    return cls(**kwargs)


class BoTorchObjective:
    r"""A BoTorch ``BaseTestProblem`` as ``f(x: ndarray) -> float`` (minimisation form).

    Parameters
    ----------
    problem : botorch.test_functions.base.BaseTestProblem or str
        A problem instance, or a class name of ``botorch.test_functions.synthetic``
        (then ``dim`` is passed to its constructor).
    dim : int, optional
        Dimension when ``problem`` is a name.
    noise : {"additive", "multiplicative"}, optional
        Observation noise model (see the module docstring); ``None`` for none.
    noise_level : float
        :math:`\sigma`, absolute for additive noise, relative for multiplicative.
    seed : int, optional
        Seed of the noise generator (same seed, same noise sequence).

    Attributes
    ----------
    dim : int
    lower, upper : ndarray
        The problem's box.
    optimal_value : float or None
        :math:`\min f` (minimisation form), ``None`` if BoTorch does not know it.
    optimizers : ndarray or None
        Known minimisers, shape ``(k, dim)``.
    nfev : int
        Points evaluated through :meth:`__call__` / :meth:`batch`.
    """

    def __init__(
        self,
        problem: Any,
        *,
        dim: int | None = None,
        noise: NoiseKind | None = None,
        noise_level: float = 0.0,
        seed: int | None = None,
    ) -> None:
        if isinstance(problem, str):
            problem = make_problem(problem, dim)
        elif dim is not None and int(getattr(problem, "dim", dim)) != dim:
            raise ValueError(f"dim={dim} does not match the problem's dim={problem.dim}")
        if not hasattr(problem, "evaluate_true") or not hasattr(problem, "bounds"):
            raise TypeError(f"problem must be a BoTorch BaseTestProblem or a class name, got {type(problem).__name__}")
        if noise not in (None, "additive", "multiplicative"):
            raise ValueError(f"noise must be None, 'additive' or 'multiplicative', got {noise!r}")
        if not (noise_level >= 0 and math.isfinite(noise_level)):
            raise ValueError(f"noise_level must be a finite number >= 0, got {noise_level!r}")
        self.problem = problem
        self.name = type(problem).__name__
        self.dim = int(problem.dim)
        bounds = problem.bounds.detach().to(torch.float64).cpu().numpy()
        self.lower, self.upper = bounds[0].copy(), bounds[1].copy()
        self.sign = 1.0 if getattr(problem, "_is_minimization_by_default", True) else -1.0
        opt = getattr(problem, "_optimal_value", None)
        self.optimal_value: float | None = None if opt is None else self.sign * float(opt)
        optimizers = getattr(problem, "optimizers", None)
        self.optimizers = None if optimizers is None else optimizers.detach().to(torch.float64).cpu().numpy()
        self.noise, self.noise_level = noise, float(noise_level)
        self.rng = np.random.default_rng(seed)
        self.nfev = 0

    # -- noise-free values -------------------------------------------------------
    def true_batch(self, X: Any) -> np.ndarray:
        """Noise-free :math:`f` of the rows of ``X`` (shape ``(n, dim)``), as a float64 array.

        Points outside the problem's box are evaluated too (by the same formula).
        """
        T = torch.as_tensor(np.asarray(X, dtype=np.float64)) if not isinstance(X, torch.Tensor) else X.to(torch.float64)
        if T.ndim != 2 or T.shape[1] != self.dim:
            raise ValueError(f"X must have shape (n, {self.dim}), got {tuple(T.shape)}")
        T = T.to(self.problem.bounds.device)
        lo, hi = self.problem.bounds
        with torch.no_grad():
            if bool(((T >= lo) & (T <= hi)).all()):
                out = self.problem.evaluate_true(T)
            else:
                # evaluate_true = input validation (which rejects points outside the box)
                # + _evaluate_true; the formulas are defined on all of R^d, and a SciPy-style
                # objective must answer wherever an unconstrained optimizer asks.
                out = self.problem._evaluate_true(T)
        return self.sign * out.detach().to(torch.float64).cpu().numpy().reshape(T.shape[0])

    def true(self, x: Any) -> float:
        """Noise-free :math:`f(x)` of one point."""
        return float(self.true_batch(np.asarray(x, dtype=np.float64).reshape(1, -1))[0])

    # -- observed values ---------------------------------------------------------
    def add_noise(self, values: np.ndarray) -> np.ndarray:
        """Apply the noise model to noise-free ``values`` (draws from the seeded generator)."""
        if self.noise is None or self.noise_level == 0.0:
            return values
        eps = self.rng.standard_normal(values.shape)
        if self.noise == "additive":
            return values + self.noise_level * eps
        return values * (1.0 + self.noise_level * eps)

    def batch(self, X: Any) -> np.ndarray:
        """Observed (possibly noisy) values of the rows of ``X``: the vectorized objective."""
        values = self.add_noise(self.true_batch(X))
        self.nfev += values.shape[0]
        return values

    def __call__(self, x: Any, *args: Any) -> float:
        """Observed value at one point: ``scipy.optimize.minimize(obj, x0, bounds=obj.bounds)``."""
        return float(self.batch(np.asarray(x, dtype=np.float64).reshape(1, -1))[0])

    @property
    def bounds(self) -> Any:
        """The box as :class:`scipy.optimize.Bounds`."""
        from scipy.optimize import Bounds

        return Bounds(self.lower, self.upper)

    def __repr__(self) -> str:
        noise = "" if self.noise is None else f", noise={self.noise!r}, noise_level={self.noise_level:g}"
        return f"BoTorchObjective({self.name}, dim={self.dim}{noise})"
