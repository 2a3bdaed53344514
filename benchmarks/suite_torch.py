r"""Suite ``torch``: :mod:`zo_scipy.torch` against MeZO-style SPSA and backprop (``docs/torch.md``).

Three benchmarks, each cell one (benchmark, method, seed) or one memory/timing row:

1. ``logreg``: L2-regularised logistic regression on scikit-learn's ``load_breast_cancer``
   (standardised, 31 parameters, :math:`\tfrac{\alpha}{2}|w|^2`, :math:`\alpha = 10^{-2}`; the
   optimum by SciPy's L-BFGS-B to ``gtol=1e-12``): suboptimality vs forward passes.
2. ``digits``: MLP 64-64-10 (4810 parameters, tanh) on ``load_digits`` (fixed split 1437/360,
   ``random_state=0``), full-batch cross-entropy: test accuracy vs forward passes and wall time;
   ``digits-acc``: the same model trained on training accuracy itself (non-differentiable).
3. ``memory``: teacher-student MLPs of four square layers at about 1e5, 1e6, 1e7 parameters
   (the largest tensor a quarter of them), batch 64 (and one larger batch at 1e7), one torch
   thread, in a fresh process per row: peak RSS over inference (``VmHWM`` reset through
   ``/proc/self/clear_refs``) vs K and N, and step time split into the closure's forward
   passes and direction regeneration.

Peers: ``mezo`` — a seeded two-point SPSA (one query, :math:`(f(\theta+\mu z) - f(\theta-\mu z))/(2\mu)`,
SGD, in-place perturbation as MeZO does, 2 forwards per step;
:func:`zo_scipy.torch._reference.spsa_step`, shared with the demo); ``torchzero`` — the
``torchzero`` package's ``MeZO`` module (its defaults: central differences, Rademacher
directions) with ``LR``, at the same ``lr``/``mu``, its forward passes counted by closure
calls (skipped when it is not installed); ``sgd`` and
``adam`` — backprop (one forward + one backward counted as one forward pass; the ceiling).
Every ZO method runs with the same default ``lr``/``mu`` of :class:`~zo_scipy.torch.ForwardZoAR`.
"""
from __future__ import annotations

import functools
import statistics
import time
from typing import Any

from ._harness import Cell, json_subprocess, single_threaded
from .suite_cost import _proc_kb, _reset_peak

NAME = "torch"
DESCRIPTION = ("zo_scipy.torch ForwardZoAR/ForwardZoVH vs MeZO-style SPSA and backprop: logistic regression, "
               "digits MLP (loss and accuracy), memory and regeneration time at 1e5-1e7 parameters")
ZO_METHODS = ("zoar", "zovh", "mezo", "torchzero")
ALL_METHODS = ZO_METHODS + ("sgd", "adam")
#: Memory rows: 4 square layers of this width (d = 4 w^2 + 4 w: 1e5, 1e6, 1e7).
FULL = {"logreg": 6000, "digits": 16000, "seeds": [0, 1, 2, 3, 4], "widths": [158, 500, 1581],
        "kn": [(2, 0), (8, 0), (4, 2), (4, 8)], "repeats": 3, "big_batch": 1024}
QUICK = {"logreg": 300, "digits": 400, "seeds": [0], "widths": [48], "kn": [(2, 0), (4, 2)], "repeats": 1,
         "big_batch": 256}
DEPTH = 4


# -- problems ---------------------------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def _logreg_data() -> tuple[Any, Any, float]:
    import numpy as np
    import torch
    from scipy.optimize import minimize
    from sklearn.datasets import load_breast_cancer

    X, y = load_breast_cancer(return_X_y=True)
    X = (X - X.mean(0)) / X.std(0)
    Xb = np.hstack([X, np.ones((X.shape[0], 1))])

    def f(w: Any) -> tuple[float, Any]:
        z = Xb @ w
        loss = np.mean(np.logaddexp(0, z) - y * z) + 0.5 * ALPHA * w[:-1] @ w[:-1]
        grad = Xb.T @ (1 / (1 + np.exp(-z)) - y) / len(y) + ALPHA * np.r_[w[:-1], 0.0]
        return float(loss), grad

    res = minimize(f, np.zeros(Xb.shape[1]), jac=True, method="L-BFGS-B", options={"gtol": 1e-12, "maxiter": 10000})
    return torch.tensor(X, dtype=torch.float32), torch.tensor(y, dtype=torch.float32), float(res.fun)


ALPHA = 1e-2


