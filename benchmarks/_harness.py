r"""The one harness: cells, the budget counter, running an optimizer at an equal budget.

:class:`Tracker` is the only budget counter of the benchmarks. It stands between an
optimizer and a :class:`~._problems.Problem`:
it counts every evaluated point, refuses to evaluate beyond the budget
(:class:`BudgetReached`, an exception the runner catches), hands the optimizer
the *observed* (possibly noisy) value and records the best *true* (noise-free)
value among the points evaluated so far,

.. math:: b(n) = \min_{j \le n} f(x_j),

at logarithmically spaced evaluation counts (the trace the plots use). Every
method is scored by the same rule — best true value among its own queries —
which needs no trust in the method's returned point; the true value at the
returned point is recorded too (``final``) where the method returns one.

A :class:`Cell` is one unit of work of a suite with a stable ``key``; the CLI
(:mod:`benchmarks.__main__`) runs the cells whose key is not yet in the results
file and appends each row as its cell finishes (:func:`run_cells`).
"""
from __future__ import annotations

import contextlib
import json
import math
import pathlib
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._io import jsonable, read_jsonl
from ._problems import Problem


class BudgetReached(Exception):
    """The optimizer asked for an evaluation beyond the budget (caught by :func:`run_cell`)."""


@dataclass(frozen=True)
class Cell:
    """One unit of work of a suite: ``run()`` returns its JSON-serialisable row."""

    key: str
    run: Callable[[], dict[str, Any]]


def run_cells(cells: Sequence[Cell], path: pathlib.Path, *, progress: bool = False, desc: str = "",
              on_error: Callable[[Cell, str], None] | None = None) -> list[dict[str, Any]]:
    """Run the cells whose key is not in ``path`` yet, appending each row as it finishes.

    Returns the rows of ``cells`` found in ``path`` afterwards, in the order of
    ``cells``. A cell that raises leaves no row (so a rerun retries it) and is
    passed to ``on_error`` with its traceback.
    """
    from tqdm.auto import tqdm

    done = {r.get("cell") for r in read_jsonl(path)} if path.exists() else set()
    todo = [c for c in cells if c.key not in done]
    path.parent.mkdir(parents=True, exist_ok=True)
    with tqdm(total=len(todo), disable=not progress, desc=desc, unit="cell") as bar:
        for cell in todo:
            bar.set_postfix_str(cell.key[-40:])
            t0 = time.perf_counter()
            try:
                row = dict(cell.run())
            except Exception:  # one broken cell must not take the others down
                if on_error is not None:
                    on_error(cell, traceback.format_exc())
                bar.update()
                continue
            row["cell"] = cell.key
            row.setdefault("cell_seconds", round(time.perf_counter() - t0, 3))
            with path.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(jsonable(row), allow_nan=False) + "\n")
            bar.update()
    by_key = {r.get("cell"): r for r in read_jsonl(path)} if path.exists() else {}
    return [by_key[c.key] for c in cells if c.key in by_key]


@contextlib.contextmanager
def single_threaded() -> Iterator[None]:
    """One torch and one BLAS thread: cells run one at a time, so threads only add contention
    (and on a shared 2-core machine a spinning BLAS pool slows every process down)."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:
            yield
        else:
            with threadpool_limits(1):
                yield
    finally:
        torch.set_num_threads(old)


def json_subprocess(code: str, *, timeout: float = 1800, env: dict[str, str] | None = None) -> Any:
    """Run ``code`` in a fresh single-threaded Python at the repository root; the JSON of its
    last stdout line (measurements of time and peak memory want a clean process)."""
    import os
    import subprocess
    import sys

    from . import REPO_ROOT

    full = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
                PYTHONPATH=os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
                **(env or {}))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=full, timeout=timeout,
                         cwd=REPO_ROOT)
    if out.returncode != 0:
        raise RuntimeError(out.stderr.strip().splitlines()[-1] if out.stderr.strip() else f"exit {out.returncode}")
    return json.loads(out.stdout.strip().splitlines()[-1])


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

    def batch(self, X: Any) -> Any:
        """Observed values of the rows of ``X``; evaluates only what the budget allows, then raises.

        A torch tensor is evaluated by the problem's ``torch_batch`` in its own dtype (the
        ZoAR paper's float32 runs) and answered with a tensor; anything else in float64 numpy.
        """
        if self.remaining <= 0:
            raise BudgetReached
        if self.problem.torch_batch is not None and hasattr(X, "dtype") and hasattr(X, "numel"):
            X = X.reshape(-1, self.problem.d)
            take_t = X[: self.remaining]
            y = self.problem.torch_batch(take_t)
            true = y.detach().double().cpu().numpy().reshape(take_t.shape[0])
            self._record(true, take_t.detach().double().cpu().numpy())
            if take_t.shape[0] < X.shape[0]:
                raise BudgetReached
            if self.problem.noise is None:
                return y
            return y.new_tensor(self.problem.observe(true, self.rng))
        X = np.asarray(X, dtype=np.float64).reshape(-1, self.problem.d)
        take = X[: self.remaining]
        true = np.asarray(self.problem.true_batch(take), dtype=np.float64).reshape(take.shape[0])
        obs = self.problem.observe(true, self.rng)
        self._record(true, take)
        if take.shape[0] < X.shape[0]:
            raise BudgetReached
        return obs

    def _record(self, true: np.ndarray, take: np.ndarray) -> None:
        for i, v in enumerate(true):
            self.nfev += 1
            if v < self.best:  # False for NaN
                self.best, self.best_x = float(v), take[i].copy()
            while self._next < self._grid.size and self.nfev >= self._grid[self._next]:
                self.trace.append([self.nfev, self.best])
                self._next += 1

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
