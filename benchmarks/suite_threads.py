"""Suite ``threads``: the ``torch_threads`` default of ``zoar`` (``"auto"``) against all cores
and against one thread, on an idle machine and beside one competing busy process.

Times ``zo_scipy.zoar`` on Rosenbrock (a cheap objective, so the estimator's own work and
its threads dominate) at d = 1000 (20 000 evaluations, M d = 30 000 elements: ``"auto"``
uses one thread) and d = 10^5 (2 000 evaluations, M d = 3 10^6: still one thread) and
d = 10^6 (100 evaluations, M d = 3 10^7: torch's own setting). Ratios are to ``"auto"``
in the same run. ``--quick``: d = 200, 2 000 evaluations, idle only.
"""
from __future__ import annotations

import functools
import multiprocessing
import os
import time
from typing import Any

import numpy as np

from ._harness import Cell

NAME = "threads"
DESCRIPTION = "zoar's torch_threads default ('auto') vs all cores vs 1 thread, idle and beside a busy process"
SETTINGS = ("auto", "all cores", "1 thread")


def _spin(stop: Any) -> None:
    while not stop.is_set():
        pass


def run_one(d: int, budget: int, setting: str, load: str, repeats: int = 2) -> dict[str, Any]:
    import zo_scipy
    from scipy.optimize import rosen

    threads = {"auto": "auto", "all cores": os.cpu_count() or 1, "1 thread": 1}[setting]
    x0 = np.random.default_rng(0).standard_normal(d)
    stop = multiprocessing.Event()
    busy = multiprocessing.Process(target=_spin, args=(stop,), daemon=True) if load == "busy" else None
    if busy is not None:
        busy.start()
    try:
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            zo_scipy.zoar(rosen, x0, maxfev=budget, seed=0, torch_threads=threads)
            times.append(time.perf_counter() - t)
    finally:
        stop.set()
        if busy is not None:
            busy.join(5)
    return {"d": d, "budget": budget, "method": setting, "load": load, "seconds": float(min(times)),
            "cpus": os.cpu_count()}


def cells(*, quick: bool, seeds: list[int] | None) -> list[Cell]:
    sizes = [(200, 2000)] if quick else [(1000, 20_000), (100_000, 2000), (1_000_000, 100)]
    loads = ["idle"] if quick else ["idle", "busy"]
    return [Cell(f"{d}|{load}|{s}", functools.partial(run_one, d, b, s, load, 1 if quick else 2))
            for d, b in sizes for load in loads for s in SETTINGS]


def report(rows: list[dict], *, command: str) -> str:
    lines = ["## torch_threads: the default against all cores and one thread", "",
             f"```\n{command}\n```", "",
             "Seconds for one `zoar` run on Rosenbrock (best of 2); ratio = time / time of "
             "`\"auto\"` in the same run (> 1: slower than the default).", "",
             "| d | evaluations | machine | auto (s) | all cores | 1 thread |", "|---|---|---|---|---|---|"]
    keys = list(dict.fromkeys((r["d"], r["budget"], r["load"]) for r in rows))
    for d, budget, load in keys:
        by = {r["method"]: r["seconds"] for r in rows if (r["d"], r["budget"], r["load"]) == (d, budget, load)}
        if "auto" not in by:
            continue
        ratio = {k: f"{by[k]:.2f} s ({by[k] / by['auto']:.2f}x)" if k in by else "—" for k in SETTINGS}
        machine = "idle" if load == "idle" else "one busy process beside"
        lines.append(f"| {d} | {budget} | {machine} | {by['auto']:.2f} | {ratio['all cores']} | {ratio['1 thread']} |")
    return "\n".join(lines) + "\n"
