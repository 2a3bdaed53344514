r"""The bilevel outer loop and the ``jac=`` adapter (see :mod:`zo_scipy.bilevel`)."""
from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import scipy.optimize
import torch
from scipy.optimize import OptimizeResult

from .._validation import standardize_bounds
from ..core.updates import make_update_rule
from ..core.lowrank import LowRankHessian
from ._hypergradient import HypergradientResult, InnerNotSolvedError, as_vector, hypergradient

InnerKind = Literal["newton", "zoar"]


class HypergradientJac:
    r"""The hypergradient as a SciPy ``jac``: ``J(x) -> numpy.ndarray``, plus :meth:`fun` for
    :math:`F(x) \approx f(x, y(x))` at the same inner solution (both cached per ``x``).

    Each new ``x`` solves the inner problem warm-started from the last solution (Newton steps on
    the estimated :math:`H_{yy}`, optionally :func:`zo_scipy.zoar` first), to a tolerance that
    tightens with every new ``x`` (HOAG): ``inner_tol_k = max(inner_tol_min, inner_tol * decay**k)``.
    With a conjugate-gradient solve (``hessian="products"`` or ``inverse="cg"``) and
    ``reuse_v=True`` (default), the solve of each new ``x`` starts from the ``v`` of the last one
    (query reuse across outer steps: :math:`v(x) = H_{yy}^{-1}\nabla_y f` moves little between
    nearby outer points, and CG still runs to its own tolerance, so the answer is as accurate).
    ``reuse_hessian=True`` reuses queries across outer points further: :math:`H_{yy}` is measured
    (the second-difference regression) at one point only, and the following points solve
    matrix-free (``hessian="products"``: value-only products, ``q + 1`` evaluations each) by CG
    preconditioned with that estimate; a point whose CG needs more than ``refresh_iterations``
    iterations (the preconditioner went stale), or a retry, measures :math:`H_{yy}` afresh.
    Valid for the same reason: CG runs to ``cg_tol`` on the current products whatever the
    preconditioner.
    Build it with :func:`jac`; use it as
    ``scipy.optimize.minimize(J.fun, x0, method="L-BFGS-B", jac=J)``.

    Parameters
    ----------
    upper, lower : callable
        As for :func:`hypergradient`; ``lower`` may be None when ``y_star`` is given.
    y0 : array_like
        First inner guess.
    y_star : callable, optional
        A black-box inner solver ``y_star(x) -> y``.
    inner : {"newton", "zoar"}
        How the inner problem is solved.
    inner_maxfev : int, optional
        Evaluation cap of one inner solve.
    inner_tol, tol_decay, inner_tol_min : float
        HOAG's schedule of the inner tolerance.
    max_newton : int
        Newton steps per inner solve.
    strict : bool
        Raise :class:`InnerNotSolvedError` instead of warning.
    seed, workers, vectorized, **hypergradient_options
        As for :func:`hypergradient`.

    Raises
    ------
    ValueError
        Neither ``lower`` nor ``y_star``, an unknown ``inner``, or a bad tolerance schedule.

    See Also
    --------
    jac : builds one.
    minimize : the same outer loop with a budget and a trace.

    References
    ----------
    - Fabian Pedregosa, "Hyperparameter optimization with approximate gradient", ICML 2016,
      arXiv:1602.02355.
    - Pauli Virtanen et al., "SciPy 1.0: fundamental algorithms for scientific computing in
      Python", Nature Methods 17, 261-272, 2020.

    Examples
    --------
    >>> import numpy as np
    >>> import zo_scipy.bilevel as zb
    >>> from zo_scipy.bilevel.problems import RandomQuadratic
    >>> prob = RandomQuadratic(p=3, q=4, seed=0)                 # closed-form y*(x) and grad F
    >>> x = np.zeros(3)
    >>> import scipy.optimize
    >>> J = zb.jac(prob.upper, prob.lower, np.zeros(4), seed=0)
    >>> res = scipy.optimize.minimize(J.fun, x, method="L-BFGS-B", jac=J)
    >>> best = scipy.optimize.minimize(prob.value, x, jac=prob.hypergradient)
    >>> bool(abs(res.fun - best.fun) < 1e-8), J.nfev_upper + J.nfev_lower > 0
    (True, True)
    >>> bool(J.tolerance() < 1e-3), J.y_current.shape           # HOAG: the tolerance has tightened
    (True, (4,))
    """

    def __init__(self, upper: Callable[..., Any], lower: Callable[..., Any] | None, y0: Any, *,
                 y_star: Callable[[np.ndarray], Any] | None = None, inner: InnerKind = "newton",
                 inner_maxfev: int | None = None, inner_tol: float = 1e-3, tol_decay: float = 0.7,
                 inner_tol_min: float = 1e-8, max_newton: int = 5, strict: bool = False, seed: int | None = None,
                 workers: Any = 1, vectorized: bool = False, reuse_v: bool = True, reuse_hessian: bool = False,
                 refresh_iterations: int = 5, **hypergradient_options: Any) -> None:
        if lower is None and y_star is None:
            raise ValueError("pass lower (the inner objective) or y_star (a black-box inner solver), or both")
        if inner not in ("newton", "zoar"):
            raise ValueError(f"inner must be 'newton' or 'zoar', got {inner!r}")
        if not (0 < tol_decay <= 1) or not inner_tol > 0 or not inner_tol_min > 0:
            raise ValueError("need inner_tol > 0, inner_tol_min > 0 and 0 < tol_decay <= 1")
        self.upper, self.lower, self.y_star = upper, lower, y_star
        self.y, self.yshape = as_vector(y0, "y0")
        self.yshape_orig = np.shape(np.asarray(y0))
        self.inner, self.inner_maxfev, self.max_newton, self.strict = inner, inner_maxfev, int(max_newton), strict
        self.inner_tol, self.tol_decay, self.inner_tol_min = float(inner_tol), float(tol_decay), float(inner_tol_min)
        self.seed, self.workers, self.vectorized = seed, workers, vectorized
        self.options = hypergradient_options
        self.reuse_hessian, self.refresh_iterations = bool(reuse_hessian), int(refresh_iterations)
        self.reuse_v = bool(reuse_v) and (hypergradient_options.get("hessian") == "products"
                                          or hypergradient_options.get("inverse") == "cg" or self.reuse_hessian)
        self._H: LowRankHessian | None = None
        self._v_prev: np.ndarray | None = None
        self.cg_iterations = 0  # CG iterations spent on v, over all outer points
        self.k = 0
        self._before = 0
        self.last_cost = 0  # evaluations the last new x cost (the budget check's estimate of the next)
        self.nfev_upper = self.nfev_lower = self.nfev_y_star = 0
        self._cache: tuple[bytes, float, np.ndarray, HypergradientResult | None] | None = None
        self.last: HypergradientResult | None = None

    def _key(self, x: np.ndarray) -> bytes:
        return np.asarray(x, dtype=np.float64).tobytes()

    def tolerance(self) -> float:
        """The inner tolerance the next new ``x`` is solved to (HOAG's schedule)."""
        return max(self.inner_tol_min, self.inner_tol * self.tol_decay ** self.k)

    def _value(self, x: np.ndarray, y: np.ndarray) -> float:
        val = float(np.asarray(self.upper(x, y.reshape(self.yshape)) if not self.vectorized
                               else np.asarray(self.upper(x[None], y.reshape(self.yshape)[None])).reshape(-1)[0]))
        self.nfev_upper += 1
        if not math.isfinite(val):
            raise FloatingPointError(f"upper returned {val} at the inner solution")
        return val

    def _zoar_inner(self, x: np.ndarray, tol: float) -> None:
        from .._zoar import zoar

        assert self.lower is not None
        lower, yshape = self.lower, self.yshape

        def g(y: np.ndarray) -> float:
            return float(lower(x, y.reshape(yshape)))

        y0 = self.y.copy()
        g0 = g(y0)
        maxfev = self.inner_maxfev or 20 * self.y.size
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            res = zoar(g, y0, maxfev=maxfev, seed=None if self.seed is None else self.seed + self.k, tol=tol)
        self.nfev_lower += int(res.nfev) + 1
        if float(res.fun) < g0:  # zoar returns its best query, which need not beat the warm start
            self.y = np.asarray(res.x, dtype=np.float64).reshape(-1)

    def evaluate(self, x: Any) -> tuple[float, np.ndarray]:
        """``(F(x), grad F(x))``, solving the inner problem first (cached per ``x``).

        Examples
        --------
        >>> import numpy as np
        >>> import zo_scipy.bilevel as zb
        >>> from zo_scipy.bilevel.problems import RandomQuadratic
        >>> prob = RandomQuadratic(p=3, q=4, seed=0)                 # closed-form y*(x) and grad F
        >>> x = np.zeros(3)
        >>> J = zb.jac(prob.upper, prob.lower, np.zeros(4), seed=0)
        >>> F, g = J.evaluate(x)
        >>> bool(np.isclose(F, prob.value(x))), bool(np.allclose(g, prob.hypergradient(x), atol=1e-6))
        (True, True)
        """
        xv = np.array(x, dtype=np.float64)
        key = self._key(xv)
        if self._cache is not None and self._cache[0] == key:
            return self._cache[1], self._cache[2]
        if not np.isfinite(xv).all():
            raise ValueError(f"x must be finite, got {xv!r:.200}")
        tol = self.tolerance()
        self._before = self.nfev_upper + self.nfev_lower
        seed = None if self.seed is None else self.seed * 1_000_003 + self.k
        hg: HypergradientResult | None = None
        if self.y_star is not None:
            self.y, _ = as_vector(self.y_star(xv.copy()), "y_star(x)")
            self.nfev_y_star += 1
            if self.lower is None:
                value, grad = self._black_box_gradient(xv)
                self._finish(key, value, grad, None)
                return value, grad
        else:
            if self.inner == "zoar":
                self._zoar_inner(xv, tol)
        assert self.lower is not None
        for it in range(3):  # a fresh H_yy estimate when the reused one's Newton steps fell short
            opts = dict(self.options)
            if self.reuse_hessian:  # measure H_yy once, then matrix-free CG preconditioned by it
                if self._H is None:
                    opts["hessian"] = "regression"
                else:
                    opts["hessian"], opts["preconditioner"] = "products", self._H
            hg = hypergradient(self.upper, self.lower, xv, self.y.reshape(self.yshape), inner_tol=tol,
                               newton_steps=0 if self.y_star is not None else self.max_newton,
                               on_inexact="ignore", seed=None if seed is None else seed + 7919 * it,
                               workers=self.workers, vectorized=self.vectorized,
                               v0=self._v_prev if self.reuse_v else None, **opts)
            if self.reuse_hessian:
                if hg.hessian is not None:
                    self._H = hg.hessian
                elif hg.cg_iterations > self.refresh_iterations:
                    self._H = None  # the preconditioner went stale: measure H_yy again at the next point
            self.cg_iterations += hg.cg_iterations
            if self.reuse_v:
                self._v_prev = hg.v.copy()
            self.nfev_upper += hg.nfev_upper
            self.nfev_lower += hg.nfev_lower
            if self.y_star is None:
                self.y = hg.y.reshape(-1)
            if hg.inner_solved or self.y_star is not None or hg.newton_stalled:
                break  # solved, or at the estimate's floor: a fresh H_yy would not get further
            self.y = hg.newton_y.reshape(-1)
            if self.reuse_hessian:
                self._H = None  # the retry is for a fresh H_yy
        assert hg is not None
        if not hg.inner_solved:
            msg = (f"outer iterate {self.k}: {hg.message}" if self.y_star is None else
                   f"y_star(x) is not a minimizer of lower(x, .) to inner_tol: {hg.message}")
            if self.strict:
                raise InnerNotSolvedError(msg)
            warnings.warn(msg, RuntimeWarning, stacklevel=3)
        value = self._value(xv, self.y)
        grad = hg.grad.reshape(-1)
        self._finish(key, value, grad, hg)
        return value, grad

    def _black_box_gradient(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        """Central differences of :math:`F(x) = f(x, y^*(x))` with the user's inner solver."""
        assert self.y_star is not None
        mu = float(self.options.get("mu", 1e-3))
        value = self._value(x, self.y)
        grad = np.zeros(x.size)
        for j in range(x.size):
            e = np.zeros(x.size)
            e[j] = mu
            vals = []
            for s in (1.0, -1.0):
                xs = (x.reshape(-1) + s * e).reshape(x.shape)
                ys, _ = as_vector(self.y_star(xs.copy()), "y_star(x)")
                self.nfev_y_star += 1
                vals.append(self._value(xs, ys))
            grad[j] = (vals[0] - vals[1]) / (2 * mu)
        return value, grad

    def _finish(self, key: bytes, value: float, grad: np.ndarray, hg: HypergradientResult | None) -> None:
        self._cache = (key, value, grad, hg)
        self.last_cost = self.nfev_upper + self.nfev_lower - self._before
        self.last = hg
        self.k += 1

    def __call__(self, x: Any, *args: Any) -> np.ndarray:
        return self.evaluate(x)[1].copy()

    def fun(self, x: Any, *args: Any) -> float:
        """:math:`F(x) \\approx f(x, y(x))` at the inner solution of the last evaluation at ``x``."""
        return self.evaluate(x)[0]

    @property
    def y_current(self) -> np.ndarray:
        """The latest inner solution, shaped like ``y0``."""
        return self.y.reshape(self.yshape).copy()


def jac(upper: Callable[..., Any], lower: Callable[..., Any] | None, y0: Any, **options: Any) -> HypergradientJac:
    r"""A ``jac=`` for :func:`scipy.optimize.minimize` from values of the two levels only::

        J = zo_scipy.bilevel.jac(upper, lower, y0)
        res = scipy.optimize.minimize(J.fun, x0, method="L-BFGS-B", jac=J)

    Options: those of :class:`HypergradientJac` and of :func:`hypergradient`.

    Parameters
    ----------
    upper, lower : callable
        As for :func:`hypergradient`.
    y0 : array_like
        First inner guess.
    **options
        Of :class:`HypergradientJac` and :func:`hypergradient`.

    Returns
    -------
    HypergradientJac

    See Also
    --------
    minimize : the outer loop with a budget.

    References
    ----------
    - Fabian Pedregosa, "Hyperparameter optimization with approximate gradient", ICML 2016,
      arXiv:1602.02355.
    - Pauli Virtanen et al., "SciPy 1.0: fundamental algorithms for scientific computing in
      Python", Nature Methods 17, 261-272, 2020.

    Examples
    --------
    >>> import numpy as np
    >>> import zo_scipy.bilevel as zb
    >>> from zo_scipy.bilevel.problems import RandomQuadratic
    >>> prob = RandomQuadratic(p=3, q=4, seed=0)                 # closed-form y*(x) and grad F
    >>> x = np.zeros(3)
    >>> J = zb.jac(prob.upper, prob.lower, np.zeros(4), seed=0)
    >>> J(x).shape
    (3,)
    """
    return HypergradientJac(upper, lower, y0, **options)


def minimize(
    upper: Callable[..., Any],
    lower: Callable[..., Any] | None,
    x0: Any,
    y0: Any,
    *,
    method: str = "L-BFGS-B",
    bounds: Any = None,
    maxiter: int = 50,
    maxfev: int | None = None,
    lr: float = 0.1,
    gtol: float = 1e-5,
    y_star: Callable[[np.ndarray], Any] | None = None,
    inner: InnerKind = "newton",
    inner_maxfev: int | None = None,
    inner_tol: float = 1e-3,
    tol_decay: float = 0.7,
    inner_tol_min: float = 1e-8,
    strict: bool = False,
    seed: int | None = None,
    workers: Any = 1,
    vectorized: bool = False,
    reuse_v: bool = True,
    callback: Callable[[OptimizeResult], Any] | None = None,
    **hypergradient_options: Any,
) -> OptimizeResult:
    r"""Minimize :math:`F(x) = f(x, y^*(x))` from values of ``upper`` = f and ``lower`` = g.

    Parameters
    ----------
    upper, lower : callable
        ``upper(x, y)``, ``lower(x, y)`` (see :func:`hypergradient`). ``lower`` may be None
        when ``y_star`` is given (then the gradient is a central difference of
        :math:`f(x, y^*(x))`, ``2 p`` inner solves per step).
    x0, y0 : array_like
        Starting outer point and inner guess.
    method : str
        Any :func:`scipy.optimize.minimize` method that uses ``jac``, fed the hypergradient
        through ``jac=`` (default ``"L-BFGS-B"``: measured fastest on the docs page, the
        hypergradient being accurate to ~1e-6); or ``"adam"`` / ``"sgd"``, the ZoAR-style
        projected update with step ``lr``, for noisy hypergradients (the ZoVH estimate at large ``q``).
    bounds : sequence of (min, max) or scipy.optimize.Bounds, optional
        Box on ``x`` (iterates are projected onto it).
    maxiter : int
        Outer iterations (default 50).
    maxfev : int, optional
        Budget of ``nfev_upper + nfev_lower``: a new outer point is not evaluated when the last
        one's cost would take the total past it (an estimate: a point that needed more Newton
        steps than the last one can still overshoot by those).
    gtol : float
        Stop once the hypergradient's max-norm (projected on the box) falls below ``gtol``.
    y_star : callable, optional
        ``y_star(x) -> y``: a black-box inner solver used instead of the built-in one.
    inner : {"newton", "zoar"}
        Inner solver: Newton steps on the estimated :math:`H_{yy}` from the warm start (the
        curvature each hypergradient measures anyway), or :func:`zo_scipy.zoar` warm-started
        (``inner_maxfev`` evaluations, default ``20 q``) followed by those Newton steps.
    inner_tol, tol_decay, inner_tol_min : float
        The HOAG schedule of the inner tolerance (see :class:`HypergradientJac`).
    strict : bool
        Raise :class:`InnerNotSolvedError` when an inner problem stays unsolved (default: warn
        and record it in the trace).
    seed, workers, vectorized
        As for :func:`hypergradient`.
    reuse_v : bool
        Warm-start each CG solve of ``v`` at the last outer point's ``v`` (with
        ``hessian="products"`` or ``inverse="cg"``; see :class:`HypergradientJac`).
    callback : callable, optional
        ``callback(intermediate_result)`` after each outer iteration; ``StopIteration`` ends the run.
    **hypergradient_options
        Passed to :func:`hypergradient` (``mixed``, ``hessian``, ``mu``, ``cg_tol``, ...), and the
        :class:`HypergradientJac` options ``reuse_hessian`` (measure :math:`H_{yy}` once and
        precondition matrix-free CG with it at the next points; default False), ``refresh_iterations``
        (default 5) and ``max_newton`` (default 5).

    Returns
    -------
    scipy.optimize.OptimizeResult
        ``x``, ``y``, ``fun`` (:math:`f(x, y)` at the final inner solution), ``jac``,
        ``nfev_upper``, ``nfev_lower``, ``nfev`` (their sum), ``nfev_y_star``, ``nit``,
        ``success``, ``status``, ``message``, ``inner_solved`` (of the last iterate), ``cg_iterations``
        (spent on ``v``, all outer points) and ``trace``
        (one dict per outer iteration: ``x``, ``fun``, ``grad_norm``, ``nfev``, ``inner_tol``,
        ``inner_solved``).

    Raises
    ------
    ValueError
        Bad options (named), or non-finite ``x0``/``y0``.
    InnerNotSolvedError
        ``strict=True`` and an inner problem stays unsolved.

    See Also
    --------
    hypergradient : one estimate.
    jac : the hypergradient for a SciPy method of your own.

    Notes
    -----
    Each outer iterate :math:`x_k` warm-starts the inner solve from :math:`y_{k-1}` to a
    tolerance :math:`\max(\text{inner\_tol\_min}, \text{inner\_tol}\cdot\text{tol\_decay}^k)`
    (HOAG's schedule), then feeds :math:`\nabla F(x_k) = \nabla_x f - H_{xy}(H_{yy} + \lambda I)^{-1}\nabla_y f`
    to the outer method.

    References
    ----------
    - Fabian Pedregosa, "Hyperparameter optimization with approximate gradient", ICML 2016,
      arXiv:1602.02355.
    - Pauli Virtanen et al., "SciPy 1.0: fundamental algorithms for scientific computing in
      Python", Nature Methods 17, 261-272, 2020.

    Examples
    --------
    >>> import numpy as np
    >>> import scipy.optimize
    >>> import zo_scipy.bilevel as zb
    >>> from zo_scipy.bilevel.problems import RandomQuadratic
    >>> prob = RandomQuadratic(p=3, q=4, seed=0)
    >>> res = zb.minimize(prob.upper, prob.lower, np.zeros(3), np.zeros(4), seed=0)
    >>> best = scipy.optimize.minimize(prob.value, np.zeros(3), jac=prob.hypergradient)
    >>> bool(abs(prob.value(res.x) - best.fun) < 1e-8), res.nfev == res.nfev_upper + res.nfev_lower
    (True, True)
    """
    xv = np.array(x0, dtype=np.float64)
    xshape = xv.shape
    xflat, _ = as_vector(xv, "x0")
    p = xflat.size
    lo = hi = None
    if bounds is not None:
        sb = standardize_bounds(bounds, p)
        assert sb is not None
        lo, hi = np.asarray(sb[0], dtype=np.float64), np.asarray(sb[1], dtype=np.float64)
        xflat = np.clip(xflat, lo, hi)
    J = HypergradientJac(upper, lower, y0, y_star=y_star, inner=inner, inner_maxfev=inner_maxfev,
                         inner_tol=inner_tol, tol_decay=tol_decay, inner_tol_min=inner_tol_min, strict=strict,
                         seed=seed, workers=workers, vectorized=vectorized, reuse_v=reuse_v,
                         **hypergradient_options)
    trace: list[dict[str, Any]] = []

    def record(x: np.ndarray, fval: float, g: np.ndarray) -> OptimizeResult:
        hg = J.last
        row = {"x": x.copy(), "fun": fval, "grad_norm": float(np.linalg.norm(g)),
               "nfev": J.nfev_upper + J.nfev_lower, "inner_tol": J.tolerance(),
               "inner_solved": True if hg is None else bool(hg.inner_solved)}
        trace.append(row)
        return OptimizeResult(x=x.reshape(xshape).copy(), fun=fval, jac=g.reshape(xshape).copy(), nit=len(trace),
                              nfev=row["nfev"], y=J.y_current)

    status, message = 1, "maximum number of outer iterations reached"
    if method.lower() in ("adam", "sgd"):
        rule = make_update_rule(method.lower())
        x = xflat.copy()
        fval, g = J.evaluate(x.reshape(xshape))
        for _ in range(maxiter):
            inter = record(x, fval, g)
            pg = g.copy()
            if lo is not None and hi is not None:  # projected gradient: no pull through an active bound
                pg[(x <= lo) & (g > 0)] = 0.0
                pg[(x >= hi) & (g < 0)] = 0.0
            if float(np.abs(pg).max()) <= gtol:
                status, message = 0, "projected hypergradient below gtol"
                break
            if callback is not None:
                try:
                    callback(inter)
                except StopIteration:
                    status, message = 99, "stopped by the callback"
                    break
            if maxfev is not None and J.nfev_upper + J.nfev_lower + J.last_cost > maxfev:
                status, message = 2, "maxfev reached"
                break
            step = rule.step(torch.from_numpy(g), lr).numpy()
            x = x - step
            if lo is not None and hi is not None:
                x = np.clip(x, lo, hi)
            fval, g = J.evaluate(x.reshape(xshape))
        else:
            record(x, fval, g)
    else:
        class _Budget(Exception):
            pass

        def fun(xx: np.ndarray) -> float:
            if maxfev is not None and J.nfev_upper + J.nfev_lower + J.last_cost > maxfev and J._key(xx) != (
                    J._cache[0] if J._cache else b""):
                raise _Budget
            return J.fun(xx.reshape(xshape))

        def cb(intermediate_result: OptimizeResult) -> None:
            xx = np.asarray(intermediate_result.x, dtype=np.float64)
            fval, g = J.evaluate(xx.reshape(xshape))
            inter = record(xx, fval, g)
            if callback is not None:
                callback(inter)

        best = xflat.copy()
        try:
            res = scipy.optimize.minimize(fun, xflat, method=method,
                                          jac=lambda xx: J(xx.reshape(xshape)).reshape(-1),
                                          bounds=None if lo is None or hi is None else list(zip(lo, hi)),
                                          callback=cb, options={"maxiter": maxiter, "gtol": gtol}
                                          if method.upper() in ("L-BFGS-B", "BFGS", "CG", "TNC") else
                                          {"maxiter": maxiter})
            best = np.asarray(res.x, dtype=np.float64)
            status, message = (0 if res.success else 1), f"{method}: {res.message}"
        except _Budget:
            best = trace[-1]["x"] if trace else xflat
            status, message = 2, "maxfev reached"
        x = best
        fval, g = J.evaluate(x.reshape(xshape))
        if not trace or not np.array_equal(trace[-1]["x"], x):
            record(x, fval, g)
    hg = J.last
    return OptimizeResult(
        x=x.reshape(xshape).copy(), y=J.y_current, fun=fval, jac=g.reshape(xshape).copy(), nit=len(trace),
        nfev_upper=J.nfev_upper, nfev_lower=J.nfev_lower, nfev=J.nfev_upper + J.nfev_lower,
        nfev_y_star=J.nfev_y_star, cg_iterations=J.cg_iterations, success=status == 0, status=status, message=message,
        inner_solved=True if hg is None else bool(hg.inner_solved), trace=trace)
