r"""``python -m zo_scipy.demo``: ZoAR next to SciPy's derivative-free methods.

The run a newcomer should see first (``make demo``). One 1000-dimensional
Rosenbrock problem, :math:`f(x) = \sum_i 100 (x_{i+1} - x_i^2)^2 + (1 - x_i)^2`,
from :math:`x_0 \sim N(0, I)`, solved twice:

- **noiseless**: every method sees the exact value;
- **noisy**: every value carries additive Gaussian noise with standard deviation
  ``--noise`` times :math:`|f(x_0)|` (1e-4 by default), as a simulation or a
  measurement would. Progress is scored on the *true* :math:`f` of the evaluated
  points, which the methods never see.

Methods: :func:`zo_scipy.zoar` with its defaults and a seed, SciPy's
Nelder-Mead (``adaptive=True``, SciPy's setting for many variables), Powell, and
L-BFGS-B with its default 2-point finite-difference gradient (``d + 1``
evaluations per gradient). Every method gets the same evaluation budget,
``--budget`` (20 per variable by default), enforced by :class:`CountedObjective`:
it counts every call, records the best true value so far, and raises instead of
evaluating once the budget is spent. A wall-clock limit per method
(``--time-limit``) stops any method whose own bookkeeping makes the budget
impractical (Nelder-Mead moves a ``(d+1) x d`` simplex around every iteration);
the table says which limit stopped each method.

Writes ``results.md`` (the tables), ``results.json`` and ``convergence.png`` (best
true f against evaluations, log scale) into ``--out``. ``--quick`` runs a tiny
size for the test suite.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import OptimizeResult, minimize, rosen

from ._zoar import zoar


class LimitReached(Exception):
    """Raised by :class:`CountedObjective` instead of evaluating past a limit."""


class CountedObjective:
    """Wrap ``fun`` with a hard evaluation budget, optional noise and a best-so-far trace.

    Parameters
    ----------
    fun : callable
        The true objective ``fun(x) -> float``.
    budget : int
        Maximum number of evaluations; the next call raises :class:`LimitReached`
        without evaluating.
    noise : float
        Standard deviation of the additive Gaussian noise the caller sees.
    seed : int
        Seed of the noise stream (the same for every method, so all see the same
        noise sequence).
    time_limit : float, optional
        Seconds after the first call at which calls raise :class:`LimitReached`.
    """

    def __init__(self, fun: Callable[[np.ndarray], float], budget: int, *, noise: float = 0.0,
                 seed: int = 0, time_limit: float | None = None) -> None:
        self.fun, self.budget, self.noise, self.time_limit = fun, int(budget), float(noise), time_limit
        self.rng = np.random.default_rng(seed)
        self.nfev = 0
        self.best = math.inf
        #: best true value after each evaluation (trace[i] after i + 1 calls)
        self.trace: list[float] = []
        self.stopped_by = ""
        self.t0: float | None = None

    def time_up(self) -> bool:
        return (self.time_limit is not None and self.t0 is not None
                and time.perf_counter() - self.t0 > self.time_limit)

    def __call__(self, x: np.ndarray) -> float:
        if self.t0 is None:
            self.t0 = time.perf_counter()
        if self.nfev >= self.budget:
            self.stopped_by = "budget spent"
            raise LimitReached(self.stopped_by)
        if self.time_up():
            self.stopped_by = f"time limit ({self.time_limit:g} s)"
            raise LimitReached(self.stopped_by)
        self.nfev += 1
        value = float(self.fun(x))
        self.best = min(self.best, value)
        self.trace.append(self.best)
        return value + self.noise * float(self.rng.standard_normal()) if self.noise else value


@dataclass
class Row:
    """One method's outcome on one problem."""

    method: str
    nfev: int
    best: float
    seconds: float
    stopped_by: str
    trace: list[float] = field(repr=False)


Solver = Callable[[CountedObjective, np.ndarray, int, int], OptimizeResult]


