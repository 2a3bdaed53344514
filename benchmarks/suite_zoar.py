r"""Suite ``zoar``: ZoAR's faithfulness to the ZoAR paper, and its defaults at d = 1000.

Two studies (the results and their reading are on ``docs/zoar-results.md``; the
estimator overhead is the ``cost`` suite's measurement):

1. **Faithfulness** (``study="faithfulness"``). The ZoAR paper's synthetic
   settings: :math:`d = 10^4`, :math:`K = 10`, :math:`N \in \{0, 5\}`,
   :math:`\mu = 0.05`, ``lr = 1e-3``, ``update="radazo"`` without bias correction,
   constant step, the authors' :math:`1/M` normalization, 20 000 iterations,
   :math:`x_0 \sim N(0, I)` drawn exactly as the authors draw it
   (``torch.manual_seed(seed); torch.randn(d)``, float32), seeds 456 and 123, and
   the authors' four functions (Ackley, Levy, Rosenbrock, :math:`\tfrac12|x|^2`,
   the registry's lowercase names, evaluated in float32). ``zo_scipy.zoar`` runs
   through :func:`scipy.optimize.minimize` and spends :math:`K = 10` evaluations per
   iteration (the authors' code spends 11: it also evaluates :math:`f(x_t)` for
   logging). The authors report :math:`f` at the last iterate; ``res.fun`` is the
   best *evaluated* query, so the trajectory :math:`f(x_t)` at checkpoints and
   :math:`f(x_T)` are evaluated by this suite outside the budget, for reporting only.
2. **Defaults** (``study="defaults"``): a configuration of the peers harness
   (:func:`benchmarks.suite_peers.configuration_cells`): ``zoar`` with no option but
   ``seed`` and ``maxfev`` on the same four functions at :math:`d = 1000` from the
   authors' start, 22 000 evaluations, beside Powell, L-BFGS-B with finite-difference
   gradients and CMA-ES, each with the peers' settings and stopped by the harness's
   budget counter.
"""
from __future__ import annotations

import functools
import math
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import _problems as P
from ._harness import Cell, Tracker, single_threaded
from ._methods import AUTHORS_OPTIONS, methods
from .suite_peers import configuration_cells, skipped_lines, tables

NAME = "zoar"
DESCRIPTION = ("ZoAR: faithfulness at the paper's synthetic settings (d = 10^4); defaults at d = 1000 vs "
               "Powell / L-BFGS-B-FD / CMA-ES at 22 000 evaluations (a peers configuration)")

STUDIES: tuple[str, ...] = ("faithfulness", "defaults")
PROBLEMS: tuple[str, ...] = tuple(P.PAPER_FUNCTIONS)
#: Peers of the defaults study (full CMA-ES is skipped above d = 100 by the peers' rule;
#: sep-CMA-ES runs there).
DEFAULTS_METHODS: tuple[str, ...] = ("zoar", "Powell", "L-BFGS-B-FD", "CMA-ES", "sep-CMA-ES")

#: The authors' ZoAR code at the paper's settings, run by us (seeds 456 / 123; d = 10^4,
#: 20 000 iterations, 11 evaluations per iteration, f after the last update).
AUTHORS_FIGURES: dict[str, dict[str, tuple[float, ...]]] = {
    "ackley": {"f0": (5.36,), "vanilla": (4.857, 4.873), "N=0": (3.631, 3.649), "N=5": (3.643, 3.614)},
    "levy": {"f0": (6767.0,), "vanilla": (1308.0, 1342.0), "N=0": (379.0, 402.7), "N=5": (329.3, 358.5)},
    "rosenbrock": {"f0": (4.07e6,), "vanilla": (6.08e5, 6.18e5), "N=0": (1.712e4, 1.673e4),
                   "N=5": (1.788e4, 1.723e4)},
    "quadratic": {"f0": (5054.0,), "vanilla": (1406.0, 1418.0), "N=0": (29.88, 29.47), "N=5": (33.37, 32.85)},
}
AUTHORS_SEEDS: tuple[int, ...] = (456, 123)
#: Reporting seeds of the defaults study: not the developers' tuning seed (1).
DEFAULTS_SEEDS: tuple[int, ...] = (101, 202, 303)


@dataclass(frozen=True)
class Sizes:
    faith_d: int
    faith_iters: int
    faith_seeds: tuple[int, ...]
    faith_histories: tuple[int, ...]
    def_d: int
    def_budget: int
    def_seeds: tuple[int, ...]


FULL = Sizes(faith_d=10_000, faith_iters=20_000, faith_seeds=AUTHORS_SEEDS, faith_histories=(0, 5),
             def_d=1000, def_budget=22_000, def_seeds=DEFAULTS_SEEDS)
QUICK = Sizes(faith_d=1000, faith_iters=200, faith_seeds=AUTHORS_SEEDS[:1], faith_histories=(0, 5),
              def_d=30, def_budget=660, def_seeds=DEFAULTS_SEEDS[:1])


def value_at(problem: P.Problem, x: Any) -> float:
    """:math:`f(x)` of one point in float64 (reporting only, never counted in a budget)."""
    return float(problem.true_batch(np.asarray(x, dtype=np.float64).reshape(1, -1))[0])


