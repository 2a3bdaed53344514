"""The uq section of ``python -m zo_scipy.demo``: an SIR calibration with credible intervals."""
from __future__ import annotations

import os
import time

import numpy as np


def uq_section(seed: int, out: str, mode_budget: int) -> str:
    """Laplace posterior of the SIR problem (:class:`zo_scipy.uq.problems.SIRCalibration`) from
    simulator runs only; writes ``uq-sir-posterior.png`` (marginals with 95% intervals and the true
    values) into ``out`` and returns a Markdown section."""
    import matplotlib

    matplotlib.use("Agg")
    from . import laplace, plot_marginals
    from .problems import SIRCalibration

    prob = SIRCalibration(seed=seed)
    t0 = time.perf_counter()
    post = laplace(prob, np.array([0.3, 0.3, 0.05]), bounds=prob.bounds, mode_budget=mode_budget, seed=seed)
    secs = time.perf_counter() - t0
    lo, hi = post.interval(0.95)
    dg = post.diagnose(num_samples=100, seed=seed)
    fig = plot_marginals(post, names=prob.names, truth=prob.true, ncols=3)
    png = os.path.join(out, "uq-sir-posterior.png")
    fig.savefig(png, dpi=110)
    ev = post.log_evidence()
    lines = ["### Uncertainty: SIR calibration from simulator runs (zo_scipy.uq.laplace)", "",
             f"{post.nfev} ODE solves ({post.nfev_mode} mode search, {post.nfev_curvature} curvature), "
             f"{secs:.1f} s; log evidence {ev.value:.3f} +- {ev.se:.1g}; PSIS k-hat {dg.khat:.2f} "
             f"({'the Gaussian fits' if dg.ok else 'the Gaussian fits badly'}, {dg.nfev} more solves). "
             f"Plot: `{png}`.", "",
             "| parameter | true | 95% interval | inside |", "|---|---|---|---|"]
    for k, name in enumerate(prob.names):
        lines.append(f"| {name} | {prob.true[k]:.4g} | [{lo[k]:.4g}, {hi[k]:.4g}] | "
                     f"{'yes' if lo[k] < prob.true[k] < hi[k] else 'no'} |")
    return "\n".join(lines)
