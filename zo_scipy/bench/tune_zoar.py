"""How the ZoAR defaults were chosen: ``python -m zo_scipy.bench.tune_zoar``.

Runs :class:`zo_scipy.core.ZoAR` with a few (mu, num_histories) settings on
Ackley, Levy, Rosenbrock and 0.5|x|^2 at d = 1000, x0 ~ N(0, I) drawn with the
development seed 1 (never used for reporting), 22 000 evaluations, and prints
the best value each reached. ``--quick`` uses d = 50 and 2 000 evaluations.
"""
from __future__ import annotations

import argparse
import math

import numpy as np
import torch

from zo_scipy.core import BatchObjective, ZoAR

CONFIGS: list[dict] = [
    {"mu": 0.05, "num_histories": 5},
    {"mu": 0.05, "num_histories": 0},
    {"mu": 0.1, "num_histories": 5},
    {"mu": 0.1, "num_histories": 2},
    {"mu": 0.1, "num_histories": 1},
    {"mu": 0.1, "num_histories": 0},
    {"mu": 0.2, "num_histories": 5},
    {"mu": 0.2, "num_histories": 0},
]


def _functions() -> dict:
    def quad(x: np.ndarray) -> float:
        return 0.5 * float(x @ x)

    def rosen(x: np.ndarray) -> float:
        return float(np.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2))

    def ackley(x: np.ndarray) -> float:
        return float(-20 * np.exp(-0.2 * np.sqrt(np.mean(x**2))) - np.exp(np.mean(np.cos(2 * np.pi * x)))
                     + 20 + math.e)

    def levy(x: np.ndarray) -> float:
        w = 1 + (x - 1) / 4
        return float(np.sin(np.pi * w[0]) ** 2
                     + np.sum((w[:-1] - 1) ** 2 * (1 + 10 * np.sin(np.pi * w[:-1] + 1) ** 2))
                     + (w[-1] - 1) ** 2 * (1 + np.sin(2 * np.pi * w[-1]) ** 2))

    return {"ackley": ackley, "levy": levy, "rosenbrock": rosen, "quadratic": quad}


def run_one(f, d: int, budget: int, *, seed: int = 0, start_seed: int = 1, **kw) -> float:
    """Best value reached by ZoAR (lr = 0.05 * scale; ``mu`` given as a fraction of the scale)."""
    x0 = np.random.default_rng(start_seed).standard_normal(d)
    scale = float(np.sqrt(np.mean(x0**2)))
    mu = kw.pop("mu") * scale
    opt = ZoAR(torch.as_tensor(x0), seed=seed, mu=mu, adapt_mu=True, **kw)
    obj = BatchObjective(f, shape=(d,), max_evals=budget)
    while obj.remaining >= 1:
        opt.tell(obj(opt.ask(int(min(opt.num_queries, obj.remaining)))))
    return obj.best_f


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--quick", action="store_true")
    a = p.parse_args(argv)
    d, budget = (50, 2000) if a.quick else (1000, 22_000)
    fns = _functions()
    print(f"d = {d}, budget = {budget}, start seed 1, optimizer seed 0")
    print("| mu/scale | N | " + " | ".join(fns) + " |")
    print("|---|---|" + "---|" * len(fns))
    for cfg in CONFIGS:
        vals = [run_one(f, d, budget, **dict(cfg)) for f in fns.values()]
        print(f"| {cfg['mu']} | {cfg['num_histories']} | " + " | ".join(f"{v:.4g}" for v in vals) + " |")


if __name__ == "__main__":
    main()
