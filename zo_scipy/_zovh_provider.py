r"""``zo_scipy.ZoVH``: zeroth-order gradient and Hessian hooks for SciPy's solvers.

>>> curv = ZoVH(rosen, num_queries=40, mu=1e-4, seed=0)
>>> minimize(rosen, x0, method="trust-ncg", jac=curv.grad, hessp=curv.hessp)
>>> minimize(rosen, x0, method="trust-constr", **curv.hooks("trust-constr"))

One batch of queries :math:`y_i = f(x + \mu u_i)` per point ``x`` gives both the
gradient and the low-rank Hessian (:mod:`zo_scipy.core.hessian`); the batch is
cached per ``x``, so ``grad``, ``hess``, ``hessp`` and ``inv_hessp`` at the same
point share it (SciPy caches ``fun``/``jac``/``hess`` for the last point only and
never caches ``hessp``). ``nfev`` counts every query, so budgets can be reported
honestly: a solver's total cost is ``res.nfev + curv.nfev``.
"""
from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from scipy.sparse.linalg import LinearOperator

from . import _validation as v
from .core.directions import make_generator, sample_directions
from .core.evaluation import BatchObjective
from .core.hessian import LowRankHessian, compress, positive_definite, woodbury_solve, zovh_gradient, zovh_hessian

#: Which hook :meth:`ZoVH.hooks` hands each SciPy method (API_NOTES: SciPy 1.17) and
#: the positive-definite surrogate it gets by default (None: the raw estimate). Newton-CG
#: and dogleg need positive curvature; on the 20-d Rosenbrock test "abs" let Newton-CG
#: converge where "clip" stalled, and the reverse for dogleg.
SOLVER_HOOKS: dict[str, tuple[str, str | None]] = {
    "newton-cg": ("hessp", "abs"),
    "dogleg": ("hess", "clip"),
    "trust-ncg": ("hessp", None),
    "trust-krylov": ("hessp", None),
    "trust-exact": ("hess", None),
    "trust-constr": ("hess", None),
}


class _DenseModel:
    """The running model as a ``d x d`` matrix: used when ``max_rank >= d``, where the
    low-rank form would hold at least ``d`` directions anyway (same O(d^2) memory) and
    re-compressing it every iteration costs a QR and an eigendecomposition."""

    def __init__(self, B: torch.Tensor) -> None:
        self.B = B

    @property
    def rank_bound(self) -> int:
        return int(self.B.shape[0])

    def matvec(self, v: torch.Tensor) -> torch.Tensor:
        return self.B @ v

    def dense(self) -> torch.Tensor:
        return self.B.clone()

    def low_rank(self) -> LowRankHessian:
        evals, V = torch.linalg.eigh((self.B + self.B.T) / 2)
        return LowRankHessian(V.T.contiguous(), evals)


def _low_rank(H: LowRankHessian | _DenseModel) -> LowRankHessian:
    return H.low_rank() if isinstance(H, _DenseModel) else H


@dataclass
class _Estimate:
    g: torch.Tensor
    H: LowRankHessian | _DenseModel
    variants: dict[tuple[str | None, float], LowRankHessian] = field(default_factory=dict)


