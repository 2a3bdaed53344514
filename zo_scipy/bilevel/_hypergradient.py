r"""The implicit hypergradient from function values (see :mod:`zo_scipy.bilevel`)."""
from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch

from .._zoar import evaluation_map
from ..core.curvature import antithetic_queries
from ..core.directions import make_generator, sample_directions
from ..core.evaluation import BatchObjective
from ..core.hessian import zovh_hessian
from ..core.lowrank import LowRankHessian, positive_definite, spectral_form
from ..core.mixed import (
    block_mixed_product, block_yy, conjugate_gradient, coordinate_gradient, coordinate_points,
    four_point_mixed_product, four_point_points, hessp_from_values, hessp_points, lstsq_gradient_stderr,
    second_difference_design, second_difference_hessian, spectral_solve,
)

MixedKind = Literal["four_point", "block"]
HessianKind = Literal["auto", "regression", "zovh", "products"]
InverseKind = Literal["woodbury", "cg"]
OnInexact = Literal["warn", "raise", "ignore"]

class InnerNotSolvedError(RuntimeError):
    """The inner problem is not solved at ``y`` (``on_inexact="raise"``).

    See Also
    --------
    InexactInnerWarning : the default reaction (``on_inexact="warn"``).

    References
    ----------
    - Fabian Pedregosa, "Hyperparameter optimization with approximate gradient", ICML 2016,
      arXiv:1602.02355.

    Examples
    --------
    >>> import numpy as np
    >>> import zo_scipy.bilevel as zb
    >>> from zo_scipy.bilevel.problems import RandomQuadratic
    >>> prob = RandomQuadratic(p=3, q=4, seed=0)                 # closed-form y*(x) and grad F
    >>> x = np.zeros(3)
    >>> try:
    ...     zb.hypergradient(prob.upper, prob.lower, x, np.zeros(4), on_inexact="raise", seed=0)
    ... except zb.InnerNotSolvedError:
    ...     print("y = 0 is not the inner solution")
    y = 0 is not the inner solution
    """


class InexactInnerWarning(RuntimeWarning):
    """The inner problem is not solved at ``y``: the hypergradient is that of a nearby problem.

    See Also
    --------
    InnerNotSolvedError : the same as an error (``on_inexact="raise"``).

    References
    ----------
    - Fabian Pedregosa, "Hyperparameter optimization with approximate gradient", ICML 2016,
      arXiv:1602.02355.

    Examples
    --------
    >>> import numpy as np
    >>> import zo_scipy.bilevel as zb
    >>> from zo_scipy.bilevel.problems import RandomQuadratic
    >>> prob = RandomQuadratic(p=3, q=4, seed=0)                 # closed-form y*(x) and grad F
    >>> x = np.zeros(3)
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as w:
    ...     warnings.simplefilter("always")
    ...     hg = zb.hypergradient(prob.upper, prob.lower, x, np.zeros(4), seed=0)
    >>> any(issubclass(r.category, zb.InexactInnerWarning) for r in w), hg.inner_solved
    (True, False)
    """


class CurvatureError(np.linalg.LinAlgError):
    """The inner Hessian estimate has no positive curvature (``y`` is not a minimum of ``lower``).

    See Also
    --------
    hypergradient : raises it.

    References
    ----------
    - Fabian Pedregosa, "Hyperparameter optimization with approximate gradient", ICML 2016,
      arXiv:1602.02355.
    - Jorge Nocedal, Stephen J. Wright, "Numerical Optimization", 2nd ed., Springer, 2006
      (Newton, trust-region and Levenberg-Marquardt steps).

    Examples
    --------
    >>> import numpy as np
    >>> import zo_scipy.bilevel as zb
    >>> upper = lambda x, y: float(y @ y)
    >>> lower = lambda x, y: -float(y @ y) + float(x @ y)        # concave in y: no minimum
    >>> try:
    ...     zb.hypergradient(upper, lower, np.zeros(2), np.zeros(2), seed=0, on_inexact="ignore")
    ... except zb.CurvatureError:
    ...     print("no positive curvature")
    no positive curvature
    """


