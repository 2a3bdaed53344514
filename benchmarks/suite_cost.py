r"""Suite ``cost``: the estimator overhead per iteration against the unavoidable minimum.

The one overhead measurement of the benchmarks (``docs/benchmarks.md``; the ZoAR
results page quotes it). One :class:`~zo_scipy.core.ZoAR` iteration (``ask`` +
``tell``; the objective, :math:`y_k = X_{k,0}`, is computed between them and not
timed) against the bare minimum any query-reusing Gaussian estimator must do per
iteration:

1. draw the :math:`K \times d` directions (``sample_directions`` into a
   preallocated buffer),
2. one :math:`(M,) \times (M, d)` product, :math:`M = (N+1) K`, the gradient
   :math:`g = w^\top U` over the reuse buffer.

Two configurations: ``defaults`` (``ZoAR``'s default options: Adam, adaptive step
control, its default :math:`N`) and ``paper`` (the ZoAR paper's settings: radazo,
constant step, :math:`K = 10`, :math:`N = 5`). Each (configuration, d) cell runs in
a fresh subprocess with one torch thread: the two sides are timed alternately (so
that load on the machine affects both alike), only on iterations whose gradient
used a full buffer, and the peak resident memory each side adds is read from
``VmHWM`` (reset between the sides through ``/proc/self/clear_refs``).
"""
from __future__ import annotations

import functools
import statistics
import subprocess
import time
from typing import Any

from ._harness import Cell, json_subprocess

NAME = "cost"
DESCRIPTION = ("ZoAR per-iteration overhead vs the bare minimum (K x d directions + one M x d product), "
               "defaults and the paper's settings, time and peak memory")
CONFIGS: tuple[str, ...] = ("defaults", "paper")


