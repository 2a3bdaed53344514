r"""The peers, each run with its own defaults at an equal evaluation budget.

Only the budget (and the box, where the problem has one) is passed to SciPy's
methods. CMA-ES gets :math:`\sigma_0` from the same length scale as ZoAR's
automatic step size (:func:`zo_scipy.core.problem_scale`: a quarter of the box
width, else the RMS of :math:`x_0`), since pycma has no default
:math:`\sigma_0`. Vanilla ZO-SGD (the classic two-point estimator with baseline
:math:`f(x)`, :math:`K` queries + 1 per iteration) uses
:math:`\mu = 0.05\,s` and a constant step fixed so that the first step has
length :math:`0.05\,s` (``s`` the same scale); it has no defaults of its own.
"""
from __future__ import annotations

import importlib
import math
import warnings
from typing import Any

import numpy as np

from ._harness import Method, Tracker
from ._problems import Problem

#: The ZoAR paper's synthetic hyper-parameters, as ``zoar`` options (the paper's N = 5 is
#: passed separately as ``num_histories``).
AUTHORS_OPTIONS: dict[str, Any] = dict(
    num_queries=10, mu=0.05, lr=1e-3, update="radazo", betas=(0.9, 0.99), eps=1e-8,
    bias_correction=False, schedule="constant", normalization="authors",
)

SCIPY_BUDGET_OPTION = {"Nelder-Mead": "maxfev", "Powell": "maxfev", "COBYLA": "maxiter",
                       "COBYQA": "maxfev", "L-BFGS-B": "maxfun"}


def _bounds(lo: np.ndarray | None, hi: np.ndarray | None) -> Any:
    from scipy.optimize import Bounds

    return None if lo is None else Bounds(lo, hi)


def _needs(module: str) -> Any:
    def check() -> str | None:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            return f"not available: {exc}"
        return None
    return check


def _max_d(limit: int, why: str) -> Any:
    return lambda p: None if p.d <= limit else f"skipped at d={p.d}: {why}"


# -- SciPy ---------------------------------------------------------------------------
def scipy_peer(name: str, label: str, skip: Any = None) -> Method:
    def run(t: Tracker, x0: np.ndarray, lo: Any, hi: Any, seed: int) -> Any:
        from scipy.optimize import minimize

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = minimize(t, x0, method=name, bounds=_bounds(lo, hi),
                           options={SCIPY_BUDGET_OPTION[name]: t.budget})
        return res.x
    return Method(label, "scipy", run, skip=skip or (lambda p: None))


def _quadratic_memory(p: Problem, n_vectors: str, limit: int = 2000) -> str | None:
    if p.d <= limit:
        return None
    gb = p.d * p.d * 8 / 2**30
    extra = f"; its d+1 = {p.d + 1} start evaluations alone exceed the budget" if p.d + 1 > p.budget else ""
    return f"skipped at d={p.d}: O(d^2) memory ({n_vectors}: {gb:.1f} GiB){extra}"


# -- CMA-ES (pycma) ----------------------------------------------------------------
def cma_peer(separable: bool) -> Method:
    def run(t: Tracker, x0: np.ndarray, lo: Any, hi: Any, seed: int) -> Any:
        import cma
        import torch

        from zo_scipy.core import problem_scale

        sigma0 = problem_scale(torch.as_tensor(x0), None if lo is None else torch.as_tensor(lo),
                               None if hi is None else torch.as_tensor(hi))
        opts = {"seed": seed + 1, "maxfevals": t.budget, "verbose": -9, "CMA_diagonal": separable}
        if lo is not None:
            opts["bounds"] = [list(lo), list(hi)]
        es = cma.CMAEvolutionStrategy(x0, sigma0, opts)
        while not es.stop() and t.remaining > 0:
            X = es.ask()
            es.tell(X, t.batch(np.asarray(X)).tolist())
        return es.result.xfavorite

    if separable:
        return Method("sep-CMA-ES", "cma", run, available=_needs("cma"), settings="sigma0 = problem scale")
    return Method("CMA-ES", "cma", run, available=_needs("cma"), settings="sigma0 = problem scale",
                  skip=_max_d(100, "O(d^2) covariance, O(d^3) eigendecompositions (measured: 135 s per "
                              "1000 evaluations at d=1000 on this machine); sep-CMA-ES runs instead"))


# -- Optuna samplers ---------------------------------------------------------------
OPTUNA_MAX_D, OPTUNA_MAX_BUDGET = 10, 200