@dataclass
class HypergradientResult:
    r"""An implicit hypergradient estimate :math:`\nabla F(x)` and its diagnostics.

    Attributes
    ----------
    grad : numpy.ndarray
        The estimate, shaped like ``x``.
    stderr : numpy.ndarray
        Its per-coordinate standard error (sampling error of every estimated piece,
        propagated to first order; the :math:`O(\mu^2)` finite-difference bias is in it only
        with ``bias_check=True``).
    bias : numpy.ndarray or None
        With ``bias_check=True``: the Richardson estimate of the :math:`O(\mu^2)` bias of ``grad``
        (``grad - bias`` is the extrapolated estimate); None otherwise.
    grad_x_upper, grad_y_upper : numpy.ndarray
        :math:`\nabla_x f`, :math:`\nabla_y f` at ``(x, y)``.
    mixed : numpy.ndarray
        :math:`H_{xy} v`, the term subtracted from ``grad_x_upper``.
    v : numpy.ndarray
        :math:`v = (H_{yy} + \lambda I)^{-1} \nabla_y f`.
    solve_residual : float
        :math:`|H v - \nabla_y f| / |\nabla_y f|` with :math:`H` the *undamped* estimate
        (Woodbury) or the CG operator: how far damping or CG moved ``v`` from the solve.
    damping : float
        :math:`\lambda` used.
    inner_grad_norm, inner_grad_stderr : float
        :math:`|\nabla_y g(x, y)|` (estimated) and the standard error of that norm.
    inner_step : float
        :math:`|(H_{yy} + \lambda I)^{-1} \nabla_y g|`, the Newton distance to the inner solution.
    inner_solved : bool
        ``inner_step <= inner_tol * max(1, |y|)``.
    hessian_eigenvalues : tuple of float
        Smallest and largest eigenvalue of the raw :math:`H_{yy}` estimate (``hessian="products"``:
        the smallest and largest Rayleigh quotient :math:`p^THp/p^Tp` CG met, inner bounds of the spectrum).
    indefinite : bool
        The raw estimate has a negative eigenvalue beyond round-off (second-difference
        regression only: a ZoVH estimate is always indefinite).
    y : numpy.ndarray
        The inner point the hypergradient was taken at (``y`` after any ``newton_steps``).
    newton_y : numpy.ndarray
        :math:`y - (H_{yy} + \lambda I)^{-1} \nabla_y g` (a warm start for the next inner solve).
    nfev_upper, nfev_lower : int
        Evaluations of each function.
    hessian, mixed_kind : the inner Hessian estimate (low-rank form; None for ``hessian="products"``,
        which never forms it) and the estimator used.
    cg_iterations : int
        Conjugate-gradient iterations spent on ``v`` (0 for a direct solve).
    newton_stalled : bool
        A Newton step (``newton_steps``) failed to halve the Newton distance: the inner
        problem is solved as far as this estimate can tell (its finite-difference floor), and
        more steps or a fresh :math:`H_{yy}` would not help.
    message : str
        Summary, with any flag raised.

    See Also
    --------
    hypergradient : returns one.

    References
    ----------
    - Fabian Pedregosa, "Hyperparameter optimization with approximate gradient", ICML 2016,
      arXiv:1602.02355.

    Examples
    --------
    >>> import numpy as np
    >>> import zo_scipy.bilevel as zb
    >>> from zo_scipy.bilevel.problems import RandomQuadratic
    >>> prob = RandomQuadratic(p=3, q=4, seed=0)                 # closed-form y*(x) and grad F
    >>> x = np.zeros(3)
    >>> hg = zb.hypergradient(prob.upper, prob.lower, x, prob.y_star(x), seed=0)
    >>> hg.nfev == hg.nfev_upper + hg.nfev_lower, hg.grad.shape, hg.stderr.shape
    (True, (3,), (3,))
    """

    grad: np.ndarray
    stderr: np.ndarray
    grad_x_upper: np.ndarray
    grad_y_upper: np.ndarray
    mixed: np.ndarray
    v: np.ndarray
    solve_residual: float
    damping: float
    inner_grad_norm: float
    inner_grad_stderr: float
    inner_step: float
    inner_solved: bool
    hessian_eigenvalues: tuple[float, float]
    indefinite: bool
    newton_y: np.ndarray
    y: np.ndarray
    nfev_upper: int
    nfev_lower: int
    mixed_kind: str
    hessian: LowRankHessian | None = field(repr=False)
    message: str = ""
    cg_iterations: int = 0
    newton_stalled: bool = False
    bias: np.ndarray | None = None

    @property
    def nfev(self) -> int:
        """Total evaluations, upper plus lower."""
        return self.nfev_upper + self.nfev_lower


class _Joint:
    """``fun(x, y)`` as a function of the flat joint point ``z = (x, y)`` (picklable for pools)."""

    def __init__(self, fun: Callable[..., Any], p: int, xshape: tuple[int, ...], yshape: tuple[int, ...],
                 vectorized: bool):
        self.fun, self.p, self.xshape, self.yshape, self.vectorized = fun, p, xshape, yshape, vectorized

    def __call__(self, z: np.ndarray) -> Any:
        if self.vectorized:
            Z = np.asarray(z).reshape(z.shape[0], -1)
            return self.fun(Z[:, : self.p].reshape(-1, *self.xshape), Z[:, self.p:].reshape(-1, *self.yshape))
        z = np.asarray(z).reshape(-1)
        return self.fun(z[: self.p].reshape(self.xshape), z[self.p:].reshape(self.yshape))


def as_vector(a: Any, name: str) -> tuple[np.ndarray, tuple[int, ...]]:
    """A finite float64 1-D copy of ``a`` and its original shape (a scalar becomes length 1)."""
    arr = np.array(a, dtype=np.float64)
    if arr.size == 0:
        raise ValueError(f"{name} must have at least one element")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} must be finite, got {arr!r:.200}")
    return arr.reshape(-1), arr.shape


