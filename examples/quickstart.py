"""Quickstart: ZoAR as a SciPy method
==================================

The README's quickstart: ZoAR as a method of ``scipy.optimize.minimize``.

Run: ``python examples/quickstart.py``. The test suite runs it with
``ZO_SCIPY_EXAMPLE_QUICK=1`` (a smaller problem).
"""
import os

import numpy as np
from scipy.optimize import minimize, rosen

import zo_scipy

quick = os.environ.get("ZO_SCIPY_EXAMPLE_QUICK") == "1"
d, budget = (20, 2_000) if quick else (200, 20_000)

x0 = np.random.default_rng(0).standard_normal(d)
trace = []  # (evaluations so far, best value so far), recorded by a SciPy-style callback


def record(intermediate_result):
    trace.append((intermediate_result.nfev, intermediate_result.fun))


res = minimize(rosen, x0, method=zo_scipy.zoar, callback=record, options=dict(maxfev=budget, seed=0))
print(f"f(x0) = {rosen(x0):.4g} -> best f = {res.fun:.4g} after {res.nfev} evaluations")
print(res.message)

# %%
# The best value against the number of evaluations (log scale).
import matplotlib.pyplot as plt

fig, ax = plt.subplots(figsize=(5, 3.2))
ax.semilogy(*zip(*trace))
ax.set(xlabel="function evaluations", ylabel="best f so far", title=f"zoar on Rosenbrock, d = {d}")
fig.tight_layout()

# res.fun is a value the objective actually returned at res.x; the budget is hard.
assert res.nfev <= budget and np.isclose(rosen(res.x), res.fun)
assert res.fun < rosen(x0)
