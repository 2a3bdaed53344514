"""Uncertainty quantification from function values: the Laplace approximation (``docs/uq.md``).

>>> post = zo_scipy.uq.laplace(neg_log_posterior, x0, seed=0)
>>> post.mean, post.std(), post.interval(0.95), post.log_evidence()

``import zo_scipy`` loads this subpackage lazily (on first use of ``zo_scipy.uq``).
"""
from __future__ import annotations

from ..core.laplace import PDRepair
from ._laplace import Diagnostics, Evidence, LaplacePosterior, laplace
from ._transforms import BoxTransform
from .plots import plot_marginals, plot_pairs

__all__ = ["BoxTransform", "Diagnostics", "Evidence", "LaplacePosterior", "PDRepair", "laplace",
           "plot_marginals", "plot_pairs"]
