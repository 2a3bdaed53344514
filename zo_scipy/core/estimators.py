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
    Over a reuse buffer the old pairs are used as stored (off-policy).

    Cost: one ``(M,) @ (M, d)`` product.
    """
    return centered_weights(y, mu, normalization=normalization) @ U


def two_point_gradient(U: torch.Tensor, y: torch.Tensor, f0: float | torch.Tensor, mu: float) -> torch.Tensor:
    r"""The classic estimator with baseline :math:`f(x)` ("vanilla ZO"):
    :math:`g = \frac1K \sum_k (y_k - f(x))\, u_k / \mu`."""
    K = y.shape[0]
    if K < 1:
        raise ValueError("the two-point estimator needs at least 1 query")
    return ((y - f0) / (mu * K)) @ U
