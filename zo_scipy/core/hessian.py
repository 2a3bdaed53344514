r"""ZoVH: zeroth-order Hessian estimators in low-rank form.

Every estimator here returns a :class:`~zo_scipy.core.lowrank.LowRankHessian`
:math:`\hat H = U^T \operatorname{diag}(c)\, U`, with ``U`` the ``(M, d)`` matrix of
query directions (rows :math:`u_i`) and one weight per direction; its algebra
(products, norms, Woodbury, eigen-projection) lives in :mod:`zo_scipy.core.lowrank`.

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

The ZoVH paper's step direction, the bias-corrected inverse-Hessian-gradient product
(:func:`inverse_hessian_gradient`), uses the authors' per-direction Sherman-Morrison
form, exact for orthogonal directions (:func:`orthogonal_directions`). See
``docs/zovh.md`` for the derivations and the authors' defects avoided here. Pure torch
(no SciPy); the running curvature model is :mod:`zo_scipy.core.curvature`.
"""
from __future__ import annotations

import math

import torch

from .directions import haar_frames, sample_directions
from .estimators import zoar_gradient
from .history import QueryHistory
from .lowrank import LowRankHessian, thin_qr


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
    (a central difference).

    Parameters
    ----------
    U : torch.Tensor
        Directions, ``(M, d)``.
    y : torch.Tensor
        Values :math:`f(x + \mu u_i)`, ``(M,)``.
    mu : float
        Smoothing radius.
    antithetic : bool
        The rows are :math:`(u, -u)` pairs.

    Returns
    -------
    torch.Tensor
        The gradient estimate, ``(d,)``.

    Raises
    ------
    ValueError
        Shapes that do not match, or fewer than 2 queries.

    See Also
    --------
    zo_scipy.core.zoar_gradient : the same estimator.
    zovh_hessian : the Hessian from the same queries.

    References
    ----------
    - Junbin Qiu, Zhaowei Hong, Renzhe Xu et al., "Revisiting Zeroth-Order Hessian Approximation:
      A Single-Step Policy Optimization Lens", 2026 (the ZoVH paper; the authors' code is at
      https://github.com/Qjbtiger/ZoVH).
    - Junbin Qiu, Zhengpeng Xie, Xiangda Yan, Yongjie Yang, Yao Shu, "Zeroth-Order Optimization
      is Secretly Single-Step Policy Optimization", arXiv:2506.14460, 2025 (the ZoAR paper).

    Examples
    --------
    With antithetic pairs the estimate is a central difference, exact on a quadratic
    (here four directions :math:`\pm\sqrt 2 e_k`, whose mean :math:`uu^T` is :math:`I`):

    >>> import torch
    >>> from zo_scipy.core import zovh_gradient
    >>> U = 2**0.5 * torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]], dtype=torch.float64)
    >>> f = lambda X: (X**2).sum(-1) + X[:, 0]                # gradient (1, 0) at 0
    >>> zovh_gradient(U, f(0.1 * U), 0.1, antithetic=True)
    tensor([1., 0.], dtype=torch.float64)
    """
    M = _check_batch(U, y, 2)
    g = zoar_gradient(U, y, mu)
    return g * ((M - 1) / M) if antithetic else g


def zovh_hessian(U: torch.Tensor, y: torch.Tensor, mu: float, *, antithetic: bool = False) -> LowRankHessian:
    r"""ZoVH Hessian with the optimal (mean) baseline,
    :math:`\hat H = \frac{1}{M-1}\sum_i h_i u_i u_i^T`, :math:`h_i = (y_i-\bar y)/\mu^2`.

    Unbiased for :math:`\nabla^2 F_\mu(x)` with ``M`` independent on-policy queries.
    ``antithetic=True``: rows are :math:`(u, -u)` pairs and the normalizer is
    :math:`1/(M-2)` (still unbiased; see the module docstring). Memory :math:`O(Md)`.

    Parameters
    ----------
    U : torch.Tensor
        Directions, ``(M, d)`` (Gaussian, :math:`E[uu^T] = I`).
    y : torch.Tensor
        Values :math:`f(x + \mu u_i)`, ``(M,)``.
    mu : float
        Smoothing radius.
    antithetic : bool
        The rows are :math:`(u, -u)` pairs.

    Returns
    -------
    LowRankHessian
        :math:`\hat H` with weights :math:`c_i = h_i/(M-1)` (or :math:`/(M-2)`), rank at most ``M``.

    Raises
    ------
    ValueError
        Shapes that do not match, or too few queries (2; 3 with ``antithetic``).

    See Also
    --------
    zovh_hessian_reuse : the same over a reuse buffer.
    zo_scipy.core.woodbury_solve : solves with :math:`\lambda I + \hat H`.

    Notes
    -----
    The estimator rests on Stein's identity for Gaussian smoothing,
    :math:`\nabla^2 F_\mu(x) = E[(f(x+\mu u) - b)(uu^T - I)]/\mu^2` for any baseline
    :math:`b`; the ZoVH paper shows the mean baseline minimizes the variance, and the
    :math:`-I` term averages out against the centred weights.

    References
    ----------
    - Junbin Qiu, Zhaowei Hong, Renzhe Xu et al., "Revisiting Zeroth-Order Hessian Approximation:
      A Single-Step Policy Optimization Lens", 2026 (the ZoVH paper; the authors' code is at
      https://github.com/Qjbtiger/ZoVH).
    - Charles M. Stein, "Estimation of the mean of a multivariate normal distribution", Annals of
      Statistics 9(6), 1135-1151, 1981 (the Gaussian identity behind second-order estimates).
    - Yurii Nesterov, Vladimir Spokoiny, "Random gradient-free minimization of convex
      functions", Foundations of Computational Mathematics 17, 527-566, 2017.

    Examples
    --------
    The estimate is unbiased: averaged over many queries it approaches the Hessian of a
    quadratic (here :math:`\operatorname{diag}(1, 3)`):

    >>> import torch
    >>> from zo_scipy.core import make_generator, sample_directions, zovh_hessian
    >>> U = sample_directions(200000, 2, generator=make_generator(0))
    >>> f = lambda X: 0.5 * (X[:, 0]**2 + 3 * X[:, 1]**2)
    >>> H = zovh_hessian(U, f(0.1 * U), 0.1).dense()
    >>> bool((H - torch.diag(torch.tensor([1.0, 3.0], dtype=torch.float64))).abs().max() < 0.05)
    True
    """
    M = _check_batch(U, y, 3 if antithetic else 2)
    h = (y - y.mean()) / (mu * mu)
    return LowRankHessian(U, h / ((M - 2) if antithetic else (M - 1)))


def zovh_hessian_reuse(history: QueryHistory, mu: float, *, antithetic: bool = False) -> LowRankHessian:
    r"""ZoVH with query reuse: the same formula over every pair in a
    :class:`~zo_scipy.core.history.QueryHistory`, :math:`M = |B|`, the mean over old and
    new values alike, old values used as stored (never re-evaluated) and scaled by
    :math:`1/\mu^2` like the new ones (the authors' reuse variant drops a :math:`1/\mu`).

    Parameters
    ----------
    history : QueryHistory
        The buffer of :math:`(u_j, y_j)` pairs.
    mu : float
        Smoothing radius.
    antithetic : bool
        The stored rows are :math:`(u, -u)` pairs.

    Returns
    -------
    LowRankHessian

    See Also
    --------
    zovh_hessian : the same formula on one batch.
    zo_scipy.core.QueryHistory : the buffer.

    Notes
    -----
    Old pairs were drawn around earlier iterates (off-policy); the estimate is then
    biased by how far the iterate moved, the price of reusing queries for free.

    References
    ----------
    - Junbin Qiu, Zhaowei Hong, Renzhe Xu et al., "Revisiting Zeroth-Order Hessian Approximation:
      A Single-Step Policy Optimization Lens", 2026 (the ZoVH paper; the authors' code is at
      https://github.com/Qjbtiger/ZoVH).

    Examples
    --------
    >>> import torch
    >>> from zo_scipy.core import QueryHistory, make_generator, sample_directions, zovh_hessian_reuse
    >>> h = QueryHistory(4000, 3, dtype=torch.float64, device="cpu")
    >>> f = lambda X: (X**2).sum(-1)                           # Hessian 2 I
    >>> for seed in range(4):
    ...     U = sample_directions(1000, 3, generator=make_generator(seed))
    ...     h.append(U, f(0.1 * U))
    >>> zovh_hessian_reuse(h, 0.1).rank_bound
    4000
    """
    return zovh_hessian(history.directions(), history.values(), mu, antithetic=antithetic)


# ---------------------------------------------------------------------------------------
# The authors' Sherman-Morrison form and the ZoVH step direction
# ---------------------------------------------------------------------------------------
def sherman_morrison_coefficients(H: LowRankHessian, lam: float, *, guard: float = 1e-6) -> torch.Tensor:
    r"""The authors' per-direction coefficients
    :math:`c'_i = h_i / (\lambda(M-1) + h_i |u_i|^2) = c_i / (\lambda + c_i |u_i|^2)`.

    The denominator is GUARDED: where :math:`|\lambda + c_i|u_i|^2| < \text{guard}\cdot\lambda`
    it is replaced by :math:`\pm\text{guard}\cdot\lambda` (sign kept, 0 counts as +),
    so the result stays finite when a direction's curvature approaches :math:`-\lambda`.
    """
    return guarded_coefficients(H.coef, H.U.pow(2).sum(1), lam, guard=guard)


def guarded_coefficients(coef: torch.Tensor, sqnorm: torch.Tensor, lam: float, *,
                         guard: float = 1e-6) -> torch.Tensor:
    r""":func:`sherman_morrison_coefficients` from the weights :math:`c_i` and the squared
    norms :math:`|u_i|^2` alone (the diagonal of the Gram matrix), with the same guard."""
    if not lam > 0:
        raise ValueError(f"lam must be > 0, got {lam}")
    denom = lam + coef * sqnorm
    floor = guard * lam
    sign = torch.where(denom < 0, -1.0, 1.0).to(denom.dtype)
    denom = torch.where(denom.abs() < floor, sign * floor, denom)
    return coef / denom


def sherman_morrison_solve(H: LowRankHessian, v: torch.Tensor, lam: float, *, guard: float = 1e-6) -> torch.Tensor:
    r"""The authors' orthogonal form :math:`(\lambda I + \hat H)^{-1} v \approx
    \frac1\lambda [v - \sum_i c'_i u_i u_i^T v]` (guarded :math:`c'_i`).

    Exact when the :math:`u_i` are mutually orthogonal and ``H.diag == 0``; otherwise an
    approximation (use :func:`~zo_scipy.core.lowrank.woodbury_solve` for the exact product).

    Parameters
    ----------
    H : LowRankHessian
        The ZoVH estimate.
    v : torch.Tensor
        Right-hand side, ``(d,)`` or ``(d, k)``.
    lam : float
        :math:`\lambda > 0`.
    guard : float
        Relative floor of the denominators.

    Returns
    -------
    torch.Tensor

    Raises
    ------
    ValueError
        ``lam <= 0``.

    See Also
    --------
    zo_scipy.core.woodbury_solve : the exact product for any directions.

    Notes
    -----
    For orthogonal :math:`u_i` each rank-one term is inverted on its own
    (Sherman-Morrison), which is what the authors' code does for every set of directions.

    References
    ----------
    - Junbin Qiu, Zhaowei Hong, Renzhe Xu et al., "Revisiting Zeroth-Order Hessian Approximation:
      A Single-Step Policy Optimization Lens", 2026 (the ZoVH paper; the authors' code is at
      https://github.com/Qjbtiger/ZoVH).
    - Jack Sherman, Winifred J. Morrison, "Adjustment of an inverse matrix corresponding to a
      change in one element of a given matrix", Annals of Mathematical Statistics 21(1), 124-127, 1950.

    Examples
    --------
    >>> import torch
    >>> from zo_scipy.core import LowRankHessian, sherman_morrison_solve, woodbury_solve
    >>> H = LowRankHessian(torch.eye(2, 3, dtype=torch.float64), torch.tensor([1.0, 3.0], dtype=torch.float64))
    >>> v = torch.ones(3, dtype=torch.float64)
    >>> sherman_morrison_solve(H, v, 1.0)                      # orthogonal rows: exact
    tensor([0.5000, 0.2500, 1.0000], dtype=torch.float64)
    >>> bool(torch.allclose(woodbury_solve(H, v, 1.0), sherman_morrison_solve(H, v, 1.0)))
    True
    """
    cp = sherman_morrison_coefficients(H, lam, guard=guard)
    Uv = H.U @ v
    return (v - H.U.T @ (Uv * (cp if v.ndim == 1 else cp[:, None]))) / lam


def inverse_hessian_gradient(
    U: torch.Tensor, y: torch.Tensor, mu: float, lam: float, *, correction: bool = True, guard: float = 1e-6,
) -> torch.Tensor:
    r"""Bias-corrected inverse-Hessian-gradient product, the ZoVH step direction.

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

    Parameters
    ----------
    U : torch.Tensor
        Directions, ``(M, d)``.
    y : torch.Tensor
        Values, ``(M,)``.
    mu : float
        Smoothing radius.
    lam : float
        :math:`\lambda > 0`.
    correction : bool
        Leave query :math:`i`'s own term out of :math:`p_i` (the bias correction).
    guard : float
        Relative floor of the denominators of :math:`c'_i`.

    Returns
    -------
    torch.Tensor
        The direction :math:`d \approx (\lambda I + H)^{-1} \nabla f`, ``(d,)``.

    Raises
    ------
    ValueError
        Shapes that do not match, fewer than 3 queries, or ``lam <= 0``.

    See Also
    --------
    zo_scipy.zovh : the SciPy method stepping along this direction.
    zovh_hessian, zo_scipy.core.zoar_gradient : its two ingredients.

    References
    ----------
    - Junbin Qiu, Zhaowei Hong, Renzhe Xu et al., "Revisiting Zeroth-Order Hessian Approximation:
      A Single-Step Policy Optimization Lens", 2026 (the ZoVH paper; the authors' code is at
      https://github.com/Qjbtiger/ZoVH).
    - Jack Sherman, Winifred J. Morrison, "Adjustment of an inverse matrix corresponding to a
      change in one element of a given matrix", Annals of Mathematical Statistics 21(1), 124-127, 1950.

    Examples
    --------
    With a large :math:`\lambda` the direction is the gradient estimate over :math:`\lambda`:

    >>> import torch
    >>> from zo_scipy.core import make_generator, sample_directions, inverse_hessian_gradient, zoar_gradient
    >>> U = sample_directions(40, 5, generator=make_generator(0))
    >>> y = ((0.1 * U) ** 2).sum(-1) + 0.1 * U[:, 0]
    >>> d = inverse_hessian_gradient(U, y, 0.1, lam=1e6)
    >>> bool(torch.allclose(d * 1e6, zoar_gradient(U, y, 0.1), rtol=1e-3))
    True
    """
    _check_batch(U, y, 1)
    return inverse_hessian_gradient_weights(U @ U.T, y, mu, lam, correction=correction, guard=guard) @ U


def auto_damping(coef: torch.Tensor, sqnorm: torch.Tensor, factor: float) -> float:
    r"""The automatic damping :math:`\lambda = \text{factor}\cdot\operatorname{median}_i |c_i|\,|u_i|^2`
    (1.0 where that is 0 or not finite), from the weights and the squared norms alone."""
    scale = float((coef.abs() * sqnorm).median())
    return factor * scale if scale > 0 and math.isfinite(scale) else 1.0


def inverse_hessian_gradient_weights(
    G: torch.Tensor, y: torch.Tensor, mu: float, lam: float, *, correction: bool = True, guard: float = 1e-6,
) -> torch.Tensor:
    r"""The step of :func:`inverse_hessian_gradient` as weights on the directions:
    :math:`d = \sum_j a_j u_j`, computed from the Gram matrix :math:`G = UU^T` and the
    values alone (no ``d``-sized tensor), so a caller that regenerates its directions
    from seeds can form :math:`d` one block of coordinates at a time.

    With :math:`u_i^T g = (Gw)_i/(M-1)` and :math:`|u_i|^2 = G_{ii}`,

    .. math::
        p_i = \frac{(Gw)_i - w_i G_{ii}}{M-2},\qquad
        a_j = \frac1\lambda\Big[\frac{w_j}{M-1} - c'_j\, p_j\Big]

    (``correction=False``: :math:`p_i = (Gw)_i/(M-1)`), with the guarded :math:`c'_j`
    of :func:`guarded_coefficients`. Needs :math:`M \ge 3`.
    """
    M = int(y.shape[0])
    if M < 3:
        raise ValueError(f"the bias-corrected inverse-Hessian-gradient product needs M >= 3 queries "
                         f"(leave-one-out divides by M-2), got M={M}")
    if G.shape != (M, M):
        raise ValueError(f"need G of shape (M, M) = ({M}, {M}), got {tuple(G.shape)}")
    w = (y - y.mean()) / mu
    sqnorm = G.diagonal()
    cp = guarded_coefficients(w / (mu * (M - 1)), sqnorm, lam, guard=guard)
    Gw = G @ w
    p = (Gw - w * sqnorm) / (M - 2) if correction else Gw / (M - 1)
    return (w / (M - 1) - cp * p) / lam


# ---------------------------------------------------------------------------------------
# Orthogonal directions that continue a buffer
# ---------------------------------------------------------------------------------------
def orthogonal_directions(k: int, d: int, *, previous: torch.Tensor | None, generator: torch.Generator,
                          dtype: torch.dtype = torch.float64, device: torch.device | str = "cpu") -> torch.Tensor:
    r"""``k`` directions of norm :math:`\sqrt d` orthogonal to the rows of ``previous``
    (the authors' ``orthogonal`` option) while that is possible, i.e. while
    ``len(previous) + k <= d``; otherwise a fresh orthogonal block
    (:func:`~zo_scipy.core.directions.sample_directions`), never the authors' endless loop."""
    if previous is None or previous.shape[0] == 0 or previous.shape[0] + k > d:
        return sample_directions(k, d, generator=generator, kind="orthogonal", dtype=dtype, device=device)
    Z = torch.randn((d, k), generator=generator, dtype=dtype, device=device)
    Qp, _ = thin_qr(previous.T)  # (d, m) orthonormal basis of the buffer
    for _ in range(2):  # project twice: one Gram-Schmidt pass loses orthogonality in float
        Z = Z - Qp @ (Qp.T @ Z)
    return (haar_frames(Z).T * math.sqrt(d)).contiguous()
