r"""Optuna samplers at equal trial counts on a 50-dimensional continuous problem.

Compares :class:`zo_scipy.integrations.optuna.ZoARSampler` (defaults) with
Optuna's ``TPESampler``, ``CmaEsSampler``, ``GPSampler`` and ``RandomSampler``
(all defaults, same seed) on the registry's rotated, shifted ellipsoid
(:func:`benchmarks._problems.shifted_ellipsoid`) in :math:`[-5, 5]^{50}`,

.. math:: f(x) = \sum_{i=1}^{d} 10^{2 (i-1)/(d-1)} \bigl(R (x - x^*)\bigr)_i^2,

condition number 100, :math:`R` a fixed random rotation and :math:`x^*` a fixed
random point in :math:`[-3, 3]^d` (the problem does not change with the run's
seed; the samplers' seeds do). Non-separable: a sampler that models parameters
independently (TPE's default) cannot exploit coordinate structure.

Reported per cell: best value after 200 trials and at the end, wall time, and the
sampler's own time per trial (every sampler method call timed through a thin
delegating wrapper, process CPU time) at several trial counts: the per-trial overhead as the
study grows. ``GPSampler``'s cost grows cubically with the trial count; it runs
``gp_trials`` trials only (200 in the full form) and its later cells are rows
with ``"skipped"``.
"""
from __future__ import annotations

import functools
import math
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from ._harness import Cell
from ._problems import shifted_ellipsoid

NAME = "optuna"
DESCRIPTION = "ZoARSampler vs Optuna's TPE, CMA-ES, GP, Random at equal trials (d = 50)"

DIM = 50
FULL = dict(n_trials=2000, gp_trials=200, seeds=[0, 1, 2], checkpoints=[100, 200, 500, 1000, 2000])
QUICK = dict(n_trials=60, gp_trials=12, seeds=[0], checkpoints=[20, 60])
METHODS = ("zoar", "tpe", "cmaes", "gp", "random")


def _sampler(method: str, seed: int) -> Any:
    import optuna

    if method == "zoar":
        from zo_scipy.integrations.optuna import ZoARSampler

        return ZoARSampler(seed=seed)
    if method == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    if method == "cmaes":
        return optuna.samplers.CmaEsSampler(seed=seed)
    if method == "gp":
        return optuna.samplers.GPSampler(seed=seed)
    if method == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise ValueError(f"unknown method {method!r}")


def _timed(inner: Any) -> Any:
    """A sampler that delegates to ``inner`` and adds its time to ``spent[trial]``."""
    import optuna

    class Timed(optuna.samplers.BaseSampler):
        def __init__(self) -> None:
            self.spent: dict[int, float] = {}

        def _t(self, trial: Any, fn: Callable[[], Any]) -> Any:
            # CPU time of the process (all threads): robust to other load on a shared machine.
            t0 = time.process_time()
            try:
                return fn()
            finally:
                n = getattr(trial, "number", -1)
                self.spent[n] = self.spent.get(n, 0.0) + time.process_time() - t0

        def reseed_rng(self) -> None:
            inner.reseed_rng()

        def infer_relative_search_space(self, study, trial):  # type: ignore[no-untyped-def]
            return self._t(trial, lambda: inner.infer_relative_search_space(study, trial))

        def sample_relative(self, study, trial, space):  # type: ignore[no-untyped-def]
            return self._t(trial, lambda: inner.sample_relative(study, trial, space))

        def sample_independent(self, study, trial, name, dist):  # type: ignore[no-untyped-def]
            return self._t(trial, lambda: inner.sample_independent(study, trial, name, dist))

        def before_trial(self, study, trial):  # type: ignore[no-untyped-def]
            return self._t(trial, lambda: inner.before_trial(study, trial))

        def after_trial(self, study, trial, state, values):  # type: ignore[no-untyped-def]
            return self._t(trial, lambda: inner.after_trial(study, trial, state, values))

    return Timed()


