r"""ZoVH benchmark: Hessian-error experiment, SciPy solvers fed ZoVH vs finite differences,
``hessp`` cost at large d, and ``zovh`` vs ``zoar`` at equal budgets.

Studies (``study`` field of each row):

- ``hessian-error`` (the ZoVH paper's Hessian-error experiment): quadratic :math:`A = Q\operatorname{diag}(\mathrm{linspace}(1, 10, d))Q^T`,
  Rosenbrock (:math:`\alpha = 10`), Styblinski-Tang; :math:`K = 3`, :math:`\mu = 0.1`;
  per seed a start uniform in the ball of radius 100, then 24 points of normalized
  gradient descent (step 1e-4); estimator seed ``k`` at point ``k``; additive noise
  :math:`f(\theta) + \xi^T\theta`, :math:`\xi \sim N(0, 0.001^2 I)`, the same noise stream
  for every method. Mean :math:`\|\hat H - \nabla^2 f\|_F` over the 24 points, at EQUAL
  budgets of 3 evaluations per point: CD and S3 (1 pair + f(x)), S2 (2 + f(x)), S1 (3),
  ZoVH (3), ZoVH-reuse (3 new per point, the newest 5 rounds = 15 stored queries reused,
  never re-evaluated). The paper's seed list is elided ("42, 123, 234, ..., 2830"); we use
  42 and then 123 + 111 k. The functions are the registry's
  (:data:`benchmarks._problems.DERIVATIVE_PROBLEMS`), the classical estimators
  :mod:`benchmarks.hessian_baselines`.
- ``solvers``: each SciPy method with a curvature hook, fed :class:`zo_scipy.ZoVHCurvature`
  (``hooks(method)``) or finite differences (central-difference gradient, 2d evaluations;
  ``hess=BFGS()`` where the method takes a ``HessianUpdateStrategy``, else a
  forward-difference Jacobian of that gradient, 2d(d+1) evaluations); total evaluations
  to convergence on a Rosenbrock and an ill-conditioned quadratic.
- ``hessp-cost``: seconds per ``hessp`` call and the model's bytes at large d.
- ``methods``: ``zovh`` (defaults, and the authors' ``lam=0.1``) against ``zoar``
  (defaults) at equal evaluation budgets and equal step-size rules.
"""
from __future__ import annotations

import functools
import math
import time
from typing import Any

import numpy as np
import torch
from scipy.optimize import BFGS, minimize

from zo_scipy.core.directions import make_generator, sample_directions
from zo_scipy.core.hessian import LowRankHessian, zovh_hessian
from zo_scipy.core.history import QueryHistory

from . import _problems as P
from ._harness import Cell
from .hessian_baselines import classical_budget_split, classical_hessian

NAME = "hessian"
DESCRIPTION = ("ZoVH: Hessian error at equal budgets (the ZoVH paper's experiment), SciPy solvers fed ZoVH vs finite "
               "differences, hessp cost at large d, zovh vs zoar")

F64 = torch.float64
METHODS = ("CD", "S1", "S2", "S3", "ZoVH", "ZoVH-reuse")
K, MU, NPOINTS, STEP, NOISE, REUSE_ROUNDS = 3, 0.1, 24, 1e-4, 1e-3, 5


def paper_seeds(n: int) -> list[int]:
    return [42] + [123 + 111 * k for k in range(n - 1)]


