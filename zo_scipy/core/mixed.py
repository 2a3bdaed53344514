r"""Second derivatives of two-block functions :math:`g(x, y)` from values: the pieces of an
implicit hypergradient.

For :math:`x \in \mathbb{R}^p`, :math:`y \in \mathbb{R}^q` and :math:`z = (x, y)`:

- :func:`lstsq_gradient_stderr`: the least-squares gradient from antithetic pairs
  (:func:`~zo_scipy.core.curvature.lstsq_gradient`) with its standard errors from the fit's
  residuals (``n > d`` pairs), or the Stein central difference with its sampling error
  (``n < d``).
- :func:`second_difference_hessian`: the Hessian by least squares on second differences
  :math:`s_i = (g(y + \mu u_i) + g(y - \mu u_i) - 2 g(y))/\mu^2 = u_i^T H u_i + O(\mu^2)`,
  exact up to :math:`O(\mu^2)` once there are :math:`q(q+1)/2` pairs (the number of unknowns
  of a symmetric matrix); returned in the low-rank form of :mod:`zo_scipy.core.lowrank`.
- :func:`block_mixed_product`: the *joint-query block estimate*. A ZoVH estimate on
  :math:`z` (:func:`~zo_scipy.core.hessian.zovh_hessian`),
  :math:`\hat H = \sum_i c_i u_i u_i^T` with :math:`u_i = (u_{x,i}, u_{y,i})`, holds both
  blocks: :math:`\hat H_{yy} = \sum_i c_i u_{y,i} u_{y,i}^T` and
  :math:`\hat H_{xy} v = \sum_i c_i (u_{y,i}^T v)\, u_{x,i}`, which reuses the very queries
  that give :math:`\hat H_{yy}` (unbiased for the smoothed product, relative error about
  :math:`(p+q)/\sqrt M`).
- :func:`four_point_mixed_product`: the *four-point mixed difference* along :math:`v`
  with common directions :math:`u_k` in :math:`x`,

  .. math::
      d_k = \frac{g(x{+}\mu u_k, y{+}\epsilon v) - g(x{-}\mu u_k, y{+}\epsilon v)
                 - g(x{+}\mu u_k, y{-}\epsilon v) + g(x{-}\mu u_k, y{-}\epsilon v)}{4\mu\epsilon}
          = u_k^T H_{xy} v + O(\mu^2 + \epsilon^2),

  combined by Stein averaging :math:`\frac1K \sum_k d_k u_k` (unbiased for the smoothed
  product since :math:`E uu^T = I`; variance free of :math:`q`) or by least squares
  :math:`U_x^{+} d` (exact up to :math:`O(\mu^2)` once :math:`K \ge p`); :math:`4K`
  evaluations.
- :func:`conjugate_gradient`: CG on a symmetric positive-definite operator given by
  products only (a ``hessp``), with the final relative residual.

Pure torch, no SciPy. The bilevel front end is :mod:`zo_scipy.bilevel`; derivations and
measurements are on the bilevel docs page (``docs/bilevel.md``).
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch

from .curvature import lstsq_gradient
from .directions import haar_frames
from .hessian import zovh_gradient
from .laplace import central_second_differences, fit_second_differences
from .lowrank import LowRankHessian, spectral_form

MixedFit = Literal["stein", "lstsq"]


def _grouped_stderr(terms: torch.Tensor, groups: int) -> torch.Tensor:
    """Per-coordinate standard error of the mean of ``terms`` (rows), the rows summed in
    ``groups`` consecutive equal blocks first (antithetic partners are not independent)."""
    n = int(terms.shape[0])
    if groups < 2:
        return torch.full(terms.shape[1:], math.nan, dtype=terms.dtype, device=terms.device)
    blocks = terms[: (n // groups) * groups].reshape(groups, n // groups, *terms.shape[1:]).mean(1)
    return blocks.std(0, unbiased=True) / math.sqrt(groups)


def lstsq_gradient_stderr(V: torch.Tensor, y: torch.Tensor, mu: float) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Gradient and per-coordinate standard error from ``n`` antithetic pairs (``y`` holds the
    ``+`` values first, as :func:`~zo_scipy.core.curvature.antithetic_queries` orders them).

    ``n > d``: least squares :math:`g = V^+ s`, :math:`s_k = (y^+_k - y^-_k)/(2\mu)`, with the
    regression standard errors :math:`\sigma^2 \operatorname{diag}(V^TV)^{-1}`,
    :math:`\sigma^2 = |s - Vg|^2/(n-d)` (they are the finite-difference and noise error the fit
    shows; exact-looking data gives ~0). ``n == d``: the exact solve, standard error NaN (no
    residual degrees of freedom). ``n < d``: the Stein central difference
    :math:`\frac1n \sum_k s_k v_k` with the standard error of that mean.
    """
    n, d = V.shape
    if y.shape != (2 * n,):
        raise ValueError(f"need y of shape (2n,) = ({2 * n},), got {tuple(y.shape)}")
    if n >= d:
        g = lstsq_gradient(V, y, mu)
        if n == d:
            return g, torch.full((d,), math.nan, dtype=V.dtype, device=V.device)
        s = (y[:n] - y[n:]) / (2 * mu)
        sigma2 = float((s - V @ g).pow(2).sum()) / (n - d)
        cov_diag = torch.linalg.inv(V.T @ V).diagonal()
        return g, (sigma2 * cov_diag).clamp_min(0).sqrt()
    U = torch.cat([V, -V])
    g = zovh_gradient(U, y, mu, antithetic=True)
    s = (y[:n] - y[n:]) / (2 * mu)
    return g, _grouped_stderr(s[:, None] * V, n)


