"""Uncertainty: Laplace posterior of an SIR model
==============================================

Calibrating an SIR epidemic model with credible intervals, from simulator runs only.

The simulator (scipy.integrate.solve_ivp, in zo_scipy.uq.problems.SIRCalibration) has no gradients;
zo_scipy.uq.laplace finds the posterior mode with ZoAR, refines it with Newton steps of the measured
quadratic model, measures the curvature with central second differences, and returns a Gaussian in
unconstrained coordinates (log beta, log gamma, logit I0) whose samples and intervals are mapped back
to the parameters' own ranges. A PSIS k-hat check (ArviZ) spends extra simulator runs at posterior
draws to test whether the Gaussian fits.

Run: python examples/uq_sir_calibration.py [out_dir]   (ZO_SCIPY_EXAMPLE_QUICK=1: smaller, plots not saved)
"""
import os
import sys
import time
from pathlib import Path

import numpy as np

import zo_scipy.uq as uq
from zo_scipy.uq.problems import SIRCalibration

QUICK = os.environ.get("ZO_SCIPY_EXAMPLE_QUICK") == "1"


def main(out: Path | None) -> None:
    prob = SIRCalibration(seed=0)  # beta 0.5, gamma 0.2, I0 0.01; 30 noisy observations
    t0 = time.perf_counter()
    post = uq.laplace(prob, np.array([0.3, 0.3, 0.05]), bounds=prob.bounds, mode_budget=300 if QUICK else 1000,
                      seed=0)
    lo, hi = post.interval(0.95)
    draws = post.sample(4000, 0)
    print(post.summary())
    print(f"fit in {time.perf_counter() - t0:.1f} s, {post.nfev} simulator runs")
    for k, name in enumerate(prob.names):
        print(f"  {name:5s} true {prob.true[k]:.4f}   95% interval [{lo[k]:.4f}, {hi[k]:.4f}]   "
              f"posterior median {np.median(draws[:, k]):.4f}")
    assert np.all(lo < prob.true) and np.all(prob.true < hi), "the true parameters should be in their intervals"
    dg = post.diagnose(num_samples=100 if QUICK else 400, seed=1)
    print(f"PSIS k-hat {dg.khat:.2f} ({'Gaussian fits' if dg.ok else 'Gaussian fits badly'}); "
          f"log Z Laplace {dg.log_evidence_laplace:.3f}, importance sampling {dg.log_evidence_is:.3f}")
    # The marginals (with the true values) and the pairwise draws.
    marginals = uq.plot_marginals(post, names=prob.names, truth=prob.true, ncols=3)
    pairs = uq.plot_pairs(post, coords=(0, 1, 2), names=prob.names)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        marginals.savefig(out / "uq_sir_marginals.png", dpi=110)
        pairs.savefig(out / "uq_sir_pairs.png", dpi=110)
        print(f"plots in {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else (None if QUICK else Path("uq-output")))
