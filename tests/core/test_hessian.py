"""ZoVH Hessian estimators (zo_scipy.core.hessian); the low-rank algebra is tested in test_lowrank.py.

Statistical tests use fixed seeds; each tolerance is derived in a comment from the
estimator's variance, never tuned.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from zo_scipy.core.directions import make_generator, sample_directions
from zo_scipy.core.estimators import zoar_gradient
from zo_scipy.core.hessian import (
    inverse_hessian_gradient, orthogonal_directions, sherman_morrison_coefficients, sherman_morrison_solve,
    zovh_gradient, zovh_hessian, zovh_hessian_reuse,
)
from zo_scipy.core.history import QueryHistory
from zo_scipy.core.lowrank import LowRankHessian, woodbury_solve

f64 = torch.float64


def _spd(d: int, seed: int, lo: float = 1.0, hi: float = 4.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    Q, _ = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=f64))
    return Q @ torch.diag(torch.linspace(lo, hi, d, dtype=f64)) @ Q.T


def _quad_values(A: torch.Tensor, b: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
    """f(x) = 0.5 x^T A x + b^T x on the rows of X."""
    return 0.5 * ((X @ A) * X).sum(-1) + X @ b


class _DiagonalOperator:
    """diag(lam) known only through products (the lowrank SymmetricOperatorLike protocol)."""

    def __init__(self, lam: torch.Tensor) -> None:
        self.diagonal, self.fro2 = lam, float(lam @ lam)
        self.matmat = lambda V: lam[:, None] * V


def _replicates(A, b, x, M, mu, R, seed, *, antithetic=False, normalizer=None):
    """R independent ZoVH estimates at x (dense, R x d x d)."""
    gen = make_generator(seed)
    d = x.numel()
    out = torch.empty(R, d, d, dtype=f64)
    for r in range(R):
        if antithetic:
            V = sample_directions(M // 2, d, generator=gen)
            U = torch.cat([V, -V])
        else:
            U = sample_directions(M, d, generator=gen)
        y = _quad_values(A, b, x + mu * U)
        H = zovh_hessian(U, y, mu, antithetic=antithetic)
        if normalizer is not None:  # the same sum with another normalizer, e.g. the biased 1/M
            H = H.scaled((M - 1) / normalizer)
        out[r] = H.dense()
    return out


# ---------------------------------------------------------------------------------------
# Unbiasedness and 1/sqrt(queries)
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("antithetic", [False, True])
def test_zovh_hessian_unbiased_on_quadratic(antithetic):
    # On f = 0.5 x^T A x + b^T x the smoothed Hessian is A exactly, so E H_est = A.
    # The mean of R iid replicates has per-entry standard error s_jk / sqrt(R) (s_jk the
    # sample sd). Over the d(d+1)/2 = 21 distinct entries, a 5-sigma band gives a false
    # alarm probability < 21 * 6e-7 (normal tails; R = 3000 makes the CLT accurate).
    d, M, mu, R = 6, 4, 0.3, 3000
    A = _spd(d, 3)
    b = torch.linspace(-1, 1, d, dtype=f64)
    x = torch.linspace(0.5, -0.5, d, dtype=f64)  # nonzero gradient: the hard case
    Hs = _replicates(A, b, x, M, mu, R, seed=7, antithetic=antithetic)
    mean, se = Hs.mean(0), Hs.std(0) / math.sqrt(R)
    assert bool(((mean - A).abs() <= 5 * se).all()), float(((mean - A).abs() / se).max())
    if not antithetic:
        # Power: dividing by M instead of M-1 biases by A/M; the same test must catch it.
        wrong = Hs.mean(0) * (M - 1) / M
        assert not bool(((wrong - A).abs() <= 5 * se).all())


def test_frobenius_error_falls_like_inverse_sqrt_queries():
    # H_est averages M centred terms with a 1/(M-1) normalizer, so E|H_est - A|_F^2 =
    # s^2 / (M-1) + O(M^-2): the RMS error falls like M^-1/2. With R = 200 replicates the
    # RMS at each M has a relative sd of about sqrt(kurt/(4R)) <= 0.1; over a log-range
    # ln(512/8) = 4.2 that moves the fitted slope by at most ~0.1/4.2*2 = 0.05 (2 sd).
    # Band: -0.5 +- 0.1.
    d, mu, R = 10, 0.2, 200
    A = _spd(d, 5)
    b = torch.zeros(d, dtype=f64)
    x = torch.full((d,), 0.3, dtype=f64)
    Ms = [8, 32, 128, 512]
    rms = []
    for i, M in enumerate(Ms):
        Hs = _replicates(A, b, x, M, mu, R, seed=100 + i)
        rms.append(float(((Hs - A) ** 2).sum((1, 2)).mean().sqrt()))
    slope = np.polyfit(np.log(Ms), np.log(rms), 1)[0]
    assert -0.6 <= slope <= -0.4, (slope, rms)


# ---------------------------------------------------------------------------------------
# The authors' Sherman-Morrison form
# ---------------------------------------------------------------------------------------
def test_sherman_morrison_exact_for_orthogonal_and_guarded():
    d, M, lam = 8, 3, 0.5
    gen = make_generator(2)
    U = sample_directions(M, d, generator=gen, kind="orthogonal")
    c = torch.tensor([0.3, -0.01, 2.0], dtype=f64)
    H = LowRankHessian(U, c)
    v = torch.randn(d, generator=gen, dtype=f64)
    torch.testing.assert_close(sherman_morrison_solve(H, v, lam), woodbury_solve(H, v, lam), rtol=1e-12, atol=1e-12)
    # Guard: c_0 |u_0|^2 = -lam makes the authors' denominator exactly 0 (their code would
    # return inf/nan); ours stays finite and is capped at |c_0| / (guard * lam).
    c_sing = c.clone()
    c_sing[0] = -lam / float(U[0].pow(2).sum())
    Hs = LowRankHessian(U, c_sing)
    unguarded = c_sing / (lam + c_sing * U.pow(2).sum(1))
    assert not bool(torch.isfinite(unguarded).all()) or float(unguarded.abs().max()) > 1e12
    guard = 1e-6
    cp = sherman_morrison_coefficients(Hs, lam, guard=guard)
    assert bool(torch.isfinite(cp).all())
    assert float(cp[0].abs()) == pytest.approx(abs(float(c_sing[0])) / (guard * lam), rel=1e-12)
    assert bool(torch.isfinite(sherman_morrison_solve(Hs, v, lam)).all())
    # away from the singularity the guard is inactive
    torch.testing.assert_close(cp[1:], (c_sing / (lam + c_sing * U.pow(2).sum(1)))[1:])


# ---------------------------------------------------------------------------------------
# Orthogonal directions with M > d
# ---------------------------------------------------------------------------------------
def test_orthogonal_directions_continue_buffer_and_never_loop():
    d = 6
    gen = make_generator(3)
    prev = sample_directions(4, d, generator=gen, kind="orthogonal")
    new = orthogonal_directions(2, d, previous=prev, generator=gen)
    allU = torch.cat([prev, new])
    torch.testing.assert_close(allU @ allU.T, d * torch.eye(6, dtype=f64), atol=1e-10, rtol=0)
    # buffer + k > d: a fresh orthogonal block instead of the authors' endless QR loop
    fresh = orthogonal_directions(3, d, previous=allU, generator=gen)
    torch.testing.assert_close(fresh @ fresh.T, d * torch.eye(3, dtype=f64), atol=1e-10, rtol=0)
    big = sample_directions(2 * d + 1, d, generator=gen, kind="orthogonal")  # M > d: blocks
    assert big.shape == (2 * d + 1, d)
    # ZoVH over M > d orthogonal queries is well defined
    H = zovh_hessian(big, big.sum(1) ** 2, 0.1)
    assert math.isfinite(H.frobenius_norm())


# ---------------------------------------------------------------------------------------
# Query reuse: the 1/mu scaling and unbiasedness over a QueryHistory
# ---------------------------------------------------------------------------------------
def test_reuse_scaling_has_the_one_over_mu():
    # Linear f = a^T x: y_i - ybar = mu a^T (u_i - ubar), so w_i and g = sum w_i u_i/(M-1)
    # do not depend on mu. At a huge lam, lam * d -> g. The authors' reuse variant computes
    # mu * g (missing 1/mu): it would differ by the factor mu between the two radii.
    d, K, N, lam = 20, 3, 3, 1e12
    gen = make_generator(4)
    a = torch.linspace(-1, 2, d, dtype=f64)
    x = torch.linspace(1, 0, d, dtype=f64)
    Us = [sample_directions(K, d, generator=gen) for _ in range(N + 1)]
    dirs = []
    for mu in (0.1, 0.01):
        hist = QueryHistory((N + 1) * K, d, dtype=f64, device="cpu")
        for U in Us:
            hist.append(U, (x + mu * U) @ a)
        H = zovh_hessian_reuse(hist, mu)
        assert H.rank_bound == (N + 1) * K
        step = inverse_hessian_gradient(hist.directions(), hist.values(), mu, lam)
        g = zoar_gradient(hist.directions(), hist.values(), mu)
        # the curvature term is O(|h| d / lam) ~ 1e-8 relative here
        torch.testing.assert_close(lam * step, g, rtol=1e-7, atol=1e-7)
        dirs.append(lam * step)
    torch.testing.assert_close(dirs[0], dirs[1], rtol=1e-7, atol=1e-7)


def test_reuse_gradient_unbiased_for_linear_function():
    # On-policy batches appended to a history: E g = a. Per coordinate, the mean of R
    # replicates has standard error s / sqrt(R); 5 sigma over d = 5 coordinates.
    # The missing-1/mu defect would give mu * a = 0.1 a, 10x off.
    d, K, N, mu, R = 5, 3, 2, 0.1, 2000
    gen = make_generator(5)
    a = torch.tensor([1.0, -2.0, 0.5, 3.0, 0.0], dtype=f64)
    x = torch.ones(d, dtype=f64)
    hist = QueryHistory((N + 1) * K, d, dtype=f64, device="cpu")
    gs = torch.empty(R, d, dtype=f64)
    for r in range(R):
        hist.clear()
        for _ in range(N + 1):
            U = sample_directions(K, d, generator=gen)
            hist.append(U, (x + mu * U) @ a)
        gs[r] = zovh_gradient(hist.directions(), hist.values(), mu)
    mean, se = gs.mean(0), gs.std(0) / math.sqrt(R)
    assert bool(((mean - a).abs() <= 5 * se).all())
    assert bool(((mu * mean - a).abs() > 5 * se).any())


def test_antithetic_gradient_is_central_difference():
    d, n, mu = 4, 3, 0.2
    gen = make_generator(6)
    V = sample_directions(n, d, generator=gen)
    U = torch.cat([V, -V])
    f = lambda X: (X ** 3).sum(-1)  # noqa: E731
    x = torch.tensor([0.3, -1.0, 2.0, 0.5], dtype=f64)
    y = f(x + mu * U)
    cd = (((y[:n] - y[n:]) / (2 * mu)) @ V) / n
    torch.testing.assert_close(zovh_gradient(U, y, mu, antithetic=True), cd)


# ---------------------------------------------------------------------------------------
# Bias-corrected inverse-Hessian-gradient product
# ---------------------------------------------------------------------------------------
def test_leave_one_out_identity_and_min_queries():
    d, M, mu, lam = 12, 5, 0.1, 0.3
    gen = make_generator(8)
    U = sample_directions(M, d, generator=gen)
    y = torch.randn(M, generator=gen, dtype=f64)
    w = (y - y.mean()) / mu
    # p_i is u_i^T of the gradient with query i's own term removed
    p_loo = torch.stack([U[i] @ (w[torch.arange(M) != i] @ U[torch.arange(M) != i]) / (M - 2) for i in range(M)])
    H = LowRankHessian(U, w / (mu * (M - 1)))
    cp = sherman_morrison_coefficients(H, lam)
    g = w @ U / (M - 1)
    expected = (g - (cp * p_loo) @ U) / lam
    torch.testing.assert_close(inverse_hessian_gradient(U, y, mu, lam), expected, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="M >= 3"):
        inverse_hessian_gradient(U[:2], y[:2], mu, lam)


def test_leave_one_out_prevents_step_collapse_in_high_dimension():
    # At the authors' settings (K=3, N=3 -> M=12, mu=lam=0.1) on 0.5|x|^2 in
    # high d, the plug-in p_i = u_i^T g contains w_i |u_i|^2 ~ d w_i, whose Sherman-Morrison
    # term cancels most of g: |d| / |g/lam| collapses (0.01-0.03 at d = 1e4). With the
    # leave-one-out p_i the correction is O(1/sqrt d) and the ratio stays near 1.
    d, M, mu, lam = 4000, 12, 0.1, 0.1
    gen = make_generator(9)
    x = torch.randn(d, generator=gen, dtype=f64)
    ratios = {True: [], False: []}
    for _ in range(5):
        U = sample_directions(M, d, generator=gen)
        y = 0.5 * (x + mu * U).pow(2).sum(1)
        g = zoar_gradient(U, y, mu)
        for corr in (True, False):
            step = inverse_hessian_gradient(U, y, mu, lam, correction=corr)
            ratios[corr].append(float(step.norm() / (g / lam).norm()))
    assert min(ratios[True]) > 0.5, ratios
    assert max(ratios[False]) < 0.2, ratios


def test_unbiased_and_inverse_sqrt_at_large_d():
    # d = 2000, never dense: (1) E[v^T H_est w] = v^T A w for fixed v, w (the mean of R iid
    # bilinear forms, 5-sigma band from their sample sd); (2) the Frobenius error, via the
    # Gram identities, falls like M^-1/2: RMS over R replicates at M = 8 and 128 must have a
    # ratio sqrt(127/7) = 4.26 within +-25% (relative sd of each RMS ~ sqrt(kurt/(4R)) <= 0.1
    # at R = 40 since the squared error of a 2000 x 2000 estimate is a sum of many terms).
    d, mu = 2000, 0.1
    gen = make_generator(21)
    lam = torch.linspace(1, 3, d, dtype=f64)  # A = diag(lam): matvec and Frobenius cheap
    A_op = _DiagonalOperator(lam)
    x = torch.full((d,), 0.05, dtype=f64)
    f = lambda X: 0.5 * (X * X * lam).sum(-1)  # noqa: E731
    v = torch.randn(d, generator=gen, dtype=f64)
    w = torch.randn(d, generator=gen, dtype=f64)
    R = 1500
    forms = torch.empty(R, dtype=f64)
    for r in range(R):
        U = sample_directions(4, d, generator=gen)
        forms[r] = v @ zovh_hessian(U, f(x + mu * U), mu).matvec(w)
    target = float(v @ (lam * w))
    assert abs(float(forms.mean()) - target) <= 5 * float(forms.std()) / math.sqrt(R)
    rms = {}
    for M in (8, 128):
        errs = [zovh_hessian(U, f(x + mu * U), mu).frobenius_error(A_op) ** 2
                for U in (sample_directions(M, d, generator=gen) for _ in range(40))]
        rms[M] = math.sqrt(sum(errs) / len(errs))
    ratio = rms[8] / rms[128]
    assert 0.75 * math.sqrt(127 / 7) <= ratio <= 1.25 * math.sqrt(127 / 7), ratio
