"""Shared fixtures: small objectives with known gradients and Hessians."""
from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture
def quadratic():
    """f(x) = 0.5 x^T A x + b^T x with a fixed SPD A (d = 5): gradient A x + b, Hessian A."""
    rng = np.random.default_rng(12345)
    d = 5
    Q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    A = Q @ np.diag(np.linspace(1.0, 4.0, d)) @ Q.T
    b = rng.standard_normal(d)
    return A, b
