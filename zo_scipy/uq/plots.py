"""Plots of a :class:`~zo_scipy.uq.LaplacePosterior`: marginals with credible intervals against a
reference, and a pair plot of a few coordinates (matplotlib, imported on call)."""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from ._laplace import LaplacePosterior


def _names(names: Sequence[str] | None, coords: Sequence[int]) -> list[str]:
    return [names[c] if names is not None else f"theta[{c}]" for c in coords]


def plot_marginals(post: LaplacePosterior, *, coords: Sequence[int] | None = None,
                   reference: dict[str, Any] | np.ndarray | None = None, names: Sequence[str] | None = None,
                   truth: Sequence[float] | np.ndarray | None = None, level: float = 0.95, ncols: int = 4,
                   num_samples: int = 4000, seed: int = 0) -> Figure:
    """One panel per coordinate: the approximation's marginal density and its ``level`` credible
    interval (user space), a reference (``{"mean": ..., "std": ...}`` Gaussian marginals or an
    ``(S, d)`` array of reference draws) and the true value if known.

    Parameters
    ----------
    post : LaplacePosterior
        The approximation.
    coords : sequence of int, optional
        Coordinates to show (default: the first eight).
    reference : dict or numpy.ndarray, optional
        Reference marginals to overlay.
    names : sequence of str, optional
        Panel titles.
    truth : array_like, optional
        True values (vertical lines).
    level : float
        Credible level of the shaded interval.
    ncols : int
        Panels per row.
    num_samples, seed
        Draws used for bounded coordinates' densities.

    Returns
    -------
    matplotlib.figure.Figure

    See Also
    --------
    plot_pairs : pairwise draws.

    References
    ----------
    - Luke Tierney, Joseph B. Kadane, "Accurate approximations for posterior moments and marginal
      densities", Journal of the American Statistical Association 81(393), 82-86, 1986.
    - David J. C. MacKay, "A practical Bayesian framework for backpropagation networks", Neural
      Computation 4(3), 448-472, 1992 (the Laplace approximation and its evidence).

    Examples
    --------
    >>> import numpy as np
    >>> import zo_scipy.uq as uq
    >>> post = uq.laplace(lambda t: 0.5 * float(t @ t), np.ones(2), seed=0)
    >>> fig = uq.plot_marginals(post, names=["a", "b"], truth=[0.0, 0.0])
    >>> len(fig.axes)
    2
    """
    import matplotlib.pyplot as plt
    from scipy.stats import norm

    coords = list(range(min(post.dim, 8))) if coords is None else list(coords)
    nrows = -(-len(coords) // ncols)
    fig, axes = plt.subplots(nrows, min(ncols, len(coords)), figsize=(3.2 * min(ncols, len(coords)), 2.6 * nrows),
                             squeeze=False)
    lo, hi = post.interval(level)
    draws = post.sample(num_samples, seed) if post.transform is not None else None
    mean, std = post.mean, post.std()
    for k, (ax, c) in enumerate(zip(axes.flat, coords)):
        if draws is None:
            t = np.linspace(mean[c] - 4 * std[c], mean[c] + 4 * std[c], 200)
            ax.plot(t, norm.pdf(t, mean[c], std[c]), color="C0", label="ZO Laplace")
        else:
            ax.hist(draws[:, c], bins=60, density=True, histtype="step", color="C0", label="ZO Laplace")
        ax.axvspan(lo[c], hi[c], color="C0", alpha=0.12, label=f"{int(level * 100)}% interval")
        if isinstance(reference, dict):
            m, s = np.asarray(reference["mean"])[c], np.asarray(reference["std"])[c]
            t = np.linspace(m - 4 * s, m + 4 * s, 200)
            ax.plot(t, norm.pdf(t, m, s), color="k", ls="--", label="reference")
        elif reference is not None:
            ax.hist(np.asarray(reference)[:, c], bins=60, density=True, histtype="step", color="k", ls="--",
                    label="reference")
        if truth is not None:
            ax.axvline(np.asarray(truth)[c], color="C3", lw=1, label="true value")
        ax.set_title(_names(names, coords)[k], fontsize=9)
        ax.set_yticks([])
    for ax in list(axes.flat)[len(coords):]:
        ax.set_visible(False)
    axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_pairs(post: LaplacePosterior, *, coords: Sequence[int] = (0, 1, 2), num_samples: int = 2000,
               reference: np.ndarray | None = None, names: Sequence[str] | None = None, seed: int = 0) -> Figure:
    """Pair plot of posterior draws (user space) for a few coordinates, over reference draws if given.

    Parameters
    ----------
    post : LaplacePosterior
        The approximation.
    coords : sequence of int
        Coordinates to pair.
    num_samples : int
        Draws shown.
    reference : numpy.ndarray, optional
        ``(S, d)`` reference draws shown underneath.
    names : sequence of str, optional
        Axis labels.
    seed : int
        Seed of the draws.

    Returns
    -------
    matplotlib.figure.Figure

    See Also
    --------
    plot_marginals : one panel per coordinate.

    References
    ----------
    - Luke Tierney, Joseph B. Kadane, "Accurate approximations for posterior moments and marginal
      densities", Journal of the American Statistical Association 81(393), 82-86, 1986.
    - David J. C. MacKay, "A practical Bayesian framework for backpropagation networks", Neural
      Computation 4(3), 448-472, 1992 (the Laplace approximation and its evidence).

    Examples
    --------
    >>> import numpy as np
    >>> import zo_scipy.uq as uq
    >>> post = uq.laplace(lambda t: 0.5 * float(t @ t), np.ones(3), seed=0)
    >>> fig = uq.plot_pairs(post, coords=(0, 1, 2), num_samples=200)
    >>> len(fig.axes) >= 3
    True
    """
    import matplotlib.pyplot as plt

    coords = list(coords)
    k = len(coords)
    X = post.sample(num_samples, seed)[:, coords]
    R = None if reference is None else np.asarray(reference)[:, coords]
    labels = _names(names, coords)
    fig, axes = plt.subplots(k, k, figsize=(2.4 * k, 2.4 * k), squeeze=False)
    for i in range(k):
        for j in range(k):
            ax = axes[i, j]
            if i == j:
                ax.hist(X[:, i], bins=50, density=True, histtype="step", color="C0")
                if R is not None:
                    ax.hist(R[:, i], bins=50, density=True, histtype="step", color="k", ls="--")
                ax.set_yticks([])
            elif i > j:
                if R is not None:
                    ax.scatter(R[:, j], R[:, i], s=2, color="k", alpha=0.25)
                ax.scatter(X[:, j], X[:, i], s=2, color="C0", alpha=0.25)
            else:
                ax.set_visible(False)
            if i == k - 1:
                ax.set_xlabel(labels[j], fontsize=8)
            if j == 0 and i > 0:
                ax.set_ylabel(labels[i], fontsize=8)
    fig.tight_layout()
    return fig