class _Evaluator:
    """Counted, finite-checked batches of ``fun`` on joint points."""

    def __init__(self, fun: Callable[..., Any], name: str, p: int, xshape: tuple[int, ...],
                 yshape: tuple[int, ...], vectorized: bool, mapper: Any):
        self.name = name
        self.obj = BatchObjective(_Joint(fun, p, xshape, yshape, vectorized), shape=(p + int(np.prod(yshape)),),
                                  vectorized=vectorized, map=None if vectorized else mapper)

    @property
    def nfev(self) -> int:
        return self.obj.nfev

    def __call__(self, Z: torch.Tensor) -> torch.Tensor:
        vals = self.obj(Z)
        if not bool(torch.isfinite(vals).all()):
            bad = int((~torch.isfinite(vals)).sum())
            raise FloatingPointError(f"{self.name} returned {bad} non-finite value(s) of {vals.numel()} near the "
                                     "evaluation point; derivatives cannot be estimated there")
        return vals


def auto_damping(evals: torch.Tensor, q: int) -> float:
    r"""The automatic damping of the inverse: the size of the most negative eigenvalue of the
    raw estimate (the noise the estimate shows itself), at least :math:`10^{-13}` of the
    largest; where the estimate has fewer than ``q`` positive eigenvalues (rank-deficient
    ZoVH), at least the mean positive eigenvalue times ``rank / q`` so the inverse does not
    blow up outside the estimate's span.

    Parameters
    ----------
    evals : torch.Tensor
        Eigenvalues of the raw :math:`H_{yy}` estimate.
    q : int
        The inner dimension.

    Returns
    -------
    float
        :math:`\lambda \ge 0` for :math:`(H_{yy} + \lambda I)^{-1}`.

    See Also
    --------
    hypergradient : ``damping="auto"`` uses it.

    References
    ----------
    - Jorge Nocedal, Stephen J. Wright, "Numerical Optimization", 2nd ed., Springer, 2006
      (Newton, trust-region and Levenberg-Marquardt steps).
    - Fabian Pedregosa, "Hyperparameter optimization with approximate gradient", ICML 2016,
      arXiv:1602.02355.

    Examples
    --------
    >>> import torch
    >>> import zo_scipy.bilevel as zb
    >>> zb.auto_damping(torch.tensor([-0.01, 1.0, 2.0, 3.0], dtype=torch.float64), 3)  # the noise
    0.01
    >>> zb.auto_damping(torch.tensor([-0.01, 1.0, 2.0], dtype=torch.float64), 3)  # rank 2 < q = 3
    1.0
    """
    lmax = float(evals.max())
    lam = max(-float(evals.min()), 1e-13 * lmax, 0.0)
    pos = evals[evals > lam]
    if int(pos.numel()) < q:
        lam = max(lam, float(pos.sum()) / q)
    return lam


