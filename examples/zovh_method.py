"""zovh next to ZoAR on an ill-conditioned quadratic
==================================================

zovh, the curvature-aware ``minimize`` method, next to ZoAR on an ill-conditioned quadratic.

At this size zovh's default is its trust-region step (curvature learned across iterates,
docs/zovh.md); ``step="direction"`` runs the ZoVH paper's update in ZoAR's loop instead.
All runs get the same evaluation budget.

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
traces = {}
for name, method, opts in [("zoar", zs.zoar, {}), ("zovh (trust-region step)", zs.zovh, {}),
                           ("zovh, step='direction'", zs.zovh, {"step": "direction"}),
                           ("  the same, exact Woodbury", zs.zovh, {"step": "direction", "inverse": "woodbury"})]:
    traces[name] = []

    def record(intermediate_result):  # SciPy passes the result by this (only) parameter name
        traces[name].append((intermediate_result.nfev, intermediate_result.fun))

    res = minimize(f, x0, method=method, callback=record, options=dict(maxfev=budget, seed=0, **opts))
    print(f"{name:27s} best f = {res.fun:.3g} (f(x0) = {f(x0):.3g}) in {res.nfev} evaluations: {res.message}")
    assert res.fun < f(x0) and res.nfev <= budget

# %%
# Best value so far against evaluations, one curve per run (one seed: read the curves as
# an illustration, not a benchmark; docs/zovh.md has the measured tables).
import matplotlib.pyplot as plt

fig, ax = plt.subplots(figsize=(5, 3.2))
for name, trace in traces.items():
    ax.semilogy(*zip(*trace), label=name.strip())
ax.set(xlabel="function evaluations", ylabel="best f so far", title=f"ill-conditioned quadratic, d = {d}")
ax.legend(fontsize="small")
fig.tight_layout()

# %%
# Also by name through zo_scipy.minimize (lam shapes the direction loop's step):
res = zs.minimize(f, x0, method="zovh", options=dict(maxfev=budget // 2, seed=1, step="direction", lam=0.5))
print(f"zs.minimize(method='zovh', step='direction', lam=0.5): best f = {res.fun:.3g}")
