"""Central status codes and messages of the SciPy-facing methods."""
from __future__ import annotations

from enum import IntEnum


class Status(IntEnum):
    """``OptimizeResult.status`` values shared by ``zoar`` and ``zovh``.

    An :class:`~enum.IntEnum`: ``res.status == Status.MAXFEV`` and ``res.status == 1``
    are the same test. ``res.success`` is true for ``CONVERGED`` only.

    =============== ===== ==========================================================
    name            value meaning
    =============== ===== ==========================================================
    CONVERGED       0     the step size fell below ``xtol`` times its initial value
    MAXFEV          1     the evaluation budget ``maxfev`` was reached
    MAXITER         2     ``maxiter`` iterations were taken
    NONFINITE       3     the objective never returned a finite value
    OBJECTIVE_ERROR 4     the objective raised (``res.message`` names the exception)
    INTERRUPTED     5     ``KeyboardInterrupt``; ``res.x`` is the best point so far
    CALLBACK        99    the callback raised ``StopIteration``
    =============== ===== ==========================================================

    See Also
    --------
    zo_scipy.zoar : the result fields.

    References
    ----------
    - Pauli Virtanen et al., "SciPy 1.0: fundamental algorithms for scientific computing in
      Python", Nature Methods 17, 261-272, 2020 (``OptimizeResult`` and its ``status``).

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.optimize import minimize, rosen
    >>> import zo_scipy
    >>> res = minimize(rosen, np.zeros(3), method=zo_scipy.zoar, options=dict(maxfev=50, seed=0))
    >>> zo_scipy.Status(res.status), res.status == zo_scipy.Status.MAXFEV
    (<Status.MAXFEV: 1>, True)
    """

    CONVERGED = 0
    MAXFEV = 1
    MAXITER = 2
    NONFINITE = 3
    OBJECTIVE_ERROR = 4
    INTERRUPTED = 5
    CALLBACK = 99


MESSAGES: dict[Status, str] = {
    Status.CONVERGED: "Optimization terminated successfully: the step size fell below xtol.",
    Status.MAXFEV: "Maximum number of function evaluations has been reached.",
    Status.MAXITER: "Maximum number of iterations has been reached.",
    Status.NONFINITE: "The objective returned no finite value; x is the starting point.",
    Status.OBJECTIVE_ERROR: "The objective raised an exception",
    Status.INTERRUPTED: "Interrupted by the user (KeyboardInterrupt); x is the best point so far.",
    Status.CALLBACK: "`callback` raised `StopIteration`.",
}
