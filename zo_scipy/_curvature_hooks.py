r"""``zo_scipy.ZoVHCurvature``: zeroth-order gradient and Hessian hooks for SciPy's solvers.

.. code-block:: python

    curv = ZoVHCurvature(rosen, num_queries=40, mu=1e-4, seed=0)
    minimize(rosen, x0, method="trust-ncg", jac=curv.grad, hessp=curv.hessp)
    minimize(rosen, x0, method="trust-constr", **curv.hooks("trust-constr"))

A thin adapter over the running curvature model :class:`~zo_scipy.core.curvature.CurvatureModel`:
one batch of queries per point ``x`` gives both the gradient and the low-rank Hessian;
the batch is cached per ``x``, so ``grad``, ``hess``, ``hessp`` and ``inv_hessp`` at the
same point share it (SciPy caches ``fun``/``jac``/``hess`` for the last point only and
never caches ``hessp``). ``nfev`` counts every query, so budgets can be reported
honestly: a solver's total cost is ``res.nfev + curv.nfev``.
"""
from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, cast

import numpy as np
import torch
from scipy.sparse.linalg import LinearOperator

from . import _validation as validation
from .core.curvature import (
    GRADIENT_KINDS, CurvatureEstimate, CurvatureMatrix, CurvatureModel, GradientKind, antithetic_queries,
    solve_shifted,
)
from .core.directions import DirectionKind, make_generator
from .core.evaluation import BatchObjective
from .core.lowrank import PDMethod

#: Which hook :meth:`ZoVHCurvature.hooks` hands each SciPy method that takes ``hess`` or
#: ``hessp``, and the positive-definite surrogate it gets by default (None: the raw
#: estimate). Newton-CG and dogleg need positive curvature; on the 20-d Rosenbrock test
#: "abs" let Newton-CG converge where "clip" stalled, and the reverse for dogleg.
SOLVER_HOOKS: dict[str, tuple[str, PDMethod | None]] = {
    "newton-cg": ("hessp", "abs"),
    "dogleg": ("hess", "clip"),
    "trust-ncg": ("hessp", None),
    "trust-krylov": ("hessp", None),
    "trust-exact": ("hess", None),
    "trust-constr": ("hess", None),
}

