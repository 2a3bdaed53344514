"""Never an invalid covariance: a sweep over budgets, mu, seeds, dtypes, estimators and targets
(indefinite, ill-conditioned, noisy) with 0 failed factorizations and 0 negative variances."""
from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import torch

import zo_scipy.uq as uq


def _target(kind: str, d: int, rng: np.random.Generator):
    Q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    if kind == "indefinite":
        ev = np.linspace(-1.0, 3.0, d)
    elif kind == "ill":
        ev = np.logspace(-6, 4, d)
    else:
        ev = np.linspace(0.5, 2.0, d)
    A = Q @ np.diag(ev) @ Q.T
    noise = 1e-2 if kind == "noisy" else 0.0
    nrng = np.random.default_rng(int(rng.integers(1 << 30)))

    def f(x):
        return 0.5 * x @ A @ x + (noise * nrng.normal() if noise else 0.0)

    return f


def test_pd_sweep_has_no_failures():
    rng = np.random.default_rng(2024)
    failures: list[tuple[Any, ...]] = []
    cases = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for i in range(48):
            d = int(rng.integers(2, 9))
            kind = ["indefinite", "ill", "noisy", "pd"][i % 4]
            f = _target(kind, d, rng)
            budget = int(rng.integers(7, 120))
            mu = float(10 ** rng.uniform(-4, 0.5))
            dtype = ["float64", "float32"][i % 2]
            est: Any = ["regression", "zovh"][(i // 2) % 2]
            diag: Any = ["auto", "isotropic", "none", "coordinate"][(i // 4) % 4]
            if diag == "coordinate" and budget < 4 * d + 8:
                diag = "auto"
            alpha = None if i % 3 == 0 else float(10 ** rng.uniform(-3, 1))
            cases += 1
            try:
                post = uq.laplace(f, rng.normal(size=d) * 0.1, find_mode=False, budget=budget, mu=mu, seed=i,
                                  dtype=dtype, estimator=est, diagonal=diag, prior_precision=alpha)
                F = post.factor
                var = post.var()
                ok: bool = (bool((F.d_inv_sqrt > 0).all()) and bool((F.spectrum > 0).all())
                      and bool(np.all(np.isfinite(var))) and bool(np.all(var > 0)) and math.isfinite(F.logdet())
                      and bool(np.all(np.isfinite(post.sample(4, i)))))
                if dtype == "float64":
                    ok = ok and float(np.linalg.eigvalsh(post.cov_dense()).min()) > 0
                if not ok:
                    failures.append((i, kind, d, budget, mu, dtype, est, diag, alpha))
            except Exception as exc:  # any exception is a failure of the sweep
                failures.append((i, kind, d, budget, mu, dtype, est, diag, alpha, repr(exc)))
    assert cases == 48 and failures == []


def test_repair_is_reported_for_an_indefinite_target():
    A = np.diag([2.0, -1.0, 0.5])
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        post = uq.laplace(lambda x: 0.5 * x @ A @ x, np.zeros(3), find_mode=False, seed=0)
    assert not post.is_minimum and post.repair.repaired
    assert any("not positive definite" in str(w.message) for w in rec)
    assert np.all(post.var() > 0) and torch.isfinite(torch.tensor(post.factor.logdet()))