def hypergradient(
    upper: Callable[..., Any],
    lower: Callable[..., Any],
    x: Any,
    y: Any,
    *,
    mixed: MixedKind = "four_point",
    hessian: HessianKind = "auto",
    inverse: InverseKind = "woodbury",
    lower_hessp: Callable[[np.ndarray, np.ndarray, np.ndarray], Any] | None = None,
    damping: float | Literal["auto"] = "auto",
    mu: float = 1e-3,
    num_queries: int | None = None,
    num_mixed: int | None = None,
    mixed_fit: Literal["auto", "lstsq", "stein"] = "auto",
    inner_tol: float = 1e-3,
    newton_steps: int = 0,
    on_inexact: OnInexact = "warn",
    seed: int | None = None,
    workers: Any = 1,
    vectorized: bool = False,
    cg_tol: float | None = None,
    cg_maxiter: int | None = None,
    v0: Any = None,
    bias_check: bool = False,
    preconditioner: LowRankHessian | None = None,
) -> HypergradientResult:
    r"""Estimate :math:`\nabla F(x)` for :math:`F(x) = f(x, y^*(x))`,
    :math:`y^*(x) = \arg\min_y g(x, y)`, from values of ``upper`` = f and ``lower`` = g only.

    By the implicit function theorem at :math:`y \approx y^*(x)`,

    .. math:: \nabla F = \nabla_x f - H_{xy} v,\qquad (H_{yy} + \lambda I)\, v = \nabla_y f.

    Parameters
    ----------
    upper, lower : callable
        ``upper(x, y) -> float`` and ``lower(x, y) -> float`` (numpy float64 arrays shaped like
        ``x`` and ``y``); with ``vectorized=True`` both take batches ``(m, *x.shape)``,
        ``(m, *y.shape)`` and return ``m`` values.
    x, y : array_like
        The outer point and an approximate inner solution (any shapes; scalars allowed).
    mixed : {"four_point", "block"}
        Estimator of :math:`H_{xy} v`: the four-point mixed difference along ``v`` (default,
        ``4 num_mixed`` lower evaluations, least-squares fit) or the joint-query block
        estimate, which reuses the ZoVH queries of :math:`H_{yy}` (no extra evaluation; forces
        ``hessian="zovh"``). Measured on the docs page: the four-point estimate is far more
        accurate per evaluation on every benchmark problem, hence the default.
    hessian : {"auto", "regression", "zovh", "products"}
        :math:`H_{yy}` by least squares on second differences in ``y``
        (``q(q+1)/2`` antithetic pairs of a rotated coordinate design, exact to :math:`O(\mu^2)` on smooth problems) or by ZoVH
        on joint queries in ``(x, y)`` (``num_queries`` of them, low rank, unbiased but noisy).
        ``"auto"`` (default): the regression (``q(q+1) + 1`` evaluations), unless ``num_queries`` is
        given and smaller, then ZoVH with that many. Measured on the docs page: at equal
        evaluations the regression is far more accurate on smooth problems (ZoVH's relative error
        is about :math:`(p+q)/\sqrt M`). ``"products"``: no matrix at all, for large ``q`` (the
        regression's :math:`q^2` evaluations out of reach): ``v`` and the Newton distance by
        conjugate gradients on value-only products
        :math:`(Hw)_j \approx |w|[g(y{+}\epsilon\hat w{+}\mu e_j) - g(y{+}\epsilon\hat w) - g(y{+}\mu e_j)
        + g(y)]/(\epsilon\mu)`, ``q + 1`` evaluations each after ``2q + 1`` shared ones at ``y``
        (:func:`zo_scipy.core.mixed.hessp_from_values`; bias :math:`O(\mu)`); forces ``inverse="cg"``
        and ignores ``lower_hessp``. Its ``stderr`` propagates the error of :math:`\nabla_y f` through
        the inverse as :math:`|v|/|\nabla_y f|` times that error (exact for :math:`H = cI`; ``q`` solves
        would be needed otherwise).
    inverse : {"woodbury", "cg"}
        Woodbury on the low-rank positive part of the estimate plus :math:`\lambda I`
        (default; in the eigen-form, :func:`zo_scipy.core.mixed.spectral_solve`), or conjugate
        gradients with ``lower_hessp`` (or the damped estimate when that is None).
    lower_hessp : callable, optional
        ``lower_hessp(x, y, w) -> H_yy w`` (an exact or cheaper product, used by ``inverse="cg"``).
    damping : float or "auto"
        :math:`\lambda`; ``"auto"``: :func:`auto_damping`.
    mu : float
        Finite-difference radius (default 1e-3, for variables of order 1).
    num_queries : int, optional
        Lower evaluations for the ZoVH Hessian (default ``max(4 (p + q), 40)``; even).
    num_mixed : int, optional
        Directions ``K`` of the four-point estimate (default ``p + 1``; ``K < p`` uses the Stein
        average instead of least squares).
    mixed_fit : {"auto", "lstsq", "stein"}
        How the four-point differences are combined; ``"auto"``: least squares when ``K >= p``.
    inner_tol : float
        ``inner_solved`` is ``inner_step <= inner_tol * max(1, |y|)``.
    newton_steps : int
        Newton steps :math:`y \leftarrow y - (H_{yy}+\lambda I)^{-1}\nabla_y g` before the
        upper queries (at least one, then while ``inner_step`` exceeds the tolerance, at most
        ``newton_steps``; one step keeps a warm start tracking :math:`y^*(x)` to second order), each costing one gradient of ``lower`` (``2q + 4`` evaluations) and
        reusing the measured :math:`H_{yy}` (default 0: the hypergradient is taken at ``y``).
        ``result.y`` is the inner point used.
    on_inexact : {"warn", "raise", "ignore"}
        What an unsolved inner problem does: :class:`InexactInnerWarning` (default, and the
        flag), :class:`InnerNotSolvedError`, or only the flag.
    seed : int, optional
        Seed of the local direction generator.
    cg_tol, cg_maxiter : float, int, optional
        Relative residual and iteration cap of conjugate gradients (defaults: ``1e-10`` and
        ``4 q``; with ``hessian="products"``: ``1e-3`` and ``min(4 q, 50)``, each iteration costing
        ``q + 1`` evaluations, for ``v`` and again for the Newton distance).
    v0 : array_like, optional
        Starting guess for the CG solve of ``v`` (e.g. ``v`` of the previous outer point: the
        query reuse of :func:`minimize` with ``inverse="cg"``); ignored by Woodbury.
    preconditioner : LowRankHessian, optional
        An earlier :math:`H_{yy}` estimate (e.g. ``result.hessian`` of a nearby point) used as the
        preconditioner of every CG solve (``hessian="products"`` or ``inverse="cg"``), clipped to
        its positive part and damped by :func:`auto_damping`. CG still runs to ``cg_tol`` on the
        current products, so a stale preconditioner costs iterations, never accuracy.
    bias_check : bool
        Also estimate the deterministic :math:`O(\mu^2)` finite-difference bias (left out of the
        sampling ``stderr``) Richardson-style: a second estimate at :math:`\mu/2` at the same ``y``
        with the same seed (same directions), ``bias = (g_mu - g_{mu/2}) * 4/3``; ``stderr``
        then includes it (:math:`\sqrt{se^2 + bias^2}`) and ``grad - bias`` is the extrapolated
        estimate. Doubles the evaluations (default False).
    workers : int or map-like
        SciPy's ``workers`` convention; all queries of one estimation stage go in one batch.
    vectorized : bool
        ``upper`` and ``lower`` take batches.

    Returns
    -------
    HypergradientResult

    Raises
    ------
    ValueError
        Non-finite or empty ``x``/``y``, bad options.
    FloatingPointError
        ``upper`` or ``lower`` returned a non-finite value near ``(x, y)``.
    CurvatureError
        The :math:`H_{yy}` estimate has no positive eigenvalue.
    InnerNotSolvedError
        ``on_inexact="raise"`` and the inner problem is not solved.

    Warns
    -----
    InexactInnerWarning
        ``on_inexact="warn"`` (default) and the inner problem is not solved at ``y``.

    See Also
    --------
    minimize : the outer loop fed by this estimate.
    jac : the estimate as SciPy's ``jac=``.
    HypergradientResult : the fields returned.

    Notes
    -----
    :math:`H_{yy}` is fitted from central second differences of ``lower`` in ``y``
    (``hessian="regression"``, exact on quadratics from :math:`q(q+1)/2` pairs) or
    estimated by ZoVH; the mixed product :math:`H_{xy} v` is a four-point difference
    along :math:`v`; :math:`\nabla_x f` and :math:`\nabla_y f` are central differences.
    Every piece is measured from values of ``upper`` and ``lower``.

    References
    ----------
    - Fabian Pedregosa, "Hyperparameter optimization with approximate gradient", ICML 2016,
      arXiv:1602.02355 (implicit hypergradients with an inexact inner solution).
    - Junbin Qiu, Zhaowei Hong, Renzhe Xu et al., "Revisiting Zeroth-Order Hessian Approximation:
      A Single-Step Policy Optimization Lens", 2026 (the ZoVH paper; the authors' code is at
      https://github.com/Qjbtiger/ZoVH).

    Examples
    --------
    >>> import numpy as np
    >>> import zo_scipy.bilevel as zb
    >>> from zo_scipy.bilevel.problems import RandomQuadratic
    >>> prob = RandomQuadratic(p=3, q=4, seed=0)                 # closed-form y*(x) and grad F
    >>> x = np.zeros(3)
    >>> hg = zb.hypergradient(prob.upper, prob.lower, x, prob.y_star(x), seed=0)
    >>> hg.nfev, bool(np.allclose(hg.grad, prob.hypergradient(x), atol=1e-8)), hg.inner_solved
    (55, True, True)
    """
    xv, xshape = as_vector(x, "x")
    yv, yshape = as_vector(y, "y")
    p, q = xv.size, yv.size
    if mixed not in ("four_point", "block"):
        raise ValueError(f"mixed must be 'four_point' or 'block', got {mixed!r}")
    if hessian not in ("auto", "regression", "zovh", "products"):
        raise ValueError(f"hessian must be 'auto', 'regression', 'zovh' or 'products', got {hessian!r}")
    if inverse not in ("woodbury", "cg"):
        raise ValueError(f"inverse must be 'woodbury' or 'cg', got {inverse!r}")
    if on_inexact not in ("warn", "raise", "ignore"):
        raise ValueError(f"on_inexact must be 'warn', 'raise' or 'ignore', got {on_inexact!r}")
    if not (mu > 0 and math.isfinite(mu)):
        raise ValueError(f"mu must be a positive finite number, got {mu}")
    if damping != "auto" and not (isinstance(damping, (int, float)) and damping >= 0 and math.isfinite(damping)):
        raise ValueError(f"damping must be 'auto' or a finite number >= 0, got {damping!r}")
    for label, fn in (("upper", upper), ("lower", lower)):
        if not callable(fn):
            raise TypeError(f"{label} must be callable, got {type(fn).__name__}")
    kind: HessianKind
    if hessian == "products":
        if mixed == "block":
            raise ValueError("mixed='block' needs hessian='zovh' (it reuses the joint ZoVH queries), not 'products'")
        kind, inverse = "products", "cg"
    elif mixed == "block":
        kind = "zovh"
    elif hessian == "auto":  # the regression is exact at q(q+1)+1 evaluations; ZoVH only under a smaller budget
        kind = "zovh" if num_queries is not None and num_queries < q * (q + 1) + 1 else "regression"
    else:
        kind = hessian
    if bias_check and seed is None:  # both estimates must draw the same directions
        seed = int(np.random.default_rng().integers(2**63))
    gen = make_generator(seed)
    dt = torch.float64
    xt, yt = torch.from_numpy(xv), torch.from_numpy(yv)
    zt = torch.cat([xt, yt])
    with evaluation_map(workers, None) as mapper:
        F = _Evaluator(upper, "upper", p, xshape, yshape, vectorized, mapper)
        G = _Evaluator(lower, "lower", p, xshape, yshape, vectorized, mapper)

        # --- the lower function: H_yy (and the block H_xy) and grad_y g, one batch -----------
        Hxy_dense: torch.Tensor | None = None
        H_joint: LowRankHessian | None = None
        base = torch.zeros(0, dtype=dt)
        if kind == "products":
            base = G(torch.cat([xt.expand(2 * q + 1, -1), coordinate_points(yt, mu)], 1))
            gy_lower, gy_lower_se = coordinate_gradient(base, mu), torch.zeros(q, dtype=dt)
            H_raw = None
        elif kind == "regression":
            Uy, rot = second_difference_design(q, generator=gen, dtype=dt)
            n = int(Uy.shape[0])
            Y = torch.cat([yt[None], yt + mu * Uy, yt - mu * Uy])
            vals = G(torch.cat([xt.expand(Y.shape[0], -1), Y], 1))
            g0, gp, gm = float(vals[0]), vals[1:n + 1], vals[n + 1:]
            H_raw = second_difference_hessian(Uy, gp, gm, g0, mu, rotation=rot)
            gy_lower, gy_lower_se = lstsq_gradient_stderr(Uy, torch.cat([gp, gm]), mu)
        else:
            M = max(4 * (p + q), 40) if num_queries is None else int(num_queries)
            if M < 4 or M % 2:
                raise ValueError(f"num_queries must be an even integer >= 4, got {num_queries}")
            V, Z = antithetic_queries(zt, M // 2, mu, generator=gen)
            vals = G(Z)
            H_joint = zovh_hessian(torch.cat([V, -V]), vals, mu, antithetic=True)
            H_raw = spectral_form(block_yy(H_joint, p))
            Hxy_dense = H_joint.U[:, :p].T @ (H_joint.coef[:, None] * H_joint.U[:, p:])
            gz, gz_se = lstsq_gradient_stderr(V, vals, mu)
            gy_lower, gy_lower_se = gz[p:], gz_se[p:]

        # --- the inverse operator -----------------------------------------------------------------
        matvec: Callable[[torch.Tensor], torch.Tensor]
        cg_iters = [0]
        rayleigh = [math.inf, -math.inf]
        if H_raw is None:
            lmin, lmax, lam, indefinite = math.nan, math.nan, 0.0 if damping == "auto" else float(damping), False
            P_pd = None
        else:
            evals = H_raw.coef
            lmin, lmax = float(evals.min()), float(evals.max())
            if not lmax > 0:
                raise CurvatureError(f"the H_yy estimate has no positive eigenvalue (largest {lmax:.3g}): y is not a "
                                     "minimum of lower(x, .), or lower does not depend on y")
            lam = auto_damping(evals, q) if damping == "auto" else float(damping)
            indefinite = kind == "regression" and lmin < -1e-6 * lmax
            P_pd = positive_definite(H_raw, method="clip")
        precondition: Callable[[torch.Tensor], torch.Tensor] | None = None
        if preconditioner is not None:
            if preconditioner.dim != q:
                raise ValueError(f"preconditioner must be a {q} x {q} estimate, got dimension {preconditioner.dim}")
            pre_pd = positive_definite(preconditioner, method="clip")
            pre_lam = auto_damping(preconditioner.coef, q)
            if not pre_lam > 0:
                pre_lam = 1e-13 * max(float(preconditioner.coef.max()), 1e-300)

            def precondition(r: torch.Tensor) -> torch.Tensor:
                return spectral_solve(pre_pd, r, pre_lam)
        if kind == "products":
            tol_cg = 1e-3 if cg_tol is None else float(cg_tol)
            maxit_cg = min(4 * q, 50) if cg_maxiter is None else int(cg_maxiter)

            def matvec(w: torch.Tensor) -> torch.Tensor:
                wn = float(w.norm())
                if wn == 0:
                    return torch.zeros_like(w)
                pts = hessp_points(yt, w, mu, mu)
                Hw = hessp_from_values(G(torch.cat([xt.expand(pts.shape[0], -1), pts], 1)), base, wn, mu, mu)
                rq = float(w @ Hw) / wn ** 2
                rayleigh[0], rayleigh[1] = min(rayleigh[0], rq), max(rayleigh[1], rq)
                return Hw + lam * w

            def solve(b: torch.Tensor, x0: torch.Tensor | None = None, tol: float | None = None) -> torch.Tensor:
                res = conjugate_gradient(matvec, b, tol=tol_cg if tol is None else tol, maxiter=maxit_cg, x0=x0,
                                         exact_residual=False, precondition=precondition)
                cg_iters[0] = res.iterations
                if res.nonpositive:
                    raise CurvatureError("CG met non-positive curvature of H_yy: y is not a minimum of lower(x, .)")
                return res.x
        elif inverse == "woodbury":
            assert P_pd is not None and H_raw is not None
            if lam <= 0 and (P_pd.rank_bound < q or not bool((P_pd.coef > 0).all())):
                raise CurvatureError("H_yy estimate is singular and damping=0: pass damping > 0 or 'auto'")

            def solve(b: torch.Tensor, x0: torch.Tensor | None = None, tol: float | None = None) -> torch.Tensor:
                assert P_pd is not None
                return spectral_solve(P_pd, b, lam)

            matvec = H_raw.matvec
        else:
            y_at = yv.copy()
            if lower_hessp is not None:
                def matvec(w: torch.Tensor) -> torch.Tensor:
                    out = np.asarray(lower_hessp(xv.reshape(xshape), y_at.reshape(yshape),
                                                 w.numpy().reshape(yshape)), dtype=np.float64).reshape(-1)
                    if out.shape != (q,):
                        raise ValueError(f"lower_hessp must return {q} values, got shape {out.shape}")
                    return torch.from_numpy(out)
            else:
                assert P_pd is not None
                pd_form = P_pd

                def matvec(w: torch.Tensor) -> torch.Tensor:
                    return pd_form.matvec(w) + lam * w

            def solve(b: torch.Tensor, x0: torch.Tensor | None = None, tol: float | None = None) -> torch.Tensor:
                if b.ndim == 2:
                    return torch.stack([solve(col) for col in b.T], 1)
                res = conjugate_gradient(matvec, b, tol=1e-10 if cg_tol is None else float(cg_tol),
                                         maxiter=4 * q if cg_maxiter is None else int(cg_maxiter), x0=x0,
                                         precondition=precondition)
                cg_iters[0] = res.iterations
                if res.nonpositive:
                    raise CurvatureError("CG met non-positive curvature of H_yy: y is not a minimum of lower(x, .)")
                return res.x

        # --- Newton steps on the inner problem, reusing the measured H_yy -------------------------
        # (matrix-free: the Newton distance is a diagnostic, CG to relative residual 0.1 suffices;
        # CG iterates from 0 grow in norm, so it is a slight underestimate)
        newton_tol = max(0.1, 1e-3 if cg_tol is None else float(cg_tol)) if kind == "products" else None
        ynorm = max(1.0, float(np.linalg.norm(yv)))
        steps_taken = 0
        inner_newton = solve(gy_lower, None, newton_tol)
        stalled = False
        while (steps_taken < newton_steps and not stalled
               and (steps_taken == 0 or float(inner_newton.norm()) > inner_tol * ynorm)):
            before = float(inner_newton.norm())
            yt = yt - inner_newton
            zt = torch.cat([xt, yt])
            steps_taken += 1
            if kind == "products":  # new shared base values at the new y (they give the gradient too)
                base = G(torch.cat([xt.expand(2 * q + 1, -1), coordinate_points(yt, mu)], 1))
                gy_lower = coordinate_gradient(base, mu)
            else:
                Vg = sample_directions(q + 2, q, generator=gen, dtype=dt)
                Yg = torch.cat([yt + mu * Vg, yt - mu * Vg])
                gy_lower, gy_lower_se = lstsq_gradient_stderr(
                    Vg, G(torch.cat([xt.expand(Yg.shape[0], -1), Yg], 1)), mu)
            inner_newton = solve(gy_lower, None, newton_tol)
            ynorm = max(1.0, float(yt.norm()))
            # Newton on an accurate H converges at least linearly at rate << 1/2; a step that does not
            # halve the distance says the estimate's floor (finite-difference error of the gradient
            # over the curvature) is reached: further steps cannot help
            stalled = float(inner_newton.norm()) > 0.5 * before
        yv = yt.numpy().copy()
        if inverse == "cg":
            y_at = yv.copy()

        # --- the upper function: grad_z f by least squares, one batch -------------------------
        Vf, Zf = antithetic_queries(zt, p + q + 2, mu, generator=gen)
        gf, gf_se = lstsq_gradient_stderr(Vf, F(Zf), mu)
        gx_f, gy_f = gf[:p], gf[p:]
        gx_se, gy_se = gf_se[:p].nan_to_num(0.0), gf_se[p:].nan_to_num(0.0)
        v_start: torch.Tensor | None = None
        if v0 is not None and inverse == "cg":
            v0_arr, _ = as_vector(v0, "v0")
            if v0_arr.size != q:
                raise ValueError(f"v0 must have {q} elements (the size of y), got {v0_arr.size}")
            v_start = torch.from_numpy(v0_arr)
        v = solve(gy_f, v_start)
        v_iterations = cg_iters[0]
        bn = float(gy_f.norm())
        solve_residual = float((matvec(v) - gy_f).norm()) / bn if bn > 0 else 0.0

        # --- the mixed product H_xy v ------------------------------------------------------------
        vnorm = float(v.norm())
        if mixed == "block":
            assert H_joint is not None
            m, m_se = block_mixed_product(H_joint, p, v)
        elif vnorm == 0:
            m, m_se = torch.zeros(p, dtype=dt), torch.zeros(p, dtype=dt)
        else:
            K = p + 1 if num_mixed is None else int(num_mixed)
            if K < 2:
                raise ValueError(f"num_mixed must be >= 2, got {num_mixed}")
            Ux = sample_directions(K, p, generator=gen, dtype=dt)
            eps = mu * math.sqrt(q) / vnorm
            vals4 = G(four_point_points(xt, yt, Ux, v, mu, eps))
            m, m_se = four_point_mixed_product(Ux, vals4, mu, eps, fit=(mixed_fit if mixed_fit != "auto"
                                                                   else "lstsq" if K >= p else "stein"))
        m_se = m_se.nan_to_num(0.0)

    grad = gx_f - m
    # first-order propagation of the errors of grad_y f (and of a ZoVH H_yy) through v
    if kind == "products":  # q solves are out of reach: |H^-1 e| ~ |v| |e| / |b| (exact for H = cI)
        Pinv_se = torch.diag(gy_se) * (float(v.norm()) / bn if bn > 0 else 0.0)
    elif bool((gy_se > 0).any()):
        Pinv_se = solve(torch.diag(gy_se))
    else:
        Pinv_se = torch.zeros((q, q), dtype=dt)
    if kind == "products" and math.isfinite(rayleigh[0]):
        lmin, lmax = rayleigh[0], rayleigh[1]
    if Hxy_dense is not None:
        prop_b2 = (Hxy_dense @ Pinv_se).pow(2).sum(1)
    else:  # four-point without a matrix H_xy: scale the product by the relative error of v
        rel_v = float(Pinv_se.pow(2).sum().sqrt()) / vnorm if vnorm > 0 else 0.0
        prop_b2 = (m * rel_v).pow(2)
    prop_h2 = torch.zeros(p, dtype=dt)
    if H_joint is not None and Hxy_dense is not None and vnorm > 0:
        Uy_j = H_joint.U[:, p:]
        Mq = int(H_joint.U.shape[0])
        T = (Mq * H_joint.coef * (Uy_j @ v))[:, None] * Uy_j  # per-query terms of H_yy v
        infl = (Hxy_dense @ solve(T.T)).T  # (M, p): each query's pull on H_xy H^-1 H_yy v
        half = Mq // 2
        prop_h2 = (((infl[:half] + infl[half:]) / 2).std(0, unbiased=True) / math.sqrt(half)).pow(2)
    stderr = (gx_se.pow(2) + m_se.pow(2) + prop_b2 + prop_h2).sqrt()

    inner_step = float(inner_newton.norm())
    inner_solved = inner_step <= inner_tol * ynorm
    gnorm = float(gy_lower.norm())
    gnorm_se = float((gy_lower * gy_lower_se.nan_to_num(0.0)).norm()) / gnorm if gnorm > 0 else 0.0
    flags = []
    if not inner_solved:
        flags.append(f"inner problem not solved at y: Newton distance {inner_step:.3g} > inner_tol * max(1, |y|) "
                     f"(|grad_y g| = {gnorm:.3g}); the hypergradient is that of a nearby problem"
                     + ("; Newton steps stalled at the precision the finite differences allow (loosen inner_tol)"
                        if stalled else ""))
    if indefinite:
        flags.append(f"H_yy estimate indefinite (eigenvalues {lmin:.3g} .. {lmax:.3g}): clipped and damped")
    message = "; ".join(flags) or "hypergradient estimated; inner problem solved to inner_tol"
    if not inner_solved:
        if on_inexact == "raise":
            raise InnerNotSolvedError(message)
        if on_inexact == "warn":
            warnings.warn(message, InexactInnerWarning, stacklevel=2)

    def out(t: torch.Tensor, shape: tuple[int, ...]) -> np.ndarray:
        return t.detach().cpu().numpy().astype(np.float64).reshape(shape)

    nfev_u, nfev_l = F.nfev, G.nfev
    bias_arr: np.ndarray | None = None
    if bias_check:
        at_half = hypergradient(
            upper, lower, xv.reshape(xshape), out(yt, yshape), mixed=mixed, hessian=kind, inverse=inverse,
            lower_hessp=lower_hessp, damping=lam, mu=mu / 2, num_queries=num_queries, num_mixed=num_mixed,
            mixed_fit=mixed_fit, inner_tol=inner_tol, newton_steps=0, on_inexact="ignore", seed=seed,
            workers=workers, vectorized=vectorized, cg_tol=cg_tol, cg_maxiter=cg_maxiter,
            v0=out(v, yshape) if inverse == "cg" else None)
        bias_t = (grad - torch.from_numpy(at_half.grad.reshape(-1))) * (4.0 / 3.0)
        stderr = (stderr.pow(2) + bias_t.pow(2)).sqrt()
        bias_arr = out(bias_t, xshape)
        nfev_u, nfev_l = nfev_u + at_half.nfev_upper, nfev_l + at_half.nfev_lower

    return HypergradientResult(
        grad=out(grad, xshape), stderr=out(stderr, xshape), grad_x_upper=out(gx_f, xshape),
        grad_y_upper=out(gy_f, yshape), mixed=out(m, xshape), v=out(v, yshape), solve_residual=solve_residual,
        damping=lam, inner_grad_norm=gnorm, inner_grad_stderr=gnorm_se, inner_step=inner_step,
        inner_solved=inner_solved, hessian_eigenvalues=(lmin, lmax), indefinite=indefinite,
        newton_y=out(yt - inner_newton, yshape), y=out(yt, yshape), nfev_upper=nfev_u, nfev_lower=nfev_l, mixed_kind=mixed,
        hessian=H_raw, message=message, cg_iterations=v_iterations, newton_stalled=stalled, bias=bias_arr)
