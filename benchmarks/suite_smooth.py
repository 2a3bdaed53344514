r"""Suite ``smooth``: precision and curvature on small and moderate dimensions.

Standard smooth functions with a shifted optimum (:class:`benchmarks._problems.ShiftedFunction`:
sphere, separable and rotated ellipsoids of condition :math:`10^6`, Rosenbrock), box
:math:`[-5, 5]^d`, start at the origin, :math:`d \in \{10, 40, 100\}`, a budget of
:math:`200 d` evaluations. One problem instance per size; seeds vary the methods' own
randomness (L-BFGS-B is deterministic). Every method runs with its defaults through the
peers harness (:func:`benchmarks.suite_peers.configuration_cells`): ``zovh`` (its default
``step="auto"``, the trust-region step at these sizes and budgets), ``zovh`` with
``step="direction"`` (the ZoAR-loop variant it replaced as the default here), ``zoar``,
L-BFGS-B with finite-difference gradients and full CMA-ES. Score: the gap
:math:`f - f^*` of the best true value among the method's own evaluations.

Three more groups say where the trust-region step is not the answer: ``rugged`` (Levy and
Ackley, many local minima, :math:`x_0 \sim N(0, I)`, d = 10 and 40, 200 d evaluations),
``long`` (the sphere with 2000 d evaluations: how far ``zoar``'s precision goes when the
budget allows) and ``threshold`` (the peers benchmark's four smooth problems at d = 100 with
4 d and 7 d evaluations, with ``zovh``'s trust-region step forced: where ``step="auto"``
should switch).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from . import _problems as P
from ._harness import Cell, Method, Tracker
from ._methods import _bounds, methods
from .suite_peers import _fmt, configuration_cells, skipped_lines, summarize

NAME = "smooth"
DESCRIPTION = ("precision and curvature at d = 10, 40, 100 (shifted sphere, ellipsoids of condition 1e6, "
               "Rosenbrock; 200 d evaluations): zovh, zoar vs L-BFGS-B-FD and CMA-ES")

DIMENSIONS: tuple[int, ...] = (10, 40, 100)
#: Evaluations per dimension (the budget is BUDGET_PER_DIM * d).
BUDGET_PER_DIM = 200


def _zovh_direction_run(t: Tracker, x0: np.ndarray, lo: Any, hi: Any, seed: int) -> Any:
    import zo_scipy as zs
    from scipy.optimize import minimize

    res = minimize(t.batch, x0, method=zs.zovh, bounds=_bounds(lo, hi),
                   options=dict(maxfev=t.budget, seed=seed, vectorized=True, step="direction"))
    return res.x


def _zovh_newton_run(t: Tracker, x0: np.ndarray, lo: Any, hi: Any, seed: int) -> Any:
    import zo_scipy as zs
    from scipy.optimize import minimize

    res = minimize(t.batch, x0, method=zs.zovh, bounds=_bounds(lo, hi),
                   options=dict(maxfev=t.budget, seed=seed, vectorized=True, step="newton"))
    return res.x


def suite_methods() -> list[Method]:
    """The compared methods, in table order."""
    return methods(("L-BFGS-B-FD", "CMA-ES", "zoar")) + [
        Method("zovh (step=direction)", "ours", _zovh_direction_run),
        Method("zovh (step=newton)", "ours", _zovh_newton_run)] + methods(("zovh",))


#: The ``long`` group's budget per dimension.
LONG_BUDGET_PER_DIM = 2000
#: The ``threshold`` group's budgets per dimension (around ``step="auto"``'s switch at about 7 d).
THRESHOLD_BUDGETS_PER_DIM: tuple[int, ...] = (4, 7)


def problems(quick: bool) -> list[P.Problem]:
    dims = (6,) if quick else DIMENSIONS
    names = ("sphere", "ellipsoid-rot") if quick else P.SHIFTED_FUNCTIONS
    out = [P.shifted_problem(n, d, group=f"d={d}", budget=BUDGET_PER_DIM * d) for d in dims for n in names]
    if quick:
        return out
    out += [P.make(n, d, group="rugged", budget=BUDGET_PER_DIM * d) for d in (10, 40) for n in ("Levy", "Ackley")]
    for d in (10, 40):
        p = P.shifted_problem("sphere", d, group="long", budget=LONG_BUDGET_PER_DIM * d)
        p.name = f"sphere, {LONG_BUDGET_PER_DIM} d budget"
        out.append(p)
    for per_dim in THRESHOLD_BUDGETS_PER_DIM:
        for n in ("quadratic", "Levy", "ellipsoid", "Rosenbrock"):
            p = P.make(n, 100, group="threshold", budget=per_dim * 100)
            p.name = f"{p.name}, {per_dim} d budget"
            out.append(p)
    return out


def cells(*, quick: bool, seeds: list[int] | None) -> list[Cell]:
    seeds = list(seeds) if seeds is not None else ([0] if quick else [0, 1, 2])
    return configuration_cells(problems(quick), suite_methods(), seeds)


def _gap(s: dict[str, Any]) -> float:
    return float(s["median"])  # f* = 0 on every problem of this suite (Levy and Ackley included)


def report(rows: list[dict], *, command: str) -> str:
    seeds = sorted({r["seed"] for r in rows})
    summ = summarize(rows)
    names = list(dict.fromkeys(r["method"] for r in rows))
    probs = list(dict.fromkeys(r["problem"] for r in rows))
    lines = ["## Smooth problems at small and moderate d", "", f"```\n{command}\n```", "",
             f"Seeds {seeds}; budget 200 d evaluations; gap f - f* of the best true value each method "
             "evaluated, median over seeds [min, max] (rows named 'k d budget': k d evaluations; the "
             "threshold rows start at x0 ~ N(0, I) without a box and are not shifted, f* = 0). "
             "Last columns: zovh's median gap divided by L-BFGS-B-FD's (target <= 10) and by CMA-ES's "
             "(target < 1).", "",
             "| problem | " + " | ".join(names) + " | zovh / L-BFGS-B-FD | zovh / CMA-ES |",
             "|---" * (len(names) + 3) + "|"]
    for p in probs:
        cells = []
        for m in names:
            s = summ.get((p, m))
            if s is None or "reason" in s:
                cells.append("skipped" if s is not None else "")
            else:
                cells.append(f"{_fmt(s['median'])} [{_fmt(s['min'])}, {_fmt(s['max'])}]")
        ratios = []
        z = summ.get((p, "zovh"), {})
        for peer in ("L-BFGS-B-FD", "CMA-ES"):
            s = summ.get((p, peer), {})
            if "median" in z and "median" in s:
                ratios.append(_ratio(_gap(z), _gap(s)))
            else:
                ratios.append("")
        lines.append(f"| {p} | " + " | ".join(cells) + " | " + " | ".join(ratios) + " |")
    lines += ["", *_targets(summ, probs), ""]
    lines += skipped_lines(rows)
    return "\n".join(lines) + "\n"


def _ratio(a: float, b: float) -> str:
    if b == 0:
        return "0/0" if a == 0 else "inf"
    return _fmt(a / b)


def _targets(summ: dict, probs: Sequence[str]) -> list[str]:
    """The precision target on the sphere and the curvature targets, met or not, per cell."""
    out = ["Targets:", ""]
    for p in probs:
        z = summ.get((p, "zovh"), {})
        a = summ.get((p, "zoar"), {})
        if "median" not in z or p.startswith(("Levy", "Ackley")) or " d budget" in p and not p.startswith("sphere"):
            continue
        if p.startswith("sphere"):
            for m, s in (("zovh", z), ("zoar", a)):
                if "median" in s:
                    ok = s["max"] <= 1e-8
                    out.append(f"- {p}: {m} f - f* <= 1e-8 in every seed: {'met' if ok else 'NOT met'} "
                               f"(worst {_fmt(s['max'])})")
            continue
        lb, cm = summ.get((p, "L-BFGS-B-FD"), {}), summ.get((p, "CMA-ES"), {})
        if "median" in lb and "median" in cm:
            within = _gap(z) <= 10 * _gap(lb) or _gap(z) <= 1e-12
            below = _gap(z) < _gap(cm) or (_gap(z) <= 1e-12 and _gap(cm) <= 1e-12)
            out.append(f"- {p}: zovh within 10x of L-BFGS-B-FD: {'met' if within else 'NOT met'}; "
                       f"below CMA-ES: {'met' if below else 'NOT met'}")
    return out


__all__ = ["DESCRIPTION", "NAME", "cells", "problems", "report"]
