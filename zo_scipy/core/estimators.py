r"""Zeroth-order gradient estimators (the ZoAR paper; docs/zoar.md).

All estimators see the same data: directions ``U`` (M x d, rows :math:`u_j`),
values ``y`` (:math:`y_j = f(x_{s_j} + \mu u_j)`) and the smoothing radius
:math:`\mu`. They are REINFORCE estimators of :math:`\nabla F_\mu` with different
baselines :math:`b` (docs/zoar.md, "the policy-optimization view"):

.. math:: g = c \sum_j (y_j - b) u_j / \mu .
"""
from __future__ import annotations

from typing import Literal

import torch

Normalization = Literal["unbiased", "authors"]


def centered_weights(y: torch.Tensor, mu: float, *, normalization: Normalization = "unbiased") -> torch.Tensor:
    r"""Per-query weights :math:`w_j = (y_j - \bar y) / (\mu (M - 1))` of the ZoAR gradient.

    ``normalization="authors"`` divides by :math:`M` instead of :math:`M-1`, as the
    authors' ZoAR code does; it is biased on-policy, :math:`E g = (M-1)/M \nabla F_\mu`.

    Parameters
    ----------
    y : torch.Tensor
        The ``M`` values, shape ``(M,)``.
    mu : float
        Smoothing radius :math:`\mu`.
    normalization : {"unbiased", "authors"}
        Divide by :math:`M - 1` (unbiased) or by :math:`M`.

    Returns
    -------
    torch.Tensor
        The weights :math:`w`, shape ``(M,)``; the gradient is :math:`w^T U`.

    Raises
    ------
    ValueError
        Fewer than 2 values.

    See Also
    --------
    zoar_gradient : :math:`w^T U`.

    Notes
    -----
    Subtracting the mean is the "baseline" of the policy-gradient view of the ZoAR paper:
    the REINFORCE estimator of reinforcement learning (a gradient of an expected reward
    from sampled actions and their rewards) with a baseline subtracted from each reward to
    reduce the variance. Here the actions are the perturbations :math:`u_j` and the rewards
    the values :math:`-y_j`.

    References
    ----------
    - Junbin Qiu, Zhengpeng Xie, Xiangda Yan, Yongjie Yang, Yao Shu, "Zeroth-Order Optimization
      is Secretly Single-Step Policy Optimization", arXiv:2506.14460, 2025 (the ZoAR paper).
    - Ronald J. Williams, "Simple statistical gradient-following algorithms for
      connectionist reinforcement learning", Machine Learning 8, 229-256, 1992 (REINFORCE).
    - Evan Greensmith, Peter L. Bartlett, Jonathan Baxter, "Variance reduction techniques
      for gradient estimates in reinforcement learning", JMLR 5, 1471-1530, 2004.

    Examples
    --------
    >>> import torch
    >>> from zo_scipy.core import centered_weights
    >>> centered_weights(torch.tensor([1.0, 2.0, 3.0]), 0.5)
    tensor([-1.,  0.,  1.])
    """
    M = y.shape[0]
    if M < 2:
        raise ValueError(f"the averaged-baseline estimator needs at least 2 queries, got {M}")
    denom = (M - 1) if normalization == "unbiased" else M
    return (y - y.mean()) / (mu * denom)


