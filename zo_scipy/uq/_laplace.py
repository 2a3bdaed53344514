r"""``zo_scipy.uq.laplace``: a Laplace posterior from function values only (see ``docs/uq.md``).

An adapter over :mod:`zo_scipy.core.laplace` (curvature fit, positive-definite repair, evidence),
:class:`zo_scipy.core.curvature.AveragedCurvature` (the unbiased ZoVH accumulation) and
:class:`zo_scipy.core.evaluation.BatchObjective` (budget, workers, vectorized calls).
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

import numpy as np
import torch
from scipy.sparse.linalg import LinearOperator
from scipy.special import logsumexp, ndtri

from .._validation import standardize_bounds
from .._zoar import AUTO_SINGLE_THREAD_ELEMENTS, evaluation_map, limit_torch_threads
from ..core.curvature import AveragedCurvature
from ..core.evaluation import BatchObjective
from ..core.laplace import (
    PDRepair, QuadraticFit, central_second_differences, fit_second_differences, marginal_variances,
    precision_low_rank, quadratic_log_evidence, repaired_precision,
)
from ..core.lowrank import LowRankHessian, PrecisionFactor
from ..core.options import resolve_device, resolve_dtype
from ._transforms import BoxTransform

Estimator = Literal["auto", "regression", "zovh"]
Diagonal = Literal["auto", "coordinate", "isotropic", "none"]
ESTIMATORS = ("auto", "regression", "zovh")
DIAGONALS = ("auto", "coordinate", "isotropic", "none")


class Evidence(NamedTuple):
    """A log evidence (nats) and its standard error from the queries' variance (NaN where the
    queries leave it unidentified, e.g. an interpolating fit with no spare second difference).

    Attributes
    ----------
    value : float
        The log evidence, in nats.
    se : float
        Its standard error (NaN where the queries do not identify it).

    See Also
    --------
    LaplacePosterior.log_evidence : returns one.

    References
    ----------
    - David J. C. MacKay, "A practical Bayesian framework for backpropagation networks", Neural
      Computation 4(3), 448-472, 1992 (the Laplace approximation and its evidence).
    - Robert E. Kass, Adrian E. Raftery, "Bayes factors", Journal of the American Statistical
      Association 90(430), 773-795, 1995.

    Examples
    --------
    >>> from zo_scipy.uq import Evidence
    >>> value, se = Evidence(-12.5, 0.02)
    >>> value, se
    (-12.5, 0.02)
    """

    value: float
    se: float


@dataclass(frozen=True)
class Diagnostics:
    r"""The importance-sampling check of :meth:`LaplacePosterior.diagnose`: ArviZ's PSIS
    ``khat`` (> 0.7: the Gaussian fits badly; ``-inf`` when every weight is equal to round-off, i.e.
    the Gaussian is exact and there is no tail to fit), the importance-sampling log evidence, the
    Laplace one it is compared with, and the evaluations it spent.

    See Also
    --------
    LaplacePosterior.diagnose : returns one.

    Notes
    -----
    With draws :math:`z_s \sim q` and :math:`\log w_s = -U(z_s) - \log q(z_s)`, the
    importance-sampling evidence is :math:`\log \frac1S \sum_s w_s`; PSIS fits a generalized
    Pareto distribution to the largest weights, and its shape :math:`\hat k > 0.7` says the
    importance weights (and the Gaussian) are unreliable.

    References
    ----------
    - Aki Vehtari, Daniel Simpson, Andrew Gelman, Yuling Yao, Jonah Gabry, "Pareto smoothed
      importance sampling", Journal of Machine Learning Research 25(72), 1-58, 2024, arXiv:1507.02646.
    - David J. C. MacKay, "A practical Bayesian framework for backpropagation networks", Neural
      Computation 4(3), 448-472, 1992 (the Laplace approximation and its evidence).

    Examples
    --------
    A banana-shaped target is flagged:

    >>> import numpy as np
    >>> import zo_scipy.uq as uq
    >>> banana = lambda t: 0.5 * t[0] ** 2 + 0.5 * (t[1] - 2.0 * t[0] ** 2) ** 2 / 0.1
    >>> post = uq.laplace(banana, np.array([0.1, 0.1]), seed=0)
    >>> post.diagnose(num_samples=400, seed=0).ok
    False
    """

    khat: float
    log_evidence_is: float
    log_evidence_laplace: float
    num_samples: int
    nfev: int
    ok: bool


class _Target:
    """``fun(theta(z), *args) - log|dtheta/dz|`` on rows of working coordinates (picklable)."""

    def __init__(self, fun: Callable[..., Any], args: tuple[Any, ...], shape: tuple[int, ...],
                 transform: BoxTransform | None, vectorized: bool) -> None:
        self.fun, self.args, self.shape, self.transform, self.vectorized = fun, args, shape, transform, vectorized

    def __call__(self, z: np.ndarray) -> Any:
        z = np.asarray(z, dtype=np.float64)
        jac: float | np.ndarray
        if self.transform is None:
            theta, jac = z, 0.0
        else:
            theta, jac = self.transform.forward(z), self.transform.log_abs_det_jacobian(z)
        if self.vectorized:
            out = np.asarray(self.fun(theta.reshape((theta.shape[0], *self.shape)), *self.args), dtype=np.float64)
            return out.reshape(-1) - jac
        return float(np.asarray(self.fun(theta.reshape(self.shape), *self.args), dtype=np.float64)) - float(jac)


@dataclass
class _Queries:
    """Everything measured at the mode (working coordinates, float64)."""

    mode: np.ndarray
    value: float  # fun at the mode (without the stated prior)
    mu: float
    diag: torch.Tensor  # diagonal baseline b of fun's Hessian
    rows: torch.Tensor  # V (unit) or ZoVH directions
    coef: torch.Tensor  # a
    gradient: torch.Tensor | None  # of fun; None: not determined (stationarity assumed)
    gradient_determined: bool
    fit: QuadraticFit | None
    batches: list[LowRankHessian] | None
    coordinate: bool
    isotropic_count: int
    nfev: int
    n_nonfinite: int
    estimator: str


@dataclass
class LaplacePosterior:
    r"""The Gaussian :math:`N(m, P^{-1})` in working coordinates :math:`z` (the user's parameters
    when no bounds are given), with :math:`P = D + W^T\operatorname{diag}(l)W` positive definite.

    ``mean`` is :math:`m`: the mode plus the Newton step of the local quadratic model when the
    gradient is determined by the queries (else the mode). :meth:`sample` and :meth:`interval`
    are in the user's space (mapped through the bounds' transform); ``mean``, ``cov``, :meth:`std`
    are the Gaussian's, in working coordinates; :meth:`logpdf` takes user-space points.

    See Also
    --------
    laplace : builds it.
    plot_marginals, plot_pairs : figures of it.

    Notes
    -----
    Log density, in working coordinates,
    :math:`\log q(z) = -\tfrac12 (z - m)^T P (z - m) - \tfrac d2 \log 2\pi + \tfrac12 \log\det P`;
    with bounds, :meth:`logpdf` adds :math:`-\log|\partial\theta/\partial z|`.

    References
    ----------
    - Luke Tierney, Joseph B. Kadane, "Accurate approximations for posterior moments and marginal
      densities", Journal of the American Statistical Association 81(393), 82-86, 1986.
    - David J. C. MacKay, "A practical Bayesian framework for backpropagation networks", Neural
      Computation 4(3), 448-472, 1992 (the Laplace approximation and its evidence).

    Examples
    --------
    >>> import numpy as np
    >>> import zo_scipy.uq as uq
    >>> A = np.diag([1.0, 4.0])                                   # U(theta) = theta^T A theta / 2
    >>> post = uq.laplace(lambda t: 0.5 * t @ A @ t, np.ones(2), seed=0)
    >>> lo, hi = post.interval(0.95)
    >>> np.round(hi, 3)
    array([1.96, 0.98])
    >>> post.sample(1000, rng=0).shape
    (1000, 2)
    >>> post.dim, np.round(post.var(), 6), post.precision.dense().diagonal().round(decimals=6).tolist()
    (2, array([1.  , 0.25]), [1.0, 4.0])
    >>> round(post.lowrank_variance_fraction, 6), post.prior_variance_fraction   # no stated prior
    (1.0, nan)
    >>> print(post.summary().splitlines()[0])
    Laplace posterior, d = 2, nfev = 2019 (mode 2000, curvature 19; estimator regression, mu = 0.0951)
    """

    mean: np.ndarray
    mode: np.ndarray
    factor: PrecisionFactor
    repair: PDRepair
    nfev: int
    nfev_mode: int
    nfev_curvature: int
    prior_precision: np.ndarray | None
    prior_mean: np.ndarray | None
    transform: BoxTransform | None
    messages: list[str]
    is_minimum: bool
    _queries: _Queries = field(repr=False)
    _target: _Target = field(repr=False)
    _workers: Any = field(repr=False)
    _dtype: torch.dtype = field(repr=False)
    _device: torch.device = field(repr=False)
    _alpha0: np.ndarray | None = field(repr=False)
    _log_evidence: float = field(repr=False, default=math.nan)
    _floor: float = field(repr=False, default=1e-6)

    # -- the Gaussian -------------------------------------------------------------------
    @property
    def dim(self) -> int:
        """The dimension ``d``."""
        return int(self.mean.shape[0])

    @property
    def precision(self) -> LowRankHessian:
        r""":math:`P` as :class:`~zo_scipy.core.lowrank.LowRankHessian`: diagonal :math:`D` plus rows
        :math:`W` with weights :math:`l` (:math:`l_j > -1` relative to the whitened diagonal; see
        :func:`~zo_scipy.core.laplace.precision_low_rank`)."""
        return precision_low_rank(self.factor)

    def _t(self, a: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.asarray(a, dtype=np.float64), dtype=self._dtype, device=self._device)

    def _np(self, t: torch.Tensor) -> np.ndarray:
        return t.detach().to("cpu", torch.float64).numpy()

    @property
    def cov(self) -> LinearOperator:
        r""":math:`P^{-1}` as a ``LinearOperator`` (Woodbury products, :math:`O(r d)` each).

        Examples
        --------
        >>> import numpy as np
        >>> import zo_scipy.uq as uq
        >>> A = np.diag([1.0, 4.0])                                   # U(theta) = theta^T A theta / 2
        >>> post = uq.laplace(lambda t: 0.5 * t @ A @ t, np.ones(2), seed=0)
        >>> np.round(post.cov @ np.array([1.0, 1.0]), 6)
        array([1.  , 0.25])
        """
        d = self.dim

        def mv(v: np.ndarray) -> np.ndarray:
            v = np.asarray(v, dtype=np.float64)
            out = self._np(self.factor.solve(self._t(v.reshape(d, -1))))
            return out.reshape(v.shape)

        return LinearOperator((d, d), matvec=mv, matmat=mv, rmatvec=mv, dtype=np.float64)

    def cov_dense(self, *, max_dim: int = 5000) -> np.ndarray:
        """The ``d x d`` covariance (only on request; refused beyond ``max_dim``).

        Raises
        ------
        ValueError
            ``d > max_dim``.

        Examples
        --------
        >>> import numpy as np
        >>> import zo_scipy.uq as uq
        >>> A = np.diag([1.0, 4.0])                                   # U(theta) = theta^T A theta / 2
        >>> post = uq.laplace(lambda t: 0.5 * t @ A @ t, np.ones(2), seed=0)
        >>> np.round(post.cov_dense(), 6) + 0.0
        array([[1.  , 0.  ],
               [0.  , 0.25]])
        """
        if self.dim > max_dim:
            raise ValueError(f"a dense covariance of dimension {self.dim} holds {self.dim ** 2:.3g} numbers; "
                             f"use .cov (a LinearOperator) or raise max_dim")
        return self._np(self.factor.solve(torch.eye(self.dim, dtype=self._dtype, device=self._device)))

    def var(self) -> np.ndarray:
        """Marginal variances in working coordinates (never negative; :math:`O(r d)`)."""
        return self._np(marginal_variances(self.factor))

    def std(self) -> np.ndarray:
        """Marginal standard deviations in working coordinates.

        Examples
        --------
        >>> import numpy as np
        >>> import zo_scipy.uq as uq
        >>> A = np.diag([1.0, 4.0])                                   # U(theta) = theta^T A theta / 2
        >>> post = uq.laplace(lambda t: 0.5 * t @ A @ t, np.ones(2), seed=0)
        >>> np.round(post.std(), 6)
        array([1. , 0.5])
        """
        return np.sqrt(self.var())

    def _to_user(self, z: np.ndarray) -> np.ndarray:
        return z if self.transform is None else self.transform.forward(z)

    def sample(self, n: int, rng: int | np.random.Generator | torch.Generator | None = None, *,
               working: bool = False) -> np.ndarray:
        r"""``(n, d)`` draws (user space; ``working=True``: working coordinates),
        :math:`m + P^{-1/2}\varepsilon` in :math:`O(r d)` per draw.

        Parameters
        ----------
        n : int
            Number of draws.
        rng : int, numpy.random.Generator, torch.Generator or None
            Source of randomness (an int seeds one; never the global state).
        working : bool
            Return working coordinates instead of the user's parameters.

        Returns
        -------
        numpy.ndarray
            ``(n, d)``.

        Examples
        --------
        >>> import numpy as np
        >>> import zo_scipy.uq as uq
        >>> A = np.diag([1.0, 4.0])                                   # U(theta) = theta^T A theta / 2
        >>> post = uq.laplace(lambda t: 0.5 * t @ A @ t, np.ones(2), seed=0)
        >>> np.round(post.sample(20000, rng=0).std(0), 1)
        array([1. , 0.5])
        """
        if isinstance(rng, torch.Generator):
            gen = rng
        else:
            seed = (int(rng.integers(2 ** 62)) if isinstance(rng, np.random.Generator)
                    else int(np.random.SeedSequence(rng).generate_state(1, np.uint64)[0] >> np.uint64(2)))
            gen = torch.Generator(device=self._device).manual_seed(seed)
        Z = self._np(self.factor.sample(int(n), generator=gen)) + self.mean
        return Z if working else self._to_user(Z)

    def interval(self, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
        r"""Central credible interval per coordinate, in user space (the working-coordinate
        Gaussian's quantiles mapped through the monotone transform).

        Parameters
        ----------
        level : float
            In (0, 1).

        Returns
        -------
        tuple of numpy.ndarray
            ``(lower, upper)``, one entry per coordinate.

        Raises
        ------
        ValueError
            ``level`` outside (0, 1).

        Examples
        --------
        With bounds the interval stays inside them (here :math:`\theta > 0`):

        >>> import numpy as np
        >>> import zo_scipy.uq as uq
        >>> U = lambda t: 0.5 * (np.log(t[0]) ** 2) / 0.25 + np.log(t[0])   # log-normal, sigma 0.5
        >>> post = uq.laplace(U, np.array([2.0]), bounds=[(0, None)], seed=0)
        >>> lo, hi = post.interval(0.9)
        >>> np.round(np.log([lo[0], hi[0]]), 3)                        # +-1.645 sigma in log space
        array([-0.822,  0.822])
        """
        if not 0 < level < 1:
            raise ValueError(f"level must lie in (0, 1), got {level}")
        q = float(ndtri(0.5 + level / 2))
        s = self.std()
        return self._to_user(self.mean - q * s), self._to_user(self.mean + q * s)

    def logpdf(self, x: Any) -> np.ndarray | float:
        """Log density of the approximation at user-space point(s) ``x`` (rows), with the
        transform's Jacobian.

        Examples
        --------
        >>> import numpy as np
        >>> import zo_scipy.uq as uq
        >>> A = np.diag([1.0, 4.0])                                   # U(theta) = theta^T A theta / 2
        >>> post = uq.laplace(lambda t: 0.5 * t @ A @ t, np.ones(2), seed=0)
        >>> round(float(post.logpdf(np.zeros(2))), 6)                 # -log(2 pi / 2)
        -1.14473
        """
        X = np.asarray(x, dtype=np.float64)
        one = X.ndim == 1
        X = X.reshape(-1, self.dim)
        Z = X if self.transform is None else self.transform.inverse(X)
        out = self._logpdf_working(Z)
        if self.transform is not None:
            out = out - self.transform.log_abs_det_jacobian(Z)
        return float(out[0]) if one else out

    def _logpdf_working(self, Z: np.ndarray) -> np.ndarray:
        R = self._t(Z - self.mean).T  # (d, k)
        F = self.factor
        d_sqrt = (1 / F.d_inv_sqrt)[:, None]
        PR = d_sqrt * F._apply(d_sqrt * R, 1.0)  # P R = D^1/2 [I + Q diag(s - 1) Q^T] D^1/2 R
        quad = (R * PR).sum(0)
        return -0.5 * self._np(quad) - 0.5 * self.dim * math.log(2 * math.pi) + 0.5 * self.factor.logdet()

    # -- evidence ------------------------------------------------------------------------
    def log_evidence(self, prior_precision: float | np.ndarray | None = None) -> Evidence:
        r"""Laplace log evidence :math:`\log Z` (nats) with its standard error.

        Without a stated prior, :math:`\log Z = -U(m) + \tfrac d2\log 2\pi - \tfrac12\log\det P` for
        the user's negative log posterior. With a stated prior precision :math:`\alpha`,
        :math:`\log p(\text{data}) = \log\int e^{-f}\,N(\theta;\theta_0,\alpha^{-1}I)` for the negative
        log likelihood ``fun``; passing ``prior_precision`` recomputes it for a new :math:`\alpha` from
        the same queries (zero evaluations).

        Parameters
        ----------
        prior_precision : float or array_like, optional
            A new :math:`\alpha` (needs a posterior built with ``prior_precision``).

        Returns
        -------
        Evidence
            ``(value, se)`` in nats.

        Raises
        ------
        ValueError
            ``prior_precision`` given for a posterior built without one.

        References
        ----------
        - David J. C. MacKay, "A practical Bayesian framework for backpropagation networks", Neural
          Computation 4(3), 448-472, 1992 (the Laplace approximation and its evidence).
        - Robert E. Kass, Adrian E. Raftery, "Bayes factors", Journal of the American Statistical
          Association 90(430), 773-795, 1995.

        Examples
        --------
        >>> import numpy as np
        >>> import zo_scipy.uq as uq
        >>> A = np.diag([1.0, 4.0])                                   # U(theta) = theta^T A theta / 2
        >>> post = uq.laplace(lambda t: 0.5 * t @ A @ t, np.ones(2), seed=0)
        >>> ev = post.log_evidence()
        >>> round(ev.value, 6), bool(ev.se < 1e-8)                   # exact: log(2 pi / 2)
        (1.14473, True)
        """
        if prior_precision is None:
            return Evidence(self._log_evidence, self._evidence_se(self.factor))
        if self.prior_precision is None:
            raise ValueError("log_evidence(prior_precision) needs a posterior built with a stated "
                             "prior_precision (fun = negative log likelihood)")
        return self.with_prior_precision(prior_precision).log_evidence()

    def _evidence_se(self, F: PrecisionFactor) -> float:
        q = self._queries
        Pinv_rows = F.solve(q.rows.T.to(F.d_inv_sqrt)) if q.rows.shape[0] else None
        if q.fit is not None:
            if q.fit.dof <= 0:
                return math.nan
            var = 0.0
            if Pinv_rows is not None:
                qk = (q.rows.T.to(F.d_inv_sqrt) * Pinv_rows).sum(0)
                var += q.fit.coefficient_variance(qk)
            pv = marginal_variances(F).double()
            if q.coordinate:
                var += q.fit.noise_variance * float(pv.pow(2).sum())
            elif q.isotropic_count:
                var += q.fit.noise_variance / q.isotropic_count * float(pv.sum()) ** 2
            # f at the mode enters every second difference: its error (variance
            # sigma_f^2 = sigma_s^2 mu^4 / 2) shifts H by -2 df/mu^2 I and log Z by df (tr P^-1 / mu^2 - 1)
            var_f = q.fit.noise_variance * q.mu ** 4 / 2
            var += 4 * var_f * (float(pv.sum()) / q.mu ** 2 - 1) ** 2
            return 0.5 * math.sqrt(max(var, 0.0))
        if q.batches is None or len(q.batches) < 2:
            return math.nan
        t = []
        for B in q.batches:
            Uf = B.U.to(F.d_inv_sqrt)
            t.append(float((B.coef.to(Uf) * (Uf.T * F.solve(Uf.T)).sum(0)).sum()))
        return 0.5 * float(np.std(t, ddof=1)) / math.sqrt(len(t))

    def with_prior_precision(self, prior_precision: float | np.ndarray) -> LaplacePosterior:
        """The posterior for a new prior precision from the same queries (zero evaluations).

        Raises
        ------
        ValueError
            The posterior was built without ``prior_precision``.

        Examples
        --------
        >>> import numpy as np
        >>> import zo_scipy.uq as uq
        >>> nll = lambda t: 0.5 * float(t @ t)                        # likelihood precision 1
        >>> post = uq.laplace(nll, np.ones(2), prior_precision=1.0, seed=0)
        >>> np.round(post.std() ** -2, 6), np.round(post.with_prior_precision(3.0).std() ** -2, 6)
        (array([2., 2.]), array([4., 4.]))
        """
        if self.prior_precision is None:
            raise ValueError("with_prior_precision needs a posterior built with a stated prior_precision")
        return _assemble(self._queries, _prior_vector(prior_precision, self.dim), self.prior_mean, self._alpha0,
                         nfev_mode=self.nfev_mode, transform=self.transform, target=self._target,
                         workers=self._workers, dtype=self._dtype, device=self._device,
                         floor=self._floor,
                         messages=[m for m in self.messages if m.startswith("mode search")])

    def fit_prior_precision(self, bounds: tuple[float, float] = (1e-6, 1e6)) -> tuple[float, LaplacePosterior]:
        r"""The scalar :math:`\alpha` that maximizes :meth:`log_evidence` (MacKay's evidence
        approximation, like laplace-torch's ``optimize_prior_precision(method='marglik')``), by a
        bounded search over :math:`\log\alpha`; zero evaluations. Returns ``(alpha, posterior)``.

        Raises
        ------
        ValueError
            The posterior was built without ``prior_precision``.

        References
        ----------
        - David J. C. MacKay, "A practical Bayesian framework for backpropagation networks", Neural
          Computation 4(3), 448-472, 1992 (the Laplace approximation and its evidence).

        Examples
        --------
        >>> import numpy as np
        >>> import zo_scipy.uq as uq
        >>> nll = lambda t: 0.5 * float(t @ t) - 2.0 * float(t.sum())  # data pull towards 2
        >>> alpha, best = uq.laplace(nll, np.ones(2), prior_precision=1.0, seed=0).fit_prior_precision()
        >>> bool(0.1 < alpha < 1.0), bool(best.log_evidence().value >= best.with_prior_precision(1.0).log_evidence().value)
        (True, True)
        """
        from scipy.optimize import minimize_scalar

        if self.prior_precision is None:
            raise ValueError("fit_prior_precision needs a posterior built with a stated prior_precision")
        lo, hi = math.log(bounds[0]), math.log(bounds[1])
        res = minimize_scalar(lambda t: -self.with_prior_precision(math.exp(t)).log_evidence().value,
                              bounds=(lo, hi), method="bounded", options={"xatol": 1e-4})
        alpha = math.exp(float(res.x))
        return alpha, self.with_prior_precision(alpha)

    # -- diagnostics ---------------------------------------------------------------------
    def diagnose(self, num_samples: int = 200, seed: int | None = 0) -> Diagnostics:
        r"""Spend ``num_samples`` evaluations at posterior draws: log importance weights
        :math:`\log w_s = -U(z_s) - \log N(z_s)`, ArviZ's PSIS :math:`\hat k` (``arviz.psislw``)
        and the importance-sampling log evidence :math:`\log\frac1S\sum_s w_s`.

        Parameters
        ----------
        num_samples : int
            Evaluations spent (>= 20).
        seed : int or None
            Seed of the draws.

        Returns
        -------
        Diagnostics

        Raises
        ------
        ImportError
            ArviZ is not installed (the ``uq`` extra).
        ValueError
            ``num_samples < 20``.

        References
        ----------
        - Aki Vehtari, Daniel Simpson, Andrew Gelman, Yuling Yao, Jonah Gabry, "Pareto smoothed
          importance sampling", Journal of Machine Learning Research 25(72), 1-58, 2024, arXiv:1507.02646.

        Examples
        --------
        >>> import numpy as np
        >>> import zo_scipy.uq as uq
        >>> A = np.diag([1.0, 4.0])                                   # U(theta) = theta^T A theta / 2
        >>> post = uq.laplace(lambda t: 0.5 * t @ A @ t, np.ones(2), seed=0)
        >>> dg = post.diagnose(num_samples=50, seed=1)
        >>> dg.ok, dg.nfev, round(dg.log_evidence_is, 6)              # exact Gaussian: equal weights
        (True, 50, 1.14473)
        """
        try:
            import arviz
        except ImportError as exc:  # pragma: no cover - the uq extra installs it
            raise ImportError("diagnose() needs ArviZ: pip install 'zo_scipy[uq]'") from exc
        if num_samples < 20:
            raise ValueError(f"num_samples must be >= 20 for a Pareto fit, got {num_samples}")
        Z = self.sample(num_samples, seed, working=True)
        with evaluation_map(self._workers, self._target) as mapper:
            obj = BatchObjective(self._target, shape=(self.dim,), vectorized=self._target.vectorized, map=mapper)
            u = obj(torch.as_tensor(Z)).numpy().astype(np.float64)
        if self.prior_precision is not None:
            m0 = self.prior_mean if self.prior_mean is not None else 0.0
            a = self.prior_precision
            u = u + 0.5 * ((Z - m0) ** 2 * a).sum(1) - 0.5 * float(np.log(a / (2 * math.pi)).sum())
        logw = -u - self._logpdf_working(Z)
        logw = np.where(np.isfinite(logw), logw, -np.inf)
        fin = logw[np.isfinite(logw)]
        if fin.size == logw.size and float(np.ptp(fin)) <= 1e-9 * max(1.0, float(np.abs(fin).max())):
            khat_f = -math.inf  # equal weights: the Gaussian is exact to round-off; no tail to fit
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                _, khat = arviz.psislw(logw.copy())
            khat_f = float(np.asarray(khat))
        lz_is = float(logsumexp(logw) - math.log(num_samples))
        return Diagnostics(khat_f, lz_is, self._log_evidence, int(num_samples), int(num_samples), khat_f <= 0.7)

    # -- reporting -----------------------------------------------------------------------
    @property
    def prior_variance_fraction(self) -> float:
        r""":math:`\operatorname{tr}P^{-1} / \operatorname{tr}\alpha^{-1}`: the posterior's total variance
        as a fraction of the stated prior's (NaN without a stated prior)."""
        if self.prior_precision is None:
            return math.nan
        return float(marginal_variances(self.factor).double().sum()) / float((1 / self.prior_precision).sum())

    @property
    def lowrank_variance_fraction(self) -> float:
        r"""The share of the whitened posterior variance carried by the low-rank directions: with
        :math:`D^{-1/2} P D^{-1/2} = I + Q\operatorname{diag}(s - 1)Q^T` (``k`` orthonormal columns),
        :math:`\sum_j s_j^{-1} / (d - k + \sum_j s_j^{-1})` (each direction the low-rank part has not
        explored carries the diagonal's variance 1). 0: the diagonal alone; 1: every direction is in the
        low-rank part (always so once ``k = d``)."""
        F = self.factor
        inv = float((1 / F.spectrum.double()).sum())
        rest = self.dim - int(F.spectrum.shape[0])
        return inv / (rest + inv) if rest + inv > 0 else 0.0

    def summary(self) -> str:
        """A few lines for a report: evaluations, log evidence, repair, mode search."""
        lz = self.log_evidence()
        lines = [f"Laplace posterior, d = {self.dim}, nfev = {self.nfev} (mode {self.nfev_mode}, "
                 f"curvature {self.nfev_curvature}; estimator {self._queries.estimator}, mu = {self._queries.mu:.3g})",
                 f"log evidence = {lz.value:.4f} +- {lz.se:.2g}",
                 f"PD repair: {self.repair.num_clipped} eigenvalues clipped (relative mass "
                 f"{self.repair.relative_clipped:.2g}), {self.repair.num_floored_diag} diagonal entries floored; "
                 f"low-rank variance fraction {self.lowrank_variance_fraction:.3f}"]
        return "\n".join(lines + self.messages)


# ---------------------------------------------------------------------------------------
def _prior_vector(alpha: float | np.ndarray | Sequence[float], d: int) -> np.ndarray:
    a = np.broadcast_to(np.asarray(alpha, dtype=np.float64), (d,)).copy()
    if not np.all(np.isfinite(a)) or np.any(a <= 0):
        raise ValueError(f"prior_precision must be positive and finite, got {alpha!r}")
    return a


def _assemble(q: _Queries, alpha: np.ndarray | None, m0: np.ndarray | None, alpha0: np.ndarray | None, *,
              nfev_mode: int, transform: BoxTransform | None, target: _Target, workers: Any,
              dtype: torch.dtype, device: torch.device, floor: float, messages: list[str],
              repair: str = "diagonal") -> LaplacePosterior:
    d = q.mode.shape[0]
    msgs = list(messages)
    diag = q.diag.to(dtype=dtype, device=device)
    if alpha is not None:
        diag = diag + torch.as_tensor(alpha, dtype=dtype, device=device)
    H = LowRankHessian(q.rows.to(dtype=dtype, device=device), q.coef.to(dtype=dtype, device=device))
    F, rep = repaired_precision(diag, H, floor=floor, method=repair)
    # gradient of U = fun + prior at the mode
    delta = q.mode - (m0 if m0 is not None else 0.0)
    if q.gradient is not None:
        g = q.gradient.double().cpu().numpy()
    elif alpha0 is not None:
        g = -alpha0 * delta  # the mode is stationary for the prior it was searched with
    else:
        g = np.zeros(d)
    value = q.value
    if alpha is not None:
        g = g + alpha * delta
        value = value + 0.5 * float((alpha * delta ** 2).sum())
    is_min = rep.min_whitened_eig > 0 and rep.num_floored_diag == 0
    # a repaired curvature's Newton step points nowhere useful: then stay at the mode
    logz, step = quadratic_log_evidence(value, torch.as_tensor(g, dtype=dtype, device=device) if is_min else None, F)
    if alpha is not None:
        logz += 0.5 * float(np.log(alpha / (2 * math.pi)).sum())
    step_np = step.detach().to("cpu", torch.float64).numpy()
    std = np.sqrt(marginal_variances(F).detach().to("cpu", torch.float64).numpy())
    explored = int(q.rows.shape[0])
    if not q.coordinate and explored < d:
        what = ("isotropic estimate tr(H)/d" if q.isotropic_count else
                "stated prior precision" if alpha is not None else "floor")
        msgs.append(f"the second differences explored {explored} of d = {d} directions; in the other "
                    f"{d - explored} the curvature is the {what}, assumed rather than measured, so the "
                    "log-determinant and log_evidence() are not identified there (their standard error "
                    "covers the queries' noise only)")
    if not is_min:
        under = q.fit is not None and q.fit.rank < d * (d + 1) // 2
        msgs.append(f"the curvature at the mode is not positive definite (smallest whitened eigenvalue "
                    f"{rep.min_whitened_eig:.3g}, {rep.num_floored_diag} non-positive diagonal entries): the point "
                    "may not be a minimum" + (f", or the budget is too small for the off-diagonal curvature "
                                              f"({q.fit.rank if q.fit else 0} of the d(d+1)/2 = {d * (d + 1) // 2} "
                                              "second differences it needs)" if under else "")
                    + "; the covariance was repaired")
    if q.gradient is not None and is_min:
        newton = float(np.max(np.abs(step_np) / std))
        if newton > 3:
            msgs.append(f"the Newton step from the mode is {newton:.3g} posterior standard deviations: the "
                        "mode search had not converged (the mean is the quadratic model's minimizer)")
    if rep.num_clipped:
        msgs.append(f"PD repair clipped {rep.num_clipped} whitened eigenvalues (relative mass {rep.relative_clipped:.2g})")
    post = LaplacePosterior(
        mean=q.mode + step_np, mode=q.mode, factor=F, repair=rep, nfev=nfev_mode + q.nfev, nfev_mode=nfev_mode,
        nfev_curvature=q.nfev, prior_precision=alpha, prior_mean=m0, transform=transform, messages=msgs,
        is_minimum=is_min, _queries=q, _target=target, _workers=workers, _dtype=dtype, _device=device,
        _alpha0=alpha0, _log_evidence=logz, _floor=floor)
    return post


def _default_budget(d: int) -> int:
    # f at the mode, the coordinate diagonal, d(d+1)/2 pairs (exact on a quadratic) and
    # max(4, d) spare pairs for the residual variance; at most 1000
    return int(min(1 + 2 * d + d * (d + 1) + 2 * max(4, d), 1000))


def laplace(
    fun: Callable[..., Any],
    x0: Any,
    *,
    args: tuple[Any, ...] = (),
    prior_precision: float | np.ndarray | None = None,
    prior_mean: Any = None,
    budget: int | None = None,
    mu: float | Literal["auto"] = "auto",
    estimator: Estimator = "auto",
    diagonal: Diagonal = "auto",
    find_mode: bool | Any = True,
    mode_method: str = "zoar",
    mode_budget: int | None = None,
    mode_options: dict[str, Any] | None = None,
    batch_size: int = 50,
    seed: int | None = None,
    vectorized: bool = False,
    workers: Any = 1,
    bounds: Any = None,
    dtype: Any = "float64",
    device: Any = "cpu",
    floor: float = 1e-6,
    newton: bool | Literal["auto"] = "auto",
    torch_threads: int | None | Literal["auto"] = "auto",
    refine: int = 3,
) -> LaplacePosterior:
    r"""Laplace approximation of :math:`p(\theta) \propto e^{-U(\theta)}` from function values only.

    Parameters
    ----------
    fun : callable
        ``fun(theta, *args) -> float``: the negative log posterior :math:`U`, or, with
        ``prior_precision``, the negative log likelihood (the Gaussian prior
        :math:`N(\theta_0, \alpha^{-1} I)` is then added in closed form).
    x0 : array_like
        Start of the mode search, or the mode itself with ``find_mode=False``.
    prior_precision, prior_mean : optional
        :math:`\alpha > 0` (scalar or per coordinate) and :math:`\theta_0` (default 0), in working
        coordinates. Needed for :meth:`LaplacePosterior.log_evidence` as a function of :math:`\alpha`
        and :meth:`LaplacePosterior.fit_prior_precision`.
    budget : int, optional
        Evaluations spent on the curvature at the mode. Default
        :math:`\min(1 + 2d + d(d+1) + 2\max(4, d), 1000)`: with ``estimator="regression"`` an exact
        Hessian of a quadratic (plus spare pairs for the evidence's standard error) up to
        :math:`d = 28`. At least 5.
    mu : float or "auto"
        Step of the second differences (in working coordinates). ``"auto"``: a pilot pair sets it
        to a tenth of the Laplace standard deviation along a random direction.
    estimator : {"auto", "regression", "zovh"}
        ``"regression"``: central second differences along random unit directions, fitted by
        :func:`~zo_scipy.core.laplace.fit_second_differences` (exact on quadratics from
        :math:`d(d+1)/2` pairs). ``"zovh"``: the mean-baseline ZoVH estimate, averaged over batches
        of ``batch_size`` pairs (:class:`~zo_scipy.core.curvature.AveragedCurvature`). ``"auto"``:
        regression (it won every measured case, ``docs/uq.md``).
    diagonal : {"auto", "coordinate", "isotropic", "none"}
        The diagonal part for directions the low-rank part has not explored: second differences along
        the axes (``2d`` evaluations, exact diagonal), the isotropic :math:`\operatorname{tr}H/d` from
        the random pairs (free), or none (then the prior precision must make it positive).
        ``"auto"``: coordinate when ``2d <= budget / 2``, else isotropic.
    find_mode : bool or OptimizeResult
        True: minimize with ``mode_method`` (``"zoar"``, default, or ``"zovh"``) from ``x0`` for
        ``mode_budget`` evaluations (default ``200 d``, at least 2000) with ``mode_options``;
        False: ``x0`` is the mode; a finished ``zo_scipy.zoar``/``zovh`` result: its ``x`` is the mode
        and its ``nfev`` is counted.
    seed, vectorized, workers
        As for :func:`zo_scipy.zoar` (``workers``: 1, -1, n > 1 or a map-like callable).
    bounds : optional
        Box bounds (SciPy's forms); the approximation is made in unconstrained coordinates
        (:mod:`zo_scipy.uq._transforms`) and samples/intervals are mapped back.
    dtype, device
        Precision and device of the posterior algebra (the objective always sees float64).
    floor : float
        Relative floor of the positive-definite repair (:func:`~zo_scipy.core.laplace.repaired_precision`).
    refine : int
        Newton refinements of the mode (default 3): when the queries determine the gradient and the
        quadratic model's Newton step is over 0.1 posterior standard deviations but the model is wrong
        along it (the function's decrease differs from the predicted one by over 1%, e.g. a
        non-Gaussian target and an unconverged mode search), step there (halving until the function
        decreases) and measure the curvature again, each time with ``budget`` evaluations. A Gaussian
        target never refines (its model is exact).
    torch_threads : int, None or "auto"
        Torch threads while fitting (restored afterwards); ``"auto"``: 1 when ``budget * d`` is at most
        :math:`2^{22}` (threads only add overhead there), else torch's setting; None: torch's setting.
    newton : bool or "auto"
        Move the mean to the minimizer of the local quadratic model with the queries' gradient;
        ``"auto"``: when the queries determine the gradient (at least ``d`` independent directions).

    Returns
    -------
    LaplacePosterior

    Raises
    ------
    ValueError
        An option out of range (named), a non-finite ``x0``, or a ``budget`` too small for
        the requested curvature.
    TypeError
        ``find_mode`` of another type.
    FloatingPointError
        ``fun`` is not finite at the mode or at too many queries near it.

    See Also
    --------
    LaplacePosterior : what is returned.
    zo_scipy.zoar : the default mode search.
    zo_scipy.core.factor_precision : the low-rank algebra behind the posterior.

    Notes
    -----
    With the mode :math:`\hat\theta` of :math:`U` and a precision :math:`P \approx \nabla^2 U(\hat\theta)`
    measured from central second differences,

    .. math::
        p(\theta) \approx N(\hat\theta, P^{-1}), \qquad
        \log Z \approx -U(\hat\theta) + \tfrac d2 \log 2\pi - \tfrac12 \log\det P .

    :math:`P` is kept as a positive diagonal plus a low-rank part (repaired to be positive
    definite), so sampling, variances and :math:`\log\det P` cost :math:`O(r d)`.

    References
    ----------
    - Luke Tierney, Joseph B. Kadane, "Accurate approximations for posterior moments and marginal
      densities", Journal of the American Statistical Association 81(393), 82-86, 1986.
    - David J. C. MacKay, "A practical Bayesian framework for backpropagation networks", Neural
      Computation 4(3), 448-472, 1992 (the Laplace approximation and its evidence).
    - Junbin Qiu, Zhengpeng Xie, Xiangda Yan, Yongjie Yang, Yao Shu, "Zeroth-Order Optimization
      is Secretly Single-Step Policy Optimization", arXiv:2506.14460, 2025 (the ZoAR paper).
    - Junbin Qiu, Zhaowei Hong, Renzhe Xu et al., "Revisiting Zeroth-Order Hessian Approximation:
      A Single-Step Policy Optimization Lens", 2026 (the ZoVH paper; the authors' code is at
      https://github.com/Qjbtiger/ZoVH).

    Examples
    --------
    On a Gaussian target the approximation is exact:

    >>> import numpy as np
    >>> import zo_scipy.uq as uq
    >>> A = np.diag([1.0, 4.0])                                   # U(theta) = theta^T A theta / 2
    >>> post = uq.laplace(lambda t: 0.5 * t @ A @ t, np.ones(2), seed=0)
    >>> np.round(post.std(), 6), round(post.log_evidence().value, 6)   # log(2 pi / 2)
    (array([1. , 0.5]), 1.14473)
    >>> post.nfev                                                  # mode search + curvature
    2019
    """
    import zo_scipy

    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {ESTIMATORS}, got {estimator!r}")
    if diagonal not in DIAGONALS:
        raise ValueError(f"diagonal must be one of {DIAGONALS}, got {diagonal!r}")
    x = np.asarray(x0, dtype=np.float64)
    shape = x.shape
    xf = x.reshape(-1)
    d = int(xf.size)
    if d < 1 or not np.all(np.isfinite(xf)):
        raise ValueError("x0 must be a non-empty array of finite numbers")
    tdtype, tdevice = resolve_dtype(dtype), resolve_device(device)
    budget = _default_budget(d) if budget is None else int(budget)
    if budget < 5:
        raise ValueError(f"budget={budget} is too small: the curvature needs f at the mode and at least two "
                         "antithetic pairs (5 evaluations); for an exact Hessian of a quadratic use "
                         f"{1 + 2 * d + d * (d + 1)}")
    lu = standardize_bounds(bounds, d) if bounds is not None else None
    transform = BoxTransform(*lu) if lu is not None else None
    if transform is not None and transform.identity:
        transform = None
    alpha = None if prior_precision is None else _prior_vector(prior_precision, d)
    m0 = None if prior_mean is None else np.broadcast_to(np.asarray(prior_mean, dtype=np.float64), (d,)).copy()
    target = _Target(fun, tuple(args), shape, transform, bool(vectorized))
    z0 = xf if transform is None else transform.inverse(xf)
    messages: list[str] = []

    # -- the mode ----------------------------------------------------------------------
    nfev_mode = 0
    if find_mode is True:
        mode_fun: Callable[[np.ndarray], Any] = target
        if alpha is not None:
            mode_fun = _WithPrior(target, alpha, m0)
        method = {"zovh": zo_scipy.zovh, "zoar": zo_scipy.zoar}.get(mode_method)
        if method is None:
            raise ValueError(f"mode_method must be 'zovh' or 'zoar', got {mode_method!r}")
        opts = dict(mode_options or {})
        opts.setdefault("maxfev", mode_budget if mode_budget is not None else max(2000, 200 * d))
        res = method(mode_fun, z0, seed=seed, vectorized=bool(vectorized), workers=workers, **opts)
        zhat = np.asarray(res.x, dtype=np.float64).reshape(-1)
        nfev_mode = int(res.nfev)
        messages.append(f"mode search: {mode_method}, {nfev_mode} evaluations, status {res.status}")
    elif find_mode is False:
        zhat = z0
    elif hasattr(find_mode, "x"):
        xm = np.asarray(find_mode.x, dtype=np.float64).reshape(-1)
        if xm.size != d:
            raise ValueError(f"the result passed as find_mode has {xm.size} parameters, x0 has {d}")
        zhat = xm if transform is None else transform.inverse(xm)
        nfev_mode = int(getattr(find_mode, "nfev", 0))
        messages.append(f"mode search: a finished result ({nfev_mode} evaluations)")
    else:
        raise TypeError(f"find_mode must be True, False or an OptimizeResult, got {type(find_mode).__name__}")

    threads = (1 if budget * d <= AUTO_SINGLE_THREAD_ELEMENTS else None) if torch_threads == "auto" else torch_threads
    prior_fun = None if alpha is None else _WithPrior(None, alpha, m0)
    nfev_curv, n_refined = 0, 0
    with evaluation_map(workers, target) as mapper, limit_torch_threads(threads):
        for rnd in range(int(refine) + 1):
            obj = BatchObjective(target, shape=(d,), vectorized=bool(vectorized), map=mapper, max_evals=budget)
            q = _measure(obj, zhat, d, budget=budget, mu=mu, estimator=estimator, diagonal=diagonal,
                         seed=None if seed is None else seed + rnd, newton=newton, batch_size=batch_size, alpha=alpha)
            nfev_curv += q.nfev
            msgs = list(messages)
            if q.n_nonfinite:
                msgs.append(f"{q.n_nonfinite} query pairs near the mode returned non-finite values and were dropped")
            post = _assemble(q, alpha, m0, alpha, nfev_mode=nfev_mode, transform=transform, target=target,
                             workers=workers, dtype=tdtype, device=tdevice, floor=floor, messages=msgs)
            if rnd == refine or q.gradient is None or not post.is_minimum:
                break
            step = post.mean - zhat
            if float(np.max(np.abs(step) / post.std())) < 0.1:
                break
            # Is the quadratic model right along its Newton step? (exact for a Gaussian: then done)
            u0 = q.value + (prior_fun.penalty(zhat) if prior_fun else 0.0)
            g = q.gradient.double().cpu().numpy() + (alpha * (zhat - (m0 if m0 is not None else 0.0))
                                                     if alpha is not None else 0.0)
            predicted = -0.5 * float(g @ step)
            probe = BatchObjective(target, shape=(d,), vectorized=bool(vectorized), map=mapper, max_evals=6)
            accepted: np.ndarray | str | None = None
            for t in (1.0, 0.5, 0.25, 0.125, 0.0625):
                z = zhat + t * step
                u = float(probe(torch.as_tensor(z[None]))[0]) + (prior_fun.penalty(z) if prior_fun else 0.0)
                if t == 1.0 and math.isfinite(u) and abs((u0 - u) - predicted) <= 0.01 * max(1.0, predicted):
                    accepted = "model"
                    break
                if math.isfinite(u) and u < u0:
                    accepted = z
                    break
            nfev_curv += probe.nfev
            if accepted is None or isinstance(accepted, str):
                break
            zhat, n_refined = accepted, n_refined + 1
        if n_refined:
            post.messages.insert(len(messages), f"mode refined by {n_refined} Newton step(s) of the measured "
                                 "quadratic model (curvature re-measured at each)")
            post.messages = [m for m in post.messages if not m.startswith("the Newton step from the mode is")] \
                if float(np.max(np.abs(post.mean - post.mode) / post.std())) < 3 else post.messages
        post.nfev_curvature = nfev_curv
        post.nfev = nfev_mode + nfev_curv
    if not post.is_minimum:
        warnings.warn(post.messages[-1] if post.messages else "the point is not a minimum", RuntimeWarning,
                      stacklevel=2)
    return post


class _WithPrior:
    """``target(z) + alpha/2 |z - m0|^2`` (picklable)."""

    def __init__(self, target: _Target | None, alpha: np.ndarray, m0: np.ndarray | None) -> None:
        self.target, self.alpha, self.m0 = target, alpha, m0

    def penalty(self, z: np.ndarray) -> Any:
        r = np.asarray(z, dtype=np.float64) - (self.m0 if self.m0 is not None else 0.0)
        return 0.5 * (self.alpha * r * r).sum(-1)

    def __call__(self, z: np.ndarray) -> Any:
        assert self.target is not None
        return self.target(z) + self.penalty(z)


def _pairs(obj: BatchObjective, center: torch.Tensor, V: torch.Tensor, mu: torch.Tensor | float) -> tuple[torch.Tensor, torch.Tensor]:
    step = V * (mu[:, None] if isinstance(mu, torch.Tensor) else mu)
    y = obj(torch.cat([center + step, center - step]))
    n = V.shape[0]
    return y[:n], y[n:]


def _measure(obj: BatchObjective, zhat: np.ndarray, d: int, *, budget: int, mu: float | str, estimator: str,
             diagonal: str, seed: int | None, newton: bool | str, batch_size: int, alpha: np.ndarray | None) -> _Queries:
    f64 = torch.float64
    gen = torch.Generator().manual_seed(seed if seed is not None else int(np.random.SeedSequence().generate_state(1)[0]))
    c = torch.as_tensor(zhat, dtype=f64)
    y0 = float(obj(c[None])[0])
    if not math.isfinite(y0):
        raise FloatingPointError(f"fun is not finite at the mode (value {y0}); the Laplace approximation needs a "
                                 "finite density there")
    scale0 = 1e-3 * max(1.0, float(np.sqrt(np.mean(zhat ** 2))))
    # the pilot pair: sets mu ("auto"), and is itself a measurement when taken at mu
    if mu != "auto":
        mu_f = float(mu)
        if not mu_f > 0 or not math.isfinite(mu_f):
            raise ValueError(f"mu must be 'auto' or a positive finite number, got {mu!r}")
        scale0 = mu_f
    v0 = torch.randn(1, d, generator=gen, dtype=f64)
    v0 = v0 / v0.norm()
    yp, ym = _pairs(obj, c, v0, scale0)
    s0 = float(central_second_differences(yp, ym, y0, scale0)[0])
    if mu == "auto":
        curv = s0 + (float(alpha.mean()) if alpha is not None else 0.0)
        mu_f = 0.1 / math.sqrt(curv) if curv > 0 and math.isfinite(curv) else scale0
        mu_f = min(max(mu_f, 1e-3 * scale0), 1e3 * scale0)
    if diagonal == "auto":
        diagonal = "coordinate" if 2 * d <= (budget - 3) / 2 else "isotropic"
    if estimator == "auto":
        estimator = "regression"
    # the pilot is a measurement too, unless its step differs from mu (a tiny step amplifies noise)
    keep_pilot = math.isclose(mu_f, scale0, rel_tol=1e-12)
    dirs: list[torch.Tensor] = [v0] if keep_pilot else [v0[:0]]
    steps: list[torch.Tensor] = [torch.tensor([scale0] if keep_pilot else [], dtype=f64)]
    plus, minus = ([yp], [ym]) if keep_pilot else ([yp[:0]], [ym[:0]])
    coord = diagonal == "coordinate"
    if coord:
        if obj.remaining < 2 * d + 4:
            raise ValueError(f"budget={budget} cannot afford the coordinate diagonal (2d = {2 * d} evaluations) "
                             "and two pairs; raise it or use diagonal='isotropic'")
        E = torch.eye(d, dtype=f64)
        cp, cm = _pairs(obj, c, E, mu_f)
    n_left = int(obj.remaining) // 2
    if n_left < 1 and estimator == "regression" and not coord:
        raise ValueError(f"budget={budget} is too small for any curvature pair after the pilot")
    batches = None
    if estimator == "regression":
        V = torch.randn(n_left, d, generator=gen, dtype=f64)
        V = V / V.norm(dim=1, keepdim=True)
        if n_left:
            p, m = _pairs(obj, c, V, mu_f)
            dirs.append(V)
            steps.append(torch.full((n_left,), mu_f, dtype=f64))
            plus.append(p)
            minus.append(m)
    else:
        rows_z: list[torch.Tensor] = []
        nb = max(2, int(batch_size))
        while obj.remaining >= 4:
            k = min(nb, int(obj.remaining) // 2)
            V = torch.randn(k, d, generator=gen, dtype=f64)
            p, m = _pairs(obj, c, V, mu_f / math.sqrt(d))
            dirs.append(V / V.norm(dim=1, keepdim=True))
            steps.append(mu_f * V.norm(dim=1) / math.sqrt(d))
            plus.append(p)
            minus.append(m)
            rows_z.append(V)
    Vall = torch.cat(dirs)
    mus = torch.cat(steps)
    Yp, Ym = torch.cat(plus), torch.cat(minus)
    ok = torch.isfinite(Yp) & torch.isfinite(Ym)
    n_bad = int((~ok).sum())
    if coord:
        okc = torch.isfinite(cp) & torch.isfinite(cm)
        if not bool(okc.all()):
            raise FloatingPointError(f"{int((~okc).sum())} coordinate queries within mu={mu_f:.3g} of the mode "
                                     "returned non-finite values; pass a smaller mu or check fun near the mode")
    if int(ok.sum()) < 2 and not coord:
        raise FloatingPointError(f"{n_bad} of {int(ok.numel())} query pairs near the mode returned non-finite "
                                 f"values (mu={mu_f:.3g}); pass a smaller mu or check fun near the mode")
    Vg, mg, Ypg, Ymg = Vall[ok], mus[ok], Yp[ok], Ym[ok]
    s = central_second_differences(Ypg, Ymg, y0, mg)
    dd = (Ypg - Ymg) / (2 * mg)
    if coord:
        b = central_second_differences(cp, cm, y0, mu_f)
        Gdir = torch.cat([torch.eye(d, dtype=f64), Vg])
        gvals = torch.cat([(cp - cm) / (2 * mu_f), dd])
    else:
        b = torch.full((d,), float(s.mean()) if diagonal == "isotropic" and s.numel() else 0.0, dtype=f64)
        Gdir, gvals = Vg, dd
    determined = bool(torch.linalg.matrix_rank(Gdir) >= d) if Gdir.shape[0] >= d else False
    use_grad = determined if newton == "auto" else bool(newton)
    grad = torch.linalg.lstsq(Gdir, gvals[:, None], driver="gelsd").solution[:, 0] if use_grad else None
    fit = None
    if estimator == "regression":
        fit = fit_second_differences(Vg, s, baseline=b)
        rows, coef = fit.hessian.U, fit.hessian.coef
    else:
        acc = AveragedCurvature(d, baseline=b)
        o = 1 if keep_pilot else 0  # the pilot is not part of a ZoVH batch
        okz = ok[o:]
        start = 0
        for Vz in rows_z:
            k = Vz.shape[0]
            sel = okz[start:start + k]
            yb = torch.cat([Yp[o + start:o + start + k][sel], Ym[o + start:o + start + k][sel]])
            if int(sel.sum()) >= 2:
                acc.add(torch.cat([Vz[sel], -Vz[sel]]), yb, mu_f / math.sqrt(d), antithetic=True)
            start += k
        H = acc.hessian
        rows, coef = H.U, H.coef
        batches = acc.batch_estimates()
    return _Queries(mode=zhat.copy(), value=y0, mu=mu_f, diag=b, rows=rows, coef=coef, gradient=grad,
                    gradient_determined=determined, fit=fit, batches=batches, coordinate=coord,
                    isotropic_count=int(s.numel()) if diagonal == "isotropic" else 0, nfev=obj.nfev,
                    n_nonfinite=n_bad, estimator=estimator)
