"""``zoar``: ZoAR as a callable ``method`` for :func:`scipy.optimize.minimize`."""
from __future__ import annotations

import contextlib
import multiprocessing
import os
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from scipy.optimize import OptimizeResult

from . import _validation as v
from ._driver import drive
from .core.directions import DIRECTION_KINDS
from .core.evaluation import BatchObjective
from .core.updates import UPDATE_RULES, UpdateRule
from .core.zoar import ZoAR


@contextlib.contextmanager
def evaluation_map(workers: Any) -> Iterator[Callable[..., Any] | None]:
    """SciPy's ``workers`` convention: 1 -> serial, -1 or n > 1 -> a process pool of
    that size (closed afterwards), a map-like callable -> used as given."""
    if callable(workers):
        yield workers
        return
    if isinstance(workers, bool) or not isinstance(workers, int) or workers == 0 or workers < -1:
        raise ValueError(f"option 'workers' must be 1, -1, an integer > 1 or a map-like callable, got {workers!r}")
    if workers == 1:
        yield None
        return
    n = os.cpu_count() or 1 if workers == -1 else workers
    with multiprocessing.Pool(n) as pool:
        yield pool.map


@contextlib.contextmanager
def limit_torch_threads(n: int | None) -> Iterator[None]:
    """Cap torch's intra-op threads for the run (restored afterwards)."""
    if n is None:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _check_ignored(jac: Any, hess: Any, hessp: Any, constraints: Any, name: str) -> None:
    for label, val in (("jac", jac), ("hess", hess), ("hessp", hessp)):
        if val is not None and val is not False:
            warnings.warn(f"Method {name} does not use {label}; it is ignored.", RuntimeWarning, stacklevel=3)
    if constraints:
        raise ValueError(f"method {name} does not support constraints (only bounds); got {constraints!r}")


