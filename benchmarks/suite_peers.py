r"""Suite ``peers``: ZoAR/ZoVH against the tools users would pick instead, at equal budgets.

Regimes where the choice is real (see ``docs/benchmarks.md``):

- ``low-d``: BoTorch functions in their box at d = 10 with a small budget —
  the home ground of BoTorch BO and Optuna;
- ``smooth``: noiseless problems started at :math:`x_0 \sim N(0, I)`, separable
  (the papers' quadratic, Levy) and non-separable (rotated ellipsoid, Rosenbrock),
  d = 100 and 1000;
- ``noisy``: additive (:math:`\sigma` relative to :math:`|f(x_0)|`) and
  multiplicative noise, where finite differences break down;
- ``budget<d``: d = 10^4 ... 10^6 with a budget of a few thousand evaluations.

Every method runs with its defaults (see :mod:`._methods`), the same start and
the same budget; the score is the best true (noise-free) value among the
method's own evaluations. Cells that cannot run are rows with a ``skipped``
reason; a method that raised is a row with ``error``.
"""
from __future__ import annotations

import functools
import math
import re
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import _problems as P
from ._harness import Cell, Method, run_cell, single_threaded
from ._methods import all_methods

NAME = "peers"
DESCRIPTION = ("ZoAR/ZoVH vs SciPy, CMA-ES, Optuna, BoTorch BO and ZO-SGD at equal budgets: low d, "
               "smooth, noisy, budget < d")
GROUP_TITLES = {
    "low-d": "Low dimension, small budget (BoTorch functions in their box, uniform random start)",
    "smooth": "Smooth, noiseless, x0 ~ N(0, I): separable (quadratic, Levy) and non-separable (rotated ellipsoid, Rosenbrock)",
    "noisy": "Noisy objectives (score: best TRUE f among the method's queries)",
    "budget<d": "Budget smaller than d",
}


def problems(quick: bool) -> list[P.Problem]:
    """The suite's problems (quick: tiny sizes with the same groups and skip rules)."""
    if quick:
        return [
            P.make("Levy", 4, group="low-d", budget=12, bounded=True),
            P.make("ellipsoid", 20, group="smooth", budget=200),
            P.make("Rosenbrock", 20, group="noisy", budget=200, noise="additive", noise_level=1e-3),
            P.make("quadratic", 5000, group="budget<d", budget=300),
        ]
    # Sizes fit a full run in about half an hour on 2 shared cores: BO and Optuna's GP cost
    # ~1 s per evaluation at d = 10 there, Nelder-Mead ~16 ms per evaluation at d = 1000.
    out = [P.make(n, 10, group="low-d", budget=30, bounded=True) for n in ("Levy", "StyblinskiTang")]
    out += [P.make(n, 100, group="smooth", budget=1000) for n in ("quadratic", "Levy", "ellipsoid", "Rosenbrock")]
    out += [P.make(n, 1000, group="smooth", budget=2000) for n in ("Levy", "ellipsoid", "Rosenbrock")]
    out += [
        P.make("Rosenbrock", 100, group="noisy", budget=1000, noise="additive", noise_level=1e-3),
        P.make("Rosenbrock", 100, group="noisy", budget=1000, noise="multiplicative", noise_level=0.1),
        P.make("ellipsoid", 1000, group="noisy", budget=2000, noise="additive", noise_level=1e-3),
    ]
    out += [P.make(n, 10_000, group="budget<d", budget=3000) for n in ("quadratic", "ellipsoid", "Rosenbrock")]
    out += [P.make("ellipsoid", 100_000, group="budget<d", budget=1000),
            P.make("quadratic", 1_000_000, group="budget<d", budget=500)]
    return out


def _cell(method: Method, problem: P.Problem, seed: int) -> dict[str, Any]:
    with single_threaded():
        return run_cell(method, problem, seed)


def configuration_cells(problems: Sequence[P.Problem], methods: Sequence[Method],
                        seeds: Sequence[int]) -> list[Cell]:
    """One cell per (problem, method, seed): the peers harness for any set of problems and
    methods (the ``zoar`` suite's defaults study is one such configuration)."""
    return [Cell(f"{p.group}|{p.label}|{m.name}|{s}", functools.partial(_cell, m, p, s))
            for p in problems for m in methods for s in seeds]