def _proc_kb(field: str) -> float:
    """A ``/proc/self/status`` field in MiB (Linux; NaN elsewhere)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def measure(config: str, d: int, repeats: int, seed: int = 0) -> dict[str, Any]:
    """Time ``repeats`` full-buffer iterations of ZoAR (``config``) and of the bare minimum."""
    import torch

    torch.set_num_threads(1)
    from zo_scipy.core import ZoAR, make_generator, sample_directions, zoar_gradient

    from ._methods import AUTHORS_OPTIONS

    gen = make_generator(seed + 1)
    x0 = torch.randn(d, generator=gen, dtype=torch.float64)
    base = _proc_kb("VmHWM")
    if config == "defaults":
        opt = ZoAR(x0, seed=seed)
    elif config == "paper":
        opt = ZoAR(x0, num_histories=5, seed=seed, **AUTHORS_OPTIONS)
    else:
        raise ValueError(f"config must be one of {CONFIGS}, got {config!r}")
    K, N = opt.num_queries, opt.num_histories
    M = (N + 1) * K

    def zoar_step() -> tuple[float, float, bool]:
        full = len(opt.history) + K >= M
        t0 = time.perf_counter()
        X = opt.ask()
        t1 = time.perf_counter()
        y = X[:, 0].clone()
        t2 = time.perf_counter()
        opt.tell(y)
        t3 = time.perf_counter()
        return (t1 - t0) + (t3 - t2), t1 - t0, full

    # ZoAR alone until its buffer is full: the warm-up of the timing and its memory peak
    for _ in range(N + 2):
        zoar_step()
    zoar_peak = _proc_kb("VmHWM") - base
    reset = _reset_peak()
    base_bare = _proc_kb("VmRSS")
    U = torch.empty((M, d), dtype=torch.float64)
    w = torch.randn(M, generator=gen, dtype=torch.float64)
    bare_gen = make_generator(seed + 2)
    sample_directions(M, d, generator=bare_gen, out=U)

    def bare_step(slot: int) -> tuple[float, float]:
        t0 = time.perf_counter()
        sample_directions(K, d, generator=bare_gen, out=U[slot:slot + K])
        t1 = time.perf_counter()
        zoar_gradient(U, w, 1.0)
        return time.perf_counter() - t0, t1 - t0

    bare_step(0)
    bare_peak = (_proc_kb("VmHWM") - base_bare) if reset else float("nan")
    zoar_t: list[float] = []
    ask_t: list[float] = []
    bare_t: list[float] = []
    draw_t: list[float] = []
    it = 0
    # the adaptive step control empties the buffer when it changes mu, and a smaller M is cheaper
    while len(zoar_t) < repeats:
        if it > 20 * (repeats + N + 1):
            raise RuntimeError(f"the ZoAR buffer was rarely full ({len(zoar_t)} of {repeats} timings "
                               f"after {it} iterations)")
        z, a, full = zoar_step()
        b, dr = bare_step((it % (N + 1)) * K)
        it += 1
        if full:
            zoar_t.append(z)
            ask_t.append(a)
            bare_t.append(b)
            draw_t.append(dr)
    zm, bm = statistics.median(zoar_t), statistics.median(bare_t)
    return {"d": d, "K": K, "N": N, "M": M, "repeats": repeats, "iterations": it, "torch_threads": 1,
            "dtype": "float64", "zoar_ms": 1e3 * zm, "ask_ms": 1e3 * statistics.median(ask_t),
            "bare_ms": 1e3 * bm, "draw_ms": 1e3 * statistics.median(draw_t), "ratio": zm / bm,
            "zoar_ms_range": [1e3 * min(zoar_t), 1e3 * max(zoar_t)],
            "bare_ms_range": [1e3 * min(bare_t), 1e3 * max(bare_t)],
            "zoar_peak_mb": zoar_peak, "bare_peak_mb": bare_peak, "buffer_mb": M * d * 8 / 2**20,
            "evals_per_iter": K}


def _subprocess(config: str, d: int, repeats: int) -> dict[str, Any]:
    code = ("import json; from benchmarks.suite_cost import measure; "
            f"print(json.dumps(measure({config!r}, {d}, {repeats})))")
    return json_subprocess(code)  # type: ignore[no-any-return]


def dims(quick: bool) -> list[tuple[int, int]]:
    """(d, timed repeats)."""
    if quick:
        return [(10_000, 10), (100_000, 5)]
    return [(10_000, 50), (100_000, 30), (1_000_000, 15), (10_000_000, 4)]


def _cell(config: str, d: int, repeats: int) -> dict[str, Any]:
    row: dict[str, Any] = {"method": f"ZoAR ({config})", "config": config, "problem": f"d={d}", "d": d,
                           "seed": 0}
    try:
        row.update(_subprocess(config, d, repeats))
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        row["error"] = str(exc)
    return row


def cells(*, quick: bool, seeds: list[int] | None) -> list[Cell]:
    """One cell per (configuration, d); seeds are not used (timings do not depend on them)."""
    return [Cell(f"{config}|{d}|{repeats}", functools.partial(_cell, config, d, repeats))
            for d, repeats in dims(quick) for config in CONFIGS]


def report(rows: list[dict], *, command: str) -> str:
    lines = ["## Estimator overhead per iteration", "", f"```\n{command}\n```", "",
             "One `ZoAR` iteration (`ask` + `tell`, objective excluded) against the bare minimum "
             "(drawing the K x d directions into a preallocated buffer + one (M,) @ (M, d) product), "
             "timed alternately in a fresh process per row, on full-buffer iterations only; float64, "
             "CPU, one torch thread. `defaults`: ZoAR's default options; `paper`: the ZoAR paper's "
             "settings (radazo, constant step, K = 10, N = 5). Median ms per iteration [min, max]; "
             "peak = resident-set peak each side adds.", "",
             "| configuration | d | K | N | M | repeats | ZoAR ms | of which ask | bare ms | of which drawing "
             "| ratio | ZoAR peak MiB | bare peak MiB | buffer 8Md MiB | evaluations/iter |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for config in CONFIGS:
        for r in sorted((r for r in rows if r.get("config") == config), key=lambda r: r["d"]):
            if "ratio" not in r:
                lines.append(f"| {config} | {r['d']:.0e} | error: {r.get('error', 'missing')} |" + " |" * 12)
                continue
            (zlo, zhi), (blo, bhi) = r["zoar_ms_range"], r["bare_ms_range"]
            lines.append(
                f"| {config} | {r['d']:.0e} | {r['K']} | {r['N']} | {r['M']} | {r['repeats']} | "
                f"{r['zoar_ms']:.3g} [{zlo:.3g}, {zhi:.3g}] | {r['ask_ms']:.3g} | "
                f"{r['bare_ms']:.3g} [{blo:.3g}, {bhi:.3g}] | {r['draw_ms']:.3g} | **{r['ratio']:.2f}** | "
                f"{r['zoar_peak_mb']:.0f} | {r['bare_peak_mb']:.0f} | {r['buffer_mb']:.0f} | "
                f"{r['evals_per_iter']} (two-point ZO-SGD: {r['K'] + 1}) |")
    return "\n".join(lines) + "\n"
