"""BoTorch integration: test problems as SciPy-style objectives, BoTorch BO as a peer.

>>> from zo_scipy.integrations.botorch import BoTorchObjective
>>> f = BoTorchObjective("Levy", dim=10, noise="additive", noise_level=0.1, seed=0)
>>> scipy.optimize.minimize(f, x0, bounds=f.bounds)      # f(x) -> float
>>> f.batch(X), f.true(x), f.optimal_value                 # vectorized, noise-free, min f

BoTorch itself is imported only when a problem is built or BO runs.
"""
from __future__ import annotations

from ._bo import botorch_minimize
from ._problem import BoTorchObjective, make_problem

__all__ = ["BoTorchObjective", "botorch_minimize", "make_problem"]