class ZoVH:
    r"""Zeroth-order curvature provider: ``grad``, ``hess``, ``hessp``, ``inv_hessp``.

    At each new point :math:`x` it draws :math:`n` Gaussian directions
    :math:`v_k`, evaluates the :math:`M = 2n` antithetic queries
    :math:`y^\pm_k = f(x \pm \mu v_k)` (one batch, cached per ``x``) and forms:

    - the gradient from the directional derivatives
      :math:`s_k = (y^+_k - y^-_k)/(2\mu) = v_k^T \nabla f + O(\mu^2)`: the least-squares
      correction :math:`g = g_m + V^+(s - V g_m)` of the model prediction
      :math:`g_m = g_{prev} + H_{t-1}(x - x_{prev})` (exact up to :math:`O(\mu^2)` when
      :math:`n \ge d`; ``gradient="stein"`` gives the unbiased ZoVH gradient instead);
    - the Hessian by ZoVH with a *model baseline* (a control variate that reuses every
      earlier query through the running model :math:`H_{t-1}`): the residual values
      :math:`r_i = y_i - \tfrac{\mu^2}{2} u_i^T H_{t-1} u_i` go through the mean-baseline
      estimator (:func:`~zo_scipy.core.hessian.zovh_hessian`), whose expectation is
      :math:`\nabla^2 F_\mu(x) - H_{t-1}` (Stein), and

      .. math:: H_t = H_{t-1} + \alpha\, \hat H[r].

      ``curvature_rate`` :math:`\alpha = 1` is plain per-point ZoVH (unbiased, very
      noisy: relative Frobenius error about :math:`d/\sqrt{2n}`); the default
      :math:`\alpha = 2n/(2n + d^2)` balances that noise against tracking, so the error
      contracts geometrically while the Hessian changes slowly (the residual's
      variance scales with :math:`\|\nabla^2 f - H_{t-1}\|_F^2`).

    :math:`H_t` is kept in low-rank form ``U`` (at most ``max_rank`` rows) and weights:
    memory :math:`O(\text{max\_rank}\cdot d)`, ``hessp`` costs :math:`O(\text{max\_rank}\cdot d)`;
    ``d x d`` is formed only by :meth:`hess` in dense format.

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
        Gradient estimator (default ``"lstsq"``, see above).
    directions : {"gaussian", "sphere"}
        Direction distribution (default ``"gaussian"``).
    positive_definite : {None, "clip", "abs"}
        Positive-definite surrogate of the Hessian (eigenvalue clipping / absolute
        value of its small projected matrix, :func:`~zo_scipy.core.hessian.positive_definite`)
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

    Notes
    -----
    ``nfev`` counts the evaluations of ``fun`` made by this provider (add the solver's
    ``res.nfev`` for a run's total); ``nbatches`` the points at which a batch was drawn.
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
        self.num_queries = v.check_int("num_queries", num_queries, 4, allow_none=True)
        if self.num_queries is not None and self.num_queries % 2:
            raise ValueError(f"option 'num_queries' must be even (antithetic pairs), got {self.num_queries}")
        self.mu = v.check_positive("mu", mu, allow_none=True)
        rate = v.check_positive("curvature_rate", curvature_rate, allow_none=True)
        if rate is not None and rate > 1:
            raise ValueError(f"option 'curvature_rate' must lie in (0, 1], got {rate}")
        self.curvature_rate = rate
        self.max_rank = v.check_int("max_rank", max_rank, 1, allow_none=True)
        self.gradient = v.check_choice("gradient", gradient, ("lstsq", "stein"))
        self.directions = v.check_choice("directions", directions, ("gaussian", "sphere"))
        if positive_definite is not None:
            positive_definite = v.check_choice("positive_definite", positive_definite, ("clip", "abs"))
        self.positive_definite = positive_definite
        self.damping = float(v.check_positive("damping", damping, allow_zero=True))  # type: ignore[arg-type]
        self.hess_format = v.check_choice("hess_format", hess_format, ("auto", "dense", "operator"))
        self.dense_max_dim = int(v.check_int("dense_max_dim", dense_max_dim, 1))  # type: ignore[arg-type]
        self.cache_size = int(v.check_int("cache_size", cache_size, 1))  # type: ignore[arg-type]
        self.seed = v.resolve_seed(seed, None)
        self.dtype = v.resolve_dtype(dtype)
        self.device = v.resolve_device(device)
        if workers is not None and not callable(workers):
            raise ValueError(f"option 'workers' must be a map-like callable or None, got {workers!r}")
        self._objective_kw = dict(vectorized=v.check_bool("vectorized", vectorized),
                                  tensor_input=v.check_bool("tensor_input", tensor_input), map=workers,
                                  max_evals=v.check_int("max_evals", max_evals, 1, allow_none=True))
        self.generator = make_generator(self.seed, self.device)
        self._objective: BatchObjective | None = None
        self._cache: OrderedDict[bytes, _Estimate] = OrderedDict()
        self._shape: tuple[int, ...] | None = None
        self._model: LowRankHessian | _DenseModel | None = None  # running curvature model H_{t-1}
        self._last: tuple[torch.Tensor, torch.Tensor] | None = None  # (x, g) of the previous batch
        self.nbatches = 0

    # -- bookkeeping ------------------------------------------------------------------
    @property
    def nfev(self) -> int:
        """Evaluations of ``fun`` made by this provider."""
        return 0 if self._objective is None else self._objective.nfev

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
        n = self.num_queries // 2
        if self.mu is None:
            self.mu = 1e-4 * max(1.0, float(np.abs(x).max()))
        if self.curvature_rate is None:
            self.curvature_rate = 2 * n / (2 * n + float(d) ** 2)
        if self.max_rank is None:
            self.max_rank = min(d, 4 * self.num_queries)
        self._objective = BatchObjective(self.fun, self.args, shape=x.shape, **self._objective_kw)  # type: ignore[arg-type]
        if self.max_rank >= d:
            self._model = _DenseModel(torch.zeros((d, d), dtype=self.dtype, device=self.device))
        else:
            self._model = LowRankHessian(torch.zeros((0, d), dtype=self.dtype, device=self.device),
                                         torch.zeros(0, dtype=self.dtype, device=self.device))

    def _point(self, x: Any) -> np.ndarray:
        arr = np.asarray(x, dtype=np.float64)
        if self._shape is None:
            arr = v.check_x0(arr)
            self._setup(arr)
        elif arr.size != int(np.prod(self._shape)):
            raise ValueError(f"x has {arr.size} elements but this ZoVH was first used with "
                             f"{int(np.prod(self._shape))}")
        if not np.all(np.isfinite(arr)):
            raise ValueError("x contains NaN or inf")
        return arr.reshape(-1)

    def estimate(self, x: Any) -> tuple[torch.Tensor, LowRankHessian]:
        """The gradient and low-rank Hessian at ``x`` (one batch of queries, cached)."""
        e = self._estimate(self._point(x))
        return e.g, e.H

    def _estimate(self, x: np.ndarray) -> _Estimate:
        key = x.tobytes()
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
            return hit
        assert self._objective is not None and self._model is not None and self.mu is not None
        mu, d = self.mu, x.size
        n = int(self.num_queries) // 2  # type: ignore[arg-type]
        xt = torch.as_tensor(x, dtype=self.dtype, device=self.device)
        V = sample_directions(n, d, generator=self.generator, kind=self.directions,  # type: ignore[arg-type]
                              dtype=self.dtype, device=self.device)
        U = torch.cat([V, -V])
        y = self._objective(xt + mu * U)
        if not bool(torch.isfinite(y).all()):
            raise FloatingPointError(f"fun returned a non-finite value within mu={mu:g} of x; "
                                     "ZoVH cannot estimate derivatives there")
        self.nbatches += 1
        model = self._model
        if self.gradient == "stein":
            g = zovh_gradient(U, y, mu, antithetic=True)
        else:
            s = (y[:n] - y[n:]) / (2 * mu)  # directional derivatives v_k^T grad f + O(mu^2)
            gm = torch.zeros(d, dtype=self.dtype, device=self.device)
            if self._last is not None and n < d:  # model prior; irrelevant when n >= d (exact fit)
                gm = self._last[1] + model.matvec(xt - self._last[0])
            r = (s - V @ gm)[:, None]
            if n == d:
                g = gm + torch.linalg.solve(V, r)[:, 0]
            else:
                g = gm + torch.linalg.lstsq(V, r, driver="gelsd").solution[:, 0]
        # Hessian: ZoVH of the residual against the running model (control variate)
        quad = 0.5 * mu * mu * (U * model.matvec(U.T).T).sum(1) if model.rank_bound else 0.0
        R = zovh_hessian(U, y - quad, mu, antithetic=True)
        # A constant rate: early models are shrunk towards 0 (a ridge prior), which the
        # trust-region solvers handle far better than the 1/t running mean, whose early
        # relative error ~ d / sqrt(2 n t) is large (measured: 3x more iterations).
        alpha = float(self.curvature_rate)  # type: ignore[arg-type]
        H: LowRankHessian | _DenseModel
        if isinstance(model, _DenseModel):
            H = _DenseModel(model.B + R.U.T @ ((alpha * R.coef)[:, None] * R.U))
        else:
            H = LowRankHessian(torch.cat([model.U, R.U]), torch.cat([model.coef, alpha * R.coef]))
            H = compress(H, int(self.max_rank))  # type: ignore[arg-type]
        self._model = H
        self._last = (xt, g)
        est = _Estimate(g=g, H=H)
        self._cache[key] = est
        if len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return est

    def _hessian(self, x: np.ndarray, pd: str | None, damping: float) -> LowRankHessian | _DenseModel:
        e = self._estimate(x)
        if pd is None and damping == 0:
            return e.H  # type: ignore[return-value]
        key = (pd, damping)
        if key not in e.variants:
            base = _low_rank(e.H)  # for a dense model: its eigendecomposition (orthonormal U)
            if pd is None:
                e.variants[key] = LowRankHessian(base.U, base.coef, damping)
            else:
                if isinstance(e.H, _DenseModel):  # already eigen-decomposed: apply phi directly
                    lam_ = base.coef.clamp_min(0) if pd == "clip" else base.coef.abs()
                    H = LowRankHessian(base.U, lam_)
                else:
                    H = positive_definite(base, method=pd)  # type: ignore[arg-type]
                delta = damping
                if delta == 0 and H.rank_bound:
                    # strictly positive definite for solvers that divide by curvature
                    delta = 1e-8 * max(float(H.coef.max()), 1e-300)
                e.variants[key] = LowRankHessian(H.U, H.coef, delta)
        return e.variants[key]

    def _np(self, t: torch.Tensor) -> np.ndarray:
        return t.detach().cpu().numpy().astype(np.float64, copy=False)

    # -- the SciPy hooks -----------------------------------------------------------------
    def grad(self, x: Any, *args: Any) -> np.ndarray:
        r"""Gradient estimate :math:`g` at ``x`` (``jac=`` hook). Extra ``args`` from
        ``minimize`` are ignored: the provider calls ``fun`` with its own ``args``."""
        xf = self._point(x)
        return self._np(self._estimate(xf).g).reshape(self._shape)  # type: ignore[arg-type]

    def hess(self, x: Any, *args: Any) -> np.ndarray | LinearOperator:
        """Hessian estimate at ``x`` (``hess=`` hook): a dense ``ndarray`` or a
        ``LinearOperator`` per ``hess_format``; positive definite per the options."""
        return self._hess(x, self.positive_definite, self.damping, self.hess_format)

    def _hess(self, x: Any, pd: str | None, damping: float, fmt: str) -> np.ndarray | LinearOperator:
        xf = self._point(x)
        H = self._hessian(xf, pd, damping)
        d = xf.size
        if fmt == "dense" or (fmt == "auto" and d <= self.dense_max_dim):
            return self._np(H.dense())
        return self._operator(H, d)

    def _operator(self, H: LowRankHessian | _DenseModel, d: int) -> LinearOperator:
        def mv(p: np.ndarray) -> np.ndarray:
            pt = torch.as_tensor(np.asarray(p, dtype=np.float64), dtype=self.dtype, device=self.device)
            return self._np(H.matvec(pt.reshape(d, -1) if pt.ndim == 2 else pt.reshape(-1)))

        return LinearOperator((d, d), matvec=mv, rmatvec=mv, matmat=mv, dtype=np.float64)

    def hessp(self, x: Any, p: Any, *args: Any) -> np.ndarray:
        r"""Hessian-vector product :math:`\hat H p = U^T(c \odot U p)` (``hessp=`` hook), :math:`O(Md)`."""
        return self._hessp(x, p, self.positive_definite, self.damping)

    def _hessp(self, x: Any, p: Any, pd: str | None, damping: float) -> np.ndarray:
        xf = self._point(x)
        H = self._hessian(xf, pd, damping)
        pt = torch.as_tensor(np.asarray(p, dtype=np.float64).reshape(-1), dtype=self.dtype, device=self.device)
        return self._np(H.matvec(pt)).reshape(np.shape(p))

    def inv_hessp(self, x: Any, v_: Any, lam: float) -> np.ndarray:
        r""":math:`(\lambda I + \hat H)^{-1} v` by exact Woodbury (an ``M x M`` solve)."""
        lam = float(v.check_positive("lam", lam))  # type: ignore[arg-type]
        xf = self._point(x)
        H = self._hessian(xf, self.positive_definite, self.damping)
        vt = torch.as_tensor(np.asarray(v_, dtype=np.float64).reshape(-1), dtype=self.dtype, device=self.device)
        if isinstance(H, _DenseModel):  # d x d already: a direct solve
            A = H.B + lam * torch.eye(H.B.shape[0], dtype=H.B.dtype, device=H.B.device)
            return self._np(torch.linalg.solve(A, vt)).reshape(np.shape(v_))
        return self._np(woodbury_solve(H, vt, lam)).reshape(np.shape(v_))

    def hooks(self, method: str) -> dict[str, Any]:
        """The keyword arguments to give ``scipy.optimize.minimize`` for ``method``:
        ``jac`` plus ``hess`` or ``hessp`` as the method accepts them (see
        :data:`SOLVER_HOOKS`), with a positive-definite surrogate where the method needs
        one (its default there, or ``positive_definite`` when set). They share this
        provider's queries, cache and ``nfev``."""
        key = str(method).lower()
        if key not in SOLVER_HOOKS:
            raise ValueError(f"method must be one of {tuple(SOLVER_HOOKS)}, got {method!r}")
        kind, default_pd = SOLVER_HOOKS[key]
        pd = self.positive_definite or default_pd
        damping = self.damping
        if kind == "hessp":
            return {"jac": self.grad, "hessp": lambda x, p, *a: self._hessp(x, p, pd, damping)}
        fmt = self.hess_format if key == "trust-constr" else "dense"  # only trust-constr takes an operator
        return {"jac": self.grad, "hess": lambda x, *a: self._hess(x, pd, damping, fmt)}
