"""Suite ``tune``: how the ZoAR defaults were chosen (``python -m benchmarks --suite tune``).

Runs :class:`zo_scipy.core.ZoAR` with a few (mu, num_histories) settings on the ZoAR
paper's Ackley, Levy, Rosenbrock and 0.5|x|^2 at d = 1000, from the development start
(``start="dev"``, seed 1: never a reporting start), 22 000 evaluations, and reports the
best value each reached (``docs/zoar.md`` explains the choice). ``--quick`` uses
d = 50 and 2 000 evaluations. Not part of a run that names no suite (``DEFAULT``).
"""
from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np

from . import _problems as P
from ._harness import BudgetReached, Cell, Tracker, single_threaded

NAME = "tune"
DESCRIPTION = "development only: ZoAR (mu, num_histories) settings at d = 1000, start seed 1"
DEFAULT = False

CONFIGS: list[dict[str, float]] = [
    {"mu": 0.05, "num_histories": 5},
    {"mu": 0.05, "num_histories": 0},
    {"mu": 0.1, "num_histories": 5},
    {"mu": 0.1, "num_histories": 2},
    {"mu": 0.1, "num_histories": 1},
    {"mu": 0.1, "num_histories": 0},
    {"mu": 0.2, "num_histories": 5},
    {"mu": 0.2, "num_histories": 0},
]
START_SEED = 1


def run_one(problem: str, d: int, budget: int, *, mu: float, num_histories: int, seed: int = 0) -> dict[str, Any]:
    """Best value reached by ZoAR with ``mu`` given as a fraction of the RMS of x0."""
    import torch

    from zo_scipy.core import ZoAR

    prob = P.make(problem, d, group="tune", budget=budget, start="dev")
    x0 = prob.x0(START_SEED)
    scale = float(np.sqrt(np.mean(x0**2)))
    opt = ZoAR(torch.as_tensor(x0), seed=seed, mu=mu * scale, adapt_mu=True, num_histories=int(num_histories))
    tracker = Tracker(prob, budget, seed)
    with single_threaded():
        try:
            while tracker.remaining >= 1:
                X = opt.ask(int(min(opt.num_queries, tracker.remaining)))
                opt.tell(torch.as_tensor(tracker.batch(X.numpy())))
        except BudgetReached:
            pass
    tracker.finish()
    return {"method": f"mu={mu} N={num_histories}", "mu": mu, "num_histories": num_histories,
            "problem": problem, "d": d, "seed": START_SEED, "budget": budget, "nfev": tracker.nfev,
            "best": tracker.best, "trace": tracker.trace}


def cells(*, quick: bool, seeds: list[int] | None) -> list[Cell]:
    d, budget = (50, 2000) if quick else (1000, 22_000)
    return [Cell(f"{p}|{d}|{budget}|mu={c['mu']}|N={c['num_histories']}",
                 functools.partial(run_one, p, d, budget, **c)) for c in CONFIGS for p in P.PAPER_FUNCTIONS]


def report(rows: list[dict], *, command: str) -> str:
    problems = list(dict.fromkeys(r["problem"] for r in rows))
    d, budget = (rows[0]["d"], rows[0]["budget"]) if rows else (0, 0)
    lines = ["## ZoAR tuning runs (development start, not a reporting figure)", "", f"```\n{command}\n```", "",
             f"d = {d}, budget = {budget}, start seed {START_SEED}, optimizer seed 0; best f reached.", "",
             "| mu/scale | N | " + " | ".join(problems) + " |", "|---|---|" + "---|" * len(problems)]
    for c in CONFIGS:
        by = {r["problem"]: r["best"] for r in rows if r["mu"] == c["mu"] and r["num_histories"] == c["num_histories"]}
        if by:
            lines.append(f"| {c['mu']} | {c['num_histories']} | "
                         + " | ".join(f"{by[p]:.4g}" if p in by and math.isfinite(by[p]) else "—" for p in problems)
                         + " |")
    return "\n".join(lines) + "\n"