def second_difference_hessian(U: torch.Tensor, y_plus: torch.Tensor, y_minus: torch.Tensor, y0: float,
                              mu: float, *, rotation: torch.Tensor | None = None) -> LowRankHessian:
    r"""Least-squares Hessian from second differences along the rows :math:`u_i` of ``U``
    (``(n, q)``): :math:`s_i = (y^+_i + y^-_i - 2y_0)/\mu^2`, solve
    :math:`\min_H \sum_i (u_i^T H u_i - s_i)^2` over symmetric :math:`H`.

    Exact up to :math:`O(\mu^2)` for ``n >= q(q+1)/2`` directions in general position (a
    quadratic is recovered to round-off); fewer gives the minimum-norm fit. With the directions
    of :func:`second_difference_design` and its ``rotation``, the solve is entry by entry
    (:math:`O(q^3)` instead of a ``q^2/2``-column least-squares problem). Returned as the
    eigen-form :func:`~zo_scipy.core.lowrank.spectral_form` (``q`` orthonormal rows), so the
    low-rank solves and positive-definite surrogates apply.
    """
    n, q = U.shape
    if y_plus.shape != (n,) or y_minus.shape != (n,):
        raise ValueError(f"need y_plus and y_minus of shape ({n},), got {tuple(y_plus.shape)}, "
                         f"{tuple(y_minus.shape)}")
    s = central_second_differences(y_plus, y_minus, y0, mu)
    if rotation is not None:
        if n != q * (q + 1) // 2 or rotation.shape != (q, q):
            raise ValueError("rotation needs the q(q+1)/2 directions of second_difference_design")
        s = s / q  # the design's directions have norm sqrt(q)
        B = torch.diag(s[:q])
        iu = torch.triu_indices(q, q, offset=1, device=U.device)
        off = s[q:] - (s[iu[0]] + s[iu[1]]) / 2  # (e_i + e_j)^T B (e_i + e_j) / 2 = (B_ii + B_jj)/2 + B_ij
        B[iu[0], iu[1]] = off
        B[iu[1], iu[0]] = off
        return spectral_form(rotation @ B @ rotation.T)
    # General directions: the one least-squares fit of the core (minimum Frobenius norm when
    # underdetermined), as the Laplace pipeline uses it.
    return spectral_form(fit_second_differences(U, s).hessian.dense())


