r"""A running zeroth-order curvature model: gradient and Hessian from batches of queries.

At each point :math:`x_t` a batch of :math:`n` antithetic pairs
:math:`y^\pm_k = f(x_t \pm \mu v_k)` (:math:`M = 2n` queries) updates

- the **gradient**, by least squares on the directional derivatives
  :math:`s_k = (y^+_k - y^-_k)/(2\mu) = v_k^T \nabla f + O(\mu^2)`, corrected from the model's
  prediction :math:`g_m = g_{t-1} + H_{t-1}(x_t - x_{t-1})`:
  :math:`g = g_m + V^+(s - V g_m)` (exact up to :math:`O(\mu^2)` when :math:`n \ge d`, where
  the prior is not needed); or the unbiased ZoVH central difference (``gradient="stein"``);
- the **Hessian**, by ZoVH with the model as a control variate, which reuses every
  earlier query through :math:`H_{t-1}`: the residuals
  :math:`r_i = y_i - \tfrac{\mu^2}{2} u_i^T H_{t-1} u_i` go through the mean-baseline
  estimator (:func:`~zo_scipy.core.hessian.zovh_hessian`), whose expectation is
  :math:`\nabla^2 F_\mu(x) - H_{t-1}` (Stein), and

  .. math:: H_t = H_{t-1} + \alpha\, \hat H[r].

  ``rate`` :math:`\alpha = 1` is plain per-point ZoVH (unbiased, relative Frobenius error
  about :math:`d/\sqrt{M}`); the default :math:`\alpha = M/(M + d^2)` balances that noise
  against tracking, so the error contracts geometrically while the Hessian changes slowly
  (the residuals' variance scales with :math:`\|\nabla^2 f - H_{t-1}\|_F^2`).

:math:`H_t` is a :class:`~zo_scipy.core.lowrank.LowRankHessian` compressed to at most
``max_rank`` rows, or a :class:`DenseHessian` when ``max_rank >= d`` (the low-rank form
would hold ``d`` rows anyway, and re-compressing costs a QR and an eigendecomposition per
update). Positive-definite surrogates of an estimate are cached per
``(method, damping)`` (:meth:`CurvatureEstimate.variant`). Pure torch; the SciPy hooks
are :class:`zo_scipy.ZoVHCurvature`. Derivations: ``docs/zovh.md``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch

from .directions import DirectionKind, sample_directions
from .hessian import zovh_gradient, zovh_hessian
from .lowrank import (
    LowRankHessian, PDMethod, compress, empty_low_rank, positive_definite, spectral_form, woodbury_solve,
)

GradientKind = Literal["lstsq", "stein"]
GRADIENT_KINDS: tuple[str, ...] = ("lstsq", "stein")


@dataclass
class DenseHessian:
    """A ``d x d`` curvature matrix with the products :class:`~zo_scipy.core.lowrank.LowRankHessian` offers.

    :class:`CurvatureModel` keeps this form when its rank cap reaches ``d`` (a low-rank form
    would hold ``d`` rows anyway).

    Parameters
    ----------
    matrix : torch.Tensor
        The symmetric ``(d, d)`` matrix.

    See Also
    --------
    zo_scipy.core.LowRankHessian : the low-rank form with the same products.
    CurvatureModel : the running model that holds one.

    References
    ----------
    - Junbin Qiu, Zhaowei Hong, Renzhe Xu et al., "Revisiting Zeroth-Order Hessian Approximation:
      A Single-Step Policy Optimization Lens", 2026 (the ZoVH paper).

    Examples
    --------
    >>> import torch
    >>> from zo_scipy.core import DenseHessian
    >>> H = DenseHessian(torch.diag(torch.tensor([1.0, 3.0], dtype=torch.float64)))
    >>> H.dim, H.rank_bound, H.matvec(torch.ones(2, dtype=torch.float64)).tolist()
    (2, 2, [1.0, 3.0])
    >>> H.dense().tolist(), H.low_rank().coef.tolist()
    ([[1.0, 0.0], [0.0, 3.0]], [1.0, 3.0])
    """

    matrix: torch.Tensor

    @property
    def dim(self) -> int:
        """The dimension ``d``."""
        return int(self.matrix.shape[0])

    @property
    def rank_bound(self) -> int:
        """An upper bound on the rank: ``d`` (so the model's control variate is always evaluated)."""
        return self.dim

    def matvec(self, v: torch.Tensor) -> torch.Tensor:
        """The product :math:`H v` (``v`` of shape ``(d,)`` or ``(d, k)``)."""
        return self.matrix @ v

    def dense(self) -> torch.Tensor:
        """A copy of the ``(d, d)`` matrix."""
        return self.matrix.clone()

    def low_rank(self) -> LowRankHessian:
        """Its eigendecomposition as a :class:`~zo_scipy.core.lowrank.LowRankHessian` (orthonormal rows)."""
        return spectral_form(self.matrix)


CurvatureMatrix = LowRankHessian | DenseHessian


def solve_shifted(H: CurvatureMatrix, v: torch.Tensor, lam: float) -> torch.Tensor:
    r""":math:`(\lambda I + H)^{-1} v`: a direct solve for a dense model, Woodbury for a low-rank one."""
    if isinstance(H, DenseHessian):
        A = H.matrix + lam * torch.eye(H.dim, dtype=H.matrix.dtype, device=H.matrix.device)
        return torch.linalg.solve(A, v)
    return woodbury_solve(H, v, lam)


@dataclass
class CurvatureEstimate:
    """The gradient and the model Hessian after one update, with cached surrogates.

    Returned by :meth:`CurvatureModel.update`; :meth:`variant` gives the Hessian as a solver
    wants it (raw, damped, or positive definite), computed once per form.

    Parameters
    ----------
    gradient : torch.Tensor
        The gradient estimate at the update's point.
    hessian : DenseHessian or LowRankHessian
        The model Hessian after the update.

    See Also
    --------
    CurvatureModel : the model that returns it.
    zo_scipy.core.lowrank.positive_definite : the positive-definite surrogates.

    References
    ----------
    - Junbin Qiu, Zhaowei Hong, Renzhe Xu et al., "Revisiting Zeroth-Order Hessian Approximation:
      A Single-Step Policy Optimization Lens", 2026 (the ZoVH paper).
    - Nicholas J. Higham, "Computing a nearest symmetric positive semidefinite matrix",
      Linear Algebra and its Applications 103, 103-118, 1988 (eigenvalue clipping).

    Examples
    --------
    >>> import torch
    >>> from zo_scipy.core import CurvatureEstimate, DenseHessian
    >>> est = CurvatureEstimate(torch.zeros(2, dtype=torch.float64),
    ...                         DenseHessian(torch.diag(torch.tensor([-1.0, 2.0], dtype=torch.float64))))
    >>> est.variant() is est.hessian                      # raw
    True
    >>> P = est.variant("clip")                           # negative curvature clipped, tiny floor
    >>> [round(v, 6) for v in torch.linalg.eigvalsh(P.dense()).tolist()]
    [0.0, 2.0]
    >>> est.variant("clip") is P                          # cached
    True
    """

    gradient: torch.Tensor
    hessian: CurvatureMatrix
    _variants: dict[tuple[str | None, float], LowRankHessian] = field(default_factory=dict, repr=False)

    def variant(self, positive_definite: PDMethod | None = None, damping: float = 0.0) -> CurvatureMatrix:
        r"""The Hessian as a solver wants it: raw (``positive_definite=None``, ``damping=0``),
        plus :math:`\delta I` (``damping``), or positive definite (clipped / absolute spectrum,
        :func:`~zo_scipy.core.lowrank.positive_definite`) plus :math:`\delta I`; with a
        positive-definite method and ``damping=0``, :math:`\delta = 10^{-8}` times the largest
        kept eigenvalue, so solvers that divide by curvature get a strictly positive one."""
        if positive_definite is None and damping == 0:
            return self.hessian
        key = (positive_definite, damping)
        if key not in self._variants:
            self._variants[key] = _surrogate(self.hessian, positive_definite, damping)
        return self._variants[key]


def _surrogate(H: CurvatureMatrix, method: PDMethod | None, damping: float) -> LowRankHessian:
    if method is None:
        base = H.low_rank() if isinstance(H, DenseHessian) else H
        return LowRankHessian(base.U, base.coef, damping)
    P = positive_definite(H.matrix if isinstance(H, DenseHessian) else H, method=method)
    delta = damping
    if delta == 0 and P.rank_bound:
        delta = 1e-8 * max(float(P.coef.max()), 1e-300)
    return LowRankHessian(P.U, P.coef, delta)


def antithetic_queries(x: torch.Tensor, num_pairs: int, mu: float, *, generator: torch.Generator,
                       kind: DirectionKind = "gaussian") -> tuple[torch.Tensor, torch.Tensor]:
    r"""Draw ``num_pairs`` directions :math:`v_k` (rows of ``V``) and return ``(V, X)`` with
    ``X`` the ``2 num_pairs`` points :math:`x + \mu v_k` then :math:`x - \mu v_k`."""
    V = sample_directions(num_pairs, x.numel(), generator=generator, kind=kind, dtype=x.dtype, device=x.device)
    return V, x + mu * torch.cat([V, -V])


def lstsq_gradient(V: torch.Tensor, y: torch.Tensor, mu: float, prior: torch.Tensor | None = None) -> torch.Tensor:
    r"""Least-squares gradient from antithetic pairs, :math:`g = g_m + V^+(s - V g_m)` with
    :math:`s_k = (y^+_k - y^-_k)/(2\mu)` and the prior :math:`g_m` (0 when None): exact up to
    :math:`O(\mu^2)` with ``n >= d`` pairs, exact in their span otherwise. ``y`` holds the
    ``+`` values first (:func:`antithetic_queries`)."""
    n, d = V.shape
    s = (y[:n] - y[n:]) / (2 * mu)
    gm = torch.zeros(d, dtype=V.dtype, device=V.device) if prior is None else prior
    residual = (s - V @ gm)[:, None]
    if n == d:
        return gm + torch.linalg.solve(V, residual)[:, 0]
    return gm + torch.linalg.lstsq(V, residual, driver="gelsd").solution[:, 0]


class CurvatureModel:
    r"""The running gradient and Hessian model of the module docstring.

    Parameters
    ----------
    dim : int
        Dimension :math:`d`.
    num_queries : int
        :math:`M = 2n` queries per update (sets the defaults of ``rate`` and ``max_rank``).
    rate : float, optional
        :math:`\alpha \in (0, 1]`. Default :math:`M/(M + d^2)`.
    max_rank : int, optional
        Rank cap of the low-rank model (compressed to its ``max_rank`` largest eigenpairs
        beyond it). Default ``min(d, 4 M)``.
    dense : bool, optional
        Keep the model as a ``d x d`` matrix. Default: when ``max_rank >= d``.
    gradient : {"lstsq", "stein"}
        Gradient estimator (default ``"lstsq"``).
    dtype, device
        Precision and device of the model.

    See Also
    --------
    zo_scipy.ZoVHCurvature : the SciPy hooks built on this model.
    AveragedCurvature : unbiased accumulation at one fixed point.
    antithetic_queries : the batch layout :meth:`update` expects.

    References
    ----------
    - Junbin Qiu, Zhaowei Hong, Renzhe Xu et al., "Revisiting Zeroth-Order Hessian Approximation:
      A Single-Step Policy Optimization Lens", 2026 (the ZoVH paper).
    - Charles M. Stein, "Estimation of the Mean of a Multivariate Normal Distribution",
      The Annals of Statistics 9(6), 1135-1151, 1981 (the identity behind the estimator).

    Examples
    --------
    On a quadratic, whose Hessian is ``diag(1, 2, 3)``, the model approaches it as batches come in
    (``rate=0.2``: at this tiny size the default rate, 0.4, is too large to settle; see
    docs/zovh.md):

    >>> import torch
    >>> from zo_scipy.core import CurvatureModel
    >>> from zo_scipy.core.curvature import antithetic_queries
    >>> from zo_scipy.core.directions import make_generator
    >>> A = torch.diag(torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64))
    >>> def f(X):
    ...     return 0.5 * (X @ A * X).sum(-1)
    >>> model, gen, x = CurvatureModel(3, 6, rate=0.2), make_generator(0), torch.ones(3, dtype=torch.float64)
    >>> errors = []
    >>> for _ in range(30):
    ...     V, X = antithetic_queries(x, 3, 0.1, generator=gen)
    ...     est = model.update(x, V, f(X), 0.1)
    ...     errors.append(float((est.hessian.dense() - A).norm() / A.norm()))
    >>> bool(errors[-1] < 0.5 * errors[0])
    True
    >>> [round(g, 6) for g in est.gradient.tolist()]         # central differences: exact here
    [1.0, 2.0, 3.0]
    """

    def __init__(self, dim: int, num_queries: int, *, rate: float | None = None, max_rank: int | None = None,
                 dense: bool | None = None, gradient: GradientKind = "lstsq", dtype: torch.dtype = torch.float64,
                 device: torch.device | str = "cpu") -> None:
        if dim < 1 or num_queries < 4 or num_queries % 2:
            raise ValueError(f"need dim >= 1 and an even num_queries >= 4, got {dim}, {num_queries}")
        if rate is not None and not 0 < rate <= 1:
            raise ValueError(f"rate must lie in (0, 1], got {rate}")
        if max_rank is not None and max_rank < 1:
            raise ValueError(f"max_rank must be >= 1, got {max_rank}")
        if gradient not in GRADIENT_KINDS:
            raise ValueError(f"gradient must be one of {GRADIENT_KINDS}, got {gradient!r}")
        self.dim = int(dim)
        self.num_pairs = num_queries // 2
        self.rate = num_queries / (num_queries + float(dim) ** 2) if rate is None else float(rate)
        self.max_rank = min(dim, 4 * num_queries) if max_rank is None else int(max_rank)
        self.dense = self.max_rank >= dim if dense is None else bool(dense)
        self.gradient_kind: GradientKind = gradient
        self.hessian: CurvatureMatrix = (
            DenseHessian(torch.zeros((dim, dim), dtype=dtype, device=device)) if self.dense
            else empty_low_rank(dim, dtype=dtype, device=device))
        self.last: tuple[torch.Tensor, torch.Tensor] | None = None  # (x, g) of the previous update
        self.num_updates = 0

    def update(self, x: torch.Tensor, V: torch.Tensor, y: torch.Tensor, mu: float) -> CurvatureEstimate:
        r"""Update the model from the values ``y`` at :math:`x + \mu v_k` then :math:`x - \mu v_k`
        (``V`` is ``(n, d)``, ``y`` is ``(2n,)``; see :func:`antithetic_queries`)."""
        n, d = V.shape
        if d != self.dim or y.shape != (2 * n,) or n < 2:
            raise ValueError(f"need V of shape (n >= 2, {self.dim}) and y of shape (2n,), "
                             f"got {tuple(V.shape)} and {tuple(y.shape)}")
        if not bool(torch.isfinite(y).all()):
            raise FloatingPointError(f"a query within mu={mu:g} of x returned a non-finite value; "
                                     "derivatives cannot be estimated there")
        self.num_updates += 1
        H = self.hessian
        U = torch.cat([V, -V])
        if self.gradient_kind == "stein":
            g = zovh_gradient(U, y, mu, antithetic=True)
        else:
            prior = None
            if self.last is not None and n < d:  # irrelevant when n >= d (exact fit)
                prior = self.last[1] + H.matvec(x - self.last[0])
            g = lstsq_gradient(V, y, mu, prior)
        # ZoVH of the residuals against the model (the control variate)
        quad = 0.5 * mu * mu * (U * H.matvec(U.T).T).sum(1) if H.rank_bound else 0.0
        R = zovh_hessian(U, y - quad, mu, antithetic=True)
        # A constant rate: early models are shrunk towards 0 (a ridge prior), which the
        # trust-region solvers handle far better than the 1/t running mean, whose early
        # relative error ~ d / sqrt(2 n t) is large (measured: 3x more iterations).
        alpha = self.rate
        new: CurvatureMatrix
        if isinstance(H, DenseHessian):
            new = DenseHessian(H.matrix + R.U.T @ ((alpha * R.coef)[:, None] * R.U))
        else:
            new = compress(LowRankHessian(torch.cat([H.U, R.U]), torch.cat([H.coef, alpha * R.coef])), self.max_rank)
        self.hessian = new
        self.last = (x, g)
        return CurvatureEstimate(g, new)


class AveragedCurvature:
    r"""Unbiased accumulation of ZoVH batches at ONE fixed point (a posterior mode).

    :class:`CurvatureModel`'s constant rate :math:`\alpha = M/(M + d^2)` is for a moving
    solver: at a fixed point it shrinks a first estimate towards 0 (after ``T`` batches the
    model carries only :math:`1 - (1-\alpha)^T` of the curvature). Here every batch
    :math:`b` gives the mean-baseline estimate :math:`\hat H_b` of the residuals
    :math:`r_i = y_i - \tfrac{\mu^2}{2} u_i^T B u_i` against a fixed diagonal baseline
    :math:`B` (a control variate; :math:`E\hat H_b = \nabla^2 F_\mu - B`), and

    .. math:: H_T = H_{T-1} + \tfrac1T(\hat H_T - H_{T-1}) = \tfrac1T \textstyle\sum_b \hat H_b,

    the running 1/t mean, unbiased after every batch, in low-rank form (all rows kept:
    memory :math:`O(M_{\text{total}}\, d)`). The batches are kept apart
    (:meth:`batch_estimates`) so a caller can measure the estimator's spread.

    Parameters
    ----------
    dim : int
        Dimension :math:`d`.
    baseline : torch.Tensor, optional
        The diagonal :math:`B` (zeros by default).
    dtype, device
        Precision and device.

    See Also
    --------
    CurvatureModel : the running model for a moving solver.
    zo_scipy.uq.laplace : the Laplace pipeline that accumulates curvature at a mode.

    References
    ----------
    - Junbin Qiu, Zhaowei Hong, Renzhe Xu et al., "Revisiting Zeroth-Order Hessian Approximation:
      A Single-Step Policy Optimization Lens", 2026 (the ZoVH paper).

    Examples
    --------
    >>> import torch
    >>> from zo_scipy.core import AveragedCurvature
    >>> from zo_scipy.core.curvature import antithetic_queries
    >>> from zo_scipy.core.directions import make_generator
    >>> A = torch.diag(torch.tensor([1.0, 4.0], dtype=torch.float64))
    >>> def f(X):
    ...     return 0.5 * (X @ A * X).sum(-1)
    >>> acc, gen, x = AveragedCurvature(2), make_generator(0), torch.zeros(2, dtype=torch.float64)
    >>> for _ in range(200):
    ...     V, X = antithetic_queries(x, 2, 0.1, generator=gen)
    ...     _ = acc.add(torch.cat([V, -V]), f(X), 0.1)
    >>> len(acc.batch_estimates()), acc.num_batches
    (200, 200)
    >>> bool((acc.hessian.dense() - A).norm() / A.norm() < 0.3)   # unbiased; error ~ 1/sqrt(batches)
    True
    """

    def __init__(self, dim: int, *, baseline: torch.Tensor | None = None, dtype: torch.dtype = torch.float64,
                 device: torch.device | str = "cpu") -> None:
        if dim < 1:
            raise ValueError(f"dim must be >= 1, got {dim}")
        self.dim = int(dim)
        self.baseline = (torch.zeros(dim, dtype=dtype, device=device) if baseline is None
                         else baseline.to(dtype=dtype, device=device))
        if self.baseline.shape != (dim,):
            raise ValueError(f"baseline must have shape ({dim},), got {tuple(self.baseline.shape)}")
        self._rows: list[torch.Tensor] = []
        self._coefs: list[torch.Tensor] = []
        self.num_batches = 0

    def add(self, U: torch.Tensor, y: torch.Tensor, mu: float, *, antithetic: bool = True) -> LowRankHessian:
        r"""Add one batch: values ``y`` at :math:`x + \mu u_i` (rows of ``U``; with
        ``antithetic=True`` the rows are :math:`(v, -v)` pairs). Returns that batch's estimate
        :math:`\hat H_b` of :math:`\nabla^2 F_\mu - B`."""
        if U.ndim != 2 or U.shape[1] != self.dim or y.shape != (U.shape[0],):
            raise ValueError(f"need U of shape (M, {self.dim}) and y of shape (M,), "
                             f"got {tuple(U.shape)} and {tuple(y.shape)}")
        if not bool(torch.isfinite(y).all()):
            raise FloatingPointError(f"a query within mu={mu:g} of the point returned a non-finite value")
        quad = 0.5 * mu * mu * (U.pow(2) @ self.baseline)
        est = zovh_hessian(U, y - quad, mu, antithetic=antithetic)
        self._rows.append(est.U)
        self._coefs.append(est.coef)
        self.num_batches += 1
        return est

    def batch_estimates(self) -> list[LowRankHessian]:
        """Every batch's own estimate (of the curvature minus the baseline)."""
        return [LowRankHessian(U, c) for U, c in zip(self._rows, self._coefs)]

    @property
    def hessian(self) -> LowRankHessian:
        r""":math:`B + \tfrac1T\sum_b \hat H_b` (the baseline as the diagonal)."""
        if not self._rows:
            return LowRankHessian(torch.zeros((0, self.dim), dtype=self.baseline.dtype, device=self.baseline.device),
                                  torch.zeros(0, dtype=self.baseline.dtype, device=self.baseline.device), self.baseline)
        T = self.num_batches
        return LowRankHessian(torch.cat(self._rows), torch.cat(self._coefs) / T, self.baseline)