def zoar_gradient(
    U: torch.Tensor, y: torch.Tensor, mu: float, *, normalization: Normalization = "unbiased"
) -> torch.Tensor:
    r"""ZoAR gradient with the averaged baseline (the ZoAR paper; docs/zoar.md).

    .. math::
        \bar y = \frac1M \sum_{j} y_j, \qquad
        g = \frac{1}{M-1} \sum_{j} (y_j - \bar y)\, \frac{u_j}{\mu}.

    With ``M`` on-policy Gaussian queries this is unbiased for
    :math:`\nabla F_\mu(x)`, :math:`F_\mu(x) = E f(x + \mu u)`: subtracting the
    sample mean costs a factor :math:`(M-1)/M` that the :math:`1/(M-1)` restores.
    Over a reuse buffer the old pairs are used as stored (off-policy: drawn around
    earlier iterates, not the current one).

    Cost: one ``(M,) @ (M, d)`` product.

    Parameters
    ----------
    U : torch.Tensor
        Directions, shape ``(M, d)``.
    y : torch.Tensor
        Values :math:`y_j = f(x + \mu u_j)`, shape ``(M,)``.
    mu : float
        Smoothing radius.
    normalization : {"unbiased", "authors"}
        See :func:`centered_weights`.

    Returns
    -------
    torch.Tensor
        The estimate :math:`g`, shape ``(d,)``.

    Raises
    ------
    ValueError
        Fewer than 2 queries.

    See Also
    --------
    two_point_gradient : the classic estimator with baseline :math:`f(x)`.
    zo_scipy.zoar : the SciPy method built on this estimator.

    References
    ----------
    - Junbin Qiu, Zhengpeng Xie, Xiangda Yan, Yongjie Yang, Yao Shu, "Zeroth-Order Optimization
      is Secretly Single-Step Policy Optimization", arXiv:2506.14460, 2025 (the ZoAR paper).
    - Yurii Nesterov, Vladimir Spokoiny, "Random gradient-free minimization of convex
      functions", Foundations of Computational Mathematics 17, 527-566, 2017.

    Examples
    --------
    On a linear function the estimate averages to the gradient :math:`a`:

    >>> import torch
    >>> from zo_scipy.core import make_generator, sample_directions, zoar_gradient
    >>> a = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    >>> U = sample_directions(20000, 3, generator=make_generator(0))
    >>> g = zoar_gradient(U, U @ a * 0.1, 0.1)   # f(x + mu u) - f(x) = mu a.u
    >>> bool(torch.allclose(g, a, atol=0.05))
    True
    """
    return centered_weights(y, mu, normalization=normalization) @ U


def two_point_gradient(U: torch.Tensor, y: torch.Tensor, f0: float | torch.Tensor, mu: float) -> torch.Tensor:
    r"""The classic estimator with baseline :math:`f(x)` ("vanilla ZO"):
    :math:`g = \frac1K \sum_k (y_k - f(x))\, u_k / \mu`.

    Parameters
    ----------
    U : torch.Tensor
        Directions, shape ``(K, d)``.
    y : torch.Tensor
        Values :math:`f(x + \mu u_k)`, shape ``(K,)``.
    f0 : float or torch.Tensor
        The baseline :math:`f(x)`.
    mu : float
        Smoothing radius.

    Returns
    -------
    torch.Tensor
        The estimate, shape ``(d,)``.

    Raises
    ------
    ValueError
        No query.

    See Also
    --------
    zoar_gradient : the averaged baseline, no extra evaluation of :math:`f(x)`.

    Notes
    -----
    Unbiased for :math:`\nabla F_\mu(x)`, :math:`F_\mu(x) = E f(x + \mu u)`, with
    Gaussian directions; it costs :math:`K + 1` evaluations per estimate.

    References
    ----------
    - Yurii Nesterov, Vladimir Spokoiny, "Random gradient-free minimization of convex
      functions", Foundations of Computational Mathematics 17, 527-566, 2017.
    - James C. Spall, "Multivariate stochastic approximation using a simultaneous
      perturbation gradient approximation", IEEE Transactions on Automatic Control 37(3),
      332-341, 1992.

    Examples
    --------
    >>> import torch
    >>> from zo_scipy.core import two_point_gradient
    >>> U = torch.eye(2, dtype=torch.float64)
    >>> two_point_gradient(U, torch.tensor([1.2, 0.9], dtype=torch.float64), 1.0, 0.1)
    tensor([ 1.0000, -0.5000], dtype=torch.float64)
    """
    K = y.shape[0]
    if K < 1:
        raise ValueError("the two-point estimator needs at least 1 query")
    return ((y - f0) / (mu * K)) @ U
