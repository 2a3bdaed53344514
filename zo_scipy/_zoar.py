"""``zoar``: ZoAR as a callable ``method`` for :func:`scipy.optimize.minimize`."""
from __future__ import annotations

import contextlib
import copy
import inspect
import multiprocessing
import os
import pickle
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from scipy.optimize import OptimizeResult

from ._driver import drive
from ._validation import (
    check_bool, check_int, check_unknown_options, check_x0, clip_x0, make_callback, resolve_device,
    resolve_dtype, resolve_seed, standardize_bounds,
)
from .core.evaluation import BatchObjective
from .core.options import ZoAROptions
from .core.state import StateError
from .core.updates import UpdateRule
from .core.zoar import ZoAR, bound_in_dtype


@contextlib.contextmanager
def evaluation_map(workers: Any, fun: Callable[..., Any] | None = None) -> Iterator[Callable[..., Any] | None]:
    """SciPy's ``workers`` convention: 1 -> serial, -1 or n > 1 -> a process pool of
    that size (closed afterwards), a map-like callable -> used as given. For a pool,
    ``fun`` must pickle: checked before the first evaluation."""
    if callable(workers):
        yield workers
        return
    if isinstance(workers, bool) or not isinstance(workers, int) or workers == 0 or workers < -1:
        raise ValueError(f"option 'workers' must be 1, -1, an integer > 1 or a map-like callable, got {workers!r}")
    if workers == 1:
        yield None
        return
    if fun is not None:
        try:
            pickle.dumps(fun)
        except Exception as exc:  # pickling can fail with many exception types
            raise ValueError(f"option 'workers'={workers} evaluates fun in other processes, but fun cannot "
                             f"be pickled ({type(exc).__name__}: {exc}); define it at module level (not a "
                             "lambda or a local function) or pass a map-like callable") from None
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
    max_queries: int | None = None,
    directions: str = "gaussian",
    normalization: str = "unbiased",
    seed: int | None = None,
    rng: Any = None,
    device: Any = "cpu",
    dtype: Any = "float64",
    vectorized: bool = False,
    tensor_input: bool = False,
    workers: Any = 1,
    torch_threads: int | str | None = "auto",
    disp: bool = False,
    progress: bool = False,
    resume: dict[str, Any] | ZoAR | None = None,
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
        evaluated point, ``xk`` the iterate, ``nit``, ``nfev``, ``lr``, ``mu``, and
        ``snapshot()``, which returns the state as ``res.state`` would, for a checkpoint
        during the run) or ``callback(xk)``; raising ``StopIteration`` ends the run
        (``status=99``). The callback gets copies: changing them changes nothing.

    Options
    -------
    maxfev : int
        Hard evaluation budget (default ``1000 * x0.size``); ``nfev`` counts every point.
        When the budget ends in mid-batch the remaining budget is spent on the first points
        of the next batch; their values are kept in ``res.state`` (not used for a step), so
        that a resumed run finishes that batch and continues exactly as one long run.
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
    max_queries : int
        Once objective noise is detected (``mu`` frozen), a stalled step control doubles
        the number of queries per iteration, up to ``max_queries`` (default
        ``8 * num_queries``), before it shrinks the step again: more queries per step lower
        the noise of the estimate, a smaller step only slows the run. ``max_queries=
        num_queries`` keeps the batch fixed. ``res.num_queries`` is the final batch size.
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
    torch_threads : "auto", int or None
        torch's intra-op threads during the run (restored afterwards). ``"auto"``
        (default): one thread when the estimator's work per iteration is small
        (:math:`M d \le 2^{22}` elements, e.g. d up to about 140 000 with the default
        M = 30), where several threads only compete with the objective and other processes
        for the cores; torch's own setting above that. An int caps the threads; ``None``
        leaves torch's setting. For an objective that uses BLAS threads, see also
        ``threadpoolctl.threadpool_limits``.
    disp : bool
        Print a summary at the end.
    progress : bool
        Show a tqdm progress bar over the evaluation budget.
    resume : dict
        Continue from ``res.state`` of an earlier run (a JSON-safe state dict, see
        :meth:`zo_scipy.core.ZoAR.state_dict`; a ``ZoAR`` object is copied first);
        ``x0`` must have the same size. The earlier result is never changed.
        Budgets count this call only.

    Returns
    -------
    OptimizeResult
        ``x`` (best evaluated point, shape of ``x0``), ``fun`` (its value), ``nfev``,
        ``nit``, ``success``, ``status``, ``message``, and ``x_iterate`` (last
        iterate, not evaluated), ``lr``, ``mu``, ``n_nonfinite``, ``state`` (a
        snapshot of the optimizer as a JSON-safe dict, for ``resume``). ``x`` is never NaN: when no finite value was seen it
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

    See Also
    --------
    zo_scipy.zovh : the same front end with ZoVH's curvature-aware direction.
    zo_scipy.core.ZoAR : the ask/tell optimizer this method drives.

    References
    ----------
    - Junbin Qiu, Zhengpeng Xie, Xiangda Yan, Yongjie Yang, Yao Shu, "Zeroth-Order Optimization is Secretly
      Single-Step Policy Optimization", arXiv:2506.14460, 2025 (the ZoAR paper).
    - Yurii Nesterov, Vladimir Spokoiny, "Random gradient-free minimization of convex
      functions", Foundations of Computational Mathematics 17, 527-566, 2017.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.optimize import minimize, rosen
    >>> import zo_scipy
    >>> res = minimize(rosen, np.zeros(5), method=zo_scipy.zoar, options=dict(maxfev=2000, seed=0))
    >>> res.nfev, bool(res.fun < rosen(np.zeros(5)))
    (2000, True)
    """
    settings = dict(maxfev=maxfev, maxiter=maxiter, num_queries=num_queries, num_histories=num_histories,
                    mu=mu, lr=lr, adapt_mu=adapt_mu, update=update, betas=betas, eps=eps,
                    bias_correction=bias_correction, schedule=schedule, xtol=xtol, tol=tol,
                    max_queries=max_queries,
                    directions=directions, normalization=normalization, seed=seed, rng=rng,
                    device=device, dtype=dtype, vectorized=vectorized, tensor_input=tensor_input,
                    workers=workers, torch_threads=torch_threads, disp=disp, progress=progress)
    return run_method("zoar", ZoAR, {}, fun, x0, args, jac, hess, hessp, bounds, constraints,
                      callback, resume, settings, unknown_options)


#: ``torch_threads="auto"``: one thread up to this many elements in the M x d buffer. The
#: benchmarks' ``threads`` suite measures the choice (docs/behaviour.md, "Threads").
AUTO_SINGLE_THREAD_ELEMENTS = 2**22

#: The options every ZoAR-based method accepts, with their defaults (from ``zoar``'s signature).
ZOAR_METHOD_OPTIONS: dict[str, Any] = {
    name: p.default for name, p in inspect.signature(zoar).parameters.items()
    if p.kind is inspect.Parameter.KEYWORD_ONLY and name != "resume"}


def run_method(
    name: str,
    factory: type[ZoAR],
    extra_settings: dict[str, Any],
    fun: Callable[..., Any],
    x0: Any,
    args: tuple[Any, ...],
    jac: Any,
    hess: Any,
    hessp: Any,
    bounds: Any,
    constraints: Any,
    callback: Callable[..., Any] | None,
    resume: dict[str, Any] | ZoAR | None,
    settings: dict[str, Any],
    unknown_options: dict[str, Any],
) -> OptimizeResult:
    """The SciPy front end shared by ``zoar`` and ``zovh``: parse SciPy's input, build
    (or resume) a ``factory`` optimizer with ``extra_settings``, drive it."""
    s = {**ZOAR_METHOD_OPTIONS, **settings}
    check_unknown_options(unknown_options, name)
    _check_ignored(jac, hess, hessp, constraints, name)
    x0 = check_x0(x0)
    d = x0.size
    maxfev = check_int("maxfev", s["maxfev"], 1, allow_none=True) or 1000 * d
    maxiter = check_int("maxiter", s["maxiter"], 1, allow_none=True)
    xtol = s["xtol"] if s["tol"] is None else s["tol"]
    try:
        options = ZoAROptions(
            num_queries=s["num_queries"], num_histories=s["num_histories"], mu=s["mu"], lr=s["lr"],
            adapt_mu=s["adapt_mu"], update=s["update"], betas=s["betas"], eps=s["eps"],
            bias_correction=s["bias_correction"], schedule=s["schedule"],
            directions=s["directions"], normalization=s["normalization"], xtol=xtol,
            max_queries=s["max_queries"])
    except ValueError as e:
        if s["tol"] is not None and "'xtol'" in str(e):
            raise ValueError(str(e).replace("'xtol'", "'tol'")) from None
        raise
    seed = resolve_seed(s["seed"], s["rng"])
    dev = resolve_device(s["device"])
    tdtype = resolve_dtype(s["dtype"])
    vectorized = check_bool("vectorized", s["vectorized"])
    tensor_input = check_bool("tensor_input", s["tensor_input"])
    if s["torch_threads"] == "auto":
        torch_threads_n = 1 if options.capacity * d <= AUTO_SINGLE_THREAD_ELEMENTS else None
    else:
        torch_threads_n = check_int("torch_threads", s["torch_threads"], 1, allow_none=True)
    disp = check_bool("disp", s["disp"])
    progress = check_bool("progress", s["progress"])
    workers = s["workers"]
    if not callable(workers) and workers != 1 and vectorized:
        raise ValueError("options 'workers' and 'vectorized' cannot be combined: a vectorized "
                         "objective already evaluates the whole batch in one call")
    lu = standardize_bounds(bounds, d)
    x0 = clip_x0(x0, lu)
    cb = make_callback(callback)

    if tdtype == torch.float32 and np.any(np.abs(x0) > np.finfo(np.float32).max):
        raise ValueError("x0 has entries beyond float32's range (3.4e38): use option dtype='float64'")

    if resume is not None:
        opt = _resumed(resume, factory, name, d, dev)
        _check_resume_settings(opt, s, lu, extra_settings, tdtype, dev)
        if lu is None and opt.lower is not None and opt.upper is not None:  # the saved run's box
            lu = (opt.lower.double().cpu().numpy(), opt.upper.double().cpu().numpy())
    else:
        check_memory(d, options, tdtype, dev, maxfev, name)
        lower = upper = None
        if lu is not None:  # float64: the optimizer rounds them into the box in its own dtype
            lower = torch.as_tensor(lu[0], dtype=torch.float64, device=dev)
            upper = torch.as_tensor(lu[1], dtype=torch.float64, device=dev)
        opt = factory(torch.as_tensor(x0.reshape(-1), dtype=tdtype, device=dev), options=options,
                      lower=lower, upper=upper, seed=seed, dtype=tdtype, device=dev, **extra_settings)

    def extras() -> dict[str, Any]:
        return {"lr": opt.lr, "mu": opt.mu, "n_nonfinite": opt.n_nonfinite, "noisy": opt.noisy,
                "noise_level": opt.noise_level, "num_queries": opt.num_queries}

    with evaluation_map(workers, fun) as mapper, limit_torch_threads(torch_threads_n):
        objective = BatchObjective(fun, args, shape=x0.shape, vectorized=vectorized,
                                   tensor_input=tensor_input, map=mapper, max_evals=maxfev,
                                   lower=None if lu is None else lu[0], upper=None if lu is None else lu[1])
        return drive(opt, objective, x0=x0, maxiter=maxiter, callback=cb, progress=progress,
                     disp=disp, name=name, extras=extras)


#: The ZoAROptions fields compared against a resumed state.
_STATE_OPTIONS = ("num_queries", "num_histories", "mu", "lr", "adapt_mu", "update", "betas", "eps",
                  "bias_correction", "schedule", "directions", "normalization", "xtol", "max_queries")


def _check_resume_settings(opt: ZoAR, s: dict[str, Any], lu: tuple[np.ndarray, np.ndarray] | None,
                           extra_settings: dict[str, Any], dtype: torch.dtype, device: torch.device) -> None:
    """A resumed run continues with the saved settings; an option given with ``resume`` that
    contradicts them is an error naming it (options left at their defaults come from the state)."""
    conflicts = []
    saved = opt.options
    given = {k: s[k] for k in _STATE_OPTIONS if k != "xtol" and s[k] != ZOAR_METHOD_OPTIONS[k]}
    if s["tol"] is not None or s["xtol"] != ZOAR_METHOD_OPTIONS["xtol"]:
        given["xtol"] = s["xtol"] if s["tol"] is None else s["tol"]
    for key, value in given.items():
        mine = getattr(saved, key)
        if (tuple(value) if key == "betas" else value) != mine:
            conflicts.append(f"{key}={value!r} (saved: {mine!r})")
    for key, value in extra_settings.items():
        if value != opt._extra_settings().get(key):
            conflicts.append(f"{key}={value!r} (saved: {opt._extra_settings().get(key)!r})")
    seed = resolve_seed(s["seed"], s["rng"])
    if seed is not None and seed != opt.seed:
        conflicts.append(f"seed={seed} (saved: {opt.seed})")
    if s["dtype"] != ZOAR_METHOD_OPTIONS["dtype"] and dtype != opt.dtype:
        conflicts.append(f"dtype={s['dtype']!r} (saved: {opt.dtype})")
    if lu is not None:
        same = opt.lower is not None and opt.upper is not None and bool(
            torch.equal(_rounded(lu[0], opt, up=True), opt.lower)
            and torch.equal(_rounded(lu[1], opt, up=False), opt.upper))
        if not same:
            conflicts.append("bounds (they differ from the saved run's)")
    if conflicts:
        raise ValueError("option 'resume' continues the saved run with its own settings, but these "
                         f"options contradict it: {', '.join(conflicts)}; leave them out (or start a new run)")


def _rounded(bound: np.ndarray, opt: ZoAR, *, up: bool) -> torch.Tensor:
    return bound_in_dtype(torch.as_tensor(bound, dtype=torch.float64, device=opt.device), opt.dtype, opt.device, up=up)


def check_memory(d: int, options: ZoAROptions, dtype: torch.dtype, device: torch.device,
                 maxfev: int, name: str) -> None:
    """Raise ``MemoryError`` before the first evaluation when the run cannot fit.

    The estimate counts the reuse buffer (only the rows the budget can fill), one batch of
    directions and points, and the d-sized vectors (iterate, moments, anchors, records).
    """
    itemsize = torch.empty((), dtype=dtype).element_size()
    rows = min(options.capacity, maxfev) + 2 * options.num_queries + 8 + options.num_histories
    needed = rows * d * itemsize
    available = _available_memory(device)
    if available is not None and needed > available:
        raise MemoryError(
            f"{name} needs about {needed / 2**30:.2f} GiB ({needed} bytes) for d={d} with "
            f"num_queries={options.num_queries}, num_histories={options.num_histories}, "
            f"dtype={str(dtype).replace('torch.', '')} and maxfev={maxfev}, but only "
            f"{available / 2**30:.2f} GiB is available on {device}; lower num_histories or "
            "num_queries, use dtype='float32', or use a larger machine")


def _available_memory(device: torch.device) -> int | None:
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _resumed(resume: Any, factory: type[ZoAR], name: str, d: int, device: torch.device) -> ZoAR:
    """A new optimizer continuing from ``resume`` (never the object or dict passed in)."""
    if isinstance(resume, ZoAR):
        if type(resume) is not factory:
            raise ValueError(f"option 'resume' holds a {type(resume).__name__}, not the state of a {name} run")
        opt = copy.deepcopy(resume)
    elif isinstance(resume, dict):
        try:
            opt = factory.from_state_dict(resume, device=device)
        except StateError as e:
            raise StateError(f"option 'resume' is not a valid {name} state: {e}") from None
    else:
        raise ValueError(f"option 'resume' must be the `state` of an earlier {name} result, got "
                         f"{type(resume).__name__}")
    if opt.dim != d:
        raise ValueError(f"option 'resume' holds a {opt.dim}-dimensional state but x0 has {d} elements")
    return opt
