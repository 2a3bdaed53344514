r"""Running an optimizer at an equal evaluation budget.

:class:`Tracker` stands between an optimizer and a :class:`~._problems.Problem`:
it counts every evaluated point, refuses to evaluate beyond the budget
(:class:`BudgetReached`, an exception the runner catches), hands the optimizer
the *observed* (possibly noisy) value and records the best *true* (noise-free)
value among the points evaluated so far,

.. math:: b(n) = \min_{j \le n} f(x_j),

at logarithmically spaced evaluation counts (the trace the plots use). Every
method is scored by the same rule — best true value among its own queries —
which needs no trust in the method's returned point; the true value at the
returned point is recorded too (``final``) where the method returns one.
"""
from __future__ import annotations

import math
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._problems import Problem


class BudgetReached(Exception):
    """The optimizer asked for an evaluation beyond the budget (caught by :func:`run_cell`)."""


class Tracker:
    """Counting, capping, noise-adding objective with a best-true-so-far trace."""

    def __init__(self, problem: Problem, budget: int, seed: int, n_checkpoints: int = 60):
        self.problem, self.budget = problem, int(budget)
        self.rng = np.random.default_rng([seed, 104729])
        self.nfev = 0
        self.best = math.inf
        self.best_x: np.ndarray | None = None
        self.trace: list[list[float]] = []
        self._grid = np.unique(np.geomspace(1, self.budget, n_checkpoints).round().astype(int))
        self._next = 0

    @property
    def remaining(self) -> int:
        return self.budget - self.nfev

    def batch(self, X: Any) -> np.ndarray:
        """Observed values of the rows of ``X``; evaluates only what the budget allows, then raises."""
        X = np.asarray(X, dtype=np.float64).reshape(-1, self.problem.d)
        if self.remaining <= 0:
            raise BudgetReached
        take = X[: self.remaining]
        true = np.asarray(self.problem.true_batch(take), dtype=np.float64).reshape(take.shape[0])
        obs = self.problem.observe(true, self.rng)
        for i, v in enumerate(true):
            self.nfev += 1
            if v < self.best:  # False for NaN
                self.best, self.best_x = float(v), take[i].copy()
            while self._next < self._grid.size and self.nfev >= self._grid[self._next]:
                self.trace.append([self.nfev, self.best])
                self._next += 1
        if take.shape[0] < X.shape[0]:
            raise BudgetReached
        return obs

    def __call__(self, x: Any, *args: Any) -> float:
        return float(self.batch(np.asarray(x, dtype=np.float64).reshape(1, -1))[0])

    def finish(self) -> None:
        if not self.trace or self.trace[-1][0] != self.nfev:
            if self.nfev:
                self.trace.append([self.nfev, self.best])


@dataclass
class Method:
    """A benchmark peer.

    ``run(tracker, x0, lower, upper, seed)`` minimises ``tracker`` (call it or
    its ``batch``) and may return the point it recommends; ``skip(problem)``
    returns a reason when the cell cannot run; ``available()`` a reason when the
    method cannot run at all (missing package or module).
    """

    name: str
    family: str
    run: Callable[..., Any]
    skip: Callable[[Problem], str | None] = lambda p: None
    available: Callable[[], str | None] = lambda: None
    settings: str = "defaults"


def _budget_end(exc: BaseException | None) -> bool:
    """True when ``exc`` is, or was raised while handling, :class:`BudgetReached`
    (a library may wrap the objective's exceptions in its own)."""
    seen = 0
    while exc is not None and seen < 20:
        if isinstance(exc, BudgetReached):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


def run_cell(method: Method, problem: Problem, seed: int, *, budget: int | None = None) -> dict[str, Any]:
    """Run one (method, problem, seed) cell; never raises (errors become ``error`` rows)."""
    budget = int(budget or problem.budget)
    row: dict[str, Any] = {
        "method": method.name, "family": method.family, "problem": problem.label, "name": problem.name,
        "d": problem.d, "group": problem.group, "seed": seed, "budget": budget,
        "noise": problem.noise, "noise_level": problem.noise_level, "fopt": problem.fopt,
        "settings": method.settings,
    }
    reason = method.available() or method.skip(problem)
    if reason:
        row["skipped"] = reason
        return row
    x0 = problem.x0(seed)
    row["f0"] = float(problem.true_batch(x0[None])[0])
    tracker = Tracker(problem, budget, seed)
    t0 = time.perf_counter()
    returned = None
    try:
        returned = method.run(tracker, x0.copy(), problem.lower, problem.upper, seed)
    except Exception as exc:  # a peer crashing is a result, not the end of the benchmark
        if not _budget_end(exc):
            row["error"] = f"{type(exc).__name__}: {exc}"
            row["traceback"] = traceback.format_exc(limit=4)
    row["seconds"] = round(time.perf_counter() - t0, 3)
    tracker.finish()
    row.update(nfev=tracker.nfev, best=tracker.best, trace=tracker.trace)
    if returned is not None:
        xr = np.asarray(returned, dtype=np.float64).reshape(-1)
        if xr.shape == (problem.d,) and np.isfinite(xr).all():
            row["final"] = float(problem.true_batch(xr[None])[0])
    return row