def _optuna_skip(p: Problem) -> str | None:
    if p.lower is None:
        return "skipped: Optuna samplers need a box (problem is unbounded)"
    if p.d > OPTUNA_MAX_D or p.budget > OPTUNA_MAX_BUDGET:
        return (f"skipped at d={p.d}, budget {p.budget}: Optuna samplers run here only at d <= "
                f"{OPTUNA_MAX_D}, budget <= {OPTUNA_MAX_BUDGET}")
    return None


def optuna_peer(label: str, make_sampler: Any, family: str = "optuna", available: Any = None,
                skip: Any = _optuna_skip) -> Method:
    def run(t: Tracker, x0: np.ndarray, lo: Any, hi: Any, seed: int) -> Any:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        names = [f"x{i}" for i in range(x0.size)]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # experimental-feature warnings
            study = optuna.create_study(sampler=make_sampler(seed))
            study.enqueue_trial(dict(zip(names, map(float, x0))))

            def objective(trial: Any) -> float:
                return t(np.array([trial.suggest_float(n, float(a), float(b)) for n, a, b in zip(names, lo, hi)]))

            study.optimize(objective, n_trials=t.budget, catch=())
        return np.array([study.best_params[n] for n in names])

    return Method(label, family, run, skip=skip, available=available or _needs("optuna"))


def _sampler(kind: str) -> Any:
    def make(seed: int) -> Any:
        import optuna

        return {"TPE": optuna.samplers.TPESampler, "CMA-ES": optuna.samplers.CmaEsSampler,
                "GP": optuna.samplers.GPSampler}[kind](seed=seed)
    return make


# -- BoTorch BO --------------------------------------------------------------------
BO_MAX_D, BO_MAX_BUDGET = 10, 100


def _bo_skip(p: Problem) -> str | None:
    if p.lower is None:
        return "skipped: BO needs a box (problem is unbounded)"
    if p.d > BO_MAX_D or p.budget > BO_MAX_BUDGET:
        return f"skipped at d={p.d}, budget {p.budget}: GP fit is O(n^3); BO runs at d <= {BO_MAX_D}, budget <= {BO_MAX_BUDGET}"
    return None


def _bo_run(t: Tracker, x0: np.ndarray, lo: Any, hi: Any, seed: int) -> Any:
    from .botorch_bo import botorch_minimize

    return botorch_minimize(t.batch, lo, hi, budget=t.budget, seed=seed)["x"]


# -- vanilla ZO-SGD ----------------------------------------------------------------
def _zo_sgd(t: Tracker, x0: np.ndarray, lo: Any, hi: Any, seed: int, K: int = 10) -> Any:
    import torch

    from zo_scipy.core import make_generator, make_update_rule, problem_scale, sample_directions, two_point_gradient

    x = torch.as_tensor(x0, dtype=torch.float64)
    lo_t = None if lo is None else torch.as_tensor(lo, dtype=torch.float64)
    hi_t = None if hi is None else torch.as_tensor(hi, dtype=torch.float64)
    clip = (lambda z: z) if lo_t is None else (lambda z: torch.clamp(z, lo_t, hi_t))
    scale = problem_scale(x, lo_t, hi_t)
    mu, lr = 0.05 * scale, None
    gen, rule = make_generator(seed), make_update_rule("sgd")
    while t.remaining >= K + 1:
        U = sample_directions(K, x.numel(), generator=gen, dtype=torch.float64)
        X = clip(x + mu * U)
        y = torch.as_tensor(t.batch(torch.cat([x[None], X]).numpy()))
        if not bool(torch.isfinite(y).all()):
            break  # diverged: the trace keeps the best point seen
        g = two_point_gradient((X - x) / mu, y[1:], y[0], mu)
        if lr is None:
            gn = float(g.norm())
            lr = 0.05 * scale / gn if gn > 0 else 0.0
        x = clip(x - rule.step(g, lr))
    return x.numpy()


# -- ours --------------------------------------------------------------------------
def _zoar_run(t: Tracker, x0: np.ndarray, lo: Any, hi: Any, seed: int) -> Any:
    import zo_scipy as zs
    from scipy.optimize import minimize

    res = minimize(t.batch, x0, method=zs.zoar, bounds=_bounds(lo, hi),
                   options=dict(maxfev=t.budget, seed=seed, vectorized=True))
    return res.x


