r"""ZoVH's curvature-aware method as an ask/tell optimizer (the ZoVH paper's update).

>>> opt = CurvatureZoAR(torch.zeros(3), lam=0.1, seed=0)
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
"""
from __future__ import annotations

from typing import Any

import torch

from .estimators import zoar_gradient
from .hessian import auto_damping, inverse_hessian_gradient, zovh_hessian
from .lowrank import LowRankHessian, woodbury_solve
from .zoar import ZoAR

INVERSES: tuple[str, ...] = ("sherman-morrison", "woodbury")


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
    """

    def __init__(self, x0: Any, *, lam: float | str = "auto", inverse: str = "sherman-morrison",
                 correction: bool = True, **kwargs: Any) -> None:
        if lam != "auto" and not (isinstance(lam, (int, float)) and not isinstance(lam, bool)
                                  and 0 < lam < float("inf")):
            raise ValueError(f"lam must be 'auto' or a positive finite number, got {lam!r}")
        if inverse not in INVERSES:
            raise ValueError(f"inverse must be one of {INVERSES}, got {inverse!r}")
        super().__init__(x0, **kwargs)
        self.lam: float | str = lam if lam == "auto" else float(lam)
        self.inverse = inverse
        self.correction = bool(correction)

    def _extra_settings(self) -> dict[str, Any]:
        return {"lam": self.lam, "inverse": self.inverse, "correction": self.correction}

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