@functools.lru_cache(maxsize=None)
def _digits_data() -> tuple[Any, Any, Any, Any]:
    import torch
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X / 16.0, y, test_size=360, random_state=0, stratify=y)
    t = functools.partial(torch.tensor, dtype=torch.float32)
    return t(Xtr), torch.tensor(ytr), t(Xte), torch.tensor(yte)


def _logreg_module() -> Any:
    import torch
    from torch import nn

    class LogReg(nn.Module):
        """Logits and the L2 penalty from one forward (the penalty must see the perturbed weight)."""

        def __init__(self) -> None:
            super().__init__()
            self.weight = nn.Parameter(torch.zeros(30))
            self.bias = nn.Parameter(torch.zeros(()))

        def forward(self, X: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            return X @ self.weight + self.bias, 0.5 * ALPHA * self.weight.pow(2).sum()

    return LogReg()


def _model(bench: str, seed: int) -> Any:
    import torch
    from torch import nn

    torch.manual_seed(seed)  # initial weights only; the optimizers never touch the global RNG
    if bench == "logreg":
        return _logreg_module()
    return nn.Sequential(nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 10))


def _objective(bench: str, model: Any) -> tuple[Any, Any]:
    """(loss closure, score(): the reported quantity)."""
    import torch
    import torch.nn.functional as F

    if bench == "logreg":
        X, y, fstar = _logreg_data()

        def loss() -> Any:
            z, penalty = model(X)
            return F.binary_cross_entropy_with_logits(z, y) + penalty

        def score() -> float:
            with torch.no_grad():
                return float(loss()) - fstar
        return loss, score
    Xtr, ytr, Xte, yte = _digits_data()

    def test_acc() -> float:
        with torch.no_grad():
            return float((model(Xte).argmax(1) == yte).float().mean())
    if bench == "digits-acc":
        return (lambda: 1.0 - (model(Xtr).argmax(1) == ytr).float().mean()), test_acc
    return (lambda: F.cross_entropy(model(Xtr), ytr)), test_acc


def checkpoints(budget: int, n: int = 24) -> list[int]:
    import numpy as np

    return sorted({int(v) for v in np.geomspace(10, budget, n).round()})


def run_cell(bench: str, method: str, seed: int, budget: int) -> dict[str, Any]:
    """Train with ``method`` for ``budget`` forward passes; the score at checkpoints."""
    import torch

    from zo_scipy.torch import ForwardZoAR, ForwardZoVH
    from zo_scipy.torch._reference import spsa_step

    model = _model(bench, seed)
    loss, score = _objective(bench, model)
    grid = checkpoints(budget)
    trace: list[list[float]] = []
    nf, t_opt = 0, 0.0
    opt: Any = None
    if method in ("zoar", "zovh"):
        opt = (ForwardZoAR if method == "zoar" else ForwardZoVH)(model, seed=seed)
        per = opt.options.num_queries
    elif method == "sgd":
        opt, per = torch.optim.SGD(model.parameters(), lr=0.1), 1
    elif method == "adam":
        opt, per = torch.optim.Adam(model.parameters(), lr=1e-3), 1
    elif method in ("mezo", "torchzero"):
        per, step_no = 2, 0
        defaults = ForwardZoAR(model, seed=0)
        lr, mu = defaults.defaults["lr"], defaults.defaults["mu"]
        defaults.remove_hooks()
        if method == "torchzero":
            try:
                import torchzero as tz
            except ImportError:
                return {"bench": bench, "method": method, "seed": seed, "budget": budget,
                        "skipped": "torchzero is not installed (pip install torchzero)"}
            torch.manual_seed(seed)  # torchzero draws its directions from the global RNG
            opt = tz.Optimizer(model.parameters(), tz.m.MeZO(h=mu), tz.m.LR(lr))
            calls = [0]
            plain = loss

            def counted(backward: bool = True) -> Any:
                calls[0] += 1
                with torch.no_grad():
                    return plain()
    else:
        raise ValueError(f"unknown method {method!r}")
    with single_threaded():
        while nf < budget:
            t0 = time.perf_counter()
            if method in ("zoar", "zovh"):
                opt.step(loss)
            elif method == "mezo":
                spsa_step(list(model.parameters()), loss, lr, mu, seed * 1_000_003 + step_no)
                step_no += 1
            elif method == "torchzero":
                before = calls[0]
                opt.step(counted)
                per = calls[0] - before  # forward passes it asked for this step
            else:
                opt.zero_grad()
                loss().backward()
                opt.step()
            t_opt += time.perf_counter() - t0
            nf += per
            while grid and nf >= grid[0]:
                trace.append([grid.pop(0), score(), round(t_opt, 4)])
    return {"bench": bench, "method": method, "seed": seed, "budget": budget, "nfev": nf,
            "final": score(), "seconds": round(t_opt, 3), "curve": trace}


