r"""Plots of benchmark rows (matplotlib, Agg backend, imported lazily).

Rows that carry ``"trace"`` (``[[evaluations, best_so_far], ...]``, best true
value so far after that many evaluations) are plotted two ways:

- **best-so-far vs evaluations** per problem (log-log; median over seeds, band
  from the smallest to the largest seed), the gap :math:`f - f_{ref}` on the
  y-axis, :math:`f_{ref}` the known optimum (``"fopt"``) or else the best value
  any method reached on that problem;
- **ECDF of targets reached** (in the spirit of COCO's runtime ECDFs): for each
  problem, ten targets :math:`f_{ref} + (f_0 - f_{ref})\,10^{-k}`,
  :math:`k \in \{0.05, 0.1, 0.2, 0.3, 0.5, 1, 2, 3, 4, 5\}` (shallow ones too, so that
  progress at budgets far below d registers); a curve gives, per method, the fraction
  of (problem, seed, target) triples reached within a fraction of the budget.
"""
from __future__ import annotations

import math
import pathlib
import re
from collections import defaultdict
from typing import Any

import numpy as np

#: Exponents k of the ECDF targets f_ref + (f0 - f_ref) 10^-k.
TARGET_EXPONENTS = np.array([0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0, 3.0, 4.0, 5.0])


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", str(text)).strip("-").lower() or "x"


def problem_key(row: dict[str, Any]) -> str:
    """Problem label: ``problem`` plus ``d=`` when the row gives a dimension not in the name."""
    name = str(row.get("problem", "?"))
    d = row.get("d")
    return name if d is None or f"d={d}" in name else f"{name} d={d}"


