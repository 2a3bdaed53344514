"""The ZoVH paper's curvature-aware method as a ``minimize`` method, next to ZoAR.

Both run at the same evaluation budget with their default (equal) step-size rule.

Run: python examples/zovh_method.py   (ZO_SCIPY_EXAMPLE_QUICK=1: smaller)
"""
import os

import numpy as np
from scipy.optimize import minimize

import zo_scipy as zs

QUICK = os.environ.get("ZO_SCIPY_EXAMPLE_QUICK") == "1"
d, budget = (20, 3000) if QUICK else (50, 20000)
scales = np.logspace(0, 2, d)


def f(x):
    return 0.5 * float(np.sum(scales * x**2))


x0 = np.ones(d)
for name, method, opts in [("zoar", zs.zoar, {}), ("zovh", zs.zovh, {}),
                           ("zovh, exact Woodbury", zs.zovh, {"inverse": "woodbury"})]:
    res = minimize(f, x0, method=method, options=dict(maxfev=budget, seed=0, **opts))
    print(f"{name:22s} best f = {res.fun:.3g} (f(x0) = {f(x0):.3g}) in {res.nfev} evaluations: {res.message}")
    assert res.fun < f(x0) and res.nfev <= budget

# also by name through zo_scipy.minimize
res = zs.minimize(f, x0, method="zovh", options=dict(maxfev=budget // 2, seed=1, lam=0.5))
print(f"zs.minimize(method='zovh', lam=0.5): best f = {res.fun:.3g}")
