"""``zovh``: the ZoVH paper's curvature-aware method as a callable ``minimize`` method."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from scipy.optimize import OptimizeResult

import numpy as np

from ._validation import check_bool, check_choice, check_real
from ._zoar import ZOAR_METHOD_OPTIONS, run_method
from .core.zovh import INVERSES, STEPS, CurvatureZoAR, auto_step


def zovh(
    fun: Callable[..., Any],
    x0: Any,
    args: tuple[Any, ...] = (),
    jac: Any = None,
    hess: Any = None,
    hessp: Any = None,
    bounds: Any = None,
    constraints: Any = (),
    callback: Callable[..., Any] | None = None,
    *,
    lam: float | str = "auto",
    inverse: str = "sherman-morrison",
    correction: bool = True,
    step: str = "auto",
    resume: dict[str, Any] | CurvatureZoAR | None = None,
    **options: Any,
) -> OptimizeResult:
    r"""Minimize a scalar function with ZoVH's curvature-aware zeroth-order method.

    Use as ``scipy.optimize.minimize(fun, x0, method=zo_scipy.zovh, options={...})``.
    Each iteration evaluates :math:`K` points :math:`x_t + \mu u_k`, keeps the newest
    :math:`M = (N+1)K` queries, and steps along the regularized Newton direction

    .. math::
        d_t = \frac1\lambda\Big[g - \sum_i c'_i\, p_i\, u_i\Big] \approx (\lambda I + \hat H)^{-1} g,

    with the mean-baseline gradient :math:`g` and Hessian :math:`\hat H` of the buffer
    (:mod:`zo_scipy.core.hessian`), the guarded Sherman-Morrison coefficients
    :math:`c'_i = h_i / (\lambda(M-1) + h_i|u_i|^2)` and the leave-one-out products
    :math:`p_i`. The update rule, step control, budget, bounds, callback and bad-input
    behaviour are exactly those of :func:`zo_scipy.zoar` (same defaults, so equal
    evaluation budgets and equal step sizes compare the two fairly).

    Parameters
    ----------
    fun, x0, args, jac, hess, hessp, bounds, constraints, callback
        As for :func:`zo_scipy.zoar` (``jac``/``hess``/``hessp`` are ignored with a
        warning; constraints other than bounds raise).

    Options
    -------
    lam : float or "auto"
        :math:`\lambda > 0`, the regularization of :math:`(\lambda I + \hat H)^{-1}`.
        Large ``lam`` makes :math:`d \to g/\lambda` (ZoAR's gradient); small ``lam`` lets
        the estimated curvature shape the step. ``"auto"`` (default):
        :math:`\lambda_t = 10\,\mathrm{median}_i |c_i||u_i|^2` each iteration and the step
        :math:`\lambda_t d_t` (gradient scale), which keeps the curvature a bounded
        correction; the authors' fixed ``lam=0.1`` stalled on a 20-d Rosenbrock (see
        ``docs/zovh.md``). With ``update="adam"`` (default) the overall scale cancels.
    inverse : {"sherman-morrison", "woodbury"}
        ``"sherman-morrison"`` (default): the authors' per-direction form, exact for
        orthogonal directions, with the leave-one-out correction and guarded
        denominators. ``"woodbury"``: the exact :math:`(\lambda I + \hat H)^{-1} g`
        (an ``M x M`` solve).
    correction : bool
        Leave-one-out correction :math:`p_i` (default True). Without it the step
        collapses in high dimension (``docs/zovh.md``); False is for comparisons only.
    step : {"auto", "newton", "direction"}
        ``"newton"``: a trust-region quasi-Newton iteration on the curvature learned across
        iterates. It starts by measuring ``x0`` twice (two different values mean a noisy
        objective: the run continues with ``"direction"``, which detects noise and adapts to it)
        and ``d`` antithetic pairs at radius ``mu``. Each iteration then measures a trial point
        :math:`z = x + p` and ``d`` forward differences around it along an orthonormal frame
        (``d + 1`` evaluations), fits the gradient at :math:`z`, keeps a dense model :math:`B`
        of the Hessian (ZoVH's curvature along the first frame, then a self-scaling BFGS
        update from each change of the fitted gradient: no extra evaluations), and steps by
        :math:`\min_{|p| \le \Delta} g^T p + \tfrac12 p^T B p`, accepted only when the measured
        value decreases. The difference step is :math:`\sqrt{\epsilon}\max(1, |z|_\infty)`, so
        precision is not floored by ``mu``. ``"direction"``: ZoAR's loop along the direction
        :math:`d_t` above. ``"auto"`` (default): ``"newton"`` when :math:`d \le 200` and
        ``maxfev`` buys the start and 5 iterations (:math:`2d + 2 + 5(d + 1)`), ``"direction"``
        otherwise; the choice is made from this call's ``maxfev``, so a run split into parts
        (``resume``) should name its step (the resumed part keeps the saved one). In the
        ``"newton"`` step,
        ``res.lr`` is the trust radius, ``res.mu`` the difference step, and ``num_queries``,
        ``lam``, ``inverse``, ``correction`` and the update rule are not used.
    resume : dict
        Continue from ``res.state`` of an earlier ``zovh`` run (its state dict).
    maxfev, maxiter, num_queries, num_histories, mu, lr, adapt_mu, update, betas, eps,
    bias_correction, schedule, xtol, tol, directions, normalization, seed, rng, device,
    dtype, vectorized, tensor_input, workers, torch_threads, disp, progress
        Exactly as for :func:`zo_scipy.zoar` (same defaults: ``num_queries=10``,
        adaptive step control, Adam, automatic ``mu``/``lr``). The direction needs
        :math:`M = K(N+1) \ge 3` buffered queries; before that it is :math:`g/\lambda`.
        ``normalization`` only affects the :math:`g/\lambda` fallback.

    Returns
    -------
    OptimizeResult
        As :func:`zo_scipy.zoar`: ``x`` (best evaluated point), ``fun``, ``nfev``,
        ``nit``, ``success``, ``status``, ``message``, ``x_iterate``, ``lr``, ``mu``,
        ``n_nonfinite`` and ``state`` (a JSON-safe snapshot of the optimizer, for ``resume``).
        ``x`` is never NaN.

    See Also
    --------
    zo_scipy.zoar : the same method with ZoAR's gradient direction.
    zo_scipy.ZoVHCurvature : ZoVH's curvature as hooks for SciPy's own Newton-type solvers.

    References
    ----------
    - Junbin Qiu, Zhaowei Hong, Renzhe Xu et al., "Revisiting Zeroth-Order Hessian Approximation:
      A Single-Step Policy Optimization Lens", 2026 (the ZoVH paper; the authors' code is
      at https://github.com/Qjbtiger/ZoVH).
    - Junbin Qiu, Zhengpeng Xie, Xiangda Yan, Yongjie Yang, Yao Shu, "Zeroth-Order Optimization is Secretly
      Single-Step Policy Optimization", arXiv:2506.14460, 2025 (the ZoAR paper).

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.optimize import minimize
    >>> import zo_scipy
    >>> quad = lambda x: float(np.sum(np.arange(1, 6) * x**2))
    >>> res = minimize(quad, np.ones(5), method=zo_scipy.zovh, options=dict(maxfev=3000, seed=0))
    >>> bool(res.fun < 1e-2 * quad(np.ones(5)))
    True
    """
    if lam != "auto":
        lam = check_real("lam", lam)
    inverse = check_choice("inverse", inverse, INVERSES)
    correction = check_bool("correction", correction)
    step = check_choice("step", step, ("auto",) + STEPS)
    known = {k: val for k, val in options.items() if k in ZOAR_METHOD_OPTIONS}
    unknown = {k: val for k, val in options.items() if k not in ZOAR_METHOD_OPTIONS}
    settings: dict[str, Any] = dict(lam=lam, inverse=inverse, correction=correction)
    if step != "auto":
        settings["step"] = step
    elif resume is None:
        settings["step"] = auto_step(int(np.size(x0)), known.get("maxfev"))
    # (resuming with step="auto" continues with the saved run's step)
    return run_method("zovh", CurvatureZoAR, settings,
                      fun, x0, args, jac, hess, hessp, bounds, constraints, callback, resume, known,
                      unknown)
