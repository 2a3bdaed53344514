r"""Suite ``cost``: estimator overhead per iteration against the unavoidable minimum.

One ZoAR iteration (``ask`` + ``tell`` with a trivial objective, :math:`y_k = x_{k,1}`,
so that only the optimizer's own work is timed) against the bare minimum any
query-reusing Gaussian estimator must do per iteration:

1. draw the :math:`K \times d` directions (``torch.randn`` with a generator),
2. one :math:`(M,) \times (M, d)` product, :math:`M = (N+1) K`, the gradient
   :math:`g = w^\top U` over the reuse buffer.

Reported per :math:`d`: milliseconds per iteration (median of the timed
iterations), their ratio, the peak resident memory added by each (measured in a
fresh subprocess per cell, ``VmHWM`` minus the value after imports), the
buffer size :math:`8 M d` bytes, and evaluations per iteration.
"""
from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import time
from typing import Any

import numpy as np

NAME = "cost"
DESCRIPTION = "ZoAR per-iteration overhead vs bare torch ops (K x d randn + one M x d product), peak memory"
K, N = 10, 5  # the ZoAR paper's num_queries, num_histories (zoar's default N = 2 keeps a smaller buffer)


def _vm_hwm_mb() -> float:
    """Peak resident set size of this process (Linux ``/proc``; 0 elsewhere)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def measure(kind: str, d: int, iters: int) -> dict[str, Any]:
    """Time ``iters`` iterations of ``kind`` ("zoar" or "bare") at dimension ``d`` (1 torch thread)."""
    import torch

    torch.set_num_threads(1)
    from zo_scipy.core import ZoAR, make_generator

    base = _vm_hwm_mb()
    times = []
    if kind == "zoar":
        opt = ZoAR(torch.zeros(d, dtype=torch.float64), num_queries=K, num_histories=N, seed=0)
        for _ in range(iters + 2):
            t0 = time.perf_counter()
            X = opt.ask()
            opt.tell(X[:, 0])
            times.append(time.perf_counter() - t0)
        evals = K
    elif kind == "bare":
        gen = make_generator(0)
        M = (N + 1) * K
        H = torch.randn(M, d, dtype=torch.float64, generator=gen)
        w = torch.randn(M, dtype=torch.float64, generator=gen)
        for _ in range(iters + 2):
            t0 = time.perf_counter()
            U = torch.randn(K, d, dtype=torch.float64, generator=gen)
            g = w @ H
            times.append(time.perf_counter() - t0)
        del U, g
        evals = K
    else:
        raise ValueError(f"kind must be 'zoar' or 'bare', got {kind!r}")
    t = np.array(times[2:])  # the first two iterations warm up allocators and caches
    return {"ms_per_iter": float(np.median(t) * 1e3), "ms_min": float(t.min() * 1e3), "ms_max": float(t.max() * 1e3),
            "peak_mb": _vm_hwm_mb() - base, "buffer_mb": (N + 1) * K * d * 8 / 2**20, "evals_per_iter": evals,
            "iters": iters}


def _subprocess(kind: str, d: int, iters: int) -> dict[str, Any]:
    code = ("import json,sys; from zo_scipy.bench.suite_cost import measure; "
            f"print(json.dumps(measure({kind!r}, {d}, {iters})))")
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=1800)
    if out.returncode != 0:
        raise RuntimeError(out.stderr.strip().splitlines()[-1] if out.stderr.strip() else f"exit {out.returncode}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def dims(quick: bool) -> list[tuple[int, int]]:
    """(d, timed iterations)."""
    if quick:
        return [(10_000, 20), (100_000, 10)]
    return [(10_000, 50), (100_000, 30), (1_000_000, 10), (10_000_000, 4)]


def run(*, quick: bool, out_dir: pathlib.Path, seeds: list[int] | None = None, progress: bool = False) -> list[dict]:
    """One row per (kind, d); ``seed`` is 0 (directions are seeded; timings do not depend on it)."""
    from tqdm.auto import tqdm

    cells = [(kind, d, it) for d, it in dims(quick) for kind in ("zoar", "bare")]
    rows = []
    for kind, d, it in tqdm(cells, disable=not progress, desc="cost", unit="cell"):
        row: dict[str, Any] = {"method": "ZoAR ask+tell" if kind == "zoar" else "bare minimum", "kind": kind,
                               "problem": f"d={d}", "d": d, "seed": 0, "K": K, "N": N}
        try:
            row.update(_subprocess(kind, d, it))
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            row["error"] = str(exc)
        rows.append(row)
    return rows


def report(rows: list[dict], *, command: str) -> str:
    by = {(r["kind"], r["d"]): r for r in rows}
    ds = sorted({r["d"] for r in rows})
    lines = ["## Estimator overhead per iteration", "", f"```\n{command}\n```", "",
             f"ZoAR at the paper's K = {K} queries, N = {N} reused iterations (M = {(N + 1) * K} stored pairs), "
             "float64, CPU, 1 torch thread, trivial objective. Bare minimum = draw K x d Gaussian "
             "directions + one (M,) @ (M, d) product. Median ms per iteration [min, max]; peak memory = "
             "resident-set peak added by the cell in a fresh process.", "",
             "| d | ZoAR ms/iter | bare ms/iter | ratio | ZoAR peak MiB | bare peak MiB | buffer 8Md MiB | evaluations/iter |",
             "|---|---|---|---|---|---|---|---|"]
    for d in ds:
        z, b = by.get(("zoar", d), {}), by.get(("bare", d), {})
        if "ms_per_iter" not in z or "ms_per_iter" not in b:
            why = z.get("error") or b.get("error") or "missing"
            lines.append(f"| {d:.0e} | error: {why} | | | | | | |")
            continue
        lines.append(
            f"| {d:.0e} | {z['ms_per_iter']:.3g} [{z['ms_min']:.3g}, {z['ms_max']:.3g}] | "
            f"{b['ms_per_iter']:.3g} [{b['ms_min']:.3g}, {b['ms_max']:.3g}] | "
            f"{z['ms_per_iter'] / b['ms_per_iter']:.2f} | {z['peak_mb']:.0f} | {b['peak_mb']:.0f} | "
            f"{z['buffer_mb']:.0f} | {z['evals_per_iter']} (two-point ZO-SGD: {K + 1}) |")
    return "\n".join(lines) + "\n"