def _points(fn: Any, d: int, seed: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(d, generator=g, dtype=F64)
    r = 100 * float(torch.rand(1, generator=g, dtype=F64)) ** (1 / d)
    x = z / z.norm() * r
    pts = [x]
    for _ in range(NPOINTS - 1):
        gr = fn.grad(x)
        x = x - STEP * gr / gr.norm().clamp_min(1e-300)
        pts.append(x)
    return pts


def hessian_error_cell(fn: Any, d: int, seed: int) -> dict[str, float]:
    """Mean Frobenius error of every estimator over the 24 points of one seed."""
    pts = _points(fn, d, seed)
    noise = torch.Generator().manual_seed(10_000 + seed)

    def f(X: torch.Tensor, x_noise: torch.Generator) -> torch.Tensor:
        xi = NOISE * torch.randn(X.shape, generator=x_noise, dtype=F64)
        return fn.value(X) + (xi * X).sum(-1)

    errs: dict[str, list[float]] = {m: [] for m in METHODS}
    hist = QueryHistory(REUSE_ROUNDS * K, d, dtype=F64, device="cpu")
    for k, x in enumerate(pts):
        H = fn.hessian(x)
        gen = make_generator(k)
        # one noise stream per point, replayed identically for every method
        state = noise.get_state()

        def fresh() -> torch.Generator:
            gg = torch.Generator()
            gg.set_state(state)
            return gg

        for m in ("CD", "S1", "S2", "S3"):
            n = classical_budget_split(m.lower(), K)
            gm = make_generator(k)
            U = sample_directions(n, d, generator=gm)
            nz = fresh()
            f0 = f(x[None], nz)[0]
            yp = f(x + MU * U, nz)
            ym = f(x - MU * U, nz) if m in ("CD", "S3") else None
            est = classical_hessian(m.lower(), U, MU, y_plus=yp, y_minus=ym, f0=f0)  # type: ignore[arg-type]
            errs[m].append(est.frobenius_error(H))
        U = sample_directions(K, d, generator=gen)
        y = f(x + MU * U, fresh())
        errs["ZoVH"].append(zovh_hessian(U, y, MU).frobenius_error(H))
        hist.append(U, y)
        errs["ZoVH-reuse"].append(zovh_hessian(hist.directions(), hist.values(), MU).frobenius_error(H))
        noise.set_state(state)
        torch.randn(4 * K * d, generator=noise, dtype=F64)  # advance the stream
    return {m: float(np.mean(v)) for m, v in errs.items()}


# -- SciPy solvers fed ZoVH vs finite differences --------------------------------------------
class _Counted:
    def __init__(self, f: Any) -> None:
        self.f, self.n = f, 0

    def __call__(self, x: np.ndarray) -> float:
        self.n += 1
        return float(self.f(x))


def _fd_grad(f: _Counted, h: float = 1e-6) -> Any:
    def g(x: np.ndarray) -> np.ndarray:
        out = np.empty_like(x)
        for i in range(x.size):
            e = np.zeros_like(x)
            e[i] = h * max(1.0, abs(x[i]))
            out[i] = (f(x + e) - f(x - e)) / (2 * e[i])
        return out
    return g


def _fd_hess(grad: Any, h: float = 1e-5) -> Any:
    def H(x: np.ndarray) -> np.ndarray:
        g0 = grad(x)
        cols = []
        for i in range(x.size):
            e = np.zeros_like(x)
            e[i] = h * max(1.0, abs(x[i]))
            cols.append((grad(x + e) - g0) / e[i])
        M = np.array(cols).T
        return (M + M.T) / 2
    return H


def _solver_problems(quick: bool) -> list[tuple[str, Any, Any, np.ndarray]]:
    d_r, d_q = (10, 30) if quick else (20, 100)
    return [P.solver_problem("rosenbrock", d_r), P.solver_problem("quadratic-rotated", d_q)]


def solver_cell(problem: tuple[str, Any, Any, np.ndarray], method: str, feed: str, seed: int) -> dict[str, Any]:
    from zo_scipy import ZoVHCurvature

    name, f, grad, x0 = problem
    fc = _Counted(f)
    t0 = time.perf_counter()
    if feed == "zovh":
        curv = ZoVHCurvature(fc, seed=seed)
        kw = curv.hooks(method)
    else:
        g = _fd_grad(fc)
        # a HessianUpdateStrategy where the method accepts one, else an FD Hessian
        kw = {"jac": g, "hess": BFGS()} if method in ("newton-cg", "trust-ncg", "trust-krylov", "trust-constr") \
            else {"jac": g, "hess": _fd_hess(g)}
    res = minimize(fc, x0, method=method, options={"maxiter": 3000}, **kw)
    return {"study": "solvers", "problem": name, "method": method, "feed": feed, "seed": seed,
            "evals": fc.n, "nit": int(res.nit), "grad_norm": float(np.linalg.norm(grad(res.x))),
            "f": float(res.fun), "seconds": time.perf_counter() - t0}


def hessp_cost_cell(d: int, m: int) -> dict[str, Any]:
    from zo_scipy import ZoVHCurvature

    curv = ZoVHCurvature(lambda X: 0.5 * (X**2).sum(1), vectorized=True, num_queries=m, max_rank=2 * m, seed=0,
                mu=1e-3)
    x = np.ones(d)
    for s in (1.0, 0.9, 0.8):
        curv.grad(x * s)
    p = np.ones(d)
    t0 = time.perf_counter()
    reps = 5
    for _ in range(reps):
        curv.hessp(x * 0.8, p)
    sec = (time.perf_counter() - t0) / reps
    H = curv.model.hessian
    low_rank = isinstance(H, LowRankHessian)
    nbytes = int(H.U.numel() * H.U.element_size()) if low_rank else -1
    return {"study": "hessp-cost", "d": d, "num_queries": m, "rank": int(H.rank_bound) if low_rank else d,
            "seconds_per_hessp": sec, "model_bytes": nbytes, "dense_bytes": 8 * d * d}


#: The ``methods`` study's columns: zoar, zovh at its defaults (the trust-region step at these
#: sizes), and zovh's direction loop with lam "auto" and the authors' 0.1.
METHODS_STUDY: tuple[str, ...] = ("zoar", "zovh", "zovh-direction", "zovh-direction-lam0.1")


def methods_cell(problem: str, method: str, seed: int, budget: int) -> dict[str, Any]:
    from zo_scipy import zoar, zovh

    kind, d = problem.rsplit("-", 1)
    _, f, _, x0 = P.solver_problem("rosenbrock" if kind == "rosenbrock" else "quadratic-diagonal", int(d))
    opts: dict[str, Any] = dict(maxfev=budget, seed=seed)
    fn = zoar
    if method.startswith("zovh"):
        fn = zovh
        if method.startswith("zovh-direction"):
            opts["step"] = "direction"  # the ZoAR loop with the ZoVH direction (lam matters there)
        if method == "zovh-direction-lam0.1":
            opts["lam"] = 0.1
    res = minimize(f, x0, method=fn, options=opts)
    return {"study": "methods", "problem": problem, "method": method, "seed": seed, "budget": budget,
            "f0": float(f(x0)), "best_f": float(res.fun), "nfev": int(res.nfev)}


def _hessian_error_row(cls: Any, d: int, seed: int) -> dict[str, Any]:
    fn = cls(d, seed)
    t0 = time.perf_counter()
    errs = hessian_error_cell(fn, d, seed)
    return {"study": "hessian-error", "problem": fn.name, "d": d, "seed": seed,
            "seconds": time.perf_counter() - t0, **{f"err_{m}": e for m, e in errs.items()}}


def cells(*, quick: bool, seeds: list[int] | None) -> list[Cell]:
    """All four studies. Full: d = 1000 (20 seeds) and 5000 (5 seeds); ``--quick``: d = 200,
    3 seeds, small solver problems, hessp at d = 10^5."""
    out: list[Cell] = []
    hseeds = seeds if seeds is not None else paper_seeds(3 if quick else 20)
    for d in ([200] if quick else [1000, 5000]):
        # d = 5000: 5 seeds (each quadratic draws its own 5000 x 5000 rotation)
        for cls in P.DERIVATIVE_PROBLEMS:
            for s in (hseeds if d < 5000 else hseeds[:5]):
                out.append(Cell(f"hessian-error|{cls.name}|{d}|{s}", functools.partial(_hessian_error_row, cls, d, s)))
    sseeds = (seeds or [0])[:1] if quick else (seeds or [0, 1, 2])
    for prob in _solver_problems(quick):
        for method in ("trust-ncg", "trust-krylov", "trust-exact", "trust-constr", "newton-cg", "dogleg"):
            for feed in ("zovh", "fd"):
                for s in (sseeds if feed == "zovh" else sseeds[:1]):
                    out.append(Cell(f"solvers|{prob[0]}|{method}|{feed}|{s}",
                                    functools.partial(solver_cell, prob, method, feed, s)))
    for d in ([10**5] if quick else [10**5, 10**6]):
        out.append(Cell(f"hessp-cost|{d}|8", functools.partial(hessp_cost_cell, d, 8)))
    budget = 5000 if quick else 20000
    for prob in (["rosenbrock-10", "quadratic-20"] if quick else ["rosenbrock-20", "quadratic-50"]):
        for method in METHODS_STUDY:
            for s in sseeds:
                out.append(Cell(f"methods|{prob}|{method}|{s}|{budget}",
                                functools.partial(methods_cell, prob, method, s, budget)))
    return out


def _fmt(x: float) -> str:
    return f"{x:.3g}" if math.isfinite(x) else str(x)


def report(rows: list[dict[str, Any]], *, command: str) -> str:
    """Markdown section headed by ``command``."""
    lines = ["## ZoVH: Hessian error, solvers, hessp cost, zovh vs zoar", "", f"```\n{command}\n```", ""]
    if any(r.get("study") == "hessian-error" and r["d"] < 1000 for r in rows):
        lines += ["_Quick (CI-size) form: small d, few seeds; not the published figures._", ""]
    he = [r for r in rows if r.get("study") == "hessian-error"]
    if he:
        lines += ["### Mean Frobenius error of the Hessian estimate at 3 evaluations per point", "",
                  "| function | d | seeds | " + " | ".join(METHODS) + " |",
                  "|---|---|---|" + "---|" * len(METHODS)]
        for key in sorted({(r["problem"], r["d"]) for r in he}):
            rs = [r for r in he if (r["problem"], r["d"]) == key]
            means = [float(np.mean([r[f"err_{m}"] for r in rs])) for m in METHODS]
            lines.append(f"| {key[0]} | {key[1]} | {len(rs)} | " + " | ".join(_fmt(x) for x in means) + " |")
        lines.append("")
    sv = [r for r in rows if r.get("study") == "solvers"]
    if sv:
        lines += ["### SciPy solvers: evaluations to convergence, ZoVH hooks vs finite differences", "",
                  "Evaluations count every call of f (the solver's and the derivative estimates'); "
                  "median over seeds for ZoVH.", "",
                  "| problem | method | ZoVH evals | ZoVH final grad norm | FD evals | FD final grad norm |",
                  "|---|---|---|---|---|---|"]
        for key in sorted({(r["problem"], r["method"]) for r in sv}):
            z = [r for r in sv if (r["problem"], r["method"]) == key and r["feed"] == "zovh"]
            f = [r for r in sv if (r["problem"], r["method"]) == key and r["feed"] == "fd"]
            ze = int(np.median([r["evals"] for r in z])) if z else -1
            zg = float(np.median([r["grad_norm"] for r in z])) if z else math.nan
            lines.append(f"| {key[0]} | {key[1]} | {ze} | {_fmt(zg)} | "
                         f"{f[0]['evals'] if f else '-'} | {_fmt(f[0]['grad_norm']) if f else '-'} |")
        lines.append("")
    hc = [r for r in rows if r.get("study") == "hessp-cost"]
    if hc:
        lines += ["### hessp cost at large d (num_queries = 8, rank cap 16)", "",
                  "| d | model rank | seconds per hessp | model bytes | dense d x d bytes |", "|---|---|---|---|---|"]
        for r in hc:
            lines.append(f"| {r['d']} | {r['rank']} | {r['seconds_per_hessp']:.4f} | {r['model_bytes']:.3g} | "
                         f"{r['dense_bytes']:.3g} |")
        lines.append("")
    me = [r for r in rows if r.get("study") == "methods"]
    if me:
        lines += ["### zovh vs zoar at equal evaluation budgets (defaults; same step-size rule)", "",
                  "| problem | budget | f(x0) | zoar | zovh (defaults: trust-region step) | "
                  "zovh step=direction (lam auto) | zovh step=direction (lam = 0.1) |", "|---|---|---|---|---|---|---|"]
        for prob in sorted({r["problem"] for r in me}):
            rs = [r for r in me if r["problem"] == prob]
            med = {m: float(np.median([r["best_f"] for r in rs if r["method"] == m] or [math.nan]))
                   for m in METHODS_STUDY}
            lines.append(f"| {prob} | {rs[0]['budget']} | {_fmt(rs[0]['f0'])} | "
                         + " | ".join(_fmt(med[m]) for m in METHODS_STUDY) + " |")
        lines.append("")
    return "\n".join(lines)