# -- memory and regeneration time -------------------------------------------------------------------
def measure_memory(width: int, method: str, K: int, N: int, repeats: int, batch: int = 64) -> dict[str, Any]:
    """Peak RSS over inference and time split of ``repeats`` steps (run in a fresh process)."""
    import torch
    from torch import nn

    from zo_scipy.torch import ForwardZoAR, ForwardZoVH

    torch.set_num_threads(1)
    torch.manual_seed(0)
    def mlp() -> nn.Module:
        layers: list[nn.Module] = []
        for _ in range(DEPTH):
            layers += [nn.Linear(width, width), nn.Tanh()]
        return nn.Sequential(*layers[:-1])

    with torch.no_grad():
        teacher, student = mlp(), mlp()
        X = torch.randn(batch, width)
        Y = teacher(X)
    del teacher
    d = sum(p.numel() for p in student.parameters())
    largest = max(p.numel() for p in student.parameters()) * 4 / 2**20

    def loss() -> Any:
        return (student(X) - Y).pow(2).mean()

    with torch.no_grad():
        loss()
    _reset_peak()
    base = _proc_kb("VmRSS")
    with torch.no_grad():
        for _ in range(2):
            loss()
    infer = _proc_kb("VmHWM") - base
    timings: dict[str, list[float]] = {"step": [], "regen": []}
    if method == "backprop":
        opt: Any = torch.optim.SGD(student.parameters(), lr=1e-3)
        for i in range(repeats + 1):
            t0 = time.perf_counter()
            opt.zero_grad()  # frees the gradients
            if i == 1:  # after a warm-up step (autograd's first-call allocations)
                _reset_peak()
                base = _proc_kb("VmRSS")
            loss().backward()
            opt.step()
            timings["step"].append(time.perf_counter() - t0)
            timings["regen"].append(0.0)
    else:
        opt = (ForwardZoAR if method == "zoar" else ForwardZoVH)(student, num_queries=K, num_histories=N, seed=0)
        draw = opt._streams.draw
        spent = [0.0]

        def timed(*a: Any, **k: Any) -> Any:
            t = time.perf_counter()
            out = draw(*a, **k)
            spent[0] += time.perf_counter() - t
            return out

        opt._streams.draw = timed
        for i in range(N + 1 + repeats):  # fill the buffer, then time
            if i == N + 1:
                _reset_peak()
                base = _proc_kb("VmRSS")
            spent[0] = 0.0
            t0 = time.perf_counter()
            opt.step(loss)
            timings["step"].append(time.perf_counter() - t0)
            timings["regen"].append(spent[0])
    peak = _proc_kb("VmHWM") - base
    step = statistics.median(timings["step"][-repeats:])
    regen = statistics.median(timings["regen"][-repeats:])
    return {"width": width, "d": d, "method": method, "K": K, "N": N, "batch": batch, "largest_mb": largest,
            "params_mb": d * 4 / 2**20, "inference_mb": infer, "peak_mb": peak,
            "extra_mb": peak - infer, "step_ms": 1e3 * step, "regen_ms": 1e3 * regen,
            "forward_ms": 1e3 * (step - regen), "regen_share": regen / step if step else float("nan"),
            "regenerations_per_step": 0 if method == "backprop" else K + (N + 1) * K}


def memory_subprocess(width: int, method: str, K: int, N: int, repeats: int, batch: int = 64) -> dict[str, Any]:
    code = ("import json; from benchmarks.suite_torch import measure_memory; "
            f"print(json.dumps(measure_memory({width}, {method!r}, {K}, {N}, {repeats}, {batch})))")
    # a fixed mmap threshold: freed large blocks go back to the OS, so the peak is what was live
    return json_subprocess(code, env={"MALLOC_MMAP_THRESHOLD_": "65536"})  # type: ignore[no-any-return]


def _memory_cell(width: int, method: str, K: int, N: int, repeats: int, batch: int = 64) -> dict[str, Any]:
    row: dict[str, Any] = {"bench": "memory", "method": method, "width": width, "K": K, "N": N, "seed": 0}
    row.update(memory_subprocess(width, method, K, N, repeats, batch))
    return row