def _checkpoints(iters: int) -> list[int]:
    marks = {0, iters} | {c for c in (10, 100, 1000, 2000, 5000, 10_000, 15_000, 20_000) if c <= iters}
    return sorted(marks)


def faithfulness_cell(problem: str, seed: int, num_histories: int, *, d: int, iters: int,
                      normalization: str = "authors") -> dict[str, Any]:
    """One run of ``zoar`` at the authors' settings; the trajectory :math:`f(x_t)` is
    evaluated at checkpoints outside the budget (reporting only)."""
    from scipy.optimize import minimize

    from zo_scipy import zoar

    budget = AUTHORS_OPTIONS["num_queries"] * iters
    prob = P.make(problem, d, group="faithfulness", budget=budget, start="authors")
    x0 = prob.x0(seed)
    tracker = Tracker(prob, budget, seed)
    marks = set(_checkpoints(iters))
    trajectory: list[list[float]] = [[0, value_at(prob, x0)]]

    def callback(intermediate_result: Any) -> None:
        if intermediate_result.nit in marks:
            trajectory.append([int(intermediate_result.nit), value_at(prob, intermediate_result.xk)])

    opts = dict(AUTHORS_OPTIONS, normalization=normalization, num_histories=num_histories, maxiter=iters,
                maxfev=budget, seed=seed + 1, dtype="float32", vectorized=True, tensor_input=True)
    t0 = time.perf_counter()
    with single_threaded():
        res = minimize(tracker.batch, x0, method=zoar, callback=callback, options=opts)
    wall = time.perf_counter() - t0
    tracker.finish()
    f_last = value_at(prob, res.x_iterate)
    if trajectory[-1][0] != res.nit:
        trajectory.append([int(res.nit), f_last])
    return {
        "study": "faithfulness", "group": "faithfulness", "method": f"zoar N={num_histories}"
        + ("" if normalization == "authors" else f" ({normalization})"),
        "problem": problem, "d": d, "seed": seed, "num_histories": num_histories, "iterations": int(res.nit),
        "normalization": normalization, "nfev": int(res.nfev), "budget": budget, "f0": trajectory[0][1],
        "f_last_iterate": f_last, "best_evaluated": float(res.fun), "tracker_best": tracker.best,
        "x_finite": bool(np.isfinite(res.x).all()), "status": int(res.status), "message": str(res.message),
        "trajectory": trajectory, "trace": tracker.trace, "wall_s": round(wall, 2),
        "ms_per_iteration": round(1e3 * wall / max(res.nit, 1), 3), "dtype": "float32",
    }


def cells(*, quick: bool, seeds: list[int] | None, studies: Sequence[str] = STUDIES) -> list[Cell]:
    """The cells of ``studies``; ``seeds`` replaces the seeds of both (default 456, 123 and
    101, 202, 303; quick: the first of each)."""
    sizes = QUICK if quick else FULL
    out: list[Cell] = []
    if "faithfulness" in studies:
        for problem in PROBLEMS:
            for n_hist in sizes.faith_histories:
                for seed in seeds or sizes.faith_seeds:
                    out.append(Cell(f"faithfulness|{problem}|{sizes.faith_d}|{sizes.faith_iters}|N={n_hist}|{seed}",
                                    functools.partial(faithfulness_cell, problem, seed, n_hist,
                                                      d=sizes.faith_d, iters=sizes.faith_iters)))
    if "defaults" in studies:
        probs = [P.make(p, sizes.def_d, group="defaults", budget=sizes.def_budget, start="authors")
                 for p in PROBLEMS]
        for c in configuration_cells(probs, methods(DEFAULTS_METHODS), list(seeds or sizes.def_seeds)):
            out.append(Cell(c.key, functools.partial(_tagged, c.run, "defaults")))
    return out


def _tagged(run: Any, study: str) -> dict[str, Any]:
    return dict(run(), study=study)


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
    out = [f"### Defaults at d = {d}: best f within {budget} evaluations", "",
           f"Seeds {seeds}; x0 = the authors' `torch.randn(d)` after `manual_seed(seed)`. The peers "
           "harness: every method at its defaults (zoar: no option but `seed` and `maxfev`), the same "
           "start, stopped at exactly the budget; cells give the median best true f over seeds "
           "[min, max] and the gap ratio to zoar.", ""]
    out += tables(rows, {"defaults": f"Four functions, d = {d}, budget {budget}"})
    out += skipped_lines(rows)
    return out


def report(rows: list[dict[str, Any]], *, command: str) -> str:
    """Markdown section headed by ``command``: one table group per study present in ``rows``."""
    lines = ["## ZoAR: faithfulness, defaults", "", f"```\n{command}\n```", ""]
    faith = [r for r in rows if r.get("study") == "faithfulness"]
    if faith and faith[0]["d"] != FULL.faith_d:
        lines += ["_Quick (CI-size) form: small d and budgets, not the published figures._", ""]
    if faith:
        lines += _report_faithfulness(faith) + [""]
    dflt = [r for r in rows if r.get("study") == "defaults"]
    if dflt:
        lines += _report_defaults(dflt) + [""]
    return "\n".join(lines)
