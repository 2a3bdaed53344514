"""ZoVH: the low-rank Hessian at d = 10^6
======================================

The low-rank ZoVH Hessian: Hessian-vector products and (lam I + H)^-1 v at large d.

The estimate H = U^T diag(c) U is never formed: products cost O(M d) and the
regularized inverse is an M x M Woodbury solve. Here d = 10^6 (10^5 when quick).

Run: python examples/zovh_low_rank_hessian.py   (ZO_SCIPY_EXAMPLE_QUICK=1: smaller)
"""
import os
import time

import torch

from zo_scipy.core import make_generator, sample_directions, woodbury_solve, zovh_hessian

QUICK = os.environ.get("ZO_SCIPY_EXAMPLE_QUICK") == "1"
d, M, mu, lam = (10**5 if QUICK else 10**6), 16, 0.1, 1.0
gen = make_generator(0)
a = torch.linspace(1, 2, d, dtype=torch.float64)  # f(x) = 0.5 sum a_i x_i^2, Hessian diag(a)


def f(X):
    return 0.5 * (a * X * X).sum(-1)


x = torch.ones(d, dtype=torch.float64)
U = sample_directions(M, d, generator=gen)          # (M, d): the only large array
H = zovh_hessian(U, f(x + mu * U), mu)              # unbiased for diag(a), rank <= M
v = torch.randn(d, generator=gen, dtype=torch.float64)
t = time.perf_counter()
Hv = H.matvec(v)
z = woodbury_solve(H, v, lam)                       # (lam I + H)^-1 v, an M x M solve
print(f"d = {d}: H v and (lam I + H)^-1 v in {time.perf_counter() - t:.3f} s; "
      f"U holds {U.numel() * 8 / 1e6:.0f} MB (a dense H would need {8 * d * d / 1e9:.0f} GB)")
# the solve is exact: (lam I + H) z = v
resid = float((lam * z + H.matvec(z) - v).norm() / v.norm())
print(f"relative residual of the Woodbury solve: {resid:.1e}")
assert resid < 1e-8