def cells(*, quick: bool, seeds: list[int] | None) -> list[Cell]:
    cfg = QUICK if quick else FULL
    seeds = cfg["seeds"] if seeds is None else seeds
    out = [Cell(f"{bench}|{m}|{s}|{cfg['logreg' if bench == 'logreg' else 'digits']}",
                functools.partial(run_cell, bench, m, s, cfg["logreg" if bench == "logreg" else "digits"]))
           for bench in ("logreg", "digits", "digits-acc") for m in ALL_METHODS for s in seeds
           if not (bench == "digits-acc" and m in ("sgd", "adam"))]
    for w in cfg["widths"]:
        out.append(Cell(f"memory|backprop|{w}", functools.partial(_memory_cell, w, "backprop", 0, 0, cfg["repeats"])))
        for K, N in cfg["kn"]:
            for m in ("zoar", "zovh"):
                if m == "zovh" and w > 500 and (N + 1) * K > 8:
                    continue  # the M directions of a 2.5e6-entry tensor: kept off this 2-core machine
                out.append(Cell(f"memory|{m}|{w}|{K}|{N}",
                                functools.partial(_memory_cell, w, m, K, N, cfg["repeats"])))
    # the regeneration share falls as the forward pass grows: the largest model at a larger batch
    w, b = cfg["widths"][-1], cfg["big_batch"]
    for m, K in (("backprop", 0), ("zoar", 4)):
        out.append(Cell(f"memory|{m}|{w}|{K}|0|b{b}", functools.partial(_memory_cell, w, m, K, 0, cfg["repeats"], b)))
    return out


# -- report -----------------------------------------------------------------------------------
def _med(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _at(trace: list[list[float]], n: int) -> float:
    vals = [v for f, v, _ in trace if f <= n]
    return vals[-1] if vals else float("nan")


def first_reaching(trace: list[list[float]], target: float, *, higher: bool) -> float:
    """Forward passes at which the score first reaches ``target`` (inf if never)."""
    for f, v, _ in trace:
        if (v >= target) if higher else (v <= target):
            return f
    return float("inf")


def report(rows: list[dict], *, command: str) -> str:
    lines = ["## zo_scipy.torch: forward-only training", "", f"```\n{command}\n```", ""]
    for bench, label, higher in (("logreg", "suboptimality f - f*", False), ("digits", "test accuracy", True),
                                 ("digits-acc", "test accuracy (trained on accuracy)", True)):
        rs = [r for r in rows if r.get("bench") == bench and "curve" in r]
        if not rs:
            continue
        budget = max(r["budget"] for r in rs)
        marks = [m for m in (budget // 10, budget // 2, budget) if m > 0]
        lines += [f"### {bench}: {label} vs forward passes (median over {len({r['seed'] for r in rs})} seeds)", "",
                  "| method | " + " | ".join(f"at {m}" for m in marks) + " | wall s | forwards to reach MeZO's final |",
                  "|---|" + "---|" * (len(marks) + 2)]
        mezo_final = _med([r["final"] for r in rs if r["method"] == "mezo"])
        for m in ALL_METHODS:
            mr = [r for r in rs if r["method"] == m]
            if not mr:
                continue
            reach = _med([first_reaching(r["curve"], mezo_final, higher=higher) for r in mr])
            cells_ = " | ".join(f"{_med([_at(r['curve'], k) for r in mr]):.4g}" for k in marks)
            lines.append(f"| {m} | {cells_} | {_med([r['seconds'] for r in mr]):.3g} | {reach:.4g} |")
        lines.append("")
    mem = [r for r in rows if r.get("bench") == "memory" and "peak_mb" in r]
    if mem:
        lines += [f"### memory: peak RSS over inference and step time ({DEPTH} square layers, one thread)", "",
                  "| d | method | K | N | batch | largest tensor MiB | params MiB | extra over inference MiB | "
                  "step ms | forwards ms | regeneration ms | regeneration share |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in sorted(mem, key=lambda r: (r["d"], r.get("batch", 64), r["method"], r["K"], r["N"])):
            lines.append(f"| {r['d']:.2e} | {r['method']} | {r['K']} | {r['N']} | {r.get('batch', 64)} | "
                         f"{r['largest_mb']:.1f} | "
                         f"{r['params_mb']:.1f} | {r['extra_mb']:.1f} | {r['step_ms']:.4g} | {r['forward_ms']:.4g} | "
                         f"{r['regen_ms']:.4g} | {r['regen_share']:.0%} |")
        lines.append("")
    return "\n".join(lines) + "\n"
