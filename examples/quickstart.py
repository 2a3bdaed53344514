"""The README's quickstart: ZoAR as a method of ``scipy.optimize.minimize``.

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
res = minimize(rosen, x0, method=zo_scipy.zoar, options=dict(maxfev=budget, seed=0))
print(f"f(x0) = {rosen(x0):.4g} -> best f = {res.fun:.4g} after {res.nfev} evaluations")
print(res.message)

# res.fun is a value the objective actually returned at res.x; the budget is hard.
assert res.nfev <= budget and np.isclose(rosen(res.x), res.fun)
assert res.fun < rosen(x0)
