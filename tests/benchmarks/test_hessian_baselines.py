"""The classical Hessian estimators the benchmarks compare ZoVH against (benchmarks.hessian_baselines).

Statistical tests use fixed seeds; each tolerance is derived in a comment from the
estimator's variance, never tuned.
"""
from __future__ import annotations

import math

import pytest
import torch

from benchmarks.hessian_baselines import (
    ClassicalKind, SymmetricOperator, classical_budget_split, classical_hessian, hizoo_diagonal_update, hizoo_gradient,
)
from zo_scipy.core.directions import make_generator, sample_directions
from zo_scipy.core.lowrank import LowRankHessian

f64 = torch.float64


def _spd(d: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    Q, _ = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=f64))
    return Q @ torch.diag(torch.linspace(1.0, 4.0, d, dtype=f64)) @ Q.T


def _quad_values(A: torch.Tensor, b: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
    """f(x) = 0.5 x^T A x + b^T x on the rows of X."""
    return 0.5 * ((X @ A) * X).sum(-1) + X @ b


def test_classical_estimators_bias():
    # On a quadratic: S1, S2, S3 are unbiased for A; CD has mean A + tr(A)/2 I.
    # The mean of R iid replicates has per-entry standard error s_jk / sqrt(R); a 5-sigma
    # band over the d(d+1)/2 = 10 distinct entries of each of 4 estimators has a false
    # alarm probability < 40 * 6e-7 (R = 3000 makes the CLT accurate).
    d, mu, R, K = 4, 0.3, 3000, 5
    A = _spd(d, 12)
    b = torch.tensor([0.5, -0.5, 0.2, 0.0], dtype=f64)
    x = torch.tensor([0.2, 0.1, -0.3, 0.4], dtype=f64)
    gen = make_generator(12)
    f0 = float(_quad_values(A, b, x[None])[0])
    cd_mean = A + A.trace() / 2 * torch.eye(d, dtype=f64)
    target: dict[ClassicalKind, torch.Tensor] = {"cd": cd_mean, "s1": A, "s2": A, "s3": A}
    for kind, expect in target.items():
        n = classical_budget_split(kind, K)
        Hs = torch.empty(R, d, d, dtype=f64)
        for r in range(R):
            U = sample_directions(n, d, generator=gen)
            yp = _quad_values(A, b, x + mu * U)
            ym = _quad_values(A, b, x - mu * U)
            Hs[r] = classical_hessian(kind, U, mu, y_plus=yp, y_minus=ym, f0=f0).dense()
        mean, se = Hs.mean(0), Hs.std(0) / math.sqrt(R)
        assert bool(((mean - expect).abs() <= 5 * se).all()), kind
    assert classical_budget_split("cd", 3) == 1 and classical_budget_split("s2", 3) == 2
    with pytest.raises(ValueError, match="too small"):
        classical_budget_split("cd", 2)
    with pytest.raises(ValueError, match="kind"):
        classical_budget_split("zovh", 9)


def test_hizoo_diagonal_stays_positive_and_gradient_is_central_difference():
    d, mu = 5, 0.1
    gen = make_generator(13)
    h = torch.ones(d, dtype=f64)
    for _ in range(50):
        U = sample_directions(1, d, generator=gen)
        h = hizoo_diagonal_update(h, U, torch.tensor([3.0], dtype=f64), torch.tensor([-5.0], dtype=f64), 0.0, mu,
                                  rate=0.1)
    assert bool((h > 0).all()) and not torch.allclose(h, torch.ones(d, dtype=f64))
    # with h = 1 the preconditioned gradient is the central difference, exact on a linear f
    a = torch.linspace(-1, 1, d, dtype=f64)
    U = sample_directions(d, d, generator=gen, kind="orthogonal")
    g = hizoo_gradient(torch.ones(d, dtype=f64), U, (mu * U) @ a, (-mu * U) @ a, mu)
    torch.testing.assert_close(g, a, rtol=1e-12, atol=1e-12)  # sum_k u_k u_k^T = d I for orthogonal u


def test_symmetric_operator_gives_frobenius_errors_without_dense():
    d = 6
    A = _spd(d, 3)
    op = SymmetricOperator(matmat=lambda V: A @ V, diagonal=A.diagonal(), fro2=float(A.pow(2).sum()))
    U = torch.randn(3, d, generator=make_generator(4), dtype=f64)
    H = LowRankHessian(U, torch.tensor([1.0, -1.0, 2.0], dtype=f64))
    assert H.frobenius_error(op) == pytest.approx(float((H.dense() - A).norm()), rel=1e-10)
