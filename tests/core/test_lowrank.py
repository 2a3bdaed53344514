"""Low-rank plus diagonal algebra (zo_scipy.core.lowrank) against dense computations.

Deterministic checks compare with dense numpy/torch results on small random matrices;
their tolerances are float64 round-off (eps = 2.2e-16) times the conditioning of the
problem, with a wide margin. The sampling test is statistical, with a fixed seed and a
band derived from the Wishart standard error.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from zo_scipy.core.directions import make_generator
from zo_scipy.core.lowrank import (
    LowRankHessian, compress, empty_low_rank, factor_precision, positive_definite, spectral_form, thin_qr,
    woodbury_solve,
)

f64 = torch.float64


def _spd(d: int, seed: int, lo: float = 1.0, hi: float = 4.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    Q, _ = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=f64))
    return Q @ torch.diag(torch.linspace(lo, hi, d, dtype=f64)) @ Q.T


@dataclass
class _Operator:
    """A matrix known only through products (the SymmetricOperatorLike protocol)."""

    matmat: Callable[[torch.Tensor], torch.Tensor]
    diagonal: torch.Tensor
    fro2: float


def _random_low_rank(M: int, d: int, seed: int, *, coef_sign: str = "any", diag=0.0) -> LowRankHessian:
    gen = make_generator(seed)
    U = torch.randn(M, d, generator=gen, dtype=f64)
    c = torch.randn(M, generator=gen, dtype=f64)
    if coef_sign == "nonneg":
        c = c.abs()
    return LowRankHessian(U, c, diag)


def test_low_rank_algebra_matches_dense():
    gen = make_generator(1)
    d, M = 9, 4
    U = torch.randn(M, d, generator=gen, dtype=f64)
    c = torch.randn(M, generator=gen, dtype=f64)
    A = _spd(d, 2)
    for diag in (0.0, -0.4, torch.rand(d, generator=gen, dtype=f64)):
        H = LowRankHessian(U, c, diag)
        Hd = H.dense()
        v = torch.randn(d, generator=gen, dtype=f64)
        V = torch.randn(d, 3, generator=gen, dtype=f64)
        torch.testing.assert_close(H.matvec(v), Hd @ v, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(H.matvec(V), Hd @ V, rtol=1e-12, atol=1e-12)
        assert H.frobenius_norm() == pytest.approx(float(Hd.norm()), rel=1e-12)
        assert H.trace() == pytest.approx(float(Hd.trace()), rel=1e-12, abs=1e-12)
        assert H.frobenius_error(A) == pytest.approx(float((Hd - A).norm()), rel=1e-10)
        op = _Operator(matmat=lambda X: A @ X, diagonal=A.diagonal(), fro2=float(A.pow(2).sum()))
        assert H.frobenius_error(op) == pytest.approx(float((Hd - A).norm()), rel=1e-10)
        other = LowRankHessian(U[:2] + 1, c[:2], 0.3)
        assert H.frobenius_error(other) == pytest.approx(float((Hd - other.dense()).norm()), rel=1e-10)
    assert empty_low_rank(5).dense().abs().max() == 0


def test_thin_qr_is_torch_qr():
    A = torch.randn(30, 7, generator=make_generator(2), dtype=f64)
    Q, R = thin_qr(A)
    Q0, R0 = torch.linalg.qr(A)
    assert torch.equal(Q, Q0) and torch.equal(R, R0)


@pytest.mark.parametrize("M, d", [(4, 9), (7, 5)])  # rank M, and more rows than d
def test_spectral_form_and_compress(M, d):
    H = _random_low_rank(M, d, 3, diag=0.2)
    S = spectral_form(H)
    k = min(M, d)
    assert S.rank_bound == k
    torch.testing.assert_close(S.U @ S.U.T, torch.eye(k, dtype=f64), rtol=0, atol=1e-12)
    torch.testing.assert_close(S.dense(), H.dense(), rtol=1e-12, atol=1e-12)
    # compress: exact at the rank, the Eckart-Young truncation below it
    assert compress(H, M) is H
    torch.testing.assert_close(compress(H, k).dense(), H.dense(), rtol=1e-12, atol=1e-12)
    low = (H.U.T * H.coef) @ H.U
    evals, vecs = torch.linalg.eigh(low)
    top = evals.abs().argsort(descending=True)[:2]
    best = (vecs[:, top] * evals[top]) @ vecs[:, top].T
    C = compress(H, 2)
    assert C.rank_bound == 2
    torch.testing.assert_close(C.dense() - 0.2 * torch.eye(d, dtype=f64), best, rtol=1e-10, atol=1e-10)
    # a dense tensor is eigendecomposed directly
    D = spectral_form(low)
    torch.testing.assert_close(D.dense(), low, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="max_rank"):
        compress(H, 0)


def test_positive_definite_clip_abs_damping():
    d, M = 10, 4
    gen = make_generator(10)
    U = torch.randn(M, d, generator=gen, dtype=f64)
    c = torch.tensor([1.0, -2.0, 0.5, -0.1], dtype=f64)
    H = LowRankHessian(U, c)
    ev = torch.linalg.eigvalsh(H.dense())
    nz = ev[ev.abs() > 1e-9]
    clip = torch.linalg.eigvalsh(positive_definite(H, method="clip").dense())
    torch.testing.assert_close(torch.sort(clip[clip.abs() > 1e-9])[0], torch.sort(nz[nz > 0])[0])
    ab = torch.linalg.eigvalsh(positive_definite(H, method="abs").dense())
    torch.testing.assert_close(torch.sort(ab[ab.abs() > 1e-9])[0], torch.sort(nz.abs())[0])
    damped = positive_definite(H, damping=0.05)
    assert float(torch.linalg.eigvalsh(damped.dense()).min()) >= 0.05 - 1e-12
    # the dense path gives the same matrix
    torch.testing.assert_close(positive_definite(H.dense(), method="abs").dense(),
                               positive_definite(H, method="abs").dense(), rtol=1e-10, atol=1e-10)
    # a PSD estimate is left unchanged by clipping
    Hp = LowRankHessian(U, c.abs())
    torch.testing.assert_close(positive_definite(Hp).dense(), Hp.dense(), rtol=1e-10, atol=1e-10)
    assert positive_definite(empty_low_rank(d), damping=0.5).diag == 0.5
    with pytest.raises(ValueError, match="method"):
        positive_definite(H, method="nope")  # type: ignore[arg-type]  # the error path under test


def test_woodbury_matches_numpy_solve_including_zero_weights():
    d, M, lam = 7, 5, 0.8
    H = _random_low_rank(M, d, 11)
    H.coef[2] = 0.0  # a direction without curvature: Woodbury must not invert c
    Hd = H.dense().numpy()
    gen = make_generator(12)
    for v in (torch.randn(d, generator=gen, dtype=f64), torch.randn(d, 3, generator=gen, dtype=f64)):
        ref = np.linalg.solve(Hd + lam * np.eye(d), v.numpy())
        np.testing.assert_allclose(woodbury_solve(H, v, lam).numpy(), ref, rtol=1e-10,
                                   atol=1e-10 * np.abs(ref).max())
    # with a diagonal part (the Levenberg-damped PD surrogate) as well, and lam = 0
    P = positive_definite(H, damping=0.25)
    v = torch.randn(d, generator=gen, dtype=f64)
    for shift in (lam, 0.0):
        ref = np.linalg.solve(P.dense().numpy() + shift * np.eye(d), v.numpy())
        np.testing.assert_allclose(woodbury_solve(P, v, shift).numpy(), ref, rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match="nonzero"):
        woodbury_solve(H, v, 0.0)


@pytest.mark.parametrize("M, d", [(3, 8), (6, 4), (0, 5)])
def test_precision_factor_matches_dense(M, d):
    # P = D + U^T diag(c) U with D > 0 and c >= 0 (one weight exactly 0). Its condition
    # number is below ~1e3 here, so float64 round-off stays below ~1e-12 relative.
    gen = make_generator(20 + M)
    D = 0.5 + torch.rand(d, generator=gen, dtype=f64)
    H = _random_low_rank(M, d, 21, coef_sign="nonneg", diag=D)
    if M:
        H.coef[0] = 0.0
    P = H.dense()
    F = factor_precision(H)
    assert F.logdet() == pytest.approx(float(torch.linalg.slogdet(P)[1]), rel=1e-10, abs=1e-10)
    v = torch.randn(d, generator=gen, dtype=f64)
    V = torch.randn(d, 3, generator=gen, dtype=f64)
    torch.testing.assert_close(F.solve(v), torch.linalg.solve(P, v), rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(F.solve(V), torch.linalg.solve(P, V), rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(F.inverse_diagonal(), torch.linalg.inv(P).diagonal(), rtol=1e-10, atol=1e-12)
    # a scalar diagonal (an isotropic prior) works the same way
    iso = LowRankHessian(H.U, H.coef, 2.0)
    assert factor_precision(iso).logdet() == pytest.approx(float(torch.linalg.slogdet(iso.dense())[1]), rel=1e-10)


def test_precision_factor_rejects_non_positive_definite_forms():
    H = _random_low_rank(3, 5, 30, diag=1.0)  # some weights negative
    with pytest.raises(ValueError, match="non-negative"):
        factor_precision(H)
    with pytest.raises(ValueError, match="positive finite diagonal"):
        factor_precision(LowRankHessian(H.U, H.coef.abs(), 0.0))
    with pytest.raises(ValueError, match="num_samples"):
        factor_precision(LowRankHessian(H.U, H.coef.abs(), 1.0)).sample(-1, generator=make_generator(0))


def test_samples_have_the_inverse_precision_as_covariance():
    # N samples x_s ~ N(0, S) with S = P^-1: the second moment (1/N) sum x x^T (the mean is
    # known to be 0) is Wishart(S, N)/N, with per-entry sd sqrt((S_jk^2 + S_jj S_kk) / N).
    # A 5-sigma band over the d(d+1)/2 = 15 distinct entries has false-alarm probability
    # < 15 * 6e-7 (N = 20000: the CLT is accurate); the same for the sample mean, sd
    # sqrt(S_jj / N). Power: a factor 1.1 on the covariance is 10 sigma on each diagonal
    # entry (sd S_jj sqrt(2/N) = 0.01 S_jj) and must fail the same test.
    d, N = 5, 20_000
    gen = make_generator(40)
    H = LowRankHessian(torch.randn(2, d, generator=gen, dtype=f64), torch.tensor([3.0, 0.5], dtype=f64),
                       0.5 + torch.rand(d, generator=gen, dtype=f64))
    S = torch.linalg.inv(H.dense())
    state = torch.get_rng_state()
    X = factor_precision(H).sample(N, generator=make_generator(41))
    assert torch.equal(torch.get_rng_state(), state)  # the global RNG is never used
    assert X.shape == (N, d)
    second = X.T @ X / N
    se = ((S * S + torch.outer(S.diagonal(), S.diagonal())) / N).sqrt()
    assert bool(((second - S).abs() <= 5 * se).all()), float(((second - S).abs() / se).max())
    assert bool((X.mean(0).abs() <= 5 * (S.diagonal() / N).sqrt()).all())
    assert not bool(((second - 1.1 * S).abs() <= 5 * se).all())
    # same generator seed, same samples
    again = factor_precision(H).sample(N, generator=make_generator(41))
    assert torch.equal(X, again)
    assert math.isfinite(float(X.abs().max()))
