r"""Bijections from unconstrained working coordinates :math:`z` to a box of the user's parameters.

Per coordinate: :math:`\theta = z` (no bound), :math:`\theta = l + e^z` (lower bound),
:math:`\theta = u - e^z` (upper bound), :math:`\theta = l + (u - l)\,\sigma(z)` (both). The Laplace
approximation is made in :math:`z` for the density of :math:`z`, i.e. the user's
:math:`U(\theta(z)) - \log|\partial\theta/\partial z|` (Stan's ``jacobian=True`` convention); samples
and intervals are mapped back to :math:`\theta`.
"""
from __future__ import annotations

import numpy as np


class BoxTransform:
    r"""The bijection of the module docstring for the bounds ``lower``, ``upper`` (``-inf``/``inf`` allowed).

    Parameters
    ----------
    lower, upper : numpy.ndarray
        The bounds, one per coordinate (``-inf``/``inf`` for none).

    Raises
    ------
    ValueError
        Shapes that differ, or a lower bound not below its upper bound.

    See Also
    --------
    zo_scipy.uq.laplace : uses it for ``bounds``.

    Notes
    -----
    The Laplace approximation is made for the density of :math:`z`, which includes
    :math:`\log|\partial\theta/\partial z|` (:meth:`log_abs_det_jacobian`): a Gaussian in
    :math:`z` is a log-normal (one bound) or logit-normal (two bounds) in :math:`\theta`.

    References
    ----------
    - Stan Development Team, "Stan Reference Manual", chapter "Constraint Transforms"
      (the same lower, upper and interval transforms with their Jacobians).
    - David J. C. MacKay, "A practical Bayesian framework for backpropagation networks", Neural
      Computation 4(3), 448-472, 1992 (the Laplace approximation and its evidence).

    Examples
    --------
    >>> import numpy as np
    >>> from zo_scipy.uq import BoxTransform
    >>> T = BoxTransform(np.array([0.0, -np.inf]), np.array([1.0, np.inf]))
    >>> T.identity
    False
    >>> T.forward(np.array([0.0, 3.0]))                        # logistic in the box, identity outside
    array([0.5, 3. ])
    >>> T.inverse(T.forward(np.array([0.7, -2.0])))
    array([ 0.7, -2. ])
    >>> round(float(T.log_abs_det_jacobian(np.array([0.0, 3.0]))), 6)   # log(1/4)
    -1.386294
    """

    def __init__(self, lower: np.ndarray, upper: np.ndarray) -> None:
        self.lower = np.asarray(lower, dtype=np.float64).reshape(-1)
        self.upper = np.asarray(upper, dtype=np.float64).reshape(-1)
        if self.lower.shape != self.upper.shape or np.any(self.lower >= self.upper):
            raise ValueError("bounds need lower < upper in every coordinate")
        lo, hi = np.isfinite(self.lower), np.isfinite(self.upper)
        self.both, self.low_only, self.high_only = lo & hi, lo & ~hi, ~lo & hi
        self.width = np.where(self.both, self.upper - self.lower, 1.0)

    @property
    def identity(self) -> bool:
        """No coordinate is bounded (the map is the identity)."""
        return not (self.both.any() or self.low_only.any() or self.high_only.any())

    def forward(self, z: np.ndarray) -> np.ndarray:
        r""":math:`\theta(z)` (rows or one point)."""
        z = np.asarray(z, dtype=np.float64)
        t = z.copy()
        with np.errstate(over="ignore"):
            t = np.where(self.low_only, self.lower + np.exp(z), t)
            t = np.where(self.high_only, self.upper - np.exp(z), t)
            t = np.where(self.both, self.lower + self.width / (1 + np.exp(-z)), t)
        return t

    def inverse(self, theta: np.ndarray) -> np.ndarray:
        r""":math:`z(\theta)`; ``theta`` must lie strictly inside the bounds."""
        th = np.asarray(theta, dtype=np.float64)
        if np.any(th <= self.lower) or np.any(th >= self.upper):
            raise ValueError("a point on or outside the bounds has no unconstrained coordinates; "
                             "start strictly inside the bounds")
        z = th.copy()
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.where(self.low_only, np.log(th - self.lower), z)
            z = np.where(self.high_only, np.log(self.upper - th), z)
            p = (th - self.lower) / self.width
            z = np.where(self.both, np.log(p) - np.log1p(-p), z)
        return z

    def log_abs_det_jacobian(self, z: np.ndarray) -> np.ndarray:
        r""":math:`\sum_k \log|\partial\theta_k/\partial z_k|` per row (or for one point)."""
        z = np.asarray(z, dtype=np.float64)
        term = np.where(self.low_only | self.high_only, z, 0.0)
        # log sigma(z) + log(1 - sigma(z)) = -softplus(-z) - softplus(z)
        both = np.log(self.width) - np.logaddexp(0.0, -z) - np.logaddexp(0.0, z)
        term = np.where(self.both, both, term)
        return np.asarray(term.sum(-1))
