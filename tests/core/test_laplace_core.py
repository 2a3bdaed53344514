"""Core Laplace math: second-difference fit, PD repair, evidence, 1/t accumulation at a fixed point."""
from __future__ import annotations

import math

import pytest
import torch

from zo_scipy.core.curvature import AveragedCurvature, CurvatureModel
from zo_scipy.core.laplace import (
    central_second_differences, fit_second_differences, marginal_variances, precision_low_rank,
    quadratic_log_evidence, repaired_precision,
)
from zo_scipy.core.lowrank import LowRankHessian


def _spd(d: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(d, d, generator=g, dtype=torch.float64)
    return A @ A.T / d + 0.5 * torch.eye(d, dtype=torch.float64)


def _unit(n: int, d: int, seed: int) -> torch.Tensor:
    V = torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return V / V.norm(dim=1, keepdim=True)


def test_second_difference_fit_is_exact_with_enough_pairs():
    d = 6
    H = _spd(d, 0)
    V = _unit(d * (d + 1) // 2 + 3, d, 1)
    f = lambda X: 0.5 * ((X @ H) * X).sum(-1) + 3.0  # noqa: E731
    mu = 0.1
    s = central_second_differences(f(mu * V), f(-mu * V), f(torch.zeros(1, d, dtype=torch.float64))[0], mu)
    fit = fit_second_differences(V, s, baseline=torch.diagonal(H) * 0.3)
    assert fit.rank == d * (d + 1) // 2 and fit.dof == 3
    assert torch.allclose(fit.hessian.dense(), H, atol=1e-9)


def test_second_difference_fit_underdetermined_interpolates_and_keeps_baseline():
    d = 8
    H = _spd(d, 2)
    V = _unit(5, d, 3)
    s = ((V @ H) * V).sum(1)
    base = torch.diagonal(H).clone()
    fit = fit_second_differences(V, s, baseline=base)
    Hf = fit.hessian.dense()
    assert torch.allclose(((V @ Hf) * V).sum(1), s, atol=1e-10)  # every measurement matched
    assert fit.dof == 0 and math.isnan(fit.noise_variance)
    # no measurement: the baseline alone
    fit0 = fit_second_differences(V[:0], s[:0], baseline=base)
    assert torch.allclose(fit0.hessian.dense(), torch.diag(base))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_repair_of_an_indefinite_estimate(dtype):
    g = torch.Generator().manual_seed(4)
    d, m = 30, 12
    U = torch.randn(m, d, generator=g, dtype=dtype)
    coef = torch.randn(m, generator=g, dtype=dtype) * 10  # strongly indefinite
    diag = torch.rand(d, generator=g, dtype=dtype) - 0.2  # some non-positive entries
    F, rep = repaired_precision(diag, LowRankHessian(U, coef), floor=1e-6)
    assert rep.repaired and rep.num_clipped > 0 and rep.num_floored_diag > 0 and rep.min_whitened_eig < 0
    assert bool((F.spectrum >= 1e-6 * 0.999).all()) and bool((F.d_inv_sqrt > 0).all())
    var = marginal_variances(F)
    assert bool((var > 0).all()) and bool(torch.isfinite(var).all())
    assert math.isfinite(F.logdet())
    if dtype == torch.float64:  # a dense reconstruction in float32 is itself round-off bound
        P = precision_low_rank(F).dense()
        assert float(torch.linalg.eigvalsh(P).min()) > 0


def test_repair_leaves_a_pd_precision_unchanged_and_matches_dense():
    d = 7
    A = _spd(d, 5)
    U = torch.linalg.cholesky(A - 0.2 * torch.eye(d, dtype=torch.float64)).T  # A = 0.2 I + U^T U
    diag = torch.full((d,), 0.2, dtype=torch.float64)
    F, rep = repaired_precision(diag, LowRankHessian(U, torch.ones(d, dtype=torch.float64)))
    assert not rep.repaired
    assert torch.allclose(precision_low_rank(F).dense(), A, atol=1e-10)
    assert F.logdet() == pytest.approx(float(torch.logdet(A)), abs=1e-10)
    assert torch.allclose(marginal_variances(F), torch.diagonal(torch.linalg.inv(A)), atol=1e-12)


def test_quadratic_log_evidence_is_exact_for_a_gaussian():
    d = 5
    P = _spd(d, 6)
    m = torch.arange(d, dtype=torch.float64) / 3
    U0 = 2.5  # U(theta) = U0 + 1/2 (theta - m)^T P (theta - m), evaluated at theta_hat = 0
    theta = torch.zeros(d, dtype=torch.float64)
    value = U0 + 0.5 * float((theta - m) @ P @ (theta - m))
    grad = P @ (theta - m)
    L = torch.linalg.cholesky(P - 0.1 * torch.eye(d, dtype=torch.float64)).T
    F, _ = repaired_precision(torch.full((d,), 0.1, dtype=torch.float64), LowRankHessian(L, torch.ones(d, dtype=torch.float64)))
    logz, step = quadratic_log_evidence(value, grad, F)
    exact = -U0 + 0.5 * d * math.log(2 * math.pi) - 0.5 * float(torch.logdet(P))
    assert logz == pytest.approx(exact, abs=1e-10)
    assert torch.allclose(theta + step, m, atol=1e-10)


def test_averaged_curvature_is_unbiased_where_the_running_model_shrinks():
    d, n, T = 4, 8, 400
    H = _spd(d, 7)
    base = torch.diagonal(H) * 0.5
    acc = AveragedCurvature(d, baseline=base)
    run = CurvatureModel(d, 2 * n, dense=False, max_rank=4 * d)
    g = torch.Generator().manual_seed(8)
    x = torch.zeros(d, dtype=torch.float64)
    f = lambda X: 0.5 * ((X @ H) * X).sum(-1)  # noqa: E731
    mu = 0.05
    for _ in range(T):
        V = torch.randn(n, d, generator=g, dtype=torch.float64)
        U = torch.cat([V, -V])
        y = f(x + mu * U)
        acc.add(U, y, mu, antithetic=True)
        run.update(x, V, y, mu)
    err_avg = float(torch.linalg.norm(acc.hessian.dense() - H) / torch.linalg.norm(H))
    err_run = float(torch.linalg.norm(run.hessian.dense() - H) / torch.linalg.norm(H))
    # the averaged estimate's relative error ~ d / sqrt(T * 2n) ~ 0.05 (a few sigma allowed)
    assert err_avg < 0.2
    assert acc.num_batches == T and len(acc.batch_estimates()) == T
    assert err_avg < err_run or err_run < 0.2  # the running model is the slower of the two here


def test_repair_methods_keep_the_diagonal_or_floor_the_direction():
    d = 5
    U = torch.zeros(1, d, dtype=torch.float64)
    U[0, 0] = 1.0
    H = LowRankHessian(U, torch.tensor([-3.0], dtype=torch.float64))  # makes 1 + sigma = -2 along e_0
    diag = torch.ones(d, dtype=torch.float64)
    Fd, rd = repaired_precision(diag, H, method="diagonal")
    Ff, rf = repaired_precision(diag, H, method="floor", floor=1e-4)
    assert rd.num_clipped == rf.num_clipped == 1 and rd.min_whitened_eig == pytest.approx(-2.0)
    assert float(marginal_variances(Fd)[0]) == pytest.approx(1.0)  # the diagonal's variance
    assert float(marginal_variances(Ff)[0]) == pytest.approx(1e4)  # a nearly flat direction
    with pytest.raises(ValueError, match="method"):
        repaired_precision(diag, H, method="abs")
