"""Checkpoint and resume a run
===========================

Checkpoint a long ZoAR run and resume it, possibly in another process.

``res.state`` is a snapshot of the optimizer as a JSON-safe dict (iterate, reuse buffer
records, Adam moments, step control, random-generator state). Saved as JSON text and
passed back with ``options=dict(resume=state)``, it continues exactly where the run
stopped, so two halves give the same point as one run.

Run: ``python examples/checkpoint_resume.py``.
"""
import json
import os
import tempfile

import numpy as np
from scipy.optimize import minimize, rosen

import zo_scipy

quick = os.environ.get("ZO_SCIPY_EXAMPLE_QUICK") == "1"
d, half = (20, 500) if quick else (100, 5_000)
x0 = np.random.default_rng(1).standard_normal(d)

# One run of 2 * half evaluations ...
full = minimize(rosen, x0, method=zo_scipy.zoar, options=dict(maxfev=2 * half, seed=0))

# ... versus a first half, a checkpoint on disk, and a resumed second half.
first = minimize(rosen, x0, method=zo_scipy.zoar, options=dict(maxfev=half, seed=0))
with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, "zoar-state.json")
    with open(path, "w") as fh:
        json.dump(first.state, fh)
    with open(path) as fh:  # plain data: every field is checked when it is loaded
        state = json.load(fh)
# With resume, x0 only gives the shape; the iterate comes from the state.
second = minimize(rosen, x0, method=zo_scipy.zoar, options=dict(maxfev=half, resume=state))

print(f"one run:        best f = {full.fun:.6g}, nfev = {full.nfev}")
print(f"after half:     best f = {first.fun:.6g}, nfev = {first.nfev}")
print(f"resumed half:   best f = {second.fun:.6g}, nfev = {second.nfev} (this call only)")
# The resumed run reproduces the uninterrupted one exactly (CPU, same seed).
assert np.array_equal(second.x_iterate, full.x_iterate)
assert min(first.fun, second.fun) == full.fun
