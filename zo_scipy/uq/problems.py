"""A test problem for :mod:`zo_scipy.uq`: calibrating an SIR epidemic simulator on noisy data.

The simulator is :func:`scipy.integrate.solve_ivp` on

.. math:: \\dot S = -\\beta S I,\\qquad \\dot I = \\beta S I - \\gamma I,

with :math:`S(0) = 1 - I_0`, :math:`I(0) = I_0`; the data are the infected fraction every
``step`` days plus Gaussian noise of standard deviation ``sigma``. Priors: log-normal
:math:`(\\log 0.3, 1)` on :math:`\\beta` and :math:`\\gamma`, uniform on :math:`I_0 \\in (0, 1)`.
It has no gradients: each evaluation is one ODE solve.
"""
from __future__ import annotations

import numpy as np
from scipy.integrate import solve_ivp


class SIRCalibration:
    """Negative log posterior of (beta, gamma, I0) for synthetic SIR data (see the module docstring).

    Parameters
    ----------
    true : sequence of 3 floats
        The parameters the data are simulated from (default beta 0.5, gamma 0.2, I0 0.01).
    days, step, sigma : float
        Observation window, spacing and noise standard deviation.
    seed : int
        Seed of the noise.
    """

    names = ("beta", "gamma", "I0")
    bounds = [(0.0, None), (0.0, None), (0.0, 1.0)]

    def __init__(self, true: tuple[float, float, float] = (0.5, 0.2, 0.01), *, days: float = 60.0,
                 step: float = 2.0, sigma: float = 0.01, seed: int = 0) -> None:
        self.true = np.asarray(true, dtype=np.float64)
        self.times = np.arange(0.0, days, step)
        self.sigma = float(sigma)
        self.data = self.simulate(self.true) + self.sigma * np.random.default_rng(seed).normal(size=self.times.size)

    def simulate(self, theta: np.ndarray) -> np.ndarray:
        """The infected fraction at :attr:`times` for ``theta = (beta, gamma, I0)``."""
        beta, gamma, i0 = (float(v) for v in theta)

        def rhs(_: float, y: np.ndarray) -> list[float]:
            s, i = y
            return [-beta * s * i, beta * s * i - gamma * i]

        sol = solve_ivp(rhs, (0.0, float(self.times[-1])), [1.0 - i0, i0], t_eval=self.times, rtol=1e-6, atol=1e-9)
        return np.asarray(sol.y[1])

    def __call__(self, theta: np.ndarray) -> float:
        beta, gamma, _ = (float(v) for v in theta)
        r = self.data - self.simulate(theta)
        nll = 0.5 * float(r @ r) / self.sigma ** 2
        prior = 0.5 * (np.log(beta / 0.3) ** 2 + np.log(gamma / 0.3) ** 2) + np.log(beta) + np.log(gamma)
        return nll + float(prior)