def second_difference_design(q: int, *, generator: torch.Generator, dtype: torch.dtype = torch.float64,
                             device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    r"""The ``q(q+1)/2`` directions of a well-conditioned second-difference design: a Haar-random
    rotation :math:`R` of :math:`e_i` and :math:`(e_i + e_j)/\sqrt2` (:math:`i < j`), scaled by
    :math:`\sqrt q` like Gaussian directions; returns ``(U, R)``. :func:`second_difference_hessian`
    with ``rotation=R`` then recovers :math:`R^THR` entry by entry (no ill-conditioned random
    design amplifying round-off)."""
    if q < 1:
        raise ValueError(f"need q >= 1, got {q}")
    R = haar_frames(torch.randn((q, q), generator=generator, dtype=dtype, device=device))
    iu = torch.triu_indices(q, q, offset=1, device=device)
    E = torch.eye(q, dtype=dtype, device=device)
    pairs = (E[iu[0]] + E[iu[1]]) / math.sqrt(2.0)
    return (torch.cat([E, pairs]) @ R.T) * math.sqrt(q), R


def block_mixed_product(H: LowRankHessian, p: int, v: torch.Tensor, *,
                        antithetic: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    r"""The joint-query block estimate :math:`\hat H_{xy} v = U_x^T (c \odot U_y v)` of a ZoVH
    estimate ``H`` on :math:`z = (x, y)` (the first ``p`` coordinates are :math:`x`), with its
    per-coordinate standard error (from the per-query terms :math:`M c_i (u_{y,i}^T v) u_{x,i}`,
    antithetic partners grouped when ``antithetic``; rows of ``H`` must then come as the
    :math:`+` block then the :math:`-` block)."""
    M, d = H.U.shape
    if not 0 < p < d or v.shape != (d - p,):
        raise ValueError(f"need 0 < p < {d} and v of shape ({d - p},), got p={p}, {tuple(v.shape)}")
    Ux, Uy = H.U[:, :p], H.U[:, p:]
    terms = (H.coef * (Uy @ v))[:, None] * Ux  # (M, p); their sum is the estimate
    est = terms.sum(0)
    if antithetic and M % 2 == 0:
        n = M // 2
        paired = (terms[:n] + terms[n:]) * n  # n independent pair terms whose mean is est
        return est, _grouped_stderr(paired, n)
    return est, _grouped_stderr(terms * M, M)


def block_yy(H: LowRankHessian, p: int) -> LowRankHessian:
    r"""The :math:`yy` block :math:`\hat H_{yy} = U_y^T \operatorname{diag}(c) U_y` of a joint estimate."""
    return LowRankHessian(H.U[:, p:].contiguous(), H.coef)


def four_point_points(x: torch.Tensor, y: torch.Tensor, Ux: torch.Tensor, v: torch.Tensor, mu: float,
                      eps: float) -> torch.Tensor:
    r"""The ``4K`` joint points :math:`(x \pm \mu u_k, y \pm \epsilon v)` of
    :func:`four_point_mixed_product`, in the order ``(+,+), (-,+), (+,-), (-,-)`` per block of ``K``."""
    K = Ux.shape[0]
    xs = torch.cat([x + mu * Ux, x - mu * Ux, x + mu * Ux, x - mu * Ux])
    ys = torch.cat([(y + eps * v).expand(K, -1), (y + eps * v).expand(K, -1),
                    (y - eps * v).expand(K, -1), (y - eps * v).expand(K, -1)])
    return torch.cat([xs, ys], dim=1)


def four_point_mixed_product(Ux: torch.Tensor, values: torch.Tensor, mu: float, eps: float, *,
                             fit: MixedFit = "lstsq") -> tuple[torch.Tensor, torch.Tensor]:
    r"""The four-point mixed difference estimate of :math:`H_{xy} v` and its per-coordinate
    standard error, from the ``4K`` values at :func:`four_point_points` (same order).

    ``fit="stein"``: :math:`\frac1K\sum_k d_k u_k`, standard error of that mean.
    ``fit="lstsq"``: :math:`U_x^+ d` (needs ``K >= p``), regression standard errors when
    ``K > p`` (NaN at ``K == p``). See the module docstring.
    """
    K, p = Ux.shape
    if values.shape != (4 * K,):
        raise ValueError(f"need 4K = {4 * K} values, got shape {tuple(values.shape)}")
    a, b, c, e = values.reshape(4, K)
    dk = (a - b - c + e) / (4 * mu * eps)
    if fit == "stein":
        return (dk[:, None] * Ux).mean(0), _grouped_stderr(dk[:, None] * Ux, K)
    if fit != "lstsq":
        raise ValueError(f"fit must be 'stein' or 'lstsq', got {fit!r}")
    if K < p:
        raise ValueError(f"the least-squares fit needs K >= p = {p} directions, got K={K}")
    est = torch.linalg.lstsq(Ux, dk[:, None], driver="gelsd").solution[:, 0]
    if K == p:
        return est, torch.full((p,), math.nan, dtype=Ux.dtype, device=Ux.device)
    sigma2 = float((dk - Ux @ est).pow(2).sum()) / (K - p)
    return est, (sigma2 * torch.linalg.inv(Ux.T @ Ux).diagonal()).clamp_min(0).sqrt()


def spectral_solve(S: LowRankHessian, b: torch.Tensor, lam: float) -> torch.Tensor:
    r""":math:`(\lambda I + W^T \operatorname{diag}(c) W)^{-1} b` for ``S`` in eigen-form (orthonormal
    rows :math:`W`, as :func:`~zo_scipy.core.lowrank.spectral_form` and
    :func:`~zo_scipy.core.lowrank.positive_definite` return it):

    .. math:: W^T \operatorname{diag}\big(1/(\lambda + c)\big) W b + (b - W^TWb)/\lambda,

    the Woodbury identity with orthonormal rows, stable for any :math:`\lambda > 0` even when
    :math:`\lambda \ll c` (the general :func:`~zo_scipy.core.lowrank.woodbury_solve` then
    divides by :math:`\lambda` first and loses digits). The second term is dropped when the
    rows span the space (``rank == dim``), so ``lam = 0`` is allowed there. ``b`` may be
    ``(d,)`` or ``(d, k)``; needs :math:`\lambda + c > 0`."""
    denom = lam + S.coef
    if not bool((denom > 0).all()):
        raise ValueError("spectral_solve needs lam + eigenvalues > 0")
    W = S.U
    Wb = W @ b
    out = W.T @ (Wb / (denom if b.ndim == 1 else denom[:, None]))
    if S.rank_bound < S.dim:
        if not lam > 0:
            raise ValueError("a rank-deficient form needs lam > 0")
        out = out + (b - W.T @ Wb) / lam
    return out


@dataclass(frozen=True)
class CGResult:
    """Solution, final relative residual :math:`|b - Ax|/|b|`, iterations, and whether a
    direction of non-positive curvature was met (the operator is not positive definite)."""

    x: torch.Tensor
    residual: float
    iterations: int
    nonpositive: bool


def conjugate_gradient(matvec: Callable[[torch.Tensor], torch.Tensor], b: torch.Tensor, *, tol: float = 1e-10,
                       maxiter: int | None = None, x0: torch.Tensor | None = None,
                       exact_residual: bool = True,
                       precondition: Callable[[torch.Tensor], torch.Tensor] | None = None) -> CGResult:
    r"""Conjugate gradients for :math:`Ax = b` with :math:`A` known by ``matvec`` only.

    Stops at relative residual ``tol``, after ``maxiter`` (default ``2 len(b)``) iterations,
    or at the first direction :math:`p` with :math:`p^TAp \le 0` (``nonpositive=True``; the
    iterate so far is returned, never a step along that direction). ``b = 0`` gives 0.
    ``x0``: a starting guess (a warm start, e.g. the solution of a nearby system; one product
    more). ``exact_residual=False`` reports the recurrence residual instead of spending one
    more product on :math:`|b - Ax|` (the two agree up to round-off in exact products).
    ``precondition``: :math:`r \mapsto M^{-1} r` for a symmetric positive-definite :math:`M \approx A`
    (preconditioned CG; the stopping rule stays on the unpreconditioned residual, so a poor
    :math:`M` costs iterations, never accuracy).
    """
    bnorm = float(b.norm())
    if bnorm == 0:
        return CGResult(torch.zeros_like(b), 0.0, 0, False)
    if x0 is None:
        x = torch.zeros_like(b)
        r = b.clone()
    else:
        if x0.shape != b.shape:
            raise ValueError(f"x0 must have shape {tuple(b.shape)}, got {tuple(x0.shape)}")
        x = x0.clone()
        r = b - matvec(x)
    zr = r.clone() if precondition is None else precondition(r)
    p = zr.clone()
    rr = float(r @ r)
    rz = float(r @ zr)
    if math.sqrt(rr) <= tol * bnorm:
        return CGResult(x, math.sqrt(rr) / bnorm, 0, False)
    maxiter = 2 * b.numel() if maxiter is None else int(maxiter)
    it = 0
    for it in range(1, maxiter + 1):  # noqa: B007 - it is reported
        Ap = matvec(p)
        pAp = float(p @ Ap)
        if not pAp > 0 or not math.isfinite(pAp):
            res = float((b - matvec(x)).norm()) / bnorm if exact_residual else math.sqrt(rr) / bnorm
            return CGResult(x, res, it, True)
        alpha = rz / pAp
        x = x + alpha * p
        r = r - alpha * Ap
        rr = float(r @ r)
        if math.sqrt(rr) <= tol * bnorm:
            break
        zr = r if precondition is None else precondition(r)
        rz_new = float(r @ zr)
        p = zr + (rz_new / rz) * p
        rz = rz_new
    if not exact_residual:
        return CGResult(x, math.sqrt(rr) / bnorm, it, False)
    return CGResult(x, float((b - matvec(x)).norm()) / bnorm, it, False)


def coordinate_points(y: torch.Tensor, h: float) -> torch.Tensor:
    r"""The base points of the value-only Hessian-vector product: :math:`y`,
    :math:`y + h e_j` and :math:`y - h e_j` for every coordinate (``2q + 1`` rows). Their values
    give the central-difference gradient (:func:`coordinate_gradient`) and the
    :math:`g(y + h e_j)` that every product at :math:`y` shares."""
    q = y.numel()
    E = h * torch.eye(q, dtype=y.dtype)
    return torch.cat([y[None], y + E, y - E])


def coordinate_gradient(vals: torch.Tensor, h: float) -> torch.Tensor:
    """Central differences :math:`(g(y + h e_j) - g(y - h e_j))/(2h)` from the values at
    :func:`coordinate_points`."""
    q = (int(vals.numel()) - 1) // 2
    return (vals[1:q + 1] - vals[q + 1:]) / (2 * h)


def hessp_points(y: torch.Tensor, w: torch.Tensor, h: float, eps: float) -> torch.Tensor:
    r"""Points of one product :math:`H w`: :math:`y + \epsilon \hat w` and
    :math:`y + \epsilon \hat w + h e_j` (``q + 1`` rows), :math:`\hat w = w/|w|`."""
    q = y.numel()
    yw = y + eps * w / w.norm()
    return torch.cat([yw[None], yw + h * torch.eye(q, dtype=y.dtype)])


def hessp_from_values(vals: torch.Tensor, base: torch.Tensor, wnorm: float, h: float, eps: float) -> torch.Tensor:
    r"""The value-only Hessian-vector product

    .. math:: (Hw)_j \approx |w|\,\frac{g(y{+}\epsilon\hat w{+}h e_j) - g(y{+}\epsilon\hat w)
              - g(y{+}h e_j) + g(y)}{\epsilon h} = (Hw)_j + O(|w|(\epsilon + h)),

    ``vals`` at :func:`hessp_points`, ``base`` at :func:`coordinate_points` (shared by every
    product at :math:`y`, so one product costs ``q + 1`` evaluations)."""
    q = int(vals.numel()) - 1
    return wnorm * (vals[1:] - vals[0] - base[1:q + 1] + base[0]) / (eps * h)