def zoar(
    fun: Callable[..., Any],
    x0: Any,
    args: tuple[Any, ...] = (),
    jac: Any = None,
    hess: Any = None,
    hessp: Any = None,
    bounds: Any = None,
    constraints: Any = (),
    callback: Callable[..., Any] | None = None,
    *,
    maxfev: int | None = None,
    maxiter: int | None = None,
    num_queries: int = 10,
    num_histories: int = 2,
    mu: float | None = None,
    lr: float | None = None,
    adapt_mu: bool | None = None,
    update: str | UpdateRule = "adam",
    betas: tuple[float, float] = (0.9, 0.99),
    eps: float = 1e-8,
    bias_correction: bool = True,
    schedule: str = "adaptive",
    xtol: float = 1e-7,
    tol: float | None = None,
    directions: str = "gaussian",
    normalization: str = "unbiased",
    seed: int | None = None,
    rng: Any = None,
    device: Any = "cpu",
    dtype: Any = "float64",
    vectorized: bool = False,
    tensor_input: bool = False,
    workers: Any = 1,
    torch_threads: int | None = None,
    disp: bool = False,
    progress: bool = False,
    resume: ZoAR | None = None,
    _method: tuple[str, Callable[..., ZoAR]] = ("zoar", ZoAR),
    **unknown_options: Any,
) -> OptimizeResult:
    r"""Minimize a scalar function with ZoAR (averaged baseline + query reuse).

    Use as ``scipy.optimize.minimize(fun, x0, method=zo_scipy.zoar, options={...})``.
    Each iteration evaluates :math:`K` points :math:`x_t + \mu u_k`,
    :math:`u_k \sim N(0, I)` and estimates the gradient of the Gaussian-smoothed
    objective :math:`F_\mu(x) = E f(x + \mu u)` from the newest :math:`(N+1)K`
    stored queries with their mean as baseline:

    .. math:: g_t = \frac{1}{M-1} \sum_{j=1}^{M} (y_j - \bar y)\frac{u_j}{\mu}.

    No evaluation is spent on :math:`f(x_t)` itself: the returned ``x`` is the best
    evaluated query and ``fun`` its value.

    Parameters
    ----------
    fun : callable
        ``fun(x, *args) -> float``; with ``vectorized=True``, ``fun(X, *args)`` for a
        batch ``X`` of shape ``(m, *x0.shape)`` returning ``m`` values.
    x0 : array_like
        Starting point (any shape; the objective sees points of this shape).
    args : tuple
        Extra arguments of ``fun``.
    jac, hess, hessp
        Ignored with a warning (ZoAR only uses function values).
    bounds : scipy.optimize.Bounds or sequence of (min, max), optional
        Box constraints; no query is ever outside the box.
    constraints
        Not supported: a non-empty value raises ``ValueError``.
    callback : callable, optional
        ``callback(intermediate_result)`` (``OptimizeResult`` with ``x``/``fun`` the best
        evaluated point, ``xk`` the iterate, ``nit``, ``nfev``, ``lr``, ``mu``) or
        ``callback(xk)``; raising ``StopIteration`` ends the run (``status=99``).

    Options
    -------
    maxfev : int
        Hard evaluation budget (default ``1000 * x0.size``); ``nfev`` counts every point.
        The last iteration uses a partial batch rather than leave budget unspent.
    maxiter : int
        Maximum number of iterations (default: unlimited).
    num_queries : int
        :math:`K`, new evaluations per iteration (default 10).
    num_histories : int
        :math:`N`, past iterations whose queries are reused (default 2; 0 disables reuse).
    mu : float
        Smoothing radius. Default: 10 % of the problem scale (RMS of ``x0``, 1 if
        ``x0 = 0``, or a quarter of the median bound width when all bounds are finite).
    lr : float
        Step size. Default: 5 % of the problem scale. With ``update="adam"`` every
        coordinate moves by at most about ``lr`` per iteration.
    adapt_mu : bool
        Let ``mu`` follow ``lr`` (same ratio). Default: True when ``mu`` is automatic.
    update : {"adam", "radazo", "sgd"} or UpdateRule
        Update rule (default ``"adam"``). ``"radazo"`` is the ZoAR paper's rule.
    betas : (float, float)
        Moment decay rates of adam/radazo (default ``(0.9, 0.99)``, the authors').
    eps : float
        Denominator guard of adam/radazo (default 1e-8).
    bias_correction : bool
        Adam's bias correction of the moments (default True; the authors use False).
    schedule : {"adaptive", "constant"}
        ``"adaptive"`` (default): window-based step control on the batch means (see
        :mod:`zo_scipy.core.control`) halves ``lr`` when progress stalls and returns
        to the best iterate when the run diverges. ``"constant"``: fixed ``lr``.
    xtol, tol : float
        Stop successfully once the adaptive ``lr`` fell below ``xtol`` times its
        initial value (default 1e-7). ``minimize(..., tol=t)`` sets ``xtol = t``.
    directions : {"gaussian", "sphere", "orthogonal"}
        Direction distribution (default ``"gaussian"``).
    normalization : {"unbiased", "authors"}
        Divide by :math:`M-1` (default, unbiased) or by :math:`M` (authors' code).
    seed : int
        Seed of the direction generator; ``rng`` (int or ``numpy.random.Generator``,
        SciPy's name) is accepted instead. Same seed, same result on CPU.
    device : {"cpu", "cuda", "auto"} or torch.device
        Where the estimator runs (default ``"cpu"``).
    dtype : {"float64", "float32"}
        Estimator precision (default float64).
    vectorized : bool
        Call ``fun`` once per batch (default False).
    tensor_input : bool
        Pass torch tensors on ``device`` to ``fun`` instead of numpy arrays.
    workers : int or map-like callable
        Parallel evaluation, SciPy's convention: ``-1`` or ``n > 1`` builds a
        ``multiprocessing.Pool`` (``fun`` must pickle); a callable such as
        ``pool.map`` or ``executor.map`` is used as given. Default 1 (serial).
    torch_threads : int
        Cap torch's intra-op threads during the run. Set it (and, for BLAS,
        ``threadpoolctl.threadpool_limits``) when ``fun`` itself uses many threads,
        to avoid oversubscription.
    disp : bool
        Print a summary at the end.
    progress : bool
        Show a tqdm progress bar over the evaluation budget.
    resume : ZoAR
        Continue from ``res.state`` of an earlier (possibly pickled) run; ``x0``
        must have the same size. Budgets count this call only.

    Returns
    -------
    OptimizeResult
        ``x`` (best evaluated point, shape of ``x0``), ``fun`` (its value), ``nfev``,
        ``nit``, ``success``, ``status``, ``message``, and ``x_iterate`` (last
        iterate, not evaluated), ``lr``, ``mu``, ``n_nonfinite``, ``state`` (the
        picklable optimizer). ``x`` is never NaN: when no finite value was seen it
        is ``x0`` with ``fun = nan``.

    Notes
    -----
    Bad input: options are validated before the first evaluation (unknown ones
    warn with ``OptimizeWarning``). NaN/inf values never become ``x``; the
    estimator replaces them by the worst finite value in its buffer, and a batch
    with no finite value counts as divergence. An exception in ``fun`` ends the
    run with ``success=False``, ``status=4``, the best point so far and the
    exception in ``res.exception`` (plus a ``RuntimeWarning``). ``KeyboardInterrupt``
    returns the best point so far (``status=5``).
    """
    name, factory = _method  # private: lets `zovh` reuse this front-end with its own optimizer
    v.check_unknown_options(unknown_options, name)
    _check_ignored(jac, hess, hessp, constraints, name)
    x0 = v.check_x0(x0)
    d = x0.size
    maxfev = v.check_int("maxfev", maxfev, 1, allow_none=True) or 1000 * d
    maxiter = v.check_int("maxiter", maxiter, 1, allow_none=True)
    num_queries = int(v.check_int("num_queries", num_queries, 1))  # type: ignore[arg-type]
    num_histories = int(v.check_int("num_histories", num_histories, 0))  # type: ignore[arg-type]
    if num_queries * (num_histories + 1) < 2:
        raise ValueError("options 'num_queries' * ('num_histories' + 1) must be >= 2: the averaged "
                         "baseline needs at least two values")
    if maxfev < num_queries:
        raise ValueError(f"option 'maxfev'={maxfev} is smaller than 'num_queries'={num_queries}: "
                         "one iteration needs num_queries evaluations")
    mu = v.check_positive("mu", mu, allow_none=True)
    lr = v.check_positive("lr", lr, allow_none=True)
    if adapt_mu is not None:
        adapt_mu = v.check_bool("adapt_mu", adapt_mu)
    if not isinstance(update, UpdateRule):
        update = v.check_choice("update", update, UPDATE_RULES)
    betas = v.check_betas(betas)
    eps = float(v.check_positive("eps", eps))  # type: ignore[arg-type]
    bias_correction = v.check_bool("bias_correction", bias_correction)
    schedule = v.check_choice("schedule", schedule, ("adaptive", "constant"))
    if tol is not None:
        xtol = tol
    xtol = float(v.check_positive("xtol" if tol is None else "tol", xtol, allow_zero=True))  # type: ignore[arg-type]
    directions = v.check_choice("directions", directions, DIRECTION_KINDS)
    normalization = v.check_choice("normalization", normalization, ("unbiased", "authors"))
    seed = v.resolve_seed(seed, rng)
    dev = v.resolve_device(device)
    tdtype = v.resolve_dtype(dtype)
    vectorized = v.check_bool("vectorized", vectorized)
    tensor_input = v.check_bool("tensor_input", tensor_input)
    torch_threads_n = v.check_int("torch_threads", torch_threads, 1, allow_none=True)
    disp = v.check_bool("disp", disp)
    progress = v.check_bool("progress", progress)
    if not callable(workers) and workers != 1 and vectorized:
        raise ValueError("options 'workers' and 'vectorized' cannot be combined: a vectorized "
                         "objective already evaluates the whole batch in one call")
    lu = v.standardize_bounds(bounds, d)
    x0 = v.clip_x0(x0, lu)
    cb = v.make_callback(callback)

    if resume is not None:
        if not isinstance(resume, ZoAR):
            raise ValueError(f"option 'resume' must be the `state` of an earlier {name} result, got {type(resume).__name__}")
        if resume.dim != d:
            raise ValueError(f"option 'resume' holds a {resume.dim}-dimensional state but x0 has {d} elements")
        opt = resume
    else:
        lower = upper = None
        if lu is not None:
            lower = torch.as_tensor(lu[0], dtype=tdtype, device=dev)
            upper = torch.as_tensor(lu[1], dtype=tdtype, device=dev)
        opt = factory(torch.as_tensor(x0.reshape(-1), dtype=tdtype, device=dev),
                   num_queries=num_queries, num_histories=num_histories, mu=mu, lr=lr,
                   adapt_mu=adapt_mu, update=update, betas=betas, eps=eps,
                   bias_correction=bias_correction, schedule=schedule, lower=lower, upper=upper,
                   directions=directions, normalization=normalization,  # type: ignore[arg-type]
                   seed=seed, dtype=tdtype, device=dev, xtol=xtol)

    def extras() -> dict[str, Any]:
        return {"lr": opt.lr, "mu": opt.mu, "n_nonfinite": opt.n_nonfinite}

    with evaluation_map(workers) as mapper, limit_torch_threads(torch_threads_n):
        objective = BatchObjective(fun, args, shape=x0.shape, vectorized=vectorized,
                                   tensor_input=tensor_input, map=mapper, max_evals=maxfev)
        return drive(opt, objective, x0=x0, maxiter=maxiter, callback=cb, progress=progress,
                     disp=disp, name=name, extras=extras)
