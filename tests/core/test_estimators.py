"""Statistical properties of the ZoAR gradient estimator (docs/zoar.md).

All tests use fixed seeds. Tolerances come from the estimator's own sampling
distribution: the mean of R independent estimates has covariance Sigma / R, so
Hotelling's T^2 = R e^T Sigma^-1 e is ~ chi^2_d under unbiasedness (R >> d).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import chi2

from zo_scipy.core import make_generator, sample_directions, two_point_gradient, zoar_gradient

R = 4000  # replicates


def _quadratic_torch(A: np.ndarray, b: np.ndarray):
    At, bt = torch.as_tensor(A), torch.as_tensor(b)
    return lambda X: 0.5 * torch.einsum("mi,ij,mj->m", X, At, X) + X @ bt


def _replicates(f, x, mu, K, *, seed, estimator="zoar", normalization="unbiased", noise=0.0):
    d = x.numel()
    gen = make_generator(seed)
    out = torch.empty((R, d), dtype=torch.float64)
    f0 = f(x[None])[0]
    for r in range(R):
        U = sample_directions(K, d, generator=gen)
        y = f(x + mu * U)
        if noise:
            y = y + noise * torch.randn(K, generator=gen, dtype=torch.float64)
        if estimator == "zoar":
            out[r] = zoar_gradient(U, y, mu, normalization=normalization)
        else:
            out[r] = two_point_gradient(U, y, f0, mu)
    return out


def _hotelling(G: torch.Tensor, truth: torch.Tensor) -> float:
    e = (G.mean(0) - truth).numpy()
    S = np.cov(G.numpy(), rowvar=False)
    return float(len(G) * e @ np.linalg.solve(S, e))


def test_zoar_gradient_unbiased_on_quadratic(quadratic):
    # For a quadratic, grad F_mu = grad f = A x + b exactly (Gaussian smoothing adds a constant).
    A, b = quadratic
    f = _quadratic_torch(A, b)
    x = torch.linspace(-1, 1, len(b), dtype=torch.float64)
    truth = torch.as_tensor(A @ x.numpy() + b)
    G = _replicates(f, x, mu=0.3, K=3, seed=0)
    assert _hotelling(G, truth) < chi2.ppf(0.999, len(b))


def test_authors_normalization_is_biased_and_detected(quadratic):
    # Dividing by M instead of M-1 gives E g = (M-1)/M grad = 2/3 grad at M = 3: the same
    # test statistic must reject it (this is what makes the test above able to fail).
    A, b = quadratic
    f = _quadratic_torch(A, b)
    x = torch.linspace(-1, 1, len(b), dtype=torch.float64)
    truth = torch.as_tensor(A @ x.numpy() + b)
    G = _replicates(f, x, mu=0.3, K=3, seed=0, normalization="authors")
    assert _hotelling(G, truth) > 10 * chi2.ppf(0.999, len(b))
    assert torch.allclose(G.mean(0), 2 / 3 * truth, atol=0.15 * float(truth.norm()))


def test_averaged_baseline_lowers_variance_versus_fx_baseline():
    # f = (a/2)|x|^2, d = 10, a = 10, mu = 0.2, gradient G = a x with |G| = 1.
    # y - f(x) = mu G.u + c mu |u|^2 with c = mu a / 2 = 1. For the f(x) baseline with K
    # queries, MSE = [(d+1)|G|^2 + c^2 d (d+2)(d+4)] / K = (11 + 1680) / K; the mean baseline
    # removes the constant c d and leaves only c (|u|^2 - d) (variance 2d), so
    # MSE ~ [(d+1)|G|^2 + ~2 c^2 d (d+2)] / K ~ (11 + 240) / K: a ratio near 0.15.
    # Even with the f(x) baseline given f(x) for free (K + 1 evaluations vs K), the ratio must
    # stay below 0.5, far from 1 given R = 4000 replicates (relative sd of each MSE ~ 5 %).
    d, a, mu, K = 10, 10.0, 0.2, 10
    f = lambda X: 0.5 * a * (X**2).sum(1)  # noqa: E731
    x = torch.zeros(d, dtype=torch.float64)
    x[0] = 1.0 / a
    truth = a * x
    mse_mean = ((_replicates(f, x, mu, K, seed=1) - truth) ** 2).sum(1).mean()
    G_fx = _replicates(f, x, mu, K, seed=1, estimator="fx")
    mse_fx = ((G_fx - truth) ** 2).sum(1).mean()
    assert float(mse_fx) == pytest.approx((11 + 1680) / K, rel=0.15)
    assert float(mse_mean / mse_fx) < 0.5
    assert _hotelling(G_fx, truth) < chi2.ppf(0.999, d)  # the f(x) baseline is unbiased too


def test_reuse_at_a_fixed_iterate_is_on_policy_with_more_queries(quadratic):
    # While the iterate does not move, N reused batches of K are exactly M = (N+1) K fresh
    # on-policy queries: still unbiased, and the variance falls like 1/M (ratio K/M = 1/5
    # here, up to the small (M-1) correction), so 0.35 bounds it with margin for R = 4000.
    from zo_scipy.core import QueryHistory

    A, b = quadratic
    f = _quadratic_torch(A, b)
    d = len(b)
    x = torch.linspace(-1, 1, d, dtype=torch.float64)
    truth = torch.as_tensor(A @ x.numpy() + b)
    mu, K, N = 0.3, 3, 4
    gen = make_generator(3)
    hist = QueryHistory((N + 1) * K, d, dtype=torch.float64, device="cpu")
    G_reuse, G_fresh = [], []
    for _ in range(R):
        U = sample_directions(K, d, generator=gen)
        y = f(x + mu * U)
        hist.append(U, y)
        G_fresh.append(zoar_gradient(U, y, mu))
        G_reuse.append(zoar_gradient(hist.directions(), hist.values(), mu))
    Gr, Gf = torch.stack(G_reuse[N:]), torch.stack(G_fresh[N:])
    # successive reuse estimates overlap (correlated), so test unbiasedness on every 5th one
    assert _hotelling(Gr[:: N + 1], truth) < chi2.ppf(0.999, d)
    ratio = ((Gr - truth) ** 2).sum(1).mean() / ((Gf - truth) ** 2).sum(1).mean()
    assert 0.1 < float(ratio) < 0.35


def test_stale_queries_are_used_as_stored():
    # Off-policy reuse: values from an old iterate are not re-evaluated, so after the iterate
    # moves by D >> mu a buffer of stale pairs estimates the gradient at the OLD point.
    d, mu, K = 3, 0.1, 4000
    f = lambda X: 0.5 * (X**2).sum(1)  # noqa: E731
    gen = make_generator(4)
    old = torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64)
    U = sample_directions(K, d, generator=gen)
    g = zoar_gradient(U, f(old + mu * U), mu)
    # sd of each coordinate ~ sqrt((d+1)|grad|^2 / K) = 0.03: 0.2 is > 6 sd
    assert torch.allclose(g, old, atol=0.2)


def test_needs_two_values():
    with pytest.raises(ValueError, match="at least 2 queries"):
        zoar_gradient(torch.ones(1, 3, dtype=torch.float64), torch.ones(1, dtype=torch.float64), 0.1)