def cells(*, quick: bool, seeds: list[int] | None) -> list[Cell]:
    seeds = list(seeds) if seeds is not None else ([0, 1] if quick else [0, 1, 2])
    return configuration_cells(problems(quick), all_methods(), seeds)


# -- report --------------------------------------------------------------------------
def _fmt(v: float) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "nan"
    if v == 0:
        return "0"
    if not math.isfinite(v):
        return str(v)
    return f"{v:.3g}" if 1e-3 <= abs(v) < 1e5 else f"{v:.2e}"


def _cells(rows: list[dict]) -> dict[tuple[str, str], list[dict]]:
    out: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for r in rows:
        out[(r["problem"], r["method"])].append(r)
    return out


def _gap(r: dict) -> float:
    fopt = r.get("fopt")
    return float(r["best"]) - (float(fopt) if fopt is not None else 0.0)


def summarize(rows: list[dict]) -> dict[tuple[str, str], dict[str, Any]]:
    """Per (problem, method): median/min/max best over seeds, or the skip/error reason."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for key, rs in _cells(rows).items():
        ran = [r for r in rs if not r.get("skipped") and math.isfinite(float(r.get("best", math.nan)))]
        if not ran:
            reason = next((r.get("skipped") or r.get("error") for r in rs if r.get("skipped") or r.get("error")), "no result")
            out[key] = {"reason": reason}
            continue
        b = np.array([float(r["best"]) for r in ran])
        out[key] = {"median": float(np.median(b)), "min": float(b.min()), "max": float(b.max()),
                    "gap": float(np.median([_gap(r) for r in ran])), "n": len(ran),
                    "errors": sum(1 for r in ran if r.get("error")), "seconds": float(np.median([r.get("seconds", 0) for r in ran]))}
    return out


def report(rows: list[dict], *, command: str) -> str:
    seeds = sorted({r["seed"] for r in rows})
    lines = [
        "## Peers at equal evaluation budgets", "",
        f"```\n{command}\n```", "",
        f"Seeds {seeds}. Every method runs with **its own defaults, step sizes included** (no tuning for "
        "anyone; CMA-ES's sigma0 and ZO-SGD's steps follow the same problem scale as ZoAR's automatic "
        "step, see `benchmarks/_methods.py`), from the same start, at the same evaluation budget. "
        "Score: best **true** (noise-free) f among the method's own evaluations; cells give the median "
        "over seeds and [min, max]. `ratio` = (median best - f*) / (zoar's median best - f*): > 1 means "
        "zoar is closer to the optimum f*.", "",
    ]
    summ = summarize(rows)
    info = _problem_info(rows)
    lines += tables(rows, GROUP_TITLES)
    lines += _standing(summ, info)
    lines += skipped_lines(rows)
    return "\n".join(lines) + "\n"


def _problem_info(rows: list[dict]) -> dict[str, dict]:
    info: dict[str, dict] = {}
    for r in rows:
        info.setdefault(r["problem"], r)
    return info


def tables(rows: list[dict], titles: dict[str, str]) -> list[str]:
    """One Markdown table per group of problems (methods x problems, ratio to zoar) and its winners."""
    summ = summarize(rows)
    methods = list(dict.fromkeys(r["method"] for r in rows))
    lines: list[str] = []
    by_group: dict[str, list[str]] = defaultdict(list)
    info: dict[str, dict] = {}
    for r in rows:
        if r["problem"] not in info:
            info[r["problem"]] = r
            by_group[r["group"]].append(r["problem"])
    for group, probs in by_group.items():
        lines += [f"### {titles.get(group, group)}", ""]
        head = "| method | " + " | ".join(f"{p} (budget {info[p]['budget']})" for p in probs) + " |"
        lines += [head, "|---" * (len(probs) + 1) + "|"]
        f0 = []
        for p in probs:
            v = [r["f0"] for r in rows if r["problem"] == p and "f0" in r]
            f0.append(_fmt(float(np.median(v))) if v else "")
        lines.append("| f(x0), median | " + " | ".join(f0) + " |")
        for m in methods:
            cells = []
            for p in probs:
                s = summ.get((p, m))
                if s is None:
                    cells.append("")
                elif "reason" in s:
                    cells.append("skipped" if str(s["reason"]).startswith(("skipped", "not available")) else "error")
                else:
                    z = summ.get((p, "zoar"), {})
                    ratio = ""
                    if "gap" in z and z["gap"] > 0 and m != "zoar":
                        ratio = f"; ratio {_fmt(s['gap'] / z['gap'])}"
                    err = f"; {s['errors']} raised" if s["errors"] else ""
                    cells.append(f"{_fmt(s['median'])} [{_fmt(s['min'])}, {_fmt(s['max'])}]{ratio}{err}")
            if any(c not in ("", "skipped") for c in cells):
                bold = "**" if m == "zoar" else ""
                lines.append(f"| {bold}{m}{bold} | " + " | ".join(cells) + " |")
        winners = []
        for p in probs:
            ran = {m: s for (pp, m), s in summ.items() if pp == p and "median" in s}
            if ran:
                best = min(ran, key=lambda m: ran[m]["median"])
                rank = sorted(ran, key=lambda m: ran[m]["median"]).index("zoar") + 1 if "zoar" in ran else None
                winners.append(f"{p}: best **{best}**" + (f", zoar {rank}/{len(ran)}" if rank else ""))
        lines += ["", "Winner by median: " + "; ".join(winners) + ".", ""]
    return lines


def skipped_lines(rows: list[dict]) -> list[str]:
    """The skipped cells and errors, one line per (method, reason)."""
    lines = ["### Skipped cells and errors", ""]
    # one line per (method, reason), the reason without its "skipped at d=..:" prefix
    grouped: dict[tuple[str, str], list[str]] = defaultdict(list)
    for r in rows:
        reason = r.get("skipped") or (f"raised: {r['error']}" if r.get("error") else None)
        if reason:
            short = re.sub(r"^skipped( at d=\d+(, budget \d+)?)?: ", "", str(reason))
            if r["problem"] not in grouped[(r["method"], short)]:
                grouped[(r["method"], short)].append(r["problem"])
    for (m, reason), probs in grouped.items():
        lines.append(f"- **{m}**: {reason} ({len(probs)} problem{'s' if len(probs) > 1 else ''}: {'; '.join(probs)})")
    if not grouped:
        lines.append("- none")
    return lines + [""]


CLASSICAL = ("Nelder-Mead", "Powell", "COBYLA", "COBYQA", "L-BFGS-B-FD", "CMA-ES", "sep-CMA-ES")


def _standing(summ: dict, info: dict) -> list[str]:
    """Where zoar stands at d >= 1000 against every SciPy derivative-free method and CMA-ES."""
    lines = ["### zoar at d >= 1000 against SciPy and CMA-ES", "",
             "| problem | zoar median | best classical peer | its median | ratio (peer gap / zoar gap) | zoar beats |",
             "|---|---|---|---|---|---|"]
    any_row = False
    for p, r in info.items():
        z = summ.get((p, "zoar"))
        if r["d"] < 1000 or not z or "median" not in z:
            continue
        peers = {m: summ[(p, m)] for m in CLASSICAL if (p, m) in summ and "median" in summ[(p, m)]}
        if not peers:
            continue
        any_row = True
        best = min(peers, key=lambda m: peers[m]["median"])
        beaten = [m for m in peers if z["median"] < peers[m]["median"]]
        ratio = _fmt(peers[best]["gap"] / z["gap"]) if z["gap"] > 0 else "inf"
        lines.append(f"| {p} | {_fmt(z['median'])} | {best} | {_fmt(peers[best]['median'])} | {ratio} | "
                     f"{len(beaten)}/{len(peers)} |")
    return (lines if any_row else lines[:2] + ["(no cell at d >= 1000 in these results)"]) + [""]
