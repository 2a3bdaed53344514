"""ZoVH: SciPy's Newton-type solvers without derivatives
=====================================================

ZoVHCurvature: SciPy's trust-region and Newton solvers without derivatives.

One batch of queries per point gives the gradient (central differences along random
directions) and a Hessian model (ZoVH with a running-model control variate); grad,
hess and hessp at the same point share that batch. ``curv.hooks(method)`` hands each
solver the hook it accepts (positive definite where the solver needs it).

Run: python examples/zovh_scipy_solvers.py   (ZO_SCIPY_EXAMPLE_QUICK=1: smaller)
"""
import os

import numpy as np
from scipy.optimize import minimize, rosen, rosen_der

import zo_scipy as zs

QUICK = os.environ.get("ZO_SCIPY_EXAMPLE_QUICK") == "1"
d = 10 if QUICK else 20
methods = ["trust-ncg", "trust-constr"] if QUICK else ["trust-ncg", "trust-krylov", "trust-exact",
                                                       "trust-constr", "newton-cg", "dogleg"]

for method in methods:
    curv = zs.ZoVHCurvature(rosen, seed=0)  # defaults: 2d evaluations per new point
    res = minimize(rosen, np.zeros(d), method=method, options={"maxiter": 3000}, **curv.hooks(method))
    total = res.nfev + curv.nfev  # the solver's own calls plus the hooks' queries
    gnorm = np.linalg.norm(rosen_der(res.x))
    print(f"{method:13s} f = {res.fun:.2e}  |grad| = {gnorm:.1e}  evaluations = {total}")
    assert res.fun < 1e-4, (method, res.fun)

# The hooks can also be passed by hand:
curv = zs.ZoVHCurvature(rosen, seed=1)
res = minimize(rosen, np.zeros(d), method="trust-ncg", jac=curv.grad, hessp=curv.hessp)
print(f"by hand: trust-ncg f = {res.fun:.2e} with {res.nfev + curv.nfev} evaluations")
