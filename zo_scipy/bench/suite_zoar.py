r"""Suite ``zoar``: ZoAR faithfulness, defaults at d = 1000, and estimator overhead (issue 2).

Three studies, each with a full and a ``quick`` (CI) form:

1. **Faithfulness** (``study="faithfulness"``). The ZoAR paper's synthetic
   settings (spec section 2): :math:`d = 10^4`, :math:`K = 10`, :math:`N \in \{0, 5\}`,
   :math:`\mu = 0.05`, ``lr = 1e-3``, ``update="radazo"`` without bias correction,
   constant step, the authors' :math:`1/M` normalization, 20 000 iterations,
   :math:`x_0 \sim N(0, I)` drawn exactly as the authors draw it
   (``torch.manual_seed(seed); torch.randn(d)``, float32), seeds 456 and 123, and
   the authors' four functions (Ackley, Levy, Rosenbrock, :math:`\tfrac12|x|^2`).
   ``zo_scipy.zoar`` runs through :func:`scipy.optimize.minimize` and spends
   :math:`K = 10` evaluations per iteration (the authors' code spends 11: it also
   evaluates :math:`f(x_t)` for logging). The authors report :math:`f` at the last
   iterate; ``res.fun`` is the best *evaluated* query, so the trajectory
   :math:`f(x_t)` at checkpoints and :math:`f(x_T)` are evaluated by this suite
   outside the budget, for reporting only.
2. **Defaults** (``study="defaults"``). ``zoar`` with no option but ``seed`` and
   ``maxfev`` on the same four functions at :math:`d = 1000`, 22 000 evaluations,
   beside Powell, L-BFGS-B with finite-difference gradients (SciPy defaults) and
   CMA-ES (pycma defaults, :math:`\sigma_0 = 1`), each stopped by a counting
   wrapper at exactly the budget, which records the best value seen.
3. **Overhead** (``study="overhead"``). Time of one :class:`~zo_scipy.core.ZoAR`
   iteration (``ask`` + ``tell``, objective excluded) against the bare minimum:
   drawing the :math:`K \times d` directions and one :math:`(M,) \times (M, d)`
   product, :math:`M = (N+1)K`, at :math:`d = 10^6` (quick: :math:`10^5`).

``python -m zo_scipy.bench --suite zoar`` runs all three. One study, or some
methods of the defaults study, can be run alone (the faithfulness study is long)::

    python -m zo_scipy.bench.suite_zoar --study faithfulness --out bench-results
    python -m zo_scipy.bench.suite_zoar --study defaults --methods zoar --out bench-results
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import pathlib
import shlex
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy.optimize import minimize

from .._zoar import limit_torch_threads, zoar
from ..core.directions import make_generator, sample_directions
from ..core.estimators import zoar_gradient
from ..core.zoar import ZoAR

NAME = "zoar"
DESCRIPTION = ("ZoAR: faithfulness at the paper's synthetic settings (d = 10^4), defaults at d = 1000 vs "
               "Powell / L-BFGS-B-FD / CMA-ES at 22 000 evaluations, estimator overhead at d = 10^6")

STUDIES: tuple[str, ...] = ("faithfulness", "defaults", "overhead")
DEFAULTS_METHODS: tuple[str, ...] = ("zoar", "powell", "lbfgsb-fd", "cma-es")

# ---------------------------------------------------------------------------------------------
# The authors' synthetic functions (ZoVH/ZoAR code, model/synthetic_functions.py), batched:
# X has shape (m, d), the result (m,). Standard textbook definitions; written here from the
# formulas, evaluated in X's dtype.
# ---------------------------------------------------------------------------------------------


def ackley(X: torch.Tensor) -> torch.Tensor:
    r""":math:`-20 e^{-0.2\sqrt{|x|^2/d}} - e^{\sum_i \cos(2\pi x_i)/d} + 20 + e`."""
    d = X.shape[-1]
    r = torch.sqrt((X * X).sum(-1) / d)
    return -20.0 * torch.exp(-0.2 * r) - torch.exp(torch.cos(2 * math.pi * X).sum(-1) / d) + 20.0 + math.e


def levy(X: torch.Tensor) -> torch.Tensor:
    r"""Levy with :math:`w = 1 + (x - 1)/4`: :math:`\sin^2(\pi w_1) + \sum_{i<d} (w_i-1)^2
    [1 + 10\sin^2(\pi w_i + 1)] + (w_d-1)^2 [1 + \sin^2(2\pi w_d)]`."""
    W = 1 + (X - 1) / 4
    head = torch.sin(math.pi * W[:, 0]) ** 2
    mid = ((W[:, :-1] - 1) ** 2 * (1 + 10 * torch.sin(math.pi * W[:, :-1] + 1) ** 2)).sum(-1)
    tail = (W[:, -1] - 1) ** 2 * (1 + torch.sin(2 * math.pi * W[:, -1]) ** 2)
    return head + mid + tail


def rosenbrock(X: torch.Tensor) -> torch.Tensor:
    r""":math:`\sum_{i<d} 100 (x_{i+1} - x_i^2)^2 + (1 - x_i)^2`."""
    return (100 * (X[:, 1:] - X[:, :-1] ** 2) ** 2 + (1 - X[:, :-1]) ** 2).sum(-1)


def quadratic(X: torch.Tensor) -> torch.Tensor:
    r""":math:`\tfrac12 |x|^2`."""
    return 0.5 * (X * X).sum(-1)


PROBLEMS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "ackley": ackley, "levy": levy, "rosenbrock": rosenbrock, "quadratic": quadratic,
}

#: The authors' ZoAR code at the paper's settings, run by us (spec section 2; seeds 456 / 123;
#: d = 10^4, 20 000 iterations, 11 evaluations per iteration, f after the last update).
AUTHORS_FIGURES: dict[str, dict[str, tuple[float, ...]]] = {
    "ackley": {"f0": (5.36,), "vanilla": (4.857, 4.873), "N=0": (3.631, 3.649), "N=5": (3.643, 3.614)},
    "levy": {"f0": (6767.0,), "vanilla": (1308.0, 1342.0), "N=0": (379.0, 402.7), "N=5": (329.3, 358.5)},
    "rosenbrock": {"f0": (4.07e6,), "vanilla": (6.08e5, 6.18e5), "N=0": (1.712e4, 1.673e4),
                   "N=5": (1.788e4, 1.723e4)},
    "quadratic": {"f0": (5054.0,), "vanilla": (1406.0, 1418.0), "N=0": (29.88, 29.47), "N=5": (33.37, 32.85)},
}
AUTHORS_SEEDS: tuple[int, ...] = (456, 123)


def authors_x0(seed: int, d: int) -> np.ndarray:
    """The authors' start: ``torch.manual_seed(seed); torch.randn(d)`` (float32), on a local
    generator (same stream as the global one after ``manual_seed``), returned as float64."""
    gen = torch.Generator().manual_seed(int(seed))
    return torch.randn(d, generator=gen, dtype=torch.float32).double().numpy()


def value_at(fn: Callable[[torch.Tensor], torch.Tensor], x: Any) -> float:
    """:math:`f(x)` of one point, in float64 (reporting only, never counted in a budget)."""
    return float(fn(torch.as_tensor(np.asarray(x, dtype=np.float64)).reshape(1, -1))[0])


# ---------------------------------------------------------------------------------------------
# Counting wrapper: the same accounting for every method.
# ---------------------------------------------------------------------------------------------


class BudgetReached(Exception):
    """Raised by :class:`Counter` instead of an evaluation beyond the budget."""


class Counter:
    """Counts evaluations, stops a method at exactly ``budget`` and records the best value.

    ``scalar(x)`` is the objective for SciPy/pycma (one numpy point), ``batch(X)`` the
    vectorized one for ``zoar`` (a ``(m, d)`` tensor). Every point counts once; the
    call that would exceed the budget raises :class:`BudgetReached` before evaluating.
    """

    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor], budget: int):
        self.fn, self.budget = fn, int(budget)
        self.n = 0
        self.best = math.inf
        self.n_nonfinite = 0
        self.improvements: list[tuple[int, float]] = []

    def _record(self, values: np.ndarray) -> None:
        finite = np.isfinite(values)
        self.n_nonfinite += int((~finite).sum())
        if finite.any():
            i = int(np.argmin(np.where(finite, values, np.inf)))
            if values[i] < self.best:
                self.best = float(values[i])
                self.improvements.append((self.n - len(values) + i + 1, self.best))

    def scalar(self, x: np.ndarray) -> float:
        if self.n >= self.budget:
            raise BudgetReached
        self.n += 1
        v = value_at(self.fn, x)
        self._record(np.array([v]))
        return v

    def batch(self, X: torch.Tensor) -> torch.Tensor:
        if self.n + X.shape[0] > self.budget:
            raise BudgetReached
        self.n += X.shape[0]
        y = self.fn(X)
        self._record(y.detach().double().cpu().numpy())
        return y

    def trace(self, points: int = 60) -> list[list[float]]:
        """``[[evaluations, best_so_far], ...]`` on a log grid (the harness plots it)."""
        if not self.improvements:
            return []
        ns = np.array([n for n, _ in self.improvements])
        fs = np.array([f for _, f in self.improvements])
        grid = np.unique(np.concatenate([np.geomspace(ns[0], max(self.n, ns[0]), points).round(), [self.n]]))
        idx = np.searchsorted(ns, grid, side="right") - 1
        return [[int(g), float(fs[i])] for g, i in zip(grid, idx) if i >= 0]


# ---------------------------------------------------------------------------------------------
# Study sizes
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sizes:
    faith_d: int
    faith_iters: int
    faith_seeds: tuple[int, ...]
    faith_histories: tuple[int, ...]
    def_d: int
    def_budget: int
    def_seeds: tuple[int, ...]
    over_d: int
    over_repeats: int


#: Reporting seeds of the defaults study: not the developers' tuning seed (1).
DEFAULTS_SEEDS: tuple[int, ...] = (101, 202, 303)

FULL = Sizes(faith_d=10_000, faith_iters=20_000, faith_seeds=AUTHORS_SEEDS, faith_histories=(0, 5),
             def_d=1000, def_budget=22_000, def_seeds=DEFAULTS_SEEDS, over_d=1_000_000, over_repeats=15)
QUICK = Sizes(faith_d=1000, faith_iters=200, faith_seeds=AUTHORS_SEEDS[:1], faith_histories=(0, 5),
              def_d=30, def_budget=660, def_seeds=DEFAULTS_SEEDS[:1], over_d=100_000, over_repeats=7)

#: The ZoAR paper's synthetic hyper-parameters (spec section 2), as ``zoar`` options.
AUTHORS_OPTIONS: dict[str, Any] = dict(
    num_queries=10, mu=0.05, lr=1e-3, update="radazo", betas=(0.9, 0.99), eps=1e-8,
    bias_correction=False, schedule="constant", normalization="authors",
)


def _checkpoints(iters: int) -> list[int]:
    marks = {0, iters} | {c for c in (10, 100, 1000, 2000, 5000, 10_000, 15_000, 20_000) if c <= iters}
    return sorted(marks)


def _log(progress: bool, msg: str) -> None:
    if progress:
        print(f"[zoar] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# 1. Faithfulness
# ---------------------------------------------------------------------------------------------


def faithfulness_cell(problem: str, seed: int, num_histories: int, *, d: int, iters: int,
                      normalization: str = "authors") -> dict[str, Any]:
    """One run of ``zoar`` at the authors' settings; the trajectory :math:`f(x_t)` is
    evaluated at checkpoints outside the budget (reporting only)."""
    fn = PROBLEMS[problem]
    x0 = authors_x0(seed, d)
    budget = AUTHORS_OPTIONS["num_queries"] * iters
    counter = Counter(fn, budget)
    marks = set(_checkpoints(iters))
    trajectory: list[list[float]] = [[0, value_at(fn, x0)]]

    def callback(intermediate_result: Any) -> None:
        if intermediate_result.nit in marks:
            trajectory.append([int(intermediate_result.nit), value_at(fn, intermediate_result.xk)])

    opts = dict(AUTHORS_OPTIONS, normalization=normalization, num_histories=num_histories, maxiter=iters,
                maxfev=budget, seed=seed + 1, dtype="float32", vectorized=True, tensor_input=True)
    t0 = time.perf_counter()
    with limit_torch_threads(1):
        res = minimize(counter.batch, x0, method=zoar, callback=callback, options=opts)
    wall = time.perf_counter() - t0
    f_last = value_at(fn, res.x_iterate)
    if trajectory[-1][0] != res.nit:
        trajectory.append([int(res.nit), f_last])
    return {
        "study": "faithfulness", "group": "faithfulness", "method": f"zoar N={num_histories}"
        + ("" if normalization == "authors" else f" ({normalization})"),
        "problem": problem, "d": d, "seed": seed, "num_histories": num_histories, "iterations": int(res.nit),
        "normalization": normalization, "nfev": int(res.nfev), "budget": budget, "f0": trajectory[0][1],
        "f_last_iterate": f_last, "best_evaluated": float(res.fun), "counter_best": counter.best,
        "x_finite": bool(np.isfinite(res.x).all()), "status": int(res.status), "message": str(res.message),
        "trajectory": trajectory, "trace": counter.trace(), "wall_s": round(wall, 2),
        "ms_per_iteration": round(1e3 * wall / max(res.nit, 1), 3), "dtype": "float32",
    }


OnRow = Callable[[dict[str, Any]], None]


def study_faithfulness(sizes: Sizes, seeds: Sequence[int] | None, progress: bool,
                       on_row: OnRow | None = None) -> list[dict[str, Any]]:
    rows = []
    for problem in PROBLEMS:
        for n_hist in sizes.faith_histories:
            for seed in seeds or sizes.faith_seeds:
                row = faithfulness_cell(problem, seed, n_hist, d=sizes.faith_d, iters=sizes.faith_iters)
                _log(progress, f"faithfulness {problem} N={n_hist} seed={seed}: f(x_T)={row['f_last_iterate']:.5g}"
                               f" ({row['wall_s']} s)")
                rows.append(row)
                if on_row is not None:
                    on_row(row)
    return rows


# ---------------------------------------------------------------------------------------------
# 2. Defaults at d = 1000 vs peers
# ---------------------------------------------------------------------------------------------


def _run_zoar_defaults(counter: Counter, x0: np.ndarray, seed: int) -> dict[str, Any]:
    res = minimize(counter.scalar, x0, method=zoar, options=dict(seed=seed, maxfev=counter.budget))
    return {"x_finite": bool(np.isfinite(res.x).all()), "reported_fun": float(res.fun),
            "f_last_iterate": value_at(counter.fn, res.x_iterate), "status": int(res.status),
            "message": str(res.message), "nit": int(res.nit), "final_lr": float(res.lr), "final_mu": float(res.mu)}


def _run_scipy(method: str, counter: Counter, x0: np.ndarray, seed: int) -> dict[str, Any]:
    # SciPy defaults; the iteration/evaluation caps are lifted so that the counter, not
    # SciPy's own accounting (L-BFGS-B's default maxfun is 15 000), ends the run at the budget.
    options: dict[str, Any] = {}
    if method == "lbfgsb-fd":
        options = {"maxfun": 10 * counter.budget, "maxiter": 10 * counter.budget}
    elif method == "powell":
        options = {"maxfev": 10 * counter.budget, "maxiter": 10 * counter.budget}
    try:
        res = minimize(counter.scalar, x0, method="L-BFGS-B" if method == "lbfgsb-fd" else "Powell",
                       options=options)
        return {"message": str(res.message), "stopped_by": "method"}
    except BudgetReached:
        return {"stopped_by": "budget"}


def _run_cma(counter: Counter, x0: np.ndarray, seed: int) -> dict[str, Any]:
    import cma

    # pycma defaults; only output and the seed are set.
    es = cma.CMAEvolutionStrategy(x0, 1.0, {"seed": seed, "verbose": -9, "verb_log": 0, "verb_disp": 0})
    try:
        while not es.stop():
            X = es.ask()
            es.tell(X, [counter.scalar(x) for x in X])
        return {"stopped_by": "method", "message": str(dict(es.stop()))}
    except BudgetReached:
        return {"stopped_by": "budget", "popsize": int(es.popsize)}


def _one_blas_thread() -> contextlib.AbstractContextManager[Any]:
    """One BLAS thread (pycma's linear algebra) when threadpoolctl is installed: on a shared
    2-core machine a spinning BLAS pool slows every process down."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(1)


def defaults_cell(method: str, problem: str, seed: int, *, d: int, budget: int) -> dict[str, Any]:
    """Best value found by ``method`` within ``budget`` evaluations from the authors' x0."""
    fn = PROBLEMS[problem]
    x0 = authors_x0(seed, d)
    f0 = value_at(fn, x0)
    counter = Counter(fn, budget)
    mseed = seed + 1  # method streams differ from the x0 stream
    t0 = time.perf_counter()
    with limit_torch_threads(1), _one_blas_thread():
        if method == "zoar":
            extra = _run_zoar_defaults(counter, x0, mseed)
        elif method in ("powell", "lbfgsb-fd"):
            extra = _run_scipy(method, counter, x0, mseed)
        elif method == "cma-es":
            extra = _run_cma(counter, x0, mseed)
        else:
            raise ValueError(f"unknown method {method!r}; one of {DEFAULTS_METHODS}")
    wall = time.perf_counter() - t0
    row = {"study": "defaults", "group": "defaults", "method": method, "problem": problem, "d": d,
           "seed": seed, "budget": budget, "nfev": counter.n, "f0": f0, "best_f": counter.best,
           "n_nonfinite": counter.n_nonfinite, "trace": counter.trace(), "wall_s": round(wall, 2), **extra}
    row["diverged"] = not (math.isfinite(counter.best) and counter.best <= f0)
    return row


def study_defaults(sizes: Sizes, seeds: Sequence[int] | None, progress: bool,
                   methods: Sequence[str] = DEFAULTS_METHODS, on_row: OnRow | None = None) -> list[dict[str, Any]]:
    rows = []
    for method in methods:
        for problem in PROBLEMS:
            for seed in seeds or sizes.def_seeds:
                row = defaults_cell(method, problem, seed, d=sizes.def_d, budget=sizes.def_budget)
                _log(progress, f"defaults {method} {problem} seed={seed}: best f={row['best_f']:.5g} "
                               f"({row['nfev']} evals, {row['wall_s']} s)")
                rows.append(row)
                if on_row is not None:
                    on_row(row)
    return rows


# ---------------------------------------------------------------------------------------------
# 3. Overhead
# ---------------------------------------------------------------------------------------------


def overhead_cell(config: str, *, d: int, repeats: int, seed: int = 0) -> dict[str, Any]:
    r"""Median time of one ZoAR iteration (``ask`` + ``tell``; the objective, here
    :math:`y_k = X_{k,0}`, is computed between them and not timed) against the bare minimum:
    ``sample_directions`` of :math:`K \times d` into a preallocated buffer plus one
    :math:`(M,) \times (M, d)` product. The two are timed alternately so that load on the
    machine affects both alike.

    ``config="defaults"``: ``ZoAR``'s default options (Adam, adaptive step control, its
    default :math:`N`); ``"authors"``: the paper's settings (radazo, constant step, N = 5).
    """
    gen = make_generator(seed + 1)
    x0 = torch.randn(d, generator=gen, dtype=torch.float64)
    if config == "defaults":
        opt = ZoAR(x0, seed=seed)
    elif config == "authors":
        opt = ZoAR(x0, num_histories=5, seed=seed, **AUTHORS_OPTIONS)
    else:
        raise ValueError(f"config must be 'defaults' or 'authors', got {config!r}")
    K, num_histories = opt.num_queries, opt.num_histories
    M = (num_histories + 1) * K
    U = torch.empty((M, d), dtype=torch.float64)
    w = torch.randn(M, generator=gen, dtype=torch.float64)
    bare_gen = make_generator(seed + 2)
    zoar_t: list[float] = []
    bare_t: list[float] = []
    ask_t: list[float] = []
    draw_t: list[float] = []
    with limit_torch_threads(1):
        sample_directions(M, d, generator=bare_gen, out=U)
        it = 0
        # Only iterations whose gradient used a full buffer (M pairs) are timed: the adaptive
        # step control empties the buffer when it changes mu, and a smaller M is cheaper.
        while len(zoar_t) < repeats:
            if it > 20 * (repeats + num_histories + 1):
                raise RuntimeError(f"overhead study: the ZoAR buffer was rarely full ({len(zoar_t)} of "
                                   f"{repeats} timings after {it} iterations)")
            full = len(opt.history) + K >= M
            t0 = time.perf_counter()
            X = opt.ask()
            t1 = time.perf_counter()
            y = X[:, 0].clone()
            t2 = time.perf_counter()
            opt.tell(y)
            t3 = time.perf_counter()
            slot = (it % (num_histories + 1)) * K
            t4 = time.perf_counter()
            sample_directions(K, d, generator=bare_gen, out=U[slot:slot + K])
            t4b = time.perf_counter()
            g = zoar_gradient(U, w, 1.0)
            t5 = time.perf_counter()
            it += 1
            if full and it > num_histories + 1:
                zoar_t.append((t1 - t0) + (t3 - t2))
                ask_t.append(t1 - t0)
                bare_t.append(t5 - t4)
                draw_t.append(t4b - t4)
    del g
    zm, bm = statistics.median(zoar_t), statistics.median(bare_t)
    return {"study": "overhead", "group": "overhead", "method": f"ZoAR ({config})", "problem": "trivial objective",
            "d": d, "seed": seed, "K": K, "N": num_histories, "M": M, "repeats": repeats, "iterations": it,
            "torch_threads": 1, "dtype": "float64", "zoar_ms": 1e3 * zm, "ask_ms": 1e3 * statistics.median(ask_t),
            "draw_ms": 1e3 * statistics.median(draw_t),
            "bare_ms": 1e3 * bm, "ratio": zm / bm, "zoar_ms_range": [1e3 * min(zoar_t), 1e3 * max(zoar_t)],
            "bare_ms_range": [1e3 * min(bare_t), 1e3 * max(bare_t)]}


def study_overhead(sizes: Sizes, seeds: Sequence[int] | None, progress: bool,
                   on_row: OnRow | None = None) -> list[dict[str, Any]]:
    rows = []
    seed = (list(seeds) or [0])[0] if seeds else 0
    for config in ("defaults", "authors"):
        row = overhead_cell(config, d=sizes.over_d, repeats=sizes.over_repeats, seed=seed)
        _log(progress, f"overhead {config} d={sizes.over_d}: {row['zoar_ms']:.2f} ms vs bare "
                       f"{row['bare_ms']:.2f} ms (x{row['ratio']:.2f})")
        rows.append(row)
        if on_row is not None:
            on_row(row)
    return rows


# ---------------------------------------------------------------------------------------------
# Suite contract
# ---------------------------------------------------------------------------------------------


def run_studies(studies: Sequence[str] = STUDIES, *, quick: bool, seeds: list[int] | None = None,
                progress: bool = False, methods: Sequence[str] = DEFAULTS_METHODS,
                on_row: OnRow | None = None) -> list[dict[str, Any]]:
    """Run the chosen studies (``STUDIES``) and return their rows.

    ``seeds`` replaces the seeds of the faithfulness and defaults studies (default
    456, 123 and 101, 202, 303; quick: the first of each) and seeds the overhead study.
    ``on_row(row)`` is called as each cell finishes (the module CLI saves rows as they come).
    """
    for s in studies:
        if s not in STUDIES:
            raise ValueError(f"unknown study {s!r}; one of {STUDIES}")
    for m in methods:
        if m not in DEFAULTS_METHODS:
            raise ValueError(f"unknown method {m!r}; one of {DEFAULTS_METHODS}")
    sizes = QUICK if quick else FULL

    def tagged(row: dict[str, Any]) -> None:
        row["quick"] = quick
        if on_row is not None:
            on_row(row)

    rows: list[dict[str, Any]] = []
    if "faithfulness" in studies:
        rows += study_faithfulness(sizes, seeds, progress, tagged)
    if "defaults" in studies:
        rows += study_defaults(sizes, seeds, progress, methods, tagged)
    if "overhead" in studies:
        rows += study_overhead(sizes, seeds, progress, tagged)
    return rows


def run(*, quick: bool, out_dir: pathlib.Path, seeds: list[int] | None = None,
        progress: bool = False) -> list[dict[str, Any]]:
    """All three studies (the suite contract of :mod:`zo_scipy.bench`); ``out_dir`` is
    unused (the harness writes the rows and plots their traces)."""
    return run_studies(STUDIES, quick=quick, seeds=seeds, progress=progress)


def _fmt(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, str):
        return v
    v = float(v)
    if not math.isfinite(v):
        return str(v)
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 1e5 or a < 1e-3:
        return f"{v:.3g}"
    if a >= 1e3:
        return f"{v:.0f}"
    return f"{v:.4g}"


def _pair(values: Sequence[float]) -> str:
    return " / ".join(_fmt(v) for v in values) if values else "—"


def _report_faithfulness(rows: list[dict[str, Any]]) -> list[str]:
    out = ["### Faithfulness: the ZoAR paper's synthetic settings", ""]
    d, iters = rows[0]["d"], rows[0]["iterations"]
    seeds = sorted({r["seed"] for r in rows}, key=lambda s: (s not in AUTHORS_SEEDS, AUTHORS_SEEDS.index(s)
                                                           if s in AUTHORS_SEEDS else s))
    at_paper = d == 10_000 and iters == 20_000 and all(s in AUTHORS_SEEDS for s in seeds)
    histories = sorted({r["num_histories"] for r in rows})
    out.append(f"d = {d}, {iters} iterations, K = 10, mu = 0.05, lr = 1e-3, radazo without bias correction, "
               f"constant step, authors' 1/M normalization, float32, x0 = the authors' `torch.randn(d)` after "
               f"`manual_seed(seed)`; seeds {' / '.join(map(str, seeds))} (values below in this order). "
               f"zoar spends 10 evaluations per iteration ({10 * iters} in all; the authors' code 11). "
               "**f(x_T)** is f at the last iterate, as the authors report it, evaluated by the suite "
               "outside the budget; **best evaluated** is zoar's `res.fun` (the best of the evaluated "
               "queries x_t + mu u).")
    out.append("")
    head = "| function | f(x0) |"
    sep = "|---|---|"
    if at_paper:
        head += " authors: vanilla |"
        sep += "---|"
    for n in histories:
        head += f" zoar N = {n}: f(x_T) | N = {n}: best evaluated |" + (f" authors N = {n} |" if at_paper else "")
        sep += "---|---|" + ("---|" if at_paper else "")
    out += [head, sep]
    for problem in PROBLEMS:
        prow = [r for r in rows if r["problem"] == problem]
        if not prow:
            continue
        f0 = [next(r["f0"] for r in prow if r["seed"] == s) for s in seeds if any(r["seed"] == s for r in prow)]
        line = f"| {problem} | {_pair(f0)} |"
        if at_paper:
            line += f" {_pair(AUTHORS_FIGURES[problem]['vanilla'])} |"
        for n in histories:
            cell = {r["seed"]: r for r in prow if r["num_histories"] == n}
            line += (f" {_pair([cell[s]['f_last_iterate'] for s in seeds if s in cell])} |"
                     f" {_pair([cell[s]['best_evaluated'] for s in seeds if s in cell])} |")
            if at_paper:
                line += f" {_pair(AUTHORS_FIGURES[problem][f'N={n}'])} |"
        out.append(line)
    out += ["", "Trajectory f(x_t) at iteration t (mean over the seeds; evaluated outside the budget):", ""]
    marks = sorted({int(t) for r in rows for t, _ in r["trajectory"]})
    out += ["| function | N | " + " | ".join(f"t = {t}" for t in marks) + " |",
            "|---|---|" + "---|" * len(marks)]
    for problem in PROBLEMS:
        for n in histories:
            rs = [r for r in rows if r["problem"] == problem and r["num_histories"] == n]
            if not rs:
                continue
            cells = []
            for t in marks:
                vals = [v for r in rs for tt, v in r["trajectory"] if int(tt) == t]
                cells.append(_fmt(sum(vals) / len(vals)) if vals else "—")
            out.append(f"| {problem} | {n} | " + " | ".join(cells) + " |")
    ms = [r["ms_per_iteration"] for r in rows]
    out += ["", f"Wall time per iteration (objective included, one torch thread): median "
                f"{statistics.median(ms):.2f} ms."]
    bad = [r for r in rows if not r["x_finite"]]
    if bad:
        out.append(f"**{len(bad)} run(s) returned a non-finite x.**")
    return out


def _report_defaults(rows: list[dict[str, Any]]) -> list[str]:
    d, budget = rows[0]["d"], rows[0]["budget"]
    seeds = sorted({r["seed"] for r in rows})
    methods = [m for m in DEFAULTS_METHODS if any(r["method"] == m for r in rows)]
    problems = [p for p in PROBLEMS if any(r["problem"] == p for r in rows)]
    out = ["### Defaults at d = %d: best f within %d evaluations" % (d, budget), "",
           f"Median over seeds {', '.join(map(str, seeds))} of the best value seen by a counting wrapper that "
           "stops every method at exactly the budget. x0 = the authors' `torch.randn(d)` after "
           "`manual_seed(seed)`. zoar: no option but `seed` and `maxfev`. Powell and L-BFGS-B (2-point "
           "finite differences): SciPy defaults with their own iteration/evaluation caps lifted. CMA-ES: "
           "pycma defaults, sigma0 = 1, one run without restarts. Method seeds = seed + 1. One torch and one "
           "BLAS thread.", "",
           "| method | " + " | ".join(problems) + " |", "|---|" + "---|" * len(problems)]

    def cell(m: str, p: str) -> list[dict[str, Any]]:
        return [r for r in rows if r["method"] == m and r["problem"] == p]

    f0 = [_fmt(statistics.median([r["f0"] for r in rows if r["problem"] == p])) for p in problems]
    out.append("| f(x0) | " + " | ".join(f0) + " |")
    for m in methods:
        vals = []
        for p in problems:
            rs = cell(m, p)
            vals.append(_fmt(statistics.median([r["best_f"] for r in rs])) if rs else "—")
        out.append(f"| {m} | " + " | ".join(vals) + " |")
    zo = [r for r in rows if r["method"] == "zoar"]
    if zo:
        div = [r for r in zo if r["diverged"]]
        nan_x = [r for r in zo if not r.get("x_finite", True)]
        out += ["", f"zoar diverged (best f > f(x0) or non-finite) in {len(div)} of {len(zo)} runs"
                + (": " + ", ".join(f"{r['problem']}/seed {r['seed']}" for r in div) if div else "")
                + f"; returned a non-finite x in {len(nan_x)}. f at zoar's last iterate (outside the budget), "
                "median: " + ", ".join(
                    f"{p} {_fmt(statistics.median([r['f_last_iterate'] for r in zo if r['problem'] == p]))}"
                    for p in problems if any(r['problem'] == p for r in zo)) + "."]
        peers = [m for m in methods if m != "zoar"]
        if peers:
            out += ["", "Seeds on which zoar's best f is lower than the peer's (same seed, same x0):", "",
                    "| peer | " + " | ".join(problems) + " |", "|---|" + "---|" * len(problems)]
            for m in peers:
                wins = []
                for p in problems:
                    pairs = [(z["best_f"], q["best_f"]) for z in cell("zoar", p) for q in cell(m, p)
                             if z["seed"] == q["seed"]]
                    wins.append(f"{sum(a < b for a, b in pairs)}/{len(pairs)}" if pairs else "—")
                out.append(f"| {m} | " + " | ".join(wins) + " |")
    early = [r for r in rows if r.get("stopped_by") == "method"]
    if early:
        out += ["", "Stopped by their own rule before the budget: " + ", ".join(
            f"{r['method']} {r['problem']}/seed {r['seed']} ({r['nfev']} evals)" for r in early) + "."]
    return out


def _report_overhead(rows: list[dict[str, Any]]) -> list[str]:
    out = ["### Estimator overhead per iteration", "",
           "One `ZoAR` iteration (`ask` + `tell`, objective excluded) against the bare minimum (drawing "
           "the K x d directions with `sample_directions` into a preallocated buffer + one (M,) x (M, d) "
           "product), timed alternately; medians over the repeats; float64, one torch thread; "
           "target ratio <= 1.5.", "",
           "| configuration | d | K | N | M | repeats | ZoAR ms | of which ask | bare ms | of which drawing | ratio |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        draw = f"{r['draw_ms']:.1f}" if "draw_ms" in r else "—"
        out.append(f"| {r['method']} | {r['d']:.0e} | {r['K']} | {r['N']} | {r['M']} | {r['repeats']} | "
                   f"{r['zoar_ms']:.1f} | {r['ask_ms']:.1f} | {r['bare_ms']:.1f} | {draw} | **{r['ratio']:.2f}** |")
    return out


def report(rows: list[dict[str, Any]], *, command: str) -> str:
    """Markdown section headed by ``command``: one table group per study present in ``rows``."""
    lines = ["## ZoAR: faithfulness, defaults, overhead", "", f"```\n{command}\n```", ""]
    quick = any(r.get("quick") for r in rows)
    if quick:
        lines += ["_Quick (CI-size) form: small d and budgets, not the published figures._", ""]
    for study, fn in (("faithfulness", _report_faithfulness), ("defaults", _report_defaults),
                      ("overhead", _report_overhead)):
        rs = [r for r in rows if r.get("study") == study and not r.get("skipped")]
        if rs:
            lines += fn(rs) + [""]
    skipped = [r for r in rows if r.get("skipped")]
    if skipped:
        lines += ["Skipped: " + "; ".join(f"{r.get('method')} {r.get('problem')}: {r['skipped']}"
                                          for r in skipped), ""]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m zo_scipy.bench.suite_zoar``: run some studies alone (rows + Markdown), or
    ``--merge`` saved row files into one report headed by the commands that made them."""
    p = argparse.ArgumentParser(prog="python -m zo_scipy.bench.suite_zoar", description=DESCRIPTION)
    p.add_argument("--study", action="append", choices=STUDIES, help="study to run (repeatable; default all)")
    p.add_argument("--methods", default=",".join(DEFAULTS_METHODS),
                   help="comma-separated methods of the defaults study (default: %(default)s)")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--seeds", default=None, help="comma-separated seeds (default: each study's own)")
    p.add_argument("--out", type=pathlib.Path, default=pathlib.Path("bench-results"))
    p.add_argument("--tag", default=None, help="file name stem under --out (default: from the studies)")
    p.add_argument("--progress", action="store_true")
    p.add_argument("--merge", nargs="+", type=pathlib.Path, default=None, metavar="JSONL",
                   help="do not run: print the report of these saved row files")
    args = p.parse_args(argv)
    from ._io import _jsonable, read_jsonl, write_jsonl

    if args.merge:
        rows = [r for path in args.merge for r in read_jsonl(path)]
        commands = list(dict.fromkeys(str(r.get("command", "?")) for r in rows))
        print(report(rows, command="\n".join(commands)))
        return 0
    studies = args.study or list(STUDIES)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else None
    command = "python -m zo_scipy.bench.suite_zoar " + " ".join(
        shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    tag = args.tag or "zoar-" + "-".join(studies)
    args.out.mkdir(parents=True, exist_ok=True)
    partial = args.out / f"{tag}.partial.jsonl"
    partial.unlink(missing_ok=True)

    def save(row: dict[str, Any]) -> None:  # a long run stopped early keeps its finished cells
        row["command"] = command
        with partial.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(_jsonable(row), allow_nan=False) + "\n")

    rows = run_studies(studies, quick=args.quick, seeds=seeds, progress=args.progress, methods=methods,
                       on_row=save)
    write_jsonl(args.out / f"{tag}.jsonl", rows)
    partial.unlink()
    (args.out / f"{tag}.md").write_text(report(rows, command=command) + "\n", encoding="utf-8")
    print(f"{len(rows)} rows -> {args.out / (tag + '.jsonl')}, {args.out / (tag + '.md')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