def run_cell(method: str, seed: int, n_trials: int, checkpoints: list[int],
             d: int = DIM) -> dict[str, Any]:
    """One (method, seed) run; best-so-far trace and sampler overhead."""
    import warnings

    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    f = shifted_ellipsoid(d)
    names = [f"x{i}" for i in range(d)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # GPSampler/CmaEs experimental warnings
        sampler = _timed(_sampler(method, seed))
        study = optuna.create_study(sampler=sampler)

        def objective(trial: optuna.Trial) -> float:
            return f(np.array([trial.suggest_float(n, -5.0, 5.0) for n in names]))

        t0 = time.perf_counter()
        study.optimize(objective, n_trials=n_trials)
        seconds = time.perf_counter() - t0
    values = np.minimum.accumulate([t.value for t in study.trials])
    spent = [sampler.spent.get(i, 0.0) for i in range(n_trials)]
    overhead = {}
    for c in checkpoints:
        if c <= n_trials:
            window = spent[max(0, c - max(10, c // 10)):c]
            overhead[str(c)] = 1e3 * statistics.median(window)
    trace_at = sorted({*checkpoints, *np.unique(np.geomspace(1, n_trials, 40).astype(int)).tolist()})
    return {"suite": NAME, "method": method, "problem": f"rotated-ellipsoid-{d}d", "dim": d,
            "seed": seed, "n_trials": n_trials, "best": float(values[-1]),
            "best_at": {str(c): float(values[c - 1]) for c in checkpoints if c <= n_trials},
            "f_center": f(np.zeros(d)), "seconds": seconds, "overhead_ms": overhead,
            "trace": [[int(n), float(values[n - 1])] for n in trace_at if n <= n_trials]}


def _cell(method: str, seed: int, n: int, checkpoints: list[int]) -> dict[str, Any]:
    try:
        return run_cell(method, seed, n, checkpoints)
    except ImportError as e:  # optuna missing, or CmaEsSampler without the `cmaes` package
        return {"suite": NAME, "method": method, "problem": f"rotated-ellipsoid-{DIM}d", "seed": seed,
                "skipped": f"missing dependency: {e}"}


def cells(*, quick: bool, seeds: list[int] | None) -> list[Cell]:
    """One cell per (method, seed); ``gp`` runs ``gp_trials`` only."""
    cfg = QUICK if quick else FULL
    out = []
    for seed in (cfg["seeds"] if seeds is None else seeds):
        for method in METHODS:
            n = cfg["gp_trials"] if method == "gp" else cfg["n_trials"]
            cps = sorted({c for c in cfg["checkpoints"] if c <= n} | {n})
            out.append(Cell(f"{method}|{seed}|{n}", functools.partial(_cell, method, seed, n, cps)))
    return out


def _median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else math.nan


def _fmt(v: float) -> str:
    return "—" if not math.isfinite(v) else f"{v:.3g}"


def report(rows: list[dict], *, command: str) -> str:
    """Markdown: median best value at each checkpoint, and sampler time per trial."""
    done = [r for r in rows if "skipped" not in r]
    lines = [f"## Optuna samplers, d = {DIM}", "", f"```\n{command}\n```", ""]
    skipped = [r for r in rows if "skipped" in r]
    if not done:
        return "\n".join(lines + ["No cell ran: " + "; ".join(sorted({r['skipped'] for r in skipped}))])
    cps = sorted({int(c) for r in done for c in r["best_at"]})
    methods = [m for m in METHODS if any(r["method"] == m for r in done)]
    seeds = sorted({r["seed"] for r in done})
    f0 = done[0]["f_center"]
    lines += [f"Rotated ellipsoid (condition 100), f at the box center = {f0:.4g}. Median over "
              f"seeds {seeds} of the best value after n trials (lower is better); '—': not run.", ""]
    lines += ["| sampler | " + " | ".join(f"n = {c}" for c in cps) + " | wall s (last n) |",
              "|---|" + "---|" * (len(cps) + 1)]
    for m in methods:
        rs = [r for r in done if r["method"] == m]
        cells = [_fmt(_median([r["best_at"][str(c)] for r in rs if str(c) in r["best_at"]]))
                 for c in cps]
        lines.append(f"| {m} | " + " | ".join(cells) + f" | {_median([r['seconds'] for r in rs]):.1f} |")
    lines += ["", "Sampler time per trial (ms of process CPU time, median over the trials just "
              "before n; the sampler's own methods only, objective excluded):", "",
              "| sampler | " + " | ".join(f"n = {c}" for c in cps) + " |",
              "|---|" + "---|" * len(cps)]
    for m in methods:
        rs = [r for r in done if r["method"] == m]
        cells = [_fmt(_median([r["overhead_ms"][str(c)] for r in rs if str(c) in r["overhead_ms"]]))
                 for c in cps]
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    if skipped:
        lines += ["", "Skipped: " + "; ".join(sorted({f"{r['method']}: {r['skipped']}" for r in skipped}))]
    return "\n".join(lines) + "\n"
