r"""ZoVH's curvature-aware method as an ask/tell optimizer (the ZoVH paper's update).

>>> import torch
>>> from zo_scipy.core import CurvatureZoAR
>>> def f(x):
...     return (x ** 2).sum()
>>> opt = CurvatureZoAR(torch.ones(3), lam=0.1, seed=0)
>>> X = opt.ask()
>>> opt.tell(torch.stack([f(x) for x in X]))

Everything but the step direction is :class:`~zo_scipy.core.zoar.ZoAR`: the same
queries, FIFO reuse buffer, update rules, step control, bounds and pickling. The
direction is the bias-corrected inverse-Hessian-gradient product over the buffer
(:func:`~zo_scipy.core.hessian.inverse_hessian_gradient`),

.. math::
    d = \frac1\lambda\Big[g - \sum_i c'_i\, p_i\, u_i\Big],\qquad
    c'_i = \frac{h_i}{\lambda(M-1) + h_i |u_i|^2},\qquad
    p_i = \frac{(M-1) u_i^T g - w_i |u_i|^2}{M-2},

or, with ``inverse="woodbury"``, the exact :math:`(\lambda I + \hat H)^{-1} g`.

With ``step="newton"`` the loop is a trust-region quasi-Newton method instead: each
iteration measures a trial point and ``d`` forward differences around it along an
orthonormal frame, fits the gradient there, keeps a dense curvature model (ZoVH's curvature
along the first batch's antithetic frame as its start, BFGS updates from the fitted
gradients after that) and accepts the step on the measured decrease
(:mod:`zo_scipy.core.newton`). It is for noise-free problems of
moderate dimension; a first batch that measures the start twice tells a noisy objective
apart (two different values) and falls back to the ``"direction"`` loop.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from .directions import sample_directions
from .estimators import zoar_gradient
from .hessian import auto_damping, inverse_hessian_gradient, zovh_hessian
from .lowrank import LowRankHessian, woodbury_solve
from .newton import bfgs_update, fit_gradient, frame_curvature, trust_region_step
from .zoar import ZoAR

INVERSES: tuple[str, ...] = ("sherman-morrison", "woodbury")
STEPS: tuple[str, ...] = ("direction", "newton")
#: Largest dimension for which ``step="auto"`` picks the trust-region step: its dense
#: d x d model costs an O(d^3) eigendecomposition per iteration of d + 1 evaluations.
NEWTON_MAX_DIM = 200
#: ``step="auto"`` picks the trust-region step only when the budget buys this many of its
#: iterations (d + 1 points each, after the 2 + 2d of its start). Measured at d = 100 on the
#: peers benchmark's smooth problems (quadratic, Levy, rotated ellipsoid, Rosenbrock, 3 seeds;
#: the smooth suite's threshold group): with 4d evaluations the direction loop was ahead on all
#: four, with 7d the trust-region step was ahead or level, with 10d ahead on all four.
NEWTON_MIN_ITERATIONS = 5
#: Trust-region constants: accept a step whose measured decrease is at least ETA times the
#: model's; grow the radius after a step that reached it with rho > RHO_GOOD, shrink after
#: rho < RHO_POOR (Nocedal & Wright, Algorithm 4.1).
ETA, RHO_GOOD, RHO_POOR = 1e-4, 0.75, 0.25


def auto_step(dim: int, maxfev: int | None) -> str:
    """The step ``step="auto"`` resolves to for a ``dim``-dimensional problem and budget."""
    fits = maxfev is None or maxfev >= 2 * dim + 2 + NEWTON_MIN_ITERATIONS * (dim + 1)
    return "newton" if dim <= NEWTON_MAX_DIM and fits else "direction"


@dataclass
class TrustRegionState:
    """What the trust-region step carries between iterations (see :mod:`zo_scipy.core.newton`)."""

    radius: float
    radius0: float
    mu: float
    active: bool = True           # False once a noisy objective sent the run to the direction loop
    fx: float = math.inf          # f at the iterate (inf before the first batch)
    model: torch.Tensor | None = None       # dense curvature model B (d x d)
    grad: torch.Tensor | None = None        # gradient at the iterate
    center_prev: torch.Tensor | None = None  # the previous batch's centre and fitted gradient,
    grad_prev: torch.Tensor | None = None    # for the secant update


class CurvatureZoAR(ZoAR):
    r"""ZoAR's loop with ZoVH's curvature-aware direction :math:`d \approx (\lambda I + \hat H)^{-1} g`.

    Parameters
    ----------
    x0 : torch.Tensor or array_like
        Starting point, 1-D.
    lam : float or "auto"
        Regularization :math:`\lambda > 0` of :math:`(\lambda I + \hat H)^{-1}`.
        ``"auto"`` (default): :math:`\lambda_t = 10\,\operatorname{median}_i |c_i| |u_i|^2`
        (:math:`c_i = h_i/(M-1)`) each iteration, so every Sherman-Morrison coefficient
        satisfies :math:`|c'_i||u_i|^2 \lesssim 0.1` for typical :math:`i` (the curvature is a
        bounded correction) and the direction is returned as :math:`\lambda_t d`, on
        the gradient's scale. The authors use the fixed ``lam=0.1``.
    inverse : {"sherman-morrison", "woodbury"}
        ``"sherman-morrison"`` (default): the authors' per-direction form with the
        leave-one-out correction and guarded denominators; ``"woodbury"``: exact
        :math:`(\lambda I + \hat H)^{-1} g` by an ``M x M`` solve (falls back to
        :math:`g/\lambda` if that matrix is singular).
    correction : bool
        Leave-one-out correction of the Sherman-Morrison direction (default True).
    step : {"direction", "newton"}
        ``"direction"`` (default here; :func:`zo_scipy.zovh` picks by dimension and budget):
        ZoAR's loop along the direction above. ``"newton"``: the trust-region quasi-Newton
        iteration of :mod:`zo_scipy.core.newton` (batches of ``d + 1`` points after a start of
        ``x0`` twice and then ``d`` antithetic pairs); ``lam``, ``inverse``, ``correction``, ``num_queries`` and the update
        rule then apply only after a fall-back to the direction loop (noisy objective).
    **kwargs
        Everything :class:`~zo_scipy.core.zoar.ZoAR` takes (``num_queries``,
        ``num_histories``, ``mu``, ``lr``, ``update``, ``schedule``, bounds, seed, ...).

    Notes
    -----
    The direction needs :math:`M \ge 3` buffered queries; with fewer (the first
    iteration of a run with ``num_queries < 3``) the plain gradient :math:`g/\lambda`
    is used. At the authors' settings :math:`|h_i| d \gg \lambda (M-1)` and
    :math:`d \approx g/\lambda` (``docs/zovh.md``): the update then behaves like ZoAR with the
    step :math:`\text{lr}/\lambda` (with ``update="adam"`` the scale cancels).

    The trust-region step (``step="newton"``) minimizes the model
    :math:`m(p) = g^T p + \tfrac12 p^T B p` over :math:`|p| \le \Delta` and accepts
    :math:`x + p` when :math:`f` measurably decreased; :math:`B` starts from ZoVH's curvature
    along the first frame and follows self-scaling BFGS updates
    (:mod:`zo_scipy.core.newton`).

    See Also
    --------
    zo_scipy.zovh : the ``scipy.optimize.minimize`` method that drives this optimizer.
    zo_scipy.core.ZoAR : the loop it shares (``step="direction"``).
    zo_scipy.core.newton : the pieces of the trust-region step.

    References
    ----------
    - Junbin Qiu, Zhaowei Hong, Renzhe Xu et al., "Revisiting Zeroth-Order Hessian Approximation:
      A Single-Step Policy Optimization Lens", 2026 (the ZoVH paper; the authors' code is at
      https://github.com/Qjbtiger/ZoVH).
    - Jorge Nocedal, Stephen J. Wright, "Numerical Optimization", 2nd ed., Springer, 2006
      (trust regions, Algorithm 4.1; BFGS, Section 6.1).
    - Shmuel S. Oren, David G. Luenberger, "Self-Scaling Variable Metric (SSVM) Algorithms",
      Management Science 20(5), 845-862, 1974.

    Examples
    --------
    The trust-region step on an ill-conditioned quadratic reaches rounding-level precision:

    >>> import torch
    >>> from zo_scipy.core import CurvatureZoAR
    >>> A = torch.diag(torch.logspace(0, 3, 5, dtype=torch.float64))
    >>> def f(X):
    ...     return 0.5 * ((X - 1) @ A * (X - 1)).sum(-1)
    >>> opt = CurvatureZoAR(torch.zeros(5), step="newton", seed=0)
    >>> opt.newton_active, opt.ask().shape  # the first batch: x0 twice (the noise check)
    (True, torch.Size([2, 5]))
    >>> opt.cancel()
    >>> while not opt.converged and opt.nit < 200:
    ...     opt.tell(f(opt.ask()))
    >>> opt.converged, bool(opt.best_f < 1e-12), bool(opt.lr > 0 and opt.mu > 0)
    (True, True, True)

    The ZoVH direction in ZoAR's loop (``step="direction"``, the default of this class):

    >>> opt = CurvatureZoAR(torch.zeros(5), seed=0)
    >>> for _ in range(50):
    ...     opt.tell(f(opt.ask()))
    >>> bool(opt.current_lam() > 0), bool(opt.best_f < f(torch.zeros(1, 5, dtype=torch.float64))[0])
    (True, True)
    """

    def __init__(self, x0: Any, *, lam: float | str = "auto", inverse: str = "sherman-morrison",
                 correction: bool = True, step: str = "direction", **kwargs: Any) -> None:
        if lam != "auto" and not (isinstance(lam, (int, float)) and not isinstance(lam, bool)
                                  and 0 < lam < float("inf")):
            raise ValueError(f"lam must be 'auto' or a positive finite number, got {lam!r}")
        if inverse not in INVERSES:
            raise ValueError(f"inverse must be one of {INVERSES}, got {inverse!r}")
        if step not in STEPS:
            raise ValueError(f"step must be one of {STEPS}, got {step!r}")
        super().__init__(x0, **kwargs)
        self.lam: float | str = lam if lam == "auto" else float(lam)
        self.inverse = inverse
        self.correction = bool(correction)
        self.step = step
        self.trust: TrustRegionState | None = None
        if step == "newton":
            radius0 = 10.0 * self.control.lr0  # the default lr is 0.05 of the problem scale
            self.trust = TrustRegionState(radius=radius0, radius0=radius0, mu=self.mu0)
            self.num_queries = 2

    def _extra_settings(self) -> dict[str, Any]:
        return {"lam": self.lam, "inverse": self.inverse, "correction": self.correction, "step": self.step}

    # -- the trust-region step ---------------------------------------------------------
    @property
    def newton_active(self) -> bool:
        """True while the trust-region step runs (``step="newton"``, objective not noisy)."""
        return self.trust is not None and self.trust.active

    @property
    def mu(self) -> float:
        """The smoothing radius; in the trust-region step, the current difference step."""
        if self.trust is not None and self.trust.active:
            return self.trust.mu
        return super().mu

    @property
    def lr(self) -> float:
        """The step size; in the trust-region step, the trust radius (the longest step)."""
        if self.trust is not None and self.trust.active:
            return self.trust.radius
        return self.control.lr

    @property
    def converged(self) -> bool:
        """True once the step size (the trust radius, in the trust-region step) fell below
        ``xtol`` times its start."""
        if self.trust is not None and self.trust.active:
            return self.trust.radius <= self.options.xtol * self.trust.radius0
        return super().converged

    def _batch_range(self) -> tuple[int, int]:
        lo, hi = super()._batch_range()
        if self.step == "newton":
            lo, hi = min(lo, 2), max(hi, 2 * self.dim)
        return lo, hi

    def _extra_state(self) -> dict[str, Any]:
        from .state import encode_array, optional_array, sentinel

        tr = self.trust
        if tr is None:
            return {}
        return {"radius": tr.radius, "radius0": tr.radius0, "mu": tr.mu, "active": tr.active,
                "fx": sentinel(tr.fx), "model": optional_array(tr.model), "grad": optional_array(tr.grad),
                "center_prev": optional_array(tr.center_prev), "grad_prev": optional_array(tr.grad_prev)}

    def _read_extra_state(self, r: Any) -> Any:
        from .state import StateError

        if self.trust is None:
            if r.data:
                raise StateError(f"state field 'extra' must be empty for step={self.step!r}, got keys {sorted(r.data)}")
            return None
        dt, d, dev = "float64" if self.dtype == torch.float64 else "float32", self.dim, self.device
        tr = TrustRegionState(radius=r.real("radius", positive=True), radius0=r.real("radius0", positive=True),
                              mu=r.real("mu", positive=True), active=r.boolean("active"),
                              fx=r.real("fx", sentinel=True),
                              model=r.array("model", dt, (d, d), device=dev, optional=True),
                              grad=r.vector("grad", dt, d, device=dev, optional=True),
                              center_prev=r.vector("center_prev", dt, d, device=dev, optional=True),
                              grad_prev=r.vector("grad_prev", dt, d, device=dev, optional=True))
        if (tr.model is None) != (tr.grad is None) or (tr.model is not None and tr.fx == math.inf):
            raise StateError("state fields 'extra.model', 'extra.grad' and 'extra.fx' disagree (fx is set by "
                             "the first batch, model and grad together by the second)")
        if (tr.center_prev is None) != (tr.grad_prev is None):
            raise StateError("state fields 'extra.center_prev' and 'extra.grad_prev' disagree")
        return tr

    def _apply_extra_state(self, extra: Any) -> None:
        if self.trust is not None:
            self.trust = extra
            if extra.active:
                self.num_queries = 2 if extra.fx == math.inf else 2 * self.dim if extra.model is None else self.dim + 1

    def _difference_step(self, z: torch.Tensor) -> float:
        """The forward-difference step at ``z``: sqrt(eps) relative to the larger of 1 and
        the largest coordinate (truncation ~ h |f''| against round-off ~ eps |f| / h)."""
        return math.sqrt(float(torch.finfo(self.dtype).eps)) * max(1.0, float(z.abs().max()))

    def ask(self, n: int | None = None) -> torch.Tensor:
        """The next batch. In the trust-region step ``n`` is ignored: the batch is the trial
        point and ``d`` forward differences around it along an orthonormal frame (the first
        batch: the start twice; the second: ``d`` antithetic pairs at radius ``mu``)."""
        tr = self.trust
        if tr is None or not tr.active:
            return super().ask(n)
        if self._pending is not None:
            raise RuntimeError("ask() called twice: tell() the values of the previous batch first")
        rng_state = self.generator.get_state()
        d = self.dim
        if tr.fx == math.inf:  # the noise check: x0 twice (no directions drawn)
            V = torch.zeros((0, d), dtype=self.dtype, device=self.device)
            z, p, pred = self.x, torch.zeros_like(self.x), 0.0
            X = torch.stack([z, z])
        else:
            V = sample_directions(d, d, generator=self.generator, kind="orthogonal", dtype=self.dtype,
                                  device=self.device)
        if tr.fx < math.inf and tr.model is None:  # the start: d antithetic pairs at radius mu
            z, p, pred = self.x, torch.zeros_like(self.x), 0.0
            X = torch.cat([self._project(z + tr.mu * V), self._project(z - tr.mu * V)])
        elif tr.model is not None and tr.grad is not None:
            p, pred = trust_region_step(tr.model, tr.grad, tr.radius)
            z = self._project(self.x + p)
            if self._bounded:
                p = z - self.x
                pred = -float(tr.grad @ p + 0.5 * p @ (tr.model @ p))
            tr.mu = self._difference_step(z)
            forward = z + tr.mu / math.sqrt(d) * V
            if self._bounded:  # a difference that would leave the box goes the other way
                out = torch.zeros(d, dtype=torch.bool, device=self.device)
                if self.lower is not None:
                    out |= (forward < self.lower).any(1)
                if self.upper is not None:
                    out |= (forward > self.upper).any(1)
                forward = torch.where(out[:, None], z - tr.mu / math.sqrt(d) * V, forward)
            X = torch.cat([z[None], self._project(forward)])
        self._pending = (V, X, rng_state)
        self._trial = (z, p, pred)
        self.num_queries = X.shape[0]
        return X

    def tell(self, values: Any, *, points: Any = None) -> None:
        tr = self.trust
        if tr is None or not tr.active:
            super().tell(values, points=points)
            return
        if points is not None:
            raise ValueError("the trust-region step measures its own points: tell() takes no points=")
        if self._pending is None:
            raise RuntimeError("tell() called without a pending ask()")
        V, X, _ = self._pending
        y = torch.as_tensor(values, dtype=self.dtype, device=self.device).reshape(-1)
        if self.held is not None and y.shape[0] + self.held.numel() == X.shape[0]:
            y = torch.cat([self.held, y])
        if y.shape[0] != X.shape[0]:
            raise ValueError(f"tell() expected {X.shape[0]} values, got {y.shape[0]}")
        z, p, pred = self._trial
        self._pending, self.held = None, None
        self.nit += 1
        finite = torch.isfinite(y)
        self.n_nonfinite += int((~finite).sum())
        if bool(finite.any()):
            i = int(torch.where(finite, y, torch.inf).argmin())
            if float(y[i]) < self.best_f:
                self.best_f, self.best_x = float(y[i]), X[i].clone()
        d = self.dim
        if tr.fx == math.inf:
            if not bool(finite.all()) or float(y[0]) != float(y[1]):
                # Two values at one point differ: a noisy objective, where comparing single values
                # (the acceptance test) is unreliable. The ZoAR loop copes with noise: fall back.
                tr.active = False
                self.num_queries = self.options.num_queries
            else:
                tr.fx = float(y[0])
                self.num_queries = 2 * d
            return
        first = tr.model is None
        head = 0 if first else 1
        fz = tr.fx if first else float(y[0])
        D, yd = X[head:] - z, y[head:]
        ok = finite[head:] & math.isfinite(fz)
        if first:
            # ZoVH's curvature along the frame, from the pairs the box left whole
            whole = (ok[:d] & ok[d:] & (X[head:head + d] == z + tr.mu * V).all(1)
                     & (X[head + d:] == z - tr.mu * V).all(1))
            tr.model = (frame_curvature(V[whole], yd[:d][whole], yd[d:][whole], fz, tr.mu) if bool(whole.any())
                        else torch.eye(d, dtype=self.dtype, device=self.device))
            prior = torch.zeros_like(z)
        else:
            assert tr.grad is not None and tr.model is not None
            prior = tr.grad + tr.model @ p
        B = tr.model
        if bool(ok.any()):
            Df = D[ok]
            g = fit_gradient(Df, yd[ok] - fz - 0.5 * ((Df @ B) * Df).sum(1), prior)
            if tr.center_prev is not None and tr.grad_prev is not None:
                s_, y_ = z - tr.center_prev, g - tr.grad_prev
                sy = float(s_ @ y_)
                if float(s_ @ (B @ s_)) <= 0 < sy:
                    # the model has no positive curvature where the function measurably has (a
                    # wrong model): restart from the scaled identity y^T y / s^T y (Nocedal & Wright 6.20)
                    B = float(y_ @ y_) / sy * torch.eye(d, dtype=self.dtype, device=self.device)
                B = bfgs_update(B, s_, y_)
                tr.model = B
            tr.center_prev, tr.grad_prev = z.clone(), g.clone()
        else:
            g = prior
        step = float(p.norm())
        if first:
            tr.grad = g
        elif math.isfinite(fz) and fz < tr.fx and tr.fx - fz >= ETA * pred:
            rho = (tr.fx - fz) / pred if pred > 0 else 1.0
            self.x, tr.fx, tr.grad = z, fz, g
            if rho > RHO_GOOD and step > 0.8 * tr.radius:
                tr.radius *= 2.0
            elif rho < RHO_POOR:
                tr.radius = 0.5 * step
            self._last_step_norm = step
        else:
            tr.grad = g - B @ p  # the model's gradient back at the iterate
            tr.radius = 0.25 * step if step > 0 else 0.25 * tr.radius
        self.num_queries = d + 1

    #: ``lam="auto"``: :math:`\lambda_t` = ``AUTO_LAM_FACTOR`` times the median of
    #: :math:`|c_i| |u_i|^2`. In the hessian benchmark suite (study "methods", ``docs/zovh.md``)
    #: the authors' fixed 0.1 stalled on a 20-d Rosenbrock (19.9 from 19.0 in 20 000
    #: evaluations; zoar 11.2, this factor 11.3) and was 20x worse on a 50-d quadratic;
    #: a factor 1 also stalled there in development runs.
    AUTO_LAM_FACTOR = 10.0

    def current_lam(self, H: LowRankHessian | None = None) -> float:
        r"""The :math:`\lambda` used for the current buffer."""
        if self.lam != "auto":
            return float(self.lam)
        U, y = self.history.directions(), self.history.values()
        H = zovh_hessian(U, y, self.mu) if H is None else H
        return auto_damping(H.coef, U.pow(2).sum(1), self.AUTO_LAM_FACTOR)

    def _direction(self) -> torch.Tensor:
        U, y = self.history.directions(), self.history.values()
        g = zoar_gradient(U, y, self.mu)
        if U.shape[0] < 3:
            return g if self.lam == "auto" else g / float(self.lam)
        H = zovh_hessian(U, y, self.mu)
        lam = self.current_lam(H)
        out = lam if self.lam == "auto" else 1.0  # auto: report lam * d, on the gradient's scale
        if self.inverse == "woodbury":
            try:
                return woodbury_solve(H, g, lam) * out
            except RuntimeError:  # singular lam I + H (torch.linalg.LinAlgError)
                return g / lam * out
        return inverse_hessian_gradient(U, y, self.mu, lam, correction=self.correction) * out
