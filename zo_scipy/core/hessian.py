r"""ZoVH: zeroth-order Hessian estimators in low-rank form (spec sections 3-4).

Every estimator here returns a :class:`LowRankHessian`

.. math:: \hat H = U^T \operatorname{diag}(c)\, U + \operatorname{diag}(e),

with ``U`` the ``(M, d)`` matrix of query directions (rows :math:`u_i`), ``c`` one
weight per direction and ``e`` a scalar or a length-``d`` diagonal. Nothing
``d x d`` is formed unless :meth:`LowRankHessian.dense` is called: products cost
:math:`O(M d)`, Frobenius norms go through the ``M x M`` Gram matrix
:math:`G = U U^T`, and the regularized inverse is an ``M x M`` solve (Woodbury).

ZoVH (mean baseline). From ``M`` queries :math:`y_i = f(x + \mu u_i)`,

.. math::
    \bar y = \tfrac1M \textstyle\sum_i y_i,\quad
    w_i = \frac{y_i - \bar y}{\mu},\quad h_i = \frac{y_i - \bar y}{\mu^2},\quad
    \hat H = \frac{1}{M-1}\sum_i h_i\, u_i u_i^T,\quad
    g = \frac{1}{M-1}\sum_i w_i u_i .

Stein's identity gives :math:`\nabla^2 F_\mu = E[f(x+\mu u)(uu^T - I)]/\mu^2`; the
mean baseline costs :math:`(M-1)/M`, undone by :math:`1/(M-1)`, so
:math:`E\hat H = \nabla^2 F_\mu(x)` (``= A`` on :math:`\tfrac12 x^TAx`). Because
:math:`\sum_i h_i = 0` the estimate is always indefinite.

With ``antithetic=True`` the rows come in pairs :math:`(u, -u)`; the same
derivation then gives the normalizers :math:`1/(M-2)` for :math:`\hat H` and
:math:`1/M` for :math:`g` (a partner's value is correlated with its own
direction), the linear term of :math:`f` cancels inside each pair, and :math:`g`
becomes the central difference :math:`\frac1n\sum (y^+ - y^-) u / (2\mu)`.

This module is pure torch (no SciPy); the SciPy-facing provider is
:class:`zo_scipy.ZoVH`.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import torch

from .directions import sample_directions
from .estimators import zoar_gradient
from .history import QueryHistory

ClassicalKind = Literal["cd", "s1", "s2", "s3"]
PDMethod = Literal["clip", "abs"]


@dataclass
class SymmetricOperator:
    r"""A reference matrix known only through products: ``matmat(V)`` for a ``(d, k)``
    ``V``, its ``diagonal`` and its squared Frobenius norm ``fro2``. Enough for
    :meth:`LowRankHessian.frobenius_error` without forming ``d x d``."""

    matmat: Callable[[torch.Tensor], torch.Tensor]
    diagonal: torch.Tensor
    fro2: float


@dataclass
class LowRankHessian:
    r""":math:`\hat H = U^T \operatorname{diag}(c) U + \operatorname{diag}(e)` (see module docstring).

    Parameters
    ----------
    U : torch.Tensor
        ``(M, d)`` directions (``M`` may be 0).
    coef : torch.Tensor
        ``(M,)`` weights :math:`c_i` (for ZoVH :math:`c_i = h_i / (M-1)`).
    diag : torch.Tensor or float
        Scalar (a multiple of the identity) or ``(d,)`` diagonal :math:`e`.
    """

    U: torch.Tensor
    coef: torch.Tensor
    diag: torch.Tensor | float = 0.0
    _gram: torch.Tensor | None = field(default=None, repr=False)

    @property
    def dim(self) -> int:
        return int(self.U.shape[1])

    @property
    def rank_bound(self) -> int:
        return int(self.U.shape[0])

    def _diag_vec(self) -> torch.Tensor:
        e = torch.as_tensor(self.diag, dtype=self.U.dtype, device=self.U.device)
        return e.expand(self.dim) if e.ndim == 0 else e

    def gram(self) -> torch.Tensor:
        """:math:`G = U U^T` (``M x M``, cached)."""
        if self._gram is None:
            self._gram = self.U @ self.U.T
        return self._gram

    def matvec(self, v: torch.Tensor) -> torch.Tensor:
        r""":math:`\hat H v` for ``v`` of shape ``(d,)`` or ``(d, k)``: :math:`U^T(c \odot Uv) + e \odot v`."""
        Uv = self.U @ v
        cv = Uv * (self.coef if v.ndim == 1 else self.coef[:, None])
        e = torch.as_tensor(self.diag, dtype=v.dtype, device=v.device)
        if v.ndim == 2 and e.ndim == 1:
            e = e[:, None]
        return self.U.T @ cv + e * v

    def dense(self) -> torch.Tensor:
        """The ``d x d`` matrix (only on request: O(d^2) memory)."""
        H = self.U.T @ (self.coef[:, None] * self.U)
        H.diagonal().add_(self._diag_vec())
        return H

    def trace(self) -> float:
        return float(self.coef @ self.U.pow(2).sum(1) + self._diag_vec().sum())

    def frobenius_norm(self) -> float:
        r""":math:`\|\hat H\|_F` via the Gram matrix:
        :math:`\|\hat H\|_F^2 = c^T (G\circ G)\, c + 2 \sum_i c_i \sum_k e_k u_{ik}^2 + \|e\|^2`."""
        G = self.gram()
        e = self._diag_vec()
        val = self.coef @ ((G * G) @ self.coef) + 2 * self.coef @ (self.U.pow(2) @ e) + e @ e
        return math.sqrt(max(float(val), 0.0))

    def inner(self, A: torch.Tensor | SymmetricOperator | LowRankHessian) -> float:
        r"""Frobenius inner product :math:`\langle \hat H, A\rangle = \sum_i c_i u_i^T A u_i + \sum_k e_k A_{kk}`."""
        e = self._diag_vec()
        if isinstance(A, LowRankHessian):
            C = self.U @ A.U.T  # cross Gram
            ea = A._diag_vec()
            return float(self.coef @ ((C * C) @ A.coef) + self.coef @ (self.U.pow(2) @ ea)
                         + A.coef @ (A.U.pow(2) @ e) + e @ ea)
        if isinstance(A, SymmetricOperator):
            AU = A.matmat(self.U.T)
            diagA = A.diagonal
        else:
            AU = A @ self.U.T
            diagA = A.diagonal()
        return float(self.coef @ (self.U.T * AU).sum(0) + e @ diagA)

    def frobenius_error(self, A: torch.Tensor | SymmetricOperator | LowRankHessian) -> float:
        r""":math:`\|\hat H - A\|_F = (\|\hat H\|_F^2 - 2\langle \hat H, A\rangle + \|A\|_F^2)^{1/2}`,
        never forming :math:`\hat H`. ``A`` is a dense tensor, a :class:`SymmetricOperator`
        or another :class:`LowRankHessian`. (Relative round-off ~1e-16 of the squared terms:
        fine unless the error is below ~1e-7 of the norms.)"""
        if isinstance(A, LowRankHessian):
            a2 = A.frobenius_norm() ** 2
        elif isinstance(A, SymmetricOperator):
            a2 = float(A.fro2)
        else:
            a2 = float(A.pow(2).sum())
        val = self.frobenius_norm() ** 2 - 2 * self.inner(A) + a2
        return math.sqrt(max(val, 0.0))

    def scaled(self, s: float) -> LowRankHessian:
        return LowRankHessian(self.U, self.coef * s, self.diag * s)


# ---------------------------------------------------------------------------------------
# ZoVH estimators
# ---------------------------------------------------------------------------------------
def _check_batch(U: torch.Tensor, y: torch.Tensor, need: int) -> int:
    if U.ndim != 2 or y.ndim != 1 or U.shape[0] != y.shape[0]:
        raise ValueError(f"need U of shape (M, d) and y of shape (M,), got {tuple(U.shape)} and {tuple(y.shape)}")
    M = int(U.shape[0])
    if M < need:
        raise ValueError(f"this estimator needs at least {need} queries, got M={M}")
    return M


def zovh_gradient(U: torch.Tensor, y: torch.Tensor, mu: float, *, antithetic: bool = False) -> torch.Tensor:
    r"""The ZoVH gradient :math:`g = \frac{1}{M-1}\sum_i w_i u_i` (= :func:`zoar_gradient`);
    with ``antithetic=True`` the pair-corrected :math:`\frac{1}{M}\sum_i w_i u_i`
    (a central difference)."""
    M = _check_batch(U, y, 2)
    g = zoar_gradient(U, y, mu)
    return g * ((M - 1) / M) if antithetic else g


def zovh_hessian(U: torch.Tensor, y: torch.Tensor, mu: float, *, antithetic: bool = False) -> LowRankHessian:
    r"""ZoVH Hessian with the optimal (mean) baseline,
    :math:`\hat H = \frac{1}{M-1}\sum_i h_i u_i u_i^T`, :math:`h_i = (y_i-\bar y)/\mu^2`.

    Unbiased for :math:`\nabla^2 F_\mu(x)` with ``M`` independent on-policy queries.
    ``antithetic=True``: rows are :math:`(u, -u)` pairs and the normalizer is
    :math:`1/(M-2)` (still unbiased; see the module docstring). Memory :math:`O(Md)`.
    """
    M = _check_batch(U, y, 3 if antithetic else 2)
    h = (y - y.mean()) / (mu * mu)
    return LowRankHessian(U, h / ((M - 2) if antithetic else (M - 1)))


def zovh_hessian_reuse(history: QueryHistory, mu: float, *, antithetic: bool = False) -> LowRankHessian:
    r"""ZoVH with query reuse: the same formula over every pair in a
    :class:`~zo_scipy.core.history.QueryHistory` (spec 3.ii), :math:`M = |B|`, the mean
    over old and new values alike, old values used as stored (never re-evaluated) and
    scaled by :math:`1/\mu^2` like the new ones (the authors' reuse variant drops a
    :math:`1/\mu`)."""
    return zovh_hessian(history.directions(), history.values(), mu, antithetic=antithetic)


# ---------------------------------------------------------------------------------------
# Regularized inverse
# ---------------------------------------------------------------------------------------
def woodbury_solve(H: LowRankHessian, v: torch.Tensor, lam: float) -> torch.Tensor:
    r"""Exact :math:`(\lambda I + \hat H)^{-1} v` by Woodbury, one ``M x M`` solve.

    With :math:`D = \lambda I + \operatorname{diag}(e)` (diagonal) and :math:`C = \operatorname{diag}(c)`,

    .. math:: (D + U^T C U)^{-1} = D^{-1} - D^{-1} U^T C\,(I_M + U D^{-1} U^T C)^{-1} U D^{-1}.

    The small matrix :math:`I_M + G_D C` never inverts :math:`C`, so weights
    :math:`c_i \approx 0` (or exactly 0) are harmless; it is singular only when
    :math:`\lambda I + \hat H` itself is. ``v`` may be ``(d,)`` or ``(d, k)``.
    """
    Dinv = 1.0 / (lam + H._diag_vec())
    if not bool(torch.isfinite(Dinv).all()):
        raise ValueError(f"lam + diag must be nonzero, got lam={lam}")
    col = v.ndim == 1
    V = v[:, None] if col else v
    DV = Dinv[:, None] * V
    M = H.rank_bound
    if M == 0:
        out = DV
    else:
        GD = (H.U * Dinv) @ H.U.T
        S = torch.eye(M, dtype=V.dtype, device=V.device) + GD * H.coef
        z = torch.linalg.solve(S, H.U @ DV)
        out = DV - Dinv[:, None] * (H.U.T @ (H.coef[:, None] * z))
    return out[:, 0] if col else out


def sherman_morrison_coefficients(H: LowRankHessian, lam: float, *, guard: float = 1e-6) -> torch.Tensor:
    r"""The authors' per-direction coefficients
    :math:`c'_i = h_i / (\lambda(M-1) + h_i |u_i|^2) = c_i / (\lambda + c_i |u_i|^2)`.

    The denominator is GUARDED: where :math:`|\lambda + c_i|u_i|^2| < \text{guard}\cdot\lambda`
    it is replaced by :math:`\pm\text{guard}\cdot\lambda` (sign kept, 0 counts as +),
    so the result stays finite when a direction's curvature approaches :math:`-\lambda`.
    """
    if not lam > 0:
        raise ValueError(f"lam must be > 0, got {lam}")
    denom = lam + H.coef * H.U.pow(2).sum(1)
    floor = guard * lam
    sign = torch.where(denom < 0, -1.0, 1.0).to(denom.dtype)
    denom = torch.where(denom.abs() < floor, sign * floor, denom)
    return H.coef / denom


def sherman_morrison_solve(H: LowRankHessian, v: torch.Tensor, lam: float, *, guard: float = 1e-6) -> torch.Tensor:
    r"""The authors' orthogonal form :math:`(\lambda I + \hat H)^{-1} v \approx
    \frac1\lambda [v - \sum_i c'_i u_i u_i^T v]` (guarded :math:`c'_i`).

    Exact when the :math:`u_i` are mutually orthogonal and ``H.diag == 0``; otherwise an
    approximation (use :func:`woodbury_solve` for the exact product).
    """
    cp = sherman_morrison_coefficients(H, lam, guard=guard)
    Uv = H.U @ v
    return (v - H.U.T @ (Uv * (cp if v.ndim == 1 else cp[:, None]))) / lam


def inverse_hessian_gradient(
    U: torch.Tensor, y: torch.Tensor, mu: float, lam: float, *, correction: bool = True, guard: float = 1e-6,
) -> torch.Tensor:
    r"""Bias-corrected inverse-Hessian-gradient product (spec 3.iv), the ZoVH step direction.

    .. math::
        p_i = \frac{(M-1)\,u_i^T g - w_i |u_i|^2}{M-2}
            = u_i^T \Big(\frac{1}{M-2}\sum_{j\ne i} w_j u_j\Big),\qquad
        d = \frac1\lambda\Big[g - \sum_i c'_i\, p_i\, u_i\Big],

    with :math:`g, w_i` as in the module docstring and guarded :math:`c'_i`
    (:func:`sherman_morrison_coefficients`). :math:`p_i` drops query :math:`i`'s own
    term from the gradient it multiplies (the baseline :math:`\bar y` is still the full
    mean): without that, the self term :math:`c'_i w_i |u_i|^2` makes :math:`d` collapse
    in high dimension. ``correction=False`` uses :math:`p_i = u_i^T g` (the naive
    plug-in) for comparison. Needs :math:`M \ge 3`.
    """
    M = int(U.shape[0])
    if M < 3:
        raise ValueError(f"the bias-corrected inverse-Hessian-gradient product needs M >= 3 queries "
                         f"(leave-one-out divides by M-2), got M={M}")
    _check_batch(U, y, 3)
    w = (y - y.mean()) / mu
    g = (w @ U) / (M - 1)
    H = LowRankHessian(U, w / (mu * (M - 1)))
    cp = sherman_morrison_coefficients(H, lam, guard=guard)
    Ug = U @ g
    p = ((M - 1) * Ug - w * U.pow(2).sum(1)) / (M - 2) if correction else Ug
    return (g - (cp * p) @ U) / lam


def _thin_qr(A: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Thin QR of a tall ``(d, m)`` matrix via ``geqrf`` + ``householder_product``.

    Same factorization as ``torch.linalg.qr(A)`` (reduced). Measured here (torch 2.13,
    MKL, 2 threads): ``torch.linalg.qr`` and even ``torch.triu`` on a 60 x 20 matrix took
    ~15 ms against 0.1 ms for this path, which dominated a solver's iteration.
    """
    m, n = A.shape
    k = min(m, n)
    a, tau = torch.geqrf(A)
    Q = torch.linalg.householder_product(a[:, :k], tau[:k])
    upper = torch.arange(k, device=A.device)[:, None] <= torch.arange(n, device=A.device)[None, :]
    return Q, a[:k, :] * upper


# ---------------------------------------------------------------------------------------
# Positive-definite variants
# ---------------------------------------------------------------------------------------
def positive_definite(H: LowRankHessian, *, method: PDMethod = "clip", floor: float = 0.0,
                      damping: float = 0.0) -> LowRankHessian:
    r"""A positive (semi-)definite surrogate of :math:`\hat H` from its small projected matrix.

    Thin QR :math:`U^T = QR` (``Q`` is ``d x M``) gives :math:`U^T C U = Q (R C R^T) Q^T`;
    eigendecompose the ``M x M`` matrix :math:`R C R^T = V \Lambda V^T` and rebuild
    :math:`(QV)\, \phi(\Lambda)\, (QV)^T + \delta I` with :math:`\phi(\lambda) = \max(\lambda, \text{floor})`
    (``"clip"``) or :math:`\max(|\lambda|, \text{floor})` (``"abs"``, saddle-free Newton), and
    :math:`\delta` = ``damping`` (Levenberg). Positive definite when ``damping > 0``;
    eigenvalues outside the span of the directions are ``damping``. Any diagonal of
    ``H`` is dropped first (the raw ZoVH estimate has none). Cost :math:`O(M^2 d)`.
    """
    if method not in ("clip", "abs"):
        raise ValueError(f"method must be 'clip' or 'abs', got {method!r}")
    if floor < 0 or damping < 0:
        raise ValueError(f"floor and damping must be >= 0, got {floor}, {damping}")
    if H.rank_bound == 0:
        return LowRankHessian(H.U, H.coef, float(damping))
    Q, R = _thin_qr(H.U.T)
    S = R @ (H.coef[:, None] * R.T)
    evals, V = torch.linalg.eigh((S + S.T) / 2)
    evals = evals.clamp_min(floor) if method == "clip" else evals.abs().clamp_min(floor)
    return LowRankHessian((Q @ V).T.contiguous(), evals, float(damping))


def compress(H: LowRankHessian, max_rank: int) -> LowRankHessian:
    r"""Re-express :math:`U^T C U` (plus the unchanged diagonal) with at most ``max_rank``
    directions: thin QR :math:`U^T = QR`, eigendecomposition of :math:`R C R^T`, keep the
    ``max_rank`` eigenpairs of largest :math:`|\lambda|`. Exact when ``max_rank`` is at
    least the rank (e.g. ``>= d``); otherwise the best rank-``max_rank`` approximation
    in Frobenius norm. Cost :math:`O(M^2 d)`."""
    if max_rank < 1:
        raise ValueError(f"max_rank must be >= 1, got {max_rank}")
    if H.rank_bound <= max_rank:
        return H
    Q, R = _thin_qr(H.U.T)
    S = R @ (H.coef[:, None] * R.T)
    evals, V = torch.linalg.eigh((S + S.T) / 2)
    keep = evals.abs().argsort(descending=True)[:max_rank]
    return LowRankHessian((Q @ V[:, keep]).T.contiguous(), evals[keep], H.diag)


# ---------------------------------------------------------------------------------------
# Orthogonal directions that continue a buffer
# ---------------------------------------------------------------------------------------
def orthogonal_directions(k: int, d: int, *, previous: torch.Tensor | None, generator: torch.Generator,
                          dtype: torch.dtype = torch.float64, device: torch.device | str = "cpu") -> torch.Tensor:
    r"""``k`` directions of norm :math:`\sqrt d` orthogonal to the rows of ``previous``
    (the authors' ``orthogonal`` option) while that is possible, i.e. while
    ``len(previous) + k <= d``; otherwise a fresh orthogonal block
    (:func:`~zo_scipy.core.directions.sample_directions`), never the authors' endless loop."""
    m = 0 if previous is None else int(previous.shape[0])
    if m == 0 or m + k > d:
        return sample_directions(k, d, generator=generator, kind="orthogonal", dtype=dtype, device=device)
    Z = torch.randn((d, k), generator=generator, dtype=dtype, device=device)
    Qp, _ = _thin_qr(previous.T)  # (d, m) orthonormal basis of the buffer
    for _ in range(2):  # project twice: one Gram-Schmidt pass loses orthogonality in float
        Z = Z - Qp @ (Qp.T @ Z)
    q, r = _thin_qr(Z)
    q = q * torch.sign(torch.diagonal(r)).where(torch.diagonal(r) != 0, 1.0)
    return (q.T * math.sqrt(d)).contiguous()


# ---------------------------------------------------------------------------------------
# Classical estimators (spec section 4), on the same (U, y) query data
# ---------------------------------------------------------------------------------------
def classical_budget_split(kind: str, budget: int) -> int:
    r"""Directions a classical estimator can afford with ``budget`` evaluations:
    ``cd``/``s3``: :math:`n = \lfloor (K-1)/2 \rfloor` pairs plus :math:`f(x)`;
    ``s2``: :math:`K-1` directions plus :math:`f(x)`; ``s1``: :math:`K` directions;
    ``hizoo``: like ``cd``."""
    if kind in ("cd", "s3", "hizoo"):
        n = (budget - 1) // 2
    elif kind == "s2":
        n = budget - 1
    elif kind == "s1":
        n = budget
    else:
        raise ValueError(f"kind must be one of 'cd', 's1', 's2', 's3', 'hizoo', got {kind!r}")
    if n < 1:
        raise ValueError(f"a budget of {budget} evaluations is too small for {kind!r}")
    return n


def classical_hessian(kind: ClassicalKind, U: torch.Tensor, mu: float, *, y_plus: torch.Tensor,
                      y_minus: torch.Tensor | None = None, f0: float | torch.Tensor | None = None) -> LowRankHessian:
    r"""The classical Hessian estimators the paper compares against, ``n`` directions:

    - ``cd``: :math:`\frac{1}{2n}\sum \frac{y^+ - 2f_0 + y^-}{\mu^2} u u^T`
      (biased: :math:`E = H + \operatorname{tr}(H)/2\, I` on a quadratic);
    - ``s3``: the same with :math:`(uu^T - I)` (unbiased);
    - ``s1``: :math:`\frac1n \sum \frac{y^+}{\mu^2}(uu^T - I)` (zero baseline);
    - ``s2``: :math:`\frac1n \sum \frac{y^+ - f_0}{\mu^2}(uu^T - I)` (baseline :math:`f(x)`).

    :math:`(uu^T - I)` terms are stored as the low-rank part plus the scalar diagonal
    :math:`-\sum_i c_i`.
    """
    n = U.shape[0]
    if n < 1:
        raise ValueError("need at least one direction")
    if kind in ("cd", "s3"):
        if y_minus is None or f0 is None:
            raise ValueError(f"{kind!r} needs y_minus and f0")
        c = (y_plus - 2 * f0 + y_minus) / (2 * n * mu * mu)
    elif kind == "s1":
        c = y_plus / (n * mu * mu)
    elif kind == "s2":
        if f0 is None:
            raise ValueError("'s2' needs f0")
        c = (y_plus - f0) / (n * mu * mu)
    else:
        raise ValueError(f"kind must be one of 'cd', 's1', 's2', 's3', got {kind!r}")
    return LowRankHessian(U, c, 0.0 if kind == "cd" else -float(c.sum()))


def hizoo_diagonal_update(h: torch.Tensor, U: torch.Tensor, y_plus: torch.Tensor, y_minus: torch.Tensor,
                          f0: float | torch.Tensor, mu: float, rate: float = 1e-6) -> torch.Tensor:
    r"""One update of HiZOO's diagonal Hessian estimate (spec section 4):

    .. math:: h \leftarrow (1-\alpha)\, h + \alpha\, \frac1n \sum \frac{|y^+ + y^- - 2f_0|}{2\mu^2}\, h \odot u^2,

    started at :math:`h = 1`; stays positive. Use ``LowRankHessian(U[:0], coef[:0], h)``
    to compare it with the others.
    """
    n = U.shape[0]
    s = (y_plus + y_minus - 2 * f0).abs() / (2 * mu * mu)
    return (1 - rate) * h + rate * (s @ U.pow(2)) / n * h


def hizoo_gradient(h: torch.Tensor, U: torch.Tensor, y_plus: torch.Tensor, y_minus: torch.Tensor,
                   mu: float) -> torch.Tensor:
    r"""HiZOO's preconditioned gradient :math:`\frac1n \sum \frac{y^+ - y^-}{2\mu}\, h \odot u`."""
    return h * (((y_plus - y_minus) / (2 * mu)) @ U) / U.shape[0]
