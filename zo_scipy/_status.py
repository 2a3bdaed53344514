"""Central status codes and messages of the SciPy-facing methods."""
from __future__ import annotations

from enum import IntEnum


class Status(IntEnum):
    """``OptimizeResult.status`` values shared by ``zoar`` and ``zovh``."""

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