def _attr(module: str, name: str) -> Any:
    def check() -> str | None:
        try:
            mod = importlib.import_module(module)
        except ImportError as exc:
            return f"not available: {exc}"
        return None if hasattr(mod, name) else f"not available: {module}.{name} does not exist yet"
    return check


def _zovh_run(t: Tracker, x0: np.ndarray, lo: Any, hi: Any, seed: int) -> Any:
    import zo_scipy as zs
    from scipy.optimize import minimize

    res = minimize(t, x0, method=zs.zovh, bounds=_bounds(lo, hi), options=dict(maxfev=t.budget, seed=seed))
    return res.x


def _zovh_tncg_run(t: Tracker, x0: np.ndarray, lo: Any, hi: Any, seed: int) -> Any:
    import zo_scipy as zs
    from scipy.optimize import minimize

    # ZoVH's queries go through the same tracker, so they count against the same budget
    curv = zs.ZoVHCurvature(t.batch, seed=seed, vectorized=True)
    res = minimize(t, x0, method="trust-ncg", options={"maxiter": t.budget}, **curv.hooks("trust-ncg"))
    return res.x


def _zovh_tncg_skip(p: Problem) -> str | None:
    if p.lower is not None:
        return "skipped: trust-ncg takes no bounds"
    if 2 * p.d > p.budget:
        # the provider's default batch is d antithetic pairs (a central-difference gradient)
        gb = 2 * p.d * p.d * 8 / 2**30
        return (f"skipped at d={p.d}: its default 2d = {2 * p.d} queries per point exceed the budget "
                f"{p.budget} (and that batch alone is {gb:.1f} GiB)")
    return None


def _zoar_sampler(seed: int) -> Any:
    from zo_scipy.integrations.optuna import ZoARSampler

    return ZoARSampler(seed=seed)


def _sampler_skip(p: Problem) -> str | None:
    if p.lower is None:
        return "skipped: Optuna samplers need a box (problem is unbounded)"
    if p.d > 100 or p.budget > 2000:
        return f"skipped at d={p.d}, budget {p.budget}: one Optuna trial per evaluation; runs at d <= 100, budget <= 2000"
    return None


def methods(names: list[str] | tuple[str, ...]) -> list[Method]:
    """The peers called ``names``, in that order."""
    by = {m.name: m for m in all_methods()}
    unknown = [n for n in names if n not in by]
    if unknown:
        raise ValueError(f"unknown methods {unknown}; known: {list(by)}")
    return [by[n] for n in names]


def all_methods() -> list[Method]:
    """Every peer, in table order (ours last)."""
    return [
        scipy_peer("Nelder-Mead", "Nelder-Mead", lambda p: _quadratic_memory(p, "simplex of d+1 points")),
        scipy_peer("Powell", "Powell", lambda p: _quadratic_memory(p, "direction set")),
        scipy_peer("COBYLA", "COBYLA", _max_d(100, "too slow here (its own linear algebra per "
                                              "evaluation grows fast with d: a 3000-evaluation run at "
                                              "d=1000 did not finish in 13 min on this machine)")),
        scipy_peer("COBYQA", "COBYQA", _max_d(10, "too slow here (its own work per evaluation grows fast "
                                              "with d: 350 s for 500 evaluations at d=100 on this machine)")),
        scipy_peer("L-BFGS-B", "L-BFGS-B-FD"),
        cma_peer(separable=False),
        cma_peer(separable=True),
        optuna_peer("Optuna-TPE", _sampler("TPE")),
        optuna_peer("Optuna-CMA-ES", _sampler("CMA-ES")),
        optuna_peer("Optuna-GP", _sampler("GP")),
        Method("BoTorch-BO", "botorch", _bo_run, skip=_bo_skip, available=_needs("botorch"),
               settings="SingleTaskGP + LogEI, 2d Sobol start"),
        Method("ZO-SGD", "zo", _zo_sgd, settings="K=10, mu=0.05 s, first step 0.05 s"),
        Method("zoar", "ours", _zoar_run),
        Method("zovh", "ours", _zovh_run, available=_attr("zo_scipy", "zovh")),
        Method("ZoVH+trust-ncg", "ours", _zovh_tncg_run, available=_attr("zo_scipy", "ZoVHCurvature"),
               skip=_zovh_tncg_skip),
        optuna_peer("ZoARSampler", _zoar_sampler, family="ours",
                    available=_attr("zo_scipy.integrations.optuna", "ZoARSampler"), skip=_sampler_skip),
    ]
