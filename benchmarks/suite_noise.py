"""Suite ``noise``: ZoAR on a noisy objective, the batch growing under noise vs a fixed batch.

The 50-d ill-conditioned problem with noise of standard deviation 5
(:class:`._problems.NoisyIllConditioned`), box ``[-5, 5]^50``, start 0, default options
(``max_queries = 8 num_queries``) against ``max_queries=10`` (the batch kept at 10: the
behaviour before the growth rule). Reports the status, evaluations used, the final batch
size and the *noise-free* value at ``res.x``. ``--quick``: 2 000 evaluations, one seed.
"""
from __future__ import annotations

import functools
import warnings
from typing import Any

import numpy as np

from ._harness import Cell, single_threaded
from ._problems import NoisyIllConditioned

NAME = "noise"
DESCRIPTION = "ZoAR under objective noise: batch growth (default) vs a fixed batch, 50-d ill-conditioned, sd 5"
VARIANTS = {"growth (default)": {}, "fixed batch (max_queries=10)": {"max_queries": 10}}


def run_one(variant: str, budget: int, seed: int) -> dict[str, Any]:
    import zo_scipy

    problem = NoisyIllConditioned(seed=seed)
    with single_threaded(), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        res = zo_scipy.zoar(problem, np.zeros(50), bounds=[problem.bounds] * 50,
                            maxfev=budget, seed=seed, **VARIANTS[variant])
    return {"method": variant, "budget": budget, "seed": seed, "status": int(res.status),
            "nfev": int(res.nfev), "num_queries": int(res.num_queries), "fun": float(res.fun),
            "true": problem.true(res.x), "noisy": bool(res.noisy)}


def cells(*, quick: bool, seeds: list[int] | None) -> list[Cell]:
    budgets = [2000] if quick else [10_000, 50_000]
    seeds = seeds or ([0] if quick else [0, 1, 2])
    return [Cell(f"{v}|{b}|{s}", functools.partial(run_one, v, b, s))
            for b in budgets for v in VARIANTS for s in seeds]


def report(rows: list[dict], *, command: str) -> str:
    lines = ["## ZoAR under noise: batch growth vs a fixed batch", "", f"```\n{command}\n```", "",
             "Noise-free value at `res.x` (lower is better), status (0 = claimed convergence, "
             "1 = budget used) and final batch size, per seed.", "",
             "| budget | variant | true f at x (per seed) | median | status | nfev | final K |",
             "|---|---|---|---|---|---|---|"]
    for budget in sorted({r["budget"] for r in rows}):
        for variant in VARIANTS:
            rs = sorted((r for r in rows if r["budget"] == budget and r["method"] == variant),
                        key=lambda r: r["seed"])
            if not rs:
                continue
            true = [r["true"] for r in rs]
            lines.append(f"| {budget} | {variant} | {' / '.join(f'{t:.3g}' for t in true)} | "
                         f"{float(np.median(true)):.3g} | {' / '.join(str(r['status']) for r in rs)} | "
                         f"{' / '.join(str(r['nfev']) for r in rs)} | "
                         f"{' / '.join(str(r['num_queries']) for r in rs)} |")
    return "\n".join(lines) + "\n"