def _zoar(obj: CountedObjective, x0: np.ndarray, budget: int, seed: int) -> OptimizeResult:
    def stop_at_time_limit(intermediate_result: OptimizeResult) -> None:
        if obj.time_up():
            obj.stopped_by = f"time limit ({obj.time_limit:g} s)"
            raise StopIteration

    # Defaults plus a seed. torch_threads=1 only changes speed, not the result: the
    # estimator's small (M x d) tensors gain nothing from threads, and on a busy machine
    # torch's spinning worker threads cost several times the work itself.
    return minimize(obj, x0, method=zoar, callback=stop_at_time_limit,
                    options=dict(maxfev=budget, seed=seed, torch_threads=1))


def _scipy(method: str, **options: Any) -> Solver:
    def solve(obj: CountedObjective, x0: np.ndarray, budget: int, seed: int) -> OptimizeResult:
        budget_option = "maxfun" if method == "L-BFGS-B" else "maxfev"
        return minimize(obj, x0, method=method, options={budget_option: budget, **options})
    return solve


#: (label, solver) in the order of the table.
METHODS: list[tuple[str, Solver]] = [
    ("zo_scipy.zoar (defaults, seed)", _zoar),
    ("L-BFGS-B, finite differences", _scipy("L-BFGS-B")),
    ("Powell", _scipy("Powell")),
    ("Nelder-Mead (adaptive)", _scipy("Nelder-Mead", adaptive=True)),
]


def run_method(label: str, solve: Solver, fun: Callable[[np.ndarray], float], x0: np.ndarray, *,
               budget: int, noise: float, seed: int, time_limit: float | None) -> Row:
    """Run one method under the shared budget; the budget/time stop is not an error."""
    obj = CountedObjective(fun, budget, noise=noise, seed=seed, time_limit=time_limit)
    t = time.perf_counter()
    try:
        res = solve(obj, x0.copy(), budget, seed)
        if not obj.stopped_by:
            obj.stopped_by = "budget spent" if obj.nfev >= budget else _short(res.message)
    except LimitReached:
        pass
    return Row(label, obj.nfev, obj.best, time.perf_counter() - t, obj.stopped_by, obj.trace)


def _short(message: Any) -> str:
    text = str(message).strip().rstrip(".")
    return text if len(text) <= 72 else text[:69] + "..."


def format_table(title: str, f0: float, rows: Sequence[Row]) -> str:
    """A Markdown table, readable as plain text too."""
    lines = [f"### {title}", "", f"f(x0) = {f0:.4g}", "",
             "| method | evaluations | best true f | best f / f(x0) | seconds | stopped by |",
             "|---|---:|---:|---:|---:|---|"]
    for r in sorted(rows, key=lambda r: r.best):
        lines.append(f"| {r.method} | {r.nfev} | {r.best:.4g} | {r.best / f0:.2e} | "
                     f"{r.seconds:.1f} | {r.stopped_by} |")
    return "\n".join(lines)