def _traced(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    by_problem: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        if r.get("skipped") or not r.get("trace"):
            continue
        by_problem[problem_key(r)].append(r)
    return by_problem


def _step_values(trace: list[list[float]], grid: np.ndarray) -> np.ndarray:
    """Best-so-far at each grid point (NaN before the first evaluation)."""
    t = np.asarray(trace, dtype=float)
    idx = np.searchsorted(t[:, 0], grid, side="right") - 1
    out = np.minimum.accumulate(np.where(idx >= 0, t[np.clip(idx, 0, None), 1], np.inf))
    out[idx < 0] = np.nan
    return out


def _reference(rs: list[dict[str, Any]]) -> tuple[float, float]:
    """(f_ref, f0) of one problem."""
    finals = [min(p[1] for p in r["trace"]) for r in rs]
    known = [r["fopt"] for r in rs if isinstance(r.get("fopt"), (int, float)) and math.isfinite(r["fopt"])]
    fref = min(known) if known else min(finals)
    starts = [r["f0"] for r in rs if isinstance(r.get("f0"), (int, float)) and math.isfinite(r["f0"])]
    if not starts:  # first finite value of each trace
        starts = [next((v for _, v in r["trace"] if math.isfinite(v)), -math.inf) for r in rs]
    f0 = max(starts)
    return fref, (f0 if math.isfinite(f0) and f0 > fref else fref + 1.0)


def plot_suite(rows: list[dict[str, Any]], out_dir: pathlib.Path, prefix: str) -> list[pathlib.Path]:
    """Write ``<prefix>-<group>.png`` (best-so-far grids) and ``<prefix>-ecdf.png``.

    Returns the files written (empty when no row has a trace).
    """
    by_problem = _traced(rows)
    if not by_problem:
        return []
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    methods = sorted({r["method"] for rs in by_problem.values() for r in rs})
    cmap = plt.get_cmap("tab20")
    color = {m: cmap(i % 20) for i, m in enumerate(methods)}
    groups: dict[str, list[str]] = defaultdict(list)
    for key, rs in by_problem.items():
        groups[str(rs[0].get("group", prefix))].append(key)
    written: list[pathlib.Path] = []
    for group, keys in groups.items():
        ncol = min(4, len(keys))
        nrow = math.ceil(len(keys) / ncol)
        fig, axes = plt.subplots(nrow, ncol, figsize=(4.2 * ncol, 3.3 * nrow), squeeze=False)
        for ax, key in zip(axes.flat, keys):
            rs = by_problem[key]
            fref, f0 = _reference(rs)
            top = max(r["trace"][-1][0] for r in rs)
            grid = np.unique(np.geomspace(1, max(top, 2), 80).round())
            floor = 1e-12 * max(1.0, abs(f0 - fref))
            for m in methods:
                mr = [r for r in rs if r["method"] == m]
                if not mr:
                    continue
                vals = np.array([_step_values(r["trace"], grid) for r in mr]) - fref
                vals = np.maximum(vals, floor)
                ok = np.isfinite(vals).all(axis=0)
                if not ok.any():
                    continue
                ours = mr[0].get("family") == "ours"
                ax.plot(grid[ok], np.median(vals[:, ok], axis=0), color="black" if m == "zoar" else color[m],
                        label=m, lw=2.2 if ours else 1.2, ls="-" if ours else "--")
                if len(mr) > 1:
                    ax.fill_between(grid[ok], vals[:, ok].min(0), vals[:, ok].max(0), color=color[m], alpha=0.07)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_title(key, fontsize=9)
            ax.set_xlabel("evaluations", fontsize=8)
            ax.set_ylabel("best f - f_ref", fontsize=8)
            ax.tick_params(labelsize=7)
        for ax in list(axes.flat)[len(keys):]:
            ax.set_visible(False)
        handles, labels = axes.flat[0].get_legend_handles_labels()
        seen = dict(zip(labels, handles))
        for ax in list(axes.flat)[1:len(keys)]:
            h, lab = ax.get_legend_handles_labels()
            seen.update(zip(lab, h))
        fig.tight_layout()
        fig.legend(list(seen.values()), list(seen.keys()), loc="center left", fontsize=8,
                   bbox_to_anchor=(1.0, 0.5), frameon=False)
        path = out_dir / f"{prefix}-{slug(group)}.png"
        fig.savefig(path, dpi=90, bbox_inches="tight")
        plt.close(fig)
        written.append(path)
    written.append(_plot_ecdf(by_problem, methods, color, out_dir / f"{prefix}-ecdf.png", plt))
    return written


def ecdf_curves(by_problem: dict[str, list[dict[str, Any]]], grid: np.ndarray) -> dict[str, np.ndarray]:
    """Per method: fraction of (problem, seed, target) triples reached by each
    fraction of the budget in ``grid`` (budget = the row's ``budget`` or its last
    trace entry)."""
    hits: dict[str, list[np.ndarray]] = defaultdict(list)
    for rs in by_problem.values():
        fref, f0 = _reference(rs)
        targets = fref + (f0 - fref) * 10.0 ** (-TARGET_EXPONENTS)
        for r in rs:
            t = np.asarray(r["trace"], dtype=float)
            budget = float(r.get("budget") or t[-1, 0])
            frac = t[:, 0] / budget
            best = np.minimum.accumulate(t[:, 1])
            for tau in targets:
                reached = np.nonzero(best <= tau)[0]
                first = frac[reached[0]] if reached.size else np.inf
                hits[r["method"]].append(grid >= first)
    return {m: np.mean(h, axis=0) for m, h in hits.items()}


def _plot_ecdf(by_problem: dict[str, list[dict[str, Any]]], methods: list[str], color: dict[str, Any],
               path: pathlib.Path, plt: Any) -> pathlib.Path:
    """One ECDF panel per group: methods are only compared on the problems of a
    group, and each curve only counts the cells its method ran (skipped cells are
    not failures, they are absent)."""
    groups: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(dict)
    for key, rs in by_problem.items():
        groups[str(rs[0].get("group", ""))][key] = rs
    grid = np.geomspace(1e-3, 1.0, 200)
    ncol = min(2, len(groups))
    nrow = math.ceil(len(groups) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(7.8 * ncol, 3.6 * nrow), squeeze=False)
    for ax, (group, probs) in zip(axes.flat, groups.items()):
        curves = ecdf_curves(probs, grid)
        for m in sorted(curves, key=lambda m: -curves[m][-1]):
            ax.step(grid, curves[m], where="post", color="black" if m == "zoar" else color[m],
                    lw=2.2 if m == "zoar" else 1.2, label=f"{m} ({curves[m][-1]:.2f})")
        ax.set_xscale("log")
        ax.set_ylim(0, 1)
        ax.set_xlabel("evaluations / budget", fontsize=8)
        ax.set_ylabel("fraction of targets reached", fontsize=8)
        ax.set_title(f"{group}: {len(probs)} problems", fontsize=9)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=6.5, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    for ax in list(axes.flat)[len(groups):]:
        ax.set_visible(False)
    fig.suptitle(f"ECDF of (problem, seed, target) triples, targets f_ref + (f0 - f_ref) 10^-k, "
                 f"k = {TARGET_EXPONENTS[0]:g}..{TARGET_EXPONENTS[-1]:g}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90, bbox_inches="tight")
    plt.close(fig)
    return path
