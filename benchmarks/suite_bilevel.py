r"""Suite ``bilevel``: implicit hypergradients from values (:mod:`zo_scipy.bilevel`) against the closed form
and against black-box and evolution-strategies peers at equal evaluations.

Problems (all data ships with scikit-learn or is generated):

- ``ridge``: per-feature ridge on ``load_diabetes`` (:class:`zo_scipy.bilevel.problems.PerFeatureRidge`,
  ``p = q = 10``), closed-form :math:`\nabla F`; outer box ``[-8, 8]^{10}`` on :math:`x = \log\lambda`.
- ``quadratic``: a benchopt-style bilevel quadratic (inner dimension 100, outer 10; inner Hessian
  spectrum in ``[mu_inner, L_inner] = [0.1, 1]``, cross terms of norm ``L_cross = 0.1``), closed-form
  :math:`y^*`, :math:`\nabla F` and :math:`F` (:class:`BenchoptQuadratic`).

Cells:

- ``accuracy``: at 10 random outer points per problem (ridge, quadratic, and the logistic problem below) (one per seed, :math:`y = y^*(x)`), cosine and relative
  error of each estimator against the closed form, its evaluations (upper + lower) and the coverage of
  the reported standard error (share of coordinates with :math:`|err| \le 2\,\mathrm{stderr}`). Estimators:
  the default (four-point mixed difference, second-difference regression :math:`H_{yy}`), the four-point
  estimate with a ZoVH :math:`H_{yy}` of ``M`` joint queries, the joint-query block estimate of ``M`` queries,
  and a PZOBO-style ES estimate (below).
- ``outer`` (ridge, 10 seeds, 20 000 evaluations; and per-feature L2 logistic regression on ``load_breast_cancer``,
  :class:`zo_scipy.bilevel.problems.PerFeatureLogistic`, box ``[-5, 5]^{30}``, 3 seeds, 100 000 evaluations): best :math:`F` against evaluations for :func:`zo_scipy.bilevel.minimize` (L-BFGS-B
  and Adam outer), Optuna TPE on :math:`F` (``suggest_float`` in the box), :func:`zo_scipy.zoar` on
  :math:`F`, and L-BFGS-B on the exact hypergradient (the ceiling). Suboptimality against the exact
  L-BFGS-B optimum (gtol 1e-10).

Equal-evaluation accounting. Every peer that needs :math:`F(x)` must solve the inner problem from values:
it is charged ``inner_cost = q(q+1) + 1 + 2q + 4`` lower evaluations (a second-difference Hessian, one
Newton step, one verifying gradient: what :func:`zo_scipy.bilevel.hypergradient` spends, and exact on these
quadratic inner problems) plus one upper evaluation per :math:`F`; the exact value is then used. The
ceiling is charged the same per :math:`(F, \nabla F)`. The PZOBO-style peer (Sow, Ji & Liang 2022) is the
partial-ZO Jacobian estimate :math:`\nabla_x f + \frac1Q\sum_j u_j\,[(y_T(x+\mu u_j) - y^*(x))/\mu]^T\nabla_y f`
with :math:`y_T` ``T = 10`` gradient steps (step :math:`1/L`) warm-started at :math:`y^*(x)`, given *exact*
inner gradients but charged ``q + 1`` evaluations each (a forward-difference gradient) and ``p + q + 1`` for
:math:`\nabla f`, :math:`\mu = 0.01`.

- ``outer`` also runs ``zo_scipy.bilevel.minimize(..., reuse_hessian=True)`` (H_yy measured once, then matrix-free
  CG preconditioned by it) on both problems, and the logistic problem on 10 seeds.
- ``diagnosis`` (logistic, 3 seeds): the L-BFGS-B outer loop without a budget, every outer point compared with the
  analytic hypergradient and F; evaluations per point.
- ``hyperclean`` (benchmark 4, :class:`zo_scipy.bilevel.problems.HyperCleaning`, 3 seeds; see
  :func:`run_hyperclean` for the charging of the shared black-box inner solver): ours (matrix-free, with and
  without the CG warm start from the last v), Optuna TPE and zoar on F, Adam on the analytic hypergradient (the
  ceiling); test accuracy, F1 of flagging the corrupted samples (x_i < 0); references (all data, uniform start,
  clean only); ``accuracy|hyperclean``: the hypergradient estimators against the analytic one at 3 random points.
  The Adam step 0.3 was the first value tried, on the exact method, and is shared by ours and the ceiling.

``--quick``: one seed, small budgets (hyper-cleaning on 120 training samples).
"""
from __future__ import annotations

import functools
import math
import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._harness import Cell, single_threaded

NAME = "bilevel"
DESCRIPTION = "zo_scipy.bilevel hypergradients vs closed form, PZOBO-style ES, TPE and zoar on F"

BOX = 8.0