def plot(panels: Sequence[tuple[str, float, Sequence[Row]]], budget: int, path: str) -> None:
    """Best true f against evaluations, one panel per problem, log scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # zoar thick red; the SciPy methods in the remaining default colours
    colors = {label: c for (label, _), c in zip(METHODS, ["C3", "C1", "C2", "C0"])}
    fig, axes = plt.subplots(1, len(panels), figsize=(6.4 * len(panels), 5.4), squeeze=False)
    for ax, (title, f0, rows) in zip(axes[0], panels):
        for r in rows:
            color = colors.get(r.method, "C7")
            width = 2.6 if r.method == METHODS[0][0] else 1.6
            evals = np.arange(1, len(r.trace) + 1)
            ax.plot(evals, r.trace, color=color, lw=width, label=f"{r.method}: {r.best:.3g}")
            if r.nfev < budget:  # stopped early: mark where
                ax.plot(evals[-1:], r.trace[-1:], "o", color=color, ms=5)
        ax.axhline(f0, color="0.6", lw=0.8, ls=":")
        ax.set_yscale("log")
        ax.set_xlim(0, budget)
        ax.set_xlabel("function evaluations")
        ax.set_ylabel("best true f so far (log scale)")
        ax.set_title(title, fontsize=11)
        ax.grid(True, which="major", alpha=0.3)
        # below the axes: the curves fill every corner at some budget
        ax.legend(fontsize=8.5, loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=2,
                  title="best true f within the budget", title_fontsize=8.5, frameon=False)
    fig.suptitle("Same evaluation budget for every method (dot: stopped before the budget; "
                 "dotted line: f(x0))", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


def optuna_section(seed: int, out: str, n_trials: int) -> str | None:
    """A small ZoARSampler study on SQLite storage, if the Optuna integration is installed.

    Five float parameters in [-5, 5] with a quadratic loss whose minimum 0 lies at
    ``OPTUNA_TARGET`` (Optuna starts ZoAR at the centre of the box). The study runs
    ``n_trials``, then a freshly loaded study (as a restarted worker would)
    continues the same optimizer from storage for ``n_trials`` more.
    """
    try:
        import optuna

        from .integrations.optuna import ZoARSampler  # type: ignore[import-not-found]  # pyproject maps integrations/ here; mypy checks that folder as its own package
    except ImportError:
        return None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    path = os.path.join(out, "optuna-demo.db")
    if os.path.exists(path):
        os.remove(path)
    storage = f"sqlite:///{path}"
    target = np.array(OPTUNA_TARGET)

    def objective(trial: Any) -> float:
        x = np.array([trial.suggest_float(f"x{i}", -5.0, 5.0) for i in range(target.size)])
        return float(np.sum((x - target) ** 2))

    study = optuna.create_study(sampler=ZoARSampler(seed=seed), storage=storage, study_name="zoar-demo")
    study.optimize(objective, n_trials=n_trials)
    first = study.best_value
    again = optuna.load_study(study_name="zoar-demo", storage=storage, sampler=ZoARSampler(seed=seed))
    again.optimize(objective, n_trials=n_trials)
    return (f"### Optuna: ZoARSampler on SQLite storage\n\n{target.size} parameters in [-5, 5], loss "
            f"|x - c|^2 (minimum 0; {float(np.sum(target ** 2)):.4g} at the centre of the box where "
            f"the sampler starts): best {first:.3g} after {n_trials} trials; a freshly loaded study "
            f"continued the same optimizer from storage to {again.best_value:.3g} after "
            f"{len(again.trials)} trials (storage: {path}).")


#: Minimum of the Optuna section's loss.
OPTUNA_TARGET = (2.0, -1.5, 1.0, -2.5, 0.5)


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point: ``python -m zo_scipy.demo [--out DIR] [--quick] ...``.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments (default ``sys.argv[1:]``); ``--help`` lists them.

    Returns
    -------
    int
        0 on success (argument errors exit through ``argparse``).
    """
    p = argparse.ArgumentParser(
        prog="python -m zo_scipy.demo",
        description="ZoAR next to SciPy's Nelder-Mead, Powell and L-BFGS-B (finite differences) "
                    "on a noiseless and a noisy Rosenbrock problem, every method capped at the "
                    "same number of evaluations. Writes results.md, results.json and "
                    "convergence.png into --out.")
    p.add_argument("--out", default="demo-output", help="output folder (default: demo-output)")
    p.add_argument("--dim", type=int, default=1000, help="number of variables d (default 1000)")
    p.add_argument("--budget", type=int, default=None, help="evaluations per method (default 20 d)")
    p.add_argument("--noise", type=float, default=1e-4,
                   help="noise standard deviation relative to |f(x0)| for the noisy run (default 1e-4)")
    p.add_argument("--seed", type=int, default=0, help="seed of x0, the noise and zoar (default 0)")
    p.add_argument("--time-limit", type=float, default=30.0,
                   help="wall-clock seconds per method and problem (default 30)")
    p.add_argument("--quick", action="store_true", help="tiny sizes for the test suite (d = 40)")
    p.add_argument("--no-optuna", action="store_true", help="skip the Optuna section")
    p.add_argument("--no-bilevel", action="store_true", help="skip the bilevel (zo_scipy.bilevel) section")
    p.add_argument("--no-torch", action="store_true", help="skip the PyTorch (zo_scipy.torch) section")
    p.add_argument("--no-uq", action="store_true", help="skip the uncertainty (zo_scipy.uq) section")
    a = p.parse_args(argv)
    if a.quick:
        a.dim, a.time_limit = 40, min(a.time_limit, 8.0)
    if a.dim < 2:
        p.error("--dim must be at least 2 (Rosenbrock couples neighbouring variables)")
    if a.noise < 0 or not math.isfinite(a.noise):
        p.error("--noise must be a finite number >= 0")
    if not a.time_limit > 0:
        p.error("--time-limit must be positive")
    budget = a.budget if a.budget is not None else 20 * a.dim
    if budget < 10:
        p.error("--budget must be at least 10 (one zoar iteration)")
    os.makedirs(a.out, exist_ok=True)

    x0 = np.random.default_rng(a.seed).standard_normal(a.dim)
    f0 = float(rosen(x0))
    print(f"zo_scipy demo: Rosenbrock in d = {a.dim} from x0 ~ N(0, I), f(x0) = {f0:.4g}.\n"
          f"Every method gets {budget} evaluations ({budget / a.dim:g} per variable; one finite-difference "
          f"gradient costs {a.dim + 1}) and at most {a.time_limit:g} s.\n", flush=True)
    problems = [("noiseless", 0.0), (f"noisy (sigma = {a.noise:g} |f(x0)|)", a.noise * abs(f0))]
    panels, tables, summary = [], [], []
    for name, sigma in problems:
        rows = []
        for label, solve in METHODS:
            print(f"  {name:>30s} | {label:<32s}", end="", flush=True)
            row = run_method(label, solve, rosen, x0, budget=budget, noise=sigma, seed=a.seed,
                             time_limit=a.time_limit)
            print(f" best f {row.best:10.4g} after {row.nfev:6d} evaluations, {row.seconds:5.1f} s "
                  f"({row.stopped_by})", flush=True)
            rows.append(row)
        title = f"Rosenbrock, d = {a.dim}, {name}, budget {budget}"
        panels.append((title, f0, rows))
        tables.append(format_table(title, f0, rows))
        summary += [{"problem": name, "noise_sigma": sigma, "f0": f0, "budget": budget,
                     **{k: v for k, v in asdict(r).items() if k != "trace"}} for r in rows]

    png = os.path.join(a.out, "convergence.png")
    plot(panels, budget, png)
    extra = None if a.no_optuna else optuna_section(a.seed, a.out, 6 if a.quick else 30)
    if not a.no_torch:  # a small MLP from losses only, beside MeZO-style SPSA (docs/torch.md)
        from .torch._demo import torch_section

        part = torch_section(a.seed, a.out, 600 if a.quick else 6000)
        extra = part if extra is None else extra + "\n\n" + part
    if not a.no_bilevel:  # per-feature ridge from values only, beside Optuna TPE (docs/bilevel.md)
        from .bilevel._demo import bilevel_section

        section = bilevel_section(a.seed, 1000 if a.quick else 3000)
        if section:
            extra = section if extra is None else extra + "\n\n" + section
    if not a.no_uq:  # an SIR calibration with credible intervals (docs/uq.md)
        from .uq._demo import uq_section

        part = uq_section(a.seed, a.out, 300 if a.quick else 600)
        extra = part if extra is None else extra + "\n\n" + part
    command = "python -m zo_scipy.demo " + " ".join(argv if argv is not None else sys.argv[1:])
    report = "\n\n".join([f"Command: `{command.strip()}`", *tables, *([extra] if extra else [])])
    with open(os.path.join(a.out, "results.md"), "w") as fh:
        fh.write(report + "\n")
    with open(os.path.join(a.out, "results.json"), "w") as fh:
        json.dump({"dim": a.dim, "budget": budget, "seed": a.seed, "rows": summary}, fh, indent=1)
    print("\n" + "\n\n".join(tables + ([extra] if extra else [])))
    print(f"\nWrote {png}, {os.path.join(a.out, 'results.md')} and results.json.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