class ZoVHCurvature:
    r"""Zeroth-order curvature for SciPy: ``grad``, ``hess``, ``hessp``, ``inv_hessp``.

    At each new point :math:`x` it draws :math:`n` directions :math:`v_k`, evaluates the
    :math:`M = 2n` antithetic queries :math:`y^\pm_k = f(x \pm \mu v_k)` (one batch,
    cached per ``x``) and updates the running model of
    :mod:`zo_scipy.core.curvature`: a least-squares central-difference gradient
    corrected from the model's prediction, and the Hessian
    :math:`H_t = H_{t-1} + \alpha\,\hat H[r]`, ZoVH of the residuals against
    :math:`H_{t-1}` (a control variate that reuses every earlier query). :math:`H_t`
    is kept in low-rank form (at most ``max_rank`` rows): memory and ``hessp`` cost
    :math:`O(\text{max\_rank}\cdot d)`; ``d x d`` is formed only by :meth:`hess` in
    dense format or when ``max_rank >= d``. See ``docs/zovh.md``.

    Parameters
    ----------
    fun : callable
        ``fun(x, *args) -> float`` (or a batch with ``vectorized=True``).
    args : tuple
        Extra arguments of ``fun``.
    num_queries : int, optional
        :math:`M`, evaluations per new point (even: :math:`n = M/2` antithetic pairs).
        Default ``2 * d``.
    mu : float, optional
        Smoothing radius. Default ``1e-4 * max(1, |x0|_inf)`` at the first call
        (central differences: truncation :math:`\mu^2 f'''` against round-off
        :math:`\epsilon |f| / \mu`).
    curvature_rate : float, optional
        :math:`\alpha \in (0, 1]` above. Default :math:`2n/(2n+d^2)`.
    max_rank : int, optional
        Rank cap of the running model; beyond it the model is compressed to its
        ``max_rank`` largest eigenpairs (exact while ``max_rank >= d``). Default
        ``min(d, 4 M)``.
    gradient : {"lstsq", "stein"}
        Gradient estimator (default ``"lstsq"``; ``"stein"``: the unbiased ZoVH gradient).
    directions : {"gaussian", "sphere"}
        Direction distribution (default ``"gaussian"``).
    positive_definite : {None, "clip", "abs"}
        Positive-definite surrogate of the Hessian (eigenvalue clipping / absolute
        value of its small projected matrix, :func:`~zo_scipy.core.lowrank.positive_definite`)
        plus ``damping``. Default None (the raw, possibly indefinite estimate).
    damping : float
        Levenberg term :math:`\delta I` (default 0; with ``positive_definite`` set and
        ``damping=0``, :math:`10^{-8}` times the largest kept eigenvalue).
    hess_format : {"auto", "dense", "operator"}
        What :meth:`hess` returns: ``ndarray`` (``dense``), a
        ``scipy.sparse.linalg.LinearOperator`` (``operator``), or dense when
        ``d <= dense_max_dim`` (``auto``, default).
    dense_max_dim : int
        Threshold of ``hess_format="auto"`` (default 2000).
    cache_size : int
        Number of points whose estimates are kept (default 8).
    seed : int, optional
        Seed of the local direction generator (same seed, same estimates on CPU).
    dtype, device
        Estimator precision and device (float64 on CPU by default).
    vectorized, tensor_input, workers
        How ``fun`` is called (see :class:`~zo_scipy.core.evaluation.BatchObjective`);
        ``workers`` is a map-like callable (``pool.map``) or None.
    max_evals : int, optional
        Hard budget of queries: :class:`~zo_scipy.core.evaluation.BudgetExhausted`
        instead of an extra call.

    Raises
    ------
    ValueError
        ``fun`` not callable, an odd ``num_queries``, ``curvature_rate`` outside
        :math:`(0, 1]`, ``workers`` not a map-like callable; later, a point of another size
        or with NaN/inf.

    See Also
    --------
    zo_scipy.zovh : ZoVH's curvature-aware method as a ``minimize`` method of its own.
    zo_scipy.core.CurvatureModel : the running model behind these hooks.
    zo_scipy.core.woodbury_solve : the solve behind :meth:`inv_hessp`.

    Notes
    -----
    ``nfev`` counts the evaluations of ``fun`` made here (add the solver's ``res.nfev``
    for a run's total); ``nbatches`` the points at which a batch was drawn; ``model``
    is the :class:`~zo_scipy.core.curvature.CurvatureModel` (None before the first call).

    References
    ----------
    - Junbin Qiu, Zhaowei Hong, Renzhe Xu et al., "Revisiting Zeroth-Order Hessian Approximation:
      A Single-Step Policy Optimization Lens", 2026 (the ZoVH paper; the authors' code is at
      https://github.com/Qjbtiger/ZoVH).
    - Charles M. Stein, "Estimation of the mean of a multivariate normal distribution", Annals of
      Statistics 9(6), 1135-1151, 1981 (the Gaussian identity behind second-order estimates).
    - Jorge Nocedal, Stephen J. Wright, "Numerical Optimization", 2nd ed., Springer, 2006
      (Newton, trust-region and Levenberg-Marquardt steps).

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.optimize import minimize, rosen
    >>> import zo_scipy
    >>> curv = zo_scipy.ZoVHCurvature(rosen, seed=0)
    >>> res = minimize(rosen, np.zeros(10), method="trust-ncg", options={"maxiter": 3000},
    ...                **curv.hooks("trust-ncg"))
    >>> bool(res.fun < 1e-8), res.nfev + curv.nfev  # the solver's calls plus the hooks' queries
    (True, 10686)
    >>> curv.nbatches                                # points at which a batch was drawn
    505
    >>> x_best, f_best = curv.best                   # the best query (queries are x +- mu v)
    >>> bool(f_best < 1e-4)
    True
    >>> g, H = curv.estimate(res.x)                  # cached: no new evaluations at res.x
    >>> tuple(g.shape), curv.hess(res.x).shape
    ((10,), (10, 10))
    >>> sorted(curv.hooks("trust-exact"))
    ['hess', 'jac']
    """

    def __init__(
        self,
        fun: Callable[..., Any],
        *,
        args: tuple[Any, ...] = (),
        num_queries: int | None = None,
        mu: float | None = None,
        curvature_rate: float | None = None,
        max_rank: int | None = None,
        gradient: str = "lstsq",
        directions: str = "gaussian",
        positive_definite: str | None = None,
        damping: float = 0.0,
        hess_format: str = "auto",
        dense_max_dim: int = 2000,
        cache_size: int = 8,
        seed: int | None = None,
        dtype: Any = "float64",
        device: Any = "cpu",
        vectorized: bool = False,
        tensor_input: bool = False,
        workers: Callable[..., Any] | None = None,
        max_evals: int | None = None,
    ) -> None:
        if not callable(fun):
            raise ValueError(f"fun must be callable, got {type(fun).__name__}")
        self.fun = fun
        self.args = tuple(args)
        self.num_queries = validation.check_int("num_queries", num_queries, 4, allow_none=True)
        if self.num_queries is not None and self.num_queries % 2:
            raise ValueError(f"option 'num_queries' must be even (antithetic pairs), got {self.num_queries}")
        self.mu = validation.check_positive("mu", mu, allow_none=True)
        rate = validation.check_positive("curvature_rate", curvature_rate, allow_none=True)
        if rate is not None and rate > 1:
            raise ValueError(f"option 'curvature_rate' must lie in (0, 1], got {rate}")
        self.curvature_rate = rate
        self.max_rank = validation.check_int("max_rank", max_rank, 1, allow_none=True)
        self.gradient = validation.check_choice("gradient", gradient, GRADIENT_KINDS)
        self.directions = validation.check_choice("directions", directions, ("gaussian", "sphere"))
        if positive_definite is not None:
            positive_definite = validation.check_choice("positive_definite", positive_definite, ("clip", "abs"))
        self.positive_definite = cast("PDMethod | None", positive_definite)
        # the validators return None only with allow_none=True
        self.damping = cast(float, validation.check_positive("damping", damping, allow_zero=True))
        self.hess_format = validation.check_choice("hess_format", hess_format, ("auto", "dense", "operator"))
        self.dense_max_dim = cast(int, validation.check_int("dense_max_dim", dense_max_dim, 1))
        self.cache_size = cast(int, validation.check_int("cache_size", cache_size, 1))
        self.seed = validation.resolve_seed(seed, None)
        self.dtype = validation.resolve_dtype(dtype)
        self.device = validation.resolve_device(device)
        if workers is not None and not callable(workers):
            raise ValueError(f"option 'workers' must be a map-like callable or None, got {workers!r}")
        self._objective_options: dict[str, Any] = dict(
            vectorized=validation.check_bool("vectorized", vectorized),
            tensor_input=validation.check_bool("tensor_input", tensor_input), map=workers,
            max_evals=validation.check_int("max_evals", max_evals, 1, allow_none=True))
        self._given = (self.num_queries, self.mu, self.curvature_rate, self.max_rank)
        self.generator = make_generator(self.seed, self.device)
        self.model: CurvatureModel | None = None
        self._objective: BatchObjective | None = None
        self._cache: OrderedDict[bytes, CurvatureEstimate] = OrderedDict()
        self._shape: tuple[int, ...] | None = None

    # -- bookkeeping ------------------------------------------------------------------
    def reset(self) -> None:
        """Forget everything learned: the curvature model, the per-point cache, the
        evaluation counter and the generator (back to ``seed``); the settings stay. Use it
        (or a new object) to run a second solve that is counted, and behaves, as a fresh one:
        otherwise the model and the counters carry over from the earlier run.

        Examples
        --------
        >>> import numpy as np
        >>> from scipy.optimize import rosen
        >>> import zo_scipy
        >>> curv = zo_scipy.ZoVHCurvature(rosen, seed=0)
        >>> g = curv.grad(np.zeros(3))
        >>> curv.nfev, curv.nbatches
        (6, 1)
        >>> curv.reset(); curv.nfev, curv.model is None
        (0, True)
        """
        self.num_queries, self.mu, self.curvature_rate, self.max_rank = self._given
        self.generator = make_generator(self.seed, self.device)
        self.model, self._objective, self._shape = None, None, None
        self._cache.clear()

    @property
    def nfev(self) -> int:
        """Evaluations of ``fun`` made here."""
        return 0 if self._objective is None else self._objective.nfev

    @property
    def nbatches(self) -> int:
        """Points at which a batch of queries was drawn."""
        return 0 if self.model is None else self.model.num_updates

    @property
    def best(self) -> tuple[np.ndarray | None, float]:
        """Best query seen so far ``(x, f)`` (the queries are real evaluations too)."""
        if self._objective is None:
            return None, math.inf
        return self._objective.best_x, self._objective.best_f

    def _setup(self, x: np.ndarray) -> None:
        d = x.size
        self._shape = x.shape
        if self.num_queries is None:
            self.num_queries = max(4, 2 * d)
        if self.mu is None:
            self.mu = 1e-4 * max(1.0, float(np.abs(x).max()))
        self._objective = BatchObjective(self.fun, self.args, shape=x.shape, **self._objective_options)
        self.model = CurvatureModel(d, self.num_queries, rate=self.curvature_rate, max_rank=self.max_rank,
                                    gradient=cast(GradientKind, self.gradient),
                                    dtype=self.dtype, device=self.device)
        self.curvature_rate, self.max_rank = self.model.rate, self.model.max_rank

    def _point(self, x: Any) -> np.ndarray:
        arr = np.asarray(x, dtype=np.float64)
        if self._shape is None:
            arr = validation.check_x0(arr)
            self._setup(arr)
        elif arr.size != math.prod(self._shape):
            raise ValueError(f"x has {arr.size} elements but this ZoVHCurvature was first used with "
                             f"{math.prod(self._shape)}")
        if not np.all(np.isfinite(arr)):
            raise ValueError("x contains NaN or inf")
        return arr.reshape(-1)

    def estimate(self, x: Any) -> tuple[torch.Tensor, CurvatureMatrix]:
        """The gradient and the model Hessian at ``x`` (one batch of queries, cached).

        Parameters
        ----------
        x : array_like
            The point (any shape; flattened).

        Returns
        -------
        tuple of torch.Tensor and the model Hessian
            The gradient, ``(d,)``, and the Hessian model at ``x`` (low-rank or dense).

        Raises
        ------
        ValueError
            ``x`` has another size than at the first call, or NaN/inf.
        """
        est = self._estimate(self._point(x))
        return est.gradient, est.hessian

    def _estimate(self, x: np.ndarray) -> CurvatureEstimate:
        key = x.tobytes()
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
            return hit
        # _point has run _setup: the model, objective, mu and num_queries are set
        assert self._objective is not None and self.model is not None
        assert self.mu is not None and self.num_queries is not None
        mu, num_pairs = self.mu, self.num_queries // 2
        point = torch.as_tensor(x, dtype=self.dtype, device=self.device)
        V, X = antithetic_queries(point, num_pairs, mu, generator=self.generator,
                                  kind=cast(DirectionKind, self.directions))
        est = self.model.update(point, V, self._objective(X), mu)
        self._cache[key] = est
        if len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return est

    def _hessian(self, x: np.ndarray, pd_method: PDMethod | None, damping: float) -> CurvatureMatrix:
        return self._estimate(x).variant(pd_method, damping)

    def _numpy(self, t: torch.Tensor) -> np.ndarray:
        return t.detach().cpu().numpy().astype(np.float64, copy=False)

    def _tensor(self, a: Any, name: str) -> torch.Tensor:
        """A vector argument (``p`` of ``hessp``, ``vector`` of ``inv_hessp``) as a tensor, checked."""
        try:
            arr = np.asarray(a, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be a real vector, got {type(a).__name__}") from None
        d = math.prod(self._shape) if self._shape is not None else arr.size
        if arr.size != d:
            raise ValueError(f"{name} has {arr.size} elements but x has {d}")
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} contains NaN or inf")
        return torch.as_tensor(arr, dtype=self.dtype, device=self.device)

    # -- the SciPy hooks -----------------------------------------------------------------
    def grad(self, x: Any, *args: Any) -> np.ndarray:
        r"""Gradient estimate :math:`g` at ``x`` (``jac=`` hook). Extra ``args`` from
        ``minimize`` are ignored: ``fun`` is called with this object's own ``args``.

        Examples
        --------
        >>> import numpy as np
        >>> import zo_scipy
        >>> curv = zo_scipy.ZoVHCurvature(lambda x: float(np.sum(x**2) + x[0]), seed=0)
        >>> np.round(curv.grad(np.zeros(3)), 6) + 0.0
        array([1., 0., 0.])
        """
        gradient = self._estimate(self._point(x)).gradient
        assert self._shape is not None  # set by _point
        return self._numpy(gradient).reshape(self._shape)

    def hess(self, x: Any, *args: Any) -> np.ndarray | LinearOperator:
        """Hessian estimate at ``x`` (``hess=`` hook): a dense ``ndarray`` or a
        ``LinearOperator`` per ``hess_format``; positive definite per the options."""
        return self._hess(x, self.positive_definite, self.damping, self.hess_format)

    def _hess(self, x: Any, pd_method: PDMethod | None, damping: float,
              hess_format: str) -> np.ndarray | LinearOperator:
        flat_x = self._point(x)
        H = self._hessian(flat_x, pd_method, damping)
        d = flat_x.size
        if hess_format == "dense" or (hess_format == "auto" and d <= self.dense_max_dim):
            return self._numpy(H.dense())
        return self._operator(H, d)

    def _operator(self, H: CurvatureMatrix, d: int) -> LinearOperator:
        def product(p: np.ndarray) -> np.ndarray:
            vectors = torch.as_tensor(np.asarray(p, dtype=np.float64), dtype=self.dtype, device=self.device)
            return self._numpy(H.matvec(vectors.reshape(d, -1) if vectors.ndim == 2 else vectors.reshape(-1)))

        return LinearOperator((d, d), matvec=product, rmatvec=product, matmat=product, dtype=np.float64)

    def hessp(self, x: Any, p: Any, *args: Any) -> np.ndarray:
        r"""Hessian-vector product :math:`\hat H p = U^T(c \odot U p)` (``hessp=`` hook), :math:`O(Md)`.

        Examples
        --------
        >>> import numpy as np
        >>> import zo_scipy
        >>> curv = zo_scipy.ZoVHCurvature(lambda x: float(np.sum(x**2)), seed=0)
        >>> curv.hessp(np.ones(2), np.array([1.0, 0.0])).shape
        (2,)
        """
        return self._hessp(x, p, self.positive_definite, self.damping)

    def _hessp(self, x: Any, p: Any, pd_method: PDMethod | None, damping: float) -> np.ndarray:
        H = self._hessian(self._point(x), pd_method, damping)
        return self._numpy(H.matvec(self._tensor(p, "p"))).reshape(np.shape(p))

    def inv_hessp(self, x: Any, vector: Any, lam: float) -> np.ndarray:
        r""":math:`(\lambda I + \hat H)^{-1} v` for ``v = vector``: exact Woodbury (an
        ``M x M`` solve), or a direct solve when the model is dense.

        Examples
        --------
        >>> import numpy as np
        >>> import zo_scipy
        >>> curv = zo_scipy.ZoVHCurvature(lambda x: float(np.sum(x**2)), seed=0)
        >>> x, v = np.ones(3), np.array([1.0, 2.0, 3.0])
        >>> z = curv.inv_hessp(x, v, lam=1.0)
        >>> bool(np.allclose(z + curv.hessp(x, z), v))
        True
        """
        lam = cast(float, validation.check_positive("lam", lam))
        H = self._hessian(self._point(x), self.positive_definite, self.damping)
        return self._numpy(solve_shifted(H, self._tensor(vector, "vector"), lam)).reshape(np.shape(vector))

    def hooks(self, method: str) -> dict[str, Any]:
        """The keyword arguments to give ``scipy.optimize.minimize`` for ``method``:
        ``jac`` plus ``hess`` or ``hessp`` as the method accepts them (see
        :data:`SOLVER_HOOKS`), with a positive-definite surrogate where the method needs
        one (its default there, or ``positive_definite`` when set). They share this
        object's queries, cache and ``nfev``.

        Raises
        ------
        ValueError
            ``method`` is not one of the solvers in :data:`SOLVER_HOOKS`.

        Examples
        --------
        >>> import zo_scipy
        >>> sorted(zo_scipy.ZoVHCurvature(sum).hooks("trust-ncg"))
        ['hessp', 'jac']
        """
        key = str(method).lower()
        if key not in SOLVER_HOOKS:
            raise ValueError(f"method must be one of {tuple(SOLVER_HOOKS)}, got {method!r}")
        hook, default_pd = SOLVER_HOOKS[key]
        pd_method = self.positive_definite or default_pd
        damping = self.damping
        if hook == "hessp":
            return {"jac": self.grad, "hessp": lambda x, p, *a: self._hessp(x, p, pd_method, damping)}
        # only trust-constr takes an operator
        hess_format = self.hess_format if key == "trust-constr" else "dense"
        return {"jac": self.grad, "hess": lambda x, *a: self._hess(x, pd_method, damping, hess_format)}