@dataclass
class BenchoptQuadratic:
    """Full-batch benchopt-style bilevel quadratic (inner 100, outer 10)."""

    q: int = 100
    p: int = 10
    seed: int = 0
    mu_inner: float = 0.1
    L_inner: float = 1.0
    L_cross: float = 0.1

    def __post_init__(self) -> None:
        rng = np.random.default_rng([self.seed, 2442])

        def spd(d: int, lo: float, hi: float) -> np.ndarray:
            Q, _ = np.linalg.qr(rng.standard_normal((d, d)))
            return Q @ np.diag(rng.uniform(lo, hi, d)) @ Q.T

        def cross() -> np.ndarray:
            C = rng.standard_normal((self.p, self.q))
            return self.L_cross * C / np.linalg.norm(C, 2)

        self.Ai, self.Bi, self.Ci = spd(self.q, self.mu_inner, self.L_inner), spd(self.p, 0.1, 1.0), cross()
        self.ai, self.bi = rng.standard_normal(self.q), rng.standard_normal(self.p)
        self.Ao, self.Bo, self.Co = spd(self.q, 0.1, 1.0), spd(self.p, 0.1, 1.0), cross()
        self.ao, self.bo = rng.standard_normal(self.q), rng.standard_normal(self.p)
        self.L = float(np.linalg.eigvalsh(self.Ai).max())

    @staticmethod
    def _quad(x: np.ndarray, y: np.ndarray, A: np.ndarray, B: np.ndarray, C: np.ndarray, a: np.ndarray,
              b: np.ndarray) -> Any:
        out = (0.5 * ((y @ A) * y).sum(-1) + 0.5 * ((x @ B) * x).sum(-1) + ((x @ C) * y).sum(-1)
               + y @ a + x @ b)
        return out if np.ndim(out) else float(out)

    def lower(self, x: np.ndarray, y: np.ndarray) -> Any:
        return self._quad(x, y, self.Ai, self.Bi, self.Ci, self.ai, self.bi)

    def upper(self, x: np.ndarray, y: np.ndarray) -> Any:
        return self._quad(x, y, self.Ao, self.Bo, self.Co, self.ao, self.bo)

    def grad_y_lower(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return self.Ai @ y + self.Ci.T @ x + self.ai

    def grads_upper(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.Bo @ x + self.Co @ y + self.bo, self.Ao @ y + self.Co.T @ x + self.ao

    def y_star(self, x: np.ndarray) -> np.ndarray:
        return -np.linalg.solve(self.Ai, self.Ci.T @ x + self.ai)

    def value(self, x: np.ndarray) -> float:
        return float(self.upper(x, self.y_star(x)))

    def hypergradient(self, x: np.ndarray) -> np.ndarray:
        gx, gy = self.grads_upper(x, self.y_star(x))
        return gx - self.Ci @ np.linalg.solve(self.Ai, gy)


class _Ridge:
    """Per-feature ridge with the gradients the PZOBO-style peer is given."""

    def __init__(self) -> None:
        from zo_scipy.bilevel.problems import PerFeatureRidge

        self.pr = PerFeatureRidge()
        self.p = self.q = self.pr.p
        self.lower, self.upper = self.pr.lower, self.pr.upper
        self.y_star, self.value, self.hypergradient = self.pr.y_star, self.pr.value, self.pr.hypergradient

    def grad_y_lower(self, x: np.ndarray, w: np.ndarray) -> np.ndarray:
        return self.pr.gram @ w - self.pr.xty + np.exp(x) * w

    def grads_upper(self, x: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pr = self.pr
        return np.zeros(self.p), pr.Xva.T @ (pr.Xva @ w - pr.tva) / pr.nv

    def lipschitz(self, x: np.ndarray) -> float:
        return float(np.linalg.eigvalsh(self.pr.gram + np.diag(np.exp(x))).max())


@functools.lru_cache(maxsize=4)
def problem(name: str) -> Any:
    if name == "logistic":
        from zo_scipy.bilevel.problems import PerFeatureLogistic

        return PerFeatureLogistic()
    return _Ridge() if name == "ridge" else BenchoptQuadratic()


def box(name: str) -> float:
    """Half-width of the outer box on the log penalties."""
    return 5.0 if name == "logistic" else BOX


def outer_point(name: str, seed: int) -> np.ndarray:
    rng = np.random.default_rng([seed, 17])
    prob = problem(name)
    return rng.uniform(-2, 2, prob.p) if name == "ridge" else rng.standard_normal(prob.p)


def inner_cost(q: int) -> int:
    """Lower evaluations a peer is charged per inner solve (see the module docstring)."""
    return q * (q + 1) + 1 + 2 * q + 4


def pzobo_estimate(prob: Any, x: np.ndarray, Q: int, seed: int, *, T: int = 10, mu: float = 0.01
                   ) -> tuple[np.ndarray, int]:
    """The PZOBO-style ES hypergradient and the evaluations it is charged."""
    rng = np.random.default_rng([seed, 99])
    ys = prob.y_star(x)
    gx, gy = prob.grads_upper(x, ys)
    total = np.zeros(prob.p)
    for _ in range(Q):
        u = rng.standard_normal(prob.p)
        xp = x + mu * u
        L = prob.lipschitz(xp) if hasattr(prob, "lipschitz") else prob.L
        y = ys.copy()
        for _ in range(T):
            y = y - prob.grad_y_lower(xp, y) / L
        total += u * (((y - ys) / mu) @ gy)
    return gx + total / Q, Q * T * (prob.q + 1) + prob.p + prob.q + 1


def estimators(name: str, quick: bool) -> list[tuple[str, dict[str, Any]]]:
    if name == "ridge":
        ms, qs = ([200, 1000] if quick else [200, 1000, 5000, 20000]), ([5] if quick else [2, 5, 10, 20])
    elif name == "logistic":
        ms, qs = [2000, 10000], [5, 20]
    else:
        ms, qs = ([2000] if quick else [2000, 10000, 50000]), ([5] if quick else [5, 10, 20])
    out: list[tuple[str, dict[str, Any]]] = [("default (four-point, regression H_yy)", {}),
                                             ("default + bias_check (Richardson at mu/2)", {"bias_check": True})]
    if name == "quadratic":
        out.append(("four-point, ZoVH H_yy M=440", {"hessian": "zovh", "num_queries": 440}))
    out += [(f"four-point, ZoVH H_yy M={m}", {"hessian": "zovh", "num_queries": m}) for m in ms]
    out += [(f"block M={m}", {"mixed": "block", "num_queries": m}) for m in ms]
    out += [(f"PZOBO-style ES Q={qq}", {"pzobo": qq}) for qq in qs]
    return out


def run_accuracy(name: str, label: str, opts: dict[str, Any], seed: int) -> dict[str, Any]:
    import zo_scipy.bilevel as zb

    prob = problem(name)
    x = outer_point(name, seed)
    exact = prob.hypergradient(x)
    t0 = time.perf_counter()
    se: np.ndarray | None = None
    bias: np.ndarray | None = None
    with single_threaded():
        if "pzobo" in opts:
            g, nfev = pzobo_estimate(prob, x, int(opts["pzobo"]), seed)
        else:
            r = zb.hypergradient(prob.upper, prob.lower, x, prob.y_star(x), seed=seed, vectorized=True, **opts)
            g, nfev, se = r.grad, r.nfev, r.stderr
            bias = r.bias
    err = g - exact
    row: dict[str, Any] = {
        "kind": "accuracy", "problem": name, "method": label, "seed": seed, "nfev": int(nfev),
        "cosine": float(g @ exact / (np.linalg.norm(g) * np.linalg.norm(exact))),
        "relerr": float(np.linalg.norm(err) / np.linalg.norm(exact)), "seconds": round(time.perf_counter() - t0, 3)}
    if bias is not None:  # the Richardson-extrapolated estimate grad - bias
        row["relerr_extrapolated"] = float(np.linalg.norm(err - bias) / np.linalg.norm(exact))
    if se is not None:
        row["coverage"] = float(np.mean(np.abs(err) <= 2 * se + 1e-12 * np.abs(exact).max()))
    return row


class _Charged:
    """F(x) for a black-box peer: exact value, charged one inner solve plus one upper evaluation."""

    def __init__(self, prob: Any, budget: int, half_width: float = BOX):
        self.prob, self.budget, self.half_width = prob, budget, half_width
        self.cost = inner_cost(prob.q) + 1
        self.nfev = 0
        self.best = math.inf
        self.trace: list[list[float]] = []

    def __call__(self, x: np.ndarray) -> float:
        if self.nfev + self.cost > self.budget:
            raise _Stop
        self.nfev += self.cost
        x = np.clip(np.asarray(x, dtype=np.float64), -self.half_width, self.half_width)
        v = self.prob.value(x)
        if v < self.best:
            self.best = v
        self.trace.append([self.nfev, self.best])
        return v


class _Stop(Exception):
    pass


@functools.lru_cache(maxsize=2)
def exact_optimum(name: str) -> float:
    import scipy.optimize

    prob = problem(name)
    BOX = box(name)  # noqa: N806
    res = scipy.optimize.minimize(prob.value, np.zeros(prob.p), jac=prob.hypergradient, method="L-BFGS-B",
                                  bounds=[(-BOX, BOX)] * prob.p, options={"gtol": 1e-10, "ftol": 1e-15})
    return float(res.fun)


OUTER_METHODS = ("zo_scipy.bilevel L-BFGS-B", "zo_scipy.bilevel Adam (lr 0.5)", "Optuna TPE on F", "zoar on F",
                 "exact hypergradient L-BFGS-B (ceiling)", "zo_scipy.bilevel L-BFGS-B, H_yy reused (preconditioned CG)")


def run_outer(name: str, method: str, budget: int, seed: int) -> dict[str, Any]:
    import scipy.optimize

    BOX = box(name)  # noqa: N806 - the module constant, per problem

    import zo_scipy
    import zo_scipy.bilevel as zb

    prob = problem(name)
    fopt = exact_optimum(name)
    x0 = np.zeros(prob.p)
    t0 = time.perf_counter()
    trace: list[list[float]] = []
    with single_threaded(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if method.startswith("zo_scipy.bilevel"):
            kw: dict[str, Any] = ({"method": "L-BFGS-B"} if "L-BFGS" in method else {"method": "adam", "lr": 0.5})
            if "H_yy reused" in method:
                kw["reuse_hessian"] = True
            if name == "logistic":
                kw["inner_tol_min"] = 1e-6
            res = zb.minimize(prob.upper, prob.lower, x0, np.zeros(prob.q), bounds=[(-BOX, BOX)] * prob.p,
                              maxiter=10_000, maxfev=budget, seed=seed, vectorized=True, **kw)
            best = math.inf
            for row in res.trace:
                best = min(best, prob.value(row["x"]))
                trace.append([row["nfev"], best])
            nfev = res.nfev
        else:
            obj = _Charged(prob, budget, BOX)
            try:
                if method == "Optuna TPE on F":
                    import optuna

                    optuna.logging.set_verbosity(optuna.logging.ERROR)
                    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=seed))
                    study.enqueue_trial({f"x{i}": 0.0 for i in range(prob.p)})
                    study.optimize(lambda t: obj(np.array([t.suggest_float(f"x{i}", -BOX, BOX)
                                                           for i in range(prob.p)])),
                                   n_trials=budget // obj.cost + 1, catch=())
                elif method == "zoar on F":
                    zo_scipy.zoar(obj, x0, bounds=[(-BOX, BOX)] * prob.p, maxfev=budget // obj.cost, seed=seed)
                else:
                    scipy.optimize.minimize(lambda x: (obj(x), prob.hypergradient(np.clip(x, -BOX, BOX))), x0,
                                            jac=True, method="L-BFGS-B", bounds=[(-BOX, BOX)] * prob.p,
                                            options={"maxiter": 10_000, "gtol": 1e-10, "ftol": 1e-15})
            except _Stop:
                pass
            except Exception as exc:  # optuna wraps the objective's exceptions
                if not isinstance(exc.__cause__ or exc.__context__, _Stop) and "_Stop" not in repr(exc):
                    raise
            trace, nfev = obj.trace, obj.nfev
    best = trace[-1][1] if trace else prob.value(x0)
    to1 = next((n for n, b in trace if (b - fopt) / abs(fopt) <= 0.01), None)
    return {"kind": "outer", "problem": name, "method": method, "seed": seed, "budget": budget, "nfev": int(nfev),
            "fopt": fopt, "best": float(best), "subopt": float((best - fopt) / abs(fopt)), "evals_to_1pct": to1,
            "subopt_trace": [[n, (b - fopt) / abs(fopt)] for n, b in trace],
            "seconds": round(time.perf_counter() - t0, 3)}


def run_logistic_diagnosis(seed: int) -> dict[str, Any]:
    """Where the evaluations of :func:`zo_scipy.bilevel.minimize` go on the logistic problem: run to its own
    convergence (no budget), every outer point compared with the analytic hypergradient and F."""
    import scipy.optimize

    import zo_scipy.bilevel as zb

    prob = problem("logistic")
    fopt = exact_optimum("logistic")
    half = box("logistic")
    J = zb.jac(prob.upper, prob.lower, np.zeros(prob.q), seed=seed, vectorized=True, inner_tol_min=1e-6)
    points: list[list[float]] = []
    t0 = time.perf_counter()

    def jac(x: np.ndarray) -> np.ndarray:
        g = J(x)
        exact = prob.hypergradient(x)
        points.append([J.nfev_upper + J.nfev_lower, float(g @ exact / (np.linalg.norm(g) * np.linalg.norm(exact))),
                       float(np.linalg.norm(g - exact) / np.linalg.norm(exact)), abs(J.fun(x) - prob.value(x)),
                       (prob.value(x) - fopt) / abs(fopt)])
        return g

    with single_threaded(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scipy.optimize.minimize(J.fun, np.zeros(prob.p), jac=jac, method="L-BFGS-B", bounds=[(-half, half)] * prob.p,
                                options={"maxiter": 10_000, "gtol": 1e-5})
    P = np.array(points)
    cost = np.diff(np.concatenate([[0.0], P[:, 0]]))
    late = cost[len(cost) // 2:]
    return {"kind": "diagnosis", "problem": "logistic", "seed": seed, "points": len(P), "nfev": int(P[-1, 0]),
            "min_cosine": float(P[:, 1].min()), "median_relerr": float(np.median(P[:, 2])),
            "max_relerr": float(P[:, 2].max()), "max_value_error": float(P[:, 3].max()),
            "median_cost_late": float(np.median(late)), "final_subopt": float(np.minimum.accumulate(P[:, 4])[-1]),
            "seconds": round(time.perf_counter() - t0, 3)}


HC_METHODS = ("zo_scipy.bilevel Adam (matrix-free CG, v reused)", "zo_scipy.bilevel Adam (matrix-free CG, no reuse)",
              "Optuna TPE on F", "zoar on F", "exact hypergradient Adam (ceiling)")
HC_BOX = 6.0
HC_BUDGET = 1_500_000


def hc_options(quick: bool) -> dict[str, Any]:
    """The estimator settings of benchmark 4 (matrix-free: q = 650 puts the regression's q^2 out of reach)."""
    return {"hessian": "products", "cg_tol": 1e-2, "cg_maxiter": 60, "mu": 1e-4}


def run_hyperclean(method: str, budget: int, seed: int, *, n_train: int = 1000) -> dict[str, Any]:
    """Data hyper-cleaning on load_digits (see :class:`zo_scipy.bilevel.problems.HyperCleaning`).

    Every method has the same black-box inner solver (L-BFGS-B on the analytic gradient, warm-started
    at its own last solution), each of its function-and-gradient evaluations charged ``q + 1`` lower
    evaluations (what one forward-difference gradient from values costs); the total is that charge
    plus every upper and lower evaluation, against one budget."""
    from sklearn.metrics import f1_score

    import zo_scipy
    import zo_scipy.bilevel as zb
    from zo_scipy.bilevel.problems import HyperCleaning

    pr = HyperCleaning(n_train=n_train)
    ev = HyperCleaning(n_train=n_train)  # scoring: its own warm starts, nothing charged
    charged = [0]
    q, p = pr.q, pr.p

    def y_star(x: np.ndarray) -> np.ndarray:
        n0 = pr.solver_nfev
        w = pr.y_star(np.clip(x, -HC_BOX, HC_BOX))
        charged[0] += (q + 1) * (pr.solver_nfev - n0)
        return w

    t0 = time.perf_counter()
    trace: list[list[float]] = []
    extra: dict[str, Any] = {}
    best_x = np.zeros(p)
    lr = 0.3
    with single_threaded(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if method.startswith("zo_scipy.bilevel"):
            last = [0]

            def cb(inter: Any) -> None:
                total = int(inter.nfev) + charged[0]
                step = total - last[0]
                last[0] = total
                trace.append([total, float(ev.upper(inter.x, ev.y_star(inter.x)))])
                if total + step > budget:
                    raise StopIteration

            res = zb.minimize(pr.upper, pr.lower, np.zeros(p), np.zeros(q), y_star=y_star, method="adam", lr=lr,
                              bounds=[(-HC_BOX, HC_BOX)] * p, maxiter=10_000, seed=seed, vectorized=True,
                              reuse_v="no reuse" not in method, inner_tol=1e-3, inner_tol_min=1e-3, callback=cb,
                              **hc_options(False))
            best_x = np.asarray(res.x)
            nfev = int(res.nfev) + charged[0]
            extra = {"outer_points": len(res.trace), "cg_iterations": int(res.cg_iterations),
                     "nfev_upper": int(res.nfev_upper), "nfev_lower": int(res.nfev_lower), "charged_inner": charged[0],
                     "inner_solved": bool(res.inner_solved)}
        elif method.startswith("exact"):
            x = np.zeros(p)
            m1, m2 = np.zeros(p), np.zeros(p)
            nfev = 0
            k = 0
            while True:
                c0 = charged[0]
                w = y_star(x)
                nfev = charged[0] + k + 1
                trace.append([nfev, float(pr.upper(x, w))])
                if nfev + (charged[0] - c0) + 1 > budget:
                    break
                k += 1
                g = pr.hypergradient_at(x, w)
                m1, m2 = 0.9 * m1 + 0.1 * g, 0.999 * m2 + 0.001 * g * g
                x = np.clip(x - lr * (m1 / (1 - 0.9 ** k)) / (np.sqrt(m2 / (1 - 0.999 ** k)) + 1e-12), -HC_BOX, HC_BOX)
            best_x = x
            extra = {"outer_points": k + 1}
        else:
            state: dict[str, Any] = {"n": 0, "best": math.inf, "x": np.zeros(p), "last": 0}

            def F(x: np.ndarray) -> float:
                if state["n"] > 0 and charged[0] + state["n"] + state["last"] > budget:
                    raise _Stop  # the next F would (by the last one's cost) pass the budget
                c0 = charged[0]
                w = y_star(np.asarray(x, dtype=np.float64))
                state["n"] += 1
                state["last"] = charged[0] - c0 + 1
                val = float(pr.upper(x, w))
                if val < state["best"]:
                    state["best"], state["x"] = val, np.clip(np.asarray(x, dtype=np.float64), -HC_BOX, HC_BOX)
                trace.append([charged[0] + state["n"], state["best"]])
                return val

            try:
                if method == "Optuna TPE on F":
                    import optuna

                    optuna.logging.set_verbosity(optuna.logging.ERROR)
                    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=seed))
                    study.enqueue_trial({f"x{i}": 0.0 for i in range(p)})
                    study.optimize(lambda t: F(np.array([t.suggest_float(f"x{i}", -HC_BOX, HC_BOX)
                                                         for i in range(p)])), n_trials=10_000, catch=())
                else:
                    zo_scipy.zoar(F, np.zeros(p), bounds=[(-HC_BOX, HC_BOX)] * p, maxfev=10_000, seed=seed)
            except _Stop:
                pass
            except Exception as exc:  # optuna wraps the objective's exceptions
                if not isinstance(exc.__cause__ or exc.__context__, _Stop) and "_Stop" not in repr(exc):
                    raise
            best_x = state["x"]
            nfev = charged[0] + int(state["n"])
            extra = {"evaluations_of_F": int(state["n"])}
    w = ev.y_star(np.clip(best_x, -HC_BOX, HC_BOX))
    flagged = np.asarray(best_x) < 0
    return {"kind": "hyperclean", "method": method, "seed": seed, "budget": budget, "nfev": int(nfev),
            "test_accuracy": ev.accuracy(w), "val_loss": float(ev.upper(best_x, w)),
            "f1": float(f1_score(pr.corrupted, flagged)) if flagged.any() else 0.0,
            "flagged": int(flagged.sum()), "trace": trace, "seconds": round(time.perf_counter() - t0, 3), **extra}


HC_ESTIMATORS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("matrix-free CG, 5 iterations", {"hessian": "products", "cg_tol": 1e-12, "cg_maxiter": 5, "mu": 1e-4}),
    ("matrix-free CG, 10 iterations", {"hessian": "products", "cg_tol": 1e-12, "cg_maxiter": 10, "mu": 1e-4}),
    ("matrix-free CG, 20 iterations", {"hessian": "products", "cg_tol": 1e-12, "cg_maxiter": 20, "mu": 1e-4}),
    ("four-point, ZoVH H_yy M=200", {"hessian": "zovh", "num_queries": 200, "mu": 1e-4}),
    ("four-point, ZoVH H_yy M=2000", {"hessian": "zovh", "num_queries": 2000, "mu": 1e-4}),
)


def run_hyperclean_accuracy(label: str, opts: dict[str, Any], seed: int, *, n_train: int = 1000) -> dict[str, Any]:
    """Hypergradient accuracy on the hyper-cleaning problem at a random x (uniform in [-1, 1]^p, by seed),
    against the analytic hypergradient at the exact inner solution."""
    import zo_scipy.bilevel as zb
    from zo_scipy.bilevel.problems import HyperCleaning

    pr = HyperCleaning(n_train=n_train)
    x = np.random.default_rng([seed, 23]).uniform(-1, 1, pr.p)
    t0 = time.perf_counter()
    with single_threaded(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        w = pr.y_star(x, warm=np.zeros(pr.q))
        exact = pr.hypergradient_at(x, w)
        r = zb.hypergradient(pr.upper, pr.lower, x, w, seed=seed, vectorized=True, **opts)
    return {"kind": "accuracy", "problem": "hyperclean", "method": label, "seed": seed, "nfev": int(r.nfev),
            "cosine": float(r.grad @ exact / (np.linalg.norm(r.grad) * np.linalg.norm(exact))),
            "relerr": float(np.linalg.norm(r.grad - exact) / np.linalg.norm(exact)),
            "seconds": round(time.perf_counter() - t0, 3)}


def run_hyperclean_references(n_train: int = 1000) -> dict[str, Any]:
    """Test accuracy of the inner model on all training data (weight 1 each; and 1/2 each, the start
    x = 0) and on the clean samples only."""
    from zo_scipy.bilevel.problems import HyperCleaning

    pr = HyperCleaning(n_train=n_train)
    with single_threaded():
        out = {"all": pr.accuracy(pr.reference("all")), "clean": pr.accuracy(pr.reference("clean")),
               "start": pr.accuracy(pr.y_star(np.zeros(pr.p), warm=np.zeros(pr.q)))}
    return {"kind": "hyperclean_reference", "seed": 0, **{f"test_accuracy_{k}": v for k, v in out.items()}}


def cells(*, quick: bool, seeds: list[int] | None) -> list[Cell]:
    seeds = seeds or ([0] if quick else list(range(10)))
    out = []
    for name in ("ridge",) if quick else ("ridge", "quadratic", "logistic"):
        for label, opts in estimators(name, quick):
            for s in seeds:
                out.append(Cell(f"accuracy|{name}|{label}|{s}", functools.partial(run_accuracy, name, label, opts, s)))
    budget = 3000 if quick else 20_000
    methods = OUTER_METHODS if not quick else (OUTER_METHODS[0], OUTER_METHODS[2])
    for method in methods:
        # TPE, zoar and the exact method do not depend on the seed of the estimator; TPE's and zoar's own do
        for s in seeds:
            out.append(Cell(f"outer|ridge|{method}|{budget}|{s}", functools.partial(run_outer, "ridge", method,
                                                                                 budget, s)))
    if not quick:  # per-feature logistic regression (p = 30, q = 31)
        for method in (OUTER_METHODS[0], *OUTER_METHODS[2:]):
            for s in seeds:
                out.append(Cell(f"outer|logistic|{method}|100000|{s}",
                                functools.partial(run_outer, "logistic", method, 100_000, s)))
    if not quick:
        for s in seeds[:3]:
            out.append(Cell(f"diagnosis|logistic|{s}", functools.partial(run_logistic_diagnosis, s)))
    # data hyper-cleaning (p = 1000, q = 650): 3 seeds (each of ours takes minutes); quick: 120 training samples
    n_train, hc_budget = (120, 400_000) if quick else (1000, HC_BUDGET)
    out.append(Cell(f"hyperclean_reference|{n_train}", functools.partial(run_hyperclean_references, n_train)))
    if not quick:
        for label, opts in HC_ESTIMATORS:
            for s in seeds[:3]:
                out.append(Cell(f"accuracy|hyperclean|{label}|{s}",
                                functools.partial(run_hyperclean_accuracy, label, opts, s)))
    for method in (HC_METHODS[0], HC_METHODS[4]) if quick else HC_METHODS:
        for s in seeds[:3]:
            out.append(Cell(f"hyperclean|{n_train}|{method}|{hc_budget}|{s}",
                            functools.partial(run_hyperclean, method, hc_budget, s, n_train=n_train)))
    return out


def _med(values: list[float]) -> float:
    return float(np.median(values)) if values else math.nan


def report(rows: list[dict], *, command: str) -> str:
    lines = ["## Bilevel: implicit hypergradients from values", "", f"```\n{command}\n```", ""]
    acc = [r for r in rows if r.get("kind") == "accuracy"]
    for name in ("ridge", "quadratic", "logistic", "hyperclean"):
        rs = [r for r in acc if r["problem"] == name]
        if not rs:
            continue
        title = {"ridge": "per-feature ridge, load_diabetes (p = q = 10)",
                 "quadratic": "benchopt-style quadratic (p = 10, q = 100)",
                 "logistic": "per-feature logistic regression, load_breast_cancer (p = 30, q = 31)",
                 "hyperclean": "data hyper-cleaning, load_digits (p = 1000, q = 650)"}[name]
        lines += [f"### Hypergradient accuracy: {title}", "",
                  f"Medians over {len({r['seed'] for r in rs})} outer points; evaluations = upper + lower "
                  "(charged, for the PZOBO-style peer); coverage = share of coordinates with "
                  "|error| <= 2 stderr.", "",
                  "| estimator | evaluations | cosine | relative error | coverage |", "|---|---|---|---|---|"]
        order = [label for label, _ in (HC_ESTIMATORS if name == "hyperclean" else estimators(name, quick=False))]
        for label in sorted(dict.fromkeys(r["method"] for r in rs),
                            key=lambda m: order.index(m) if m in order else len(order)):
            g = [r for r in rs if r["method"] == label]
            cov = [r["coverage"] for r in g if "coverage" in r]
            lines.append(f"| {label} | {_med([r['nfev'] for r in g]):.0f} | {_med([r['cosine'] for r in g]):.4f} | "
                         f"{_med([r['relerr'] for r in g]):.2e} | {(f'{_med(cov):.2f}' if cov else '-')} |")
        lines.append("")
        ext = [r["relerr_extrapolated"] for r in rs if "relerr_extrapolated" in r]
        if ext:
            lines += [f"With bias_check, the extrapolated estimate grad - bias has median relative error "
                      f"{_med(ext):.2e}.", ""]
    titles = {"ridge": "per-feature ridge on load_diabetes (p = q = 10), box [-8, 8]^10",
              "logistic": "per-feature L2 logistic regression on load_breast_cancer (p = 30, q = 31), box [-5, 5]^30"}
    for name, title in titles.items():
        out = [r for r in rows if r.get("kind") == "outer" and r["problem"] == name]
        if not out:
            continue
        lines += [f"### Outer loop: {title}", "",
                  f"Budget {out[0]['budget']} evaluations (upper + lower); start x = 0 (log penalties), y = 0; "
                  f"suboptimality (F - F*)/F* of the best true F reached, F* = {out[0]['fopt']:.6g} (L-BFGS-B on "
                  "the exact hypergradient). Peers are charged one inner solve per F (see above).", "",
                  "| method | median suboptimality | evaluations to 1 % (median; runs reaching it) | median evaluations used |",
                  "|---|---|---|---|"]
        for method in dict.fromkeys(r["method"] for r in out):
            g = [r for r in out if r["method"] == method]
            reach = [r["evals_to_1pct"] for r in g if r["evals_to_1pct"] is not None]
            lines.append(f"| {method} | {_med([r['subopt'] for r in g]):.2e} | "
                         f"{(f'{_med(reach):.0f}' if reach else 'not reached')} ({len(reach)}/{len(g)}) | "
                         f"{_med([r['nfev'] for r in g]):.0f} |")
        lines.append("")
    diag = [r for r in rows if r.get("kind") == "diagnosis"]
    if diag:
        lines += ["### Where the evaluations go: logistic outer loop run to its own convergence", "",
                  "zo_scipy.bilevel.minimize (L-BFGS-B, gtol 1e-5, no budget), every outer point compared with the "
                  "analytic hypergradient and F; cost per point = median over the second half of the points.", "",
                  "| seed | outer points | evaluations | final suboptimality | min cosine | median / max relative error "
                  "| max abs error of F | evaluations per point (mean; median of the late half) |",
                  "|---|---|---|---|---|---|---|---|"]
        for r in sorted(diag, key=lambda r: r["seed"]):
            lines.append(f"| {r['seed']} | {r['points']} | {r['nfev']} | {r['final_subopt']:.1e} | {r['min_cosine']:.4f} | "
                         f"{r['median_relerr']:.1e} / {r['max_relerr']:.1e} | {r['max_value_error']:.1e} | "
                         f"{r['nfev'] / r['points']:.0f}; {r['median_cost_late']:.0f} |")
        lines.append("")
    refs = next((r for r in rows if r.get("kind") == "hyperclean_reference"), None)
    hc = [r for r in rows if r.get("kind") == "hyperclean"]
    if hc:
        lines += ["### Data hyper-cleaning on load_digits (p = n_train weights, q = 650)", "",
                  f"Budget {hc[0]['budget']} evaluations: upper + lower + the black-box inner solver's function-and-gradient "
                  "evaluations charged q + 1 each; medians over "
                  f"{len({r['seed'] for r in hc})} seeds. Test accuracy at the method's final (or best) x with the inner "
                  "problem solved; F1 of flagging the corrupted samples by x_i < 0.", ""]
        if refs:
            lines += [f"References: all training data (weight 1 each) {refs['test_accuracy_all']:.3f}; uniform weight "
                      f"1/2 (the start x = 0) {refs['test_accuracy_start']:.3f}; clean samples only "
                      f"{refs['test_accuracy_clean']:.3f}.", ""]
        lines += ["| method | test accuracy | F1 (corrupted) | outer points / F evaluations | CG iterations per point "
                  "| lower evaluations per point | evaluations used |", "|---|---|---|---|---|---|---|"]
        for method in dict.fromkeys(r["method"] for r in hc):
            g = [r for r in hc if r["method"] == method]
            pts = [r.get("outer_points", r.get("evaluations_of_F", math.nan)) for r in g]
            cg = [r["cg_iterations"] / r["outer_points"] for r in g if "cg_iterations" in r]
            low = [r["nfev_lower"] / r["outer_points"] for r in g if "nfev_lower" in r]
            lines.append(f"| {method} | {_med([r['test_accuracy'] for r in g]):.3f} | {_med([r['f1'] for r in g]):.3f} | "
                         f"{_med(pts):.0f} | {(f'{_med(cg):.1f}' if cg else '-')} | {(f'{_med(low):.0f}' if low else '-')} | "
                         f"{_med([r['nfev'] for r in g]):.0f} |")
        lines.append("")
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], path: str) -> None:
    """Accuracy vs evaluations (left: ridge, middle: quadratic) and outer suboptimality (right)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    for ax, name in zip(axes[:2], ("ridge", "quadratic")):
        rs = [r for r in rows if r.get("kind") == "accuracy" and r["problem"] == name]
        fams = {"default": "C0", "four-point, ZoVH": "C1", "block": "C2", "PZOBO": "C3"}
        for fam, color in fams.items():
            g = [r for r in rs if r["method"].startswith(fam) and "bias_check" not in r["method"]]
            by: dict[str, list[dict]] = {}
            for r in g:
                by.setdefault(r["method"], []).append(r)
            pts = sorted((_med([r["nfev"] for r in v]), _med([r["relerr"] for r in v])) for v in by.values())
            if pts:
                ax.loglog(*zip(*pts), "o-", color=color, label=fam)
        ax.set_title(f"{name}: hypergradient relative error (median)")
        ax.set_xlabel("evaluations (upper + lower)")
        ax.axhline(1.0, color="grey", lw=0.5)
        ax.legend(fontsize=8)
    ax = axes[2]
    outs = [r for r in rows if r.get("kind") == "outer" and r["problem"] == "ridge"]
    for i, method in enumerate(dict.fromkeys(r["method"] for r in outs)):
        for j, r in enumerate(r for r in outs if r["method"] == method):
            tr = np.array(r["subopt_trace"]) if r["subopt_trace"] else None
            if tr is not None and tr.size:
                ax.semilogy(tr[:, 0], np.maximum(tr[:, 1], 1e-8), color=f"C{i}", alpha=0.5,
                            label=method if j == 0 else None, drawstyle="steps-post")
    ax.axhline(0.01, color="grey", ls=":", lw=1)
    ax.set_title("ridge: outer suboptimality (F - F*)/F*")
    ax.set_xlabel("evaluations (upper + lower)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":  # python -m benchmarks.suite_bilevel RESULTS.jsonl OUT.png
    import sys

    from ._io import read_jsonl

    plot(list(read_jsonl(__import__("pathlib").Path(sys.argv[1]))), sys.argv[2])
