r"""Laplace approximation at a fixed point from function values: curvature fit, positive-definite
repair, Gaussian evidence.

Around a mode :math:`\hat\theta` of :math:`U` (a negative log density) the Laplace approximation is
:math:`N(\hat\theta, P^{-1})` with :math:`P = \nabla^2 U(\hat\theta)` and
:math:`\log Z \approx -U(\hat\theta) + \tfrac d2 \log 2\pi - \tfrac12 \log\det P` (Tierney & Kadane
1986; MacKay 1992). This module holds the estimator math; :mod:`zo_scipy.uq` is the adapter.

**Curvature from central second differences.** For antithetic pairs along unit directions
:math:`v_k` with steps :math:`\mu_k`,

.. math:: s_k = \frac{f(\hat\theta + \mu_k v_k) + f(\hat\theta - \mu_k v_k) - 2 f(\hat\theta)}{\mu_k^2}
          = v_k^T H v_k + O(\mu_k^2),

exact on a quadratic. Given a diagonal baseline :math:`b` (a coordinate or isotropic estimate of the
diagonal), :func:`fit_second_differences` returns the minimum-Frobenius-norm symmetric correction
consistent with every measurement,

.. math:: H = \operatorname{diag}(b) + V^T \operatorname{diag}(a) V,\qquad
          (G \circ G)\, a = s - (V \circ V)\, b,\quad G = V V^T,

(the correction lies in the span of the :math:`v_k v_k^T`, whose Frobenius Gram matrix is
:math:`G\circ G`): a least-squares fit of the quadratic model, exact once the :math:`v_k v_k^T`
span the symmetric matrices (:math:`n \ge d(d+1)/2` pairs), and otherwise the projection of
:math:`H - \operatorname{diag}(b)` onto the explored directions. Cost :math:`O(n^2 d + n^3)`,
memory :math:`O(n d)`.

**Positive-definite repair** (:func:`repaired_precision`). A precision
:math:`P = D + U^T \operatorname{diag}(c)\,U` with a diagonal :math:`D` is whitened,
:math:`D^{-1/2} P D^{-1/2} = I + B^T\operatorname{diag}(c)B`, :math:`B = U D^{-1/2}`; the eigen-projection
of the low-rank part (:func:`~zo_scipy.core.lowrank.spectral_form`) gives
:math:`I + Q\operatorname{diag}(\sigma)Q^T`; eigenvalues :math:`1 + \sigma_j` below a floor are raised to
it, and non-positive entries of :math:`D` are raised to a positive floor. The result is a
:class:`~zo_scipy.core.lowrank.PrecisionFactor` (log-determinant, solves, marginal variances and
samples in :math:`O(r d)`); what was changed is a :class:`PDRepair`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .lowrank import LowRankHessian, PrecisionFactor, spectral_form


def central_second_differences(y_plus: torch.Tensor, y_minus: torch.Tensor, y0: float | torch.Tensor,
                               mu: float | torch.Tensor) -> torch.Tensor:
    r""":math:`s_k = (y^+_k + y^-_k - 2 y_0)/\mu_k^2` (``mu`` a scalar or one step per pair)."""
    return (y_plus + y_minus - 2 * y0) / (torch.as_tensor(mu, dtype=y_plus.dtype, device=y_plus.device) ** 2)


@dataclass(frozen=True)
class QuadraticFit:
    r"""The fit of :func:`fit_second_differences`: ``hessian`` :math:`= \operatorname{diag}(b) + V^T
    \operatorname{diag}(a) V`, the eigendecomposition of the kernel :math:`K = G\circ G` (kept for the
    variance of linear functionals of :math:`a`), its numerical rank, the residual degrees of freedom
    ``n - rank`` and the residual sum of squares."""

    hessian: LowRankHessian
    kernel_evals: torch.Tensor
    kernel_vecs: torch.Tensor
    rank: int
    dof: int
    rss: float

    @property
    def noise_variance(self) -> float:
        """Residual variance of one second difference, ``rss / dof`` (NaN when ``dof == 0``)."""
        return self.rss / self.dof if self.dof > 0 else math.nan

    def coefficient_variance(self, q: torch.Tensor) -> float:
        r""":math:`\operatorname{Var}(q^T a) = \sigma^2 q^T (K^+)^2 q` (:math:`a = K^+ r`) for i.i.d.
        errors of variance :math:`\sigma^2` (:attr:`noise_variance`) on the second differences."""
        keep = self.kernel_evals > 0
        proj = self.kernel_vecs[:, keep].T @ q.to(self.kernel_vecs.dtype)
        return self.noise_variance * float((proj.pow(2) / self.kernel_evals[keep].pow(2)).sum())


def fit_second_differences(V: torch.Tensor, s: torch.Tensor, *, baseline: torch.Tensor | None = None,
                           rcond: float = 1e-10) -> QuadraticFit:
    r"""Minimum-norm least-squares curvature from second differences ``s`` along the rows of ``V``
    (see the module docstring): :math:`H = \operatorname{diag}(b) + V^T\operatorname{diag}(a)V` with
    :math:`a = K^+ (s - (V\circ V) b)`, :math:`K = (VV^T)^{\circ 2}` (eigenvalues below ``rcond``
    times the largest are dropped). Exact on a quadratic once :math:`n \ge d(d+1)/2` generic
    directions are used. The small solve runs in float64."""
    if V.ndim != 2 or s.shape != (V.shape[0],):
        raise ValueError(f"need V of shape (n, d) and s of shape (n,), got {tuple(V.shape)} and {tuple(s.shape)}")
    n, d = V.shape
    b = torch.zeros(d, dtype=V.dtype, device=V.device) if baseline is None else baseline.to(V)
    r = (s - V.pow(2) @ b).double()
    G = (V @ V.T).double()
    K = G * G
    evals, evecs = torch.linalg.eigh((K + K.T) / 2)
    cut = rcond * float(evals.abs().max()) if n else 0.0
    evals = torch.where(evals > cut, evals, torch.zeros_like(evals))
    keep = evals > 0
    a = evecs[:, keep] @ ((evecs[:, keep].T @ r) / evals[keep])
    rank = int(keep.sum())
    resid = r - K @ a
    H = LowRankHessian(V, a.to(V.dtype), b)
    return QuadraticFit(H, evals, evecs, rank, n - rank, float(resid.pow(2).sum()))


@dataclass(frozen=True)
class PDRepair:
    r"""What :func:`repaired_precision` changed to make the precision positive definite.

    ``num_clipped`` whitened eigenvalues :math:`1 + \sigma_j` were below the floor and raised
    (to 1 or to the floor, see :func:`repaired_precision`; ``clipped_mass`` = the sum of the raises, ``relative_clipped`` = that over
    :math:`\sum_j |\sigma_j|`); ``min_whitened_eig`` is the smallest :math:`1 + \sigma_j` before the
    repair (negative: the estimate is indefinite there); ``num_floored_diag`` diagonal entries were
    at most 0 (or below the floor) and raised to ``diag_floor``.

    See Also
    --------
    zo_scipy.uq.LaplacePosterior : its ``repair`` attribute.
    zo_scipy.core.positive_definite : the same kind of repair for optimization.

    References
    ----------
    - Nicholas J. Higham, "Computing a nearest symmetric positive semidefinite matrix", Linear
      Algebra and its Applications 103, 103-118, 1988.
    - David J. C. MacKay, "A practical Bayesian framework for backpropagation networks", Neural
      Computation 4(3), 448-472, 1992 (the Laplace approximation and its evidence).

    Examples
    --------
    >>> import numpy as np
    >>> import zo_scipy.uq as uq
    >>> post = uq.laplace(lambda t: 0.5 * float(t @ t), np.ones(3), seed=0)
    >>> post.repair.repaired, post.repair.num_clipped
    (False, 0)
    """

    num_clipped: int
    clipped_mass: float
    relative_clipped: float
    min_whitened_eig: float
    num_floored_diag: int
    diag_floor: float

    @property
    def repaired(self) -> bool:
        """Whether anything was changed (an eigenvalue clipped or a diagonal entry floored)."""
        return self.num_clipped > 0 or self.num_floored_diag > 0


def repaired_precision(diag: torch.Tensor, H: LowRankHessian, *, floor: float = 1e-6,
                       method: str = "diagonal") -> tuple[PrecisionFactor, PDRepair]:
    r"""A positive-definite :class:`~zo_scipy.core.lowrank.PrecisionFactor` of
    :math:`P = \operatorname{diag}(\text{diag}) + U^T\operatorname{diag}(c)U` (``H``'s rows and weights;
    its own diagonal is ignored), and the :class:`PDRepair` report.

    Diagonal entries below ``floor`` times the largest curvature scale (the largest
    :math:`|D_{kk}|`, or the largest :math:`|c_i|\,|u_i|^2`) are raised to it. Whitened eigenvalues
    :math:`1 + \sigma_j` below ``floor`` are replaced by 1 (``method="diagonal"``: in that direction
    the low-rank correction is dropped and the diagonal's curvature kept, the safer choice when the
    correction comes from too few measurements) or by ``floor`` (``method="floor"``: the clipped
    spectrum, a nearly flat direction). So every factor this returns has a positive diagonal and a
    spectrum :math:`\ge` ``floor``: no failed factorization and no negative variance, whatever the
    estimate (float32 included). Cost :math:`O(M^2 d)`."""
    if not 0 < floor < 1:
        raise ValueError(f"floor must lie in (0, 1), got {floor}")
    if method not in ("diagonal", "floor"):
        raise ValueError(f"method must be 'diagonal' or 'floor', got {method!r}")
    diag = diag.to(H.U.dtype)
    if not bool(torch.isfinite(diag).all()) or not bool(torch.isfinite(H.coef).all()):
        raise ValueError("the precision estimate has non-finite entries")
    scale = float(diag.abs().max()) if diag.numel() else 0.0
    if H.rank_bound:
        scale = max(scale, float((H.coef.abs() * H.U.pow(2).sum(1)).max()))
    if not scale > 0 or not math.isfinite(scale):
        scale = 1.0
    dfloor = floor * scale
    low = diag < dfloor
    D = torch.where(low, torch.full_like(diag, dfloor), diag)
    d_inv_sqrt = D.rsqrt()
    if H.rank_bound == 0:
        empty = torch.zeros((D.shape[0], 0), dtype=D.dtype, device=D.device)
        return (PrecisionFactor(d_inv_sqrt, empty, torch.zeros(0, dtype=D.dtype, device=D.device)),
                PDRepair(0, 0.0, 0.0, 1.0, int(low.sum()), dfloor))
    W = spectral_form(LowRankHessian(H.U * d_inv_sqrt, H.coef))
    spectrum = 1 + W.coef
    under = spectrum < floor
    target = 1.0 if method == "diagonal" else floor
    mass = float((target - spectrum[under]).sum()) if bool(under.any()) else 0.0
    total = float(W.coef.abs().sum())
    fixed = torch.where(under, torch.full_like(spectrum, target), spectrum)
    report = PDRepair(int(under.sum()), mass, mass / total if total > 0 else 0.0, float(spectrum.min()),
                      int(low.sum()), dfloor)
    return PrecisionFactor(d_inv_sqrt, W.U.T.contiguous(), fixed), report


def marginal_variances(F: PrecisionFactor) -> torch.Tensor:
    r""":math:`\operatorname{diag}(P^{-1})` as a sum of non-negative terms,
    :math:`D^{-1}_{kk}\,[(1 - \sum_j Q_{kj}^2)_+ + \sum_j Q_{kj}^2/s_j]`, so round-off (float32) can
    never make a variance negative. :math:`O(r d)`."""
    Q2 = F.basis.pow(2)
    rest = (1 - Q2.sum(1)).clamp_min(0)
    return F.d_inv_sqrt.pow(2) * (rest + (Q2 / F.spectrum).sum(1))


def precision_low_rank(F: PrecisionFactor) -> LowRankHessian:
    r"""The factored precision back in low-rank + diagonal form,
    :math:`P = D + (D^{1/2}Q)\operatorname{diag}(s - 1)(D^{1/2}Q)^T` (rows :math:`Q^T D^{1/2}`;
    weights :math:`s_j - 1 > -1` may be negative where the curvature is below the diagonal)."""
    D_sqrt = 1 / F.d_inv_sqrt
    return LowRankHessian((F.basis * D_sqrt[:, None]).T.contiguous(), F.spectrum - 1, D_sqrt.pow(2))


def quadratic_log_evidence(value: float, gradient: torch.Tensor | None, F: PrecisionFactor) -> tuple[float, torch.Tensor]:
    r"""Laplace log evidence of :math:`\exp(-U)` for the local quadratic model
    :math:`U(\hat\theta + \delta) = U_0 + g^T\delta + \tfrac12 \delta^T P \delta`:

    .. math:: \log Z = -\big(U_0 - \tfrac12 g^T P^{-1} g\big) + \tfrac d2 \log 2\pi - \tfrac12\log\det P,

    exact for a Gaussian :math:`\exp(-U)`; returns it with the Newton step :math:`-P^{-1} g` (the
    model's minimizer relative to :math:`\hat\theta`). ``gradient=None`` means :math:`g = 0`."""
    d = F.d_inv_sqrt.shape[0]
    if gradient is None:
        step = torch.zeros(d, dtype=F.d_inv_sqrt.dtype, device=F.d_inv_sqrt.device)
        drop = 0.0
    else:
        step = -F.solve(gradient.to(F.d_inv_sqrt))
        drop = -0.5 * float(gradient.to(step) @ step)  # 1/2 g^T P^-1 g
    return -(value - drop) + 0.5 * d * math.log(2 * math.pi) - 0.5 * F.logdet(), step
