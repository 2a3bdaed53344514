"""High dimension, small budget: the curvature outside the explored directions is assumed, and the
posterior says so (its evidence's standard error covers the queries' noise only)."""
from __future__ import annotations

import math
import re

import numpy as np

import zo_scipy.uq as uq


class LowRank:
    """0.5 sum_j c_j (w_j . x)^2 with orthonormal w_j (vectorized over rows)."""

    def __init__(self, d: int, rank: int, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.W = np.linalg.qr(rng.normal(size=(d, rank)))[0].T
        self.c = np.logspace(0, 3, rank)

    def __call__(self, X):
        Z = np.atleast_2d(X) @ self.W.T
        return 0.5 * (Z ** 2 * self.c).sum(1)


def test_unexplored_directions_are_flagged_where_the_log_determinant_is_wrong():
    d, lam = 2000, 1.0
    f = LowRank(d, rank=8)
    post = uq.laplace(f, np.zeros(d), prior_precision=lam, find_mode=False, budget=41, vectorized=True,
                      diagonal="none", mu=1.0, seed=0)
    exact = float(np.log1p(f.c / lam).sum())  # log det(lam I + H) - d log lam
    got = post.factor.logdet() - d * math.log(lam)
    # 20 near-orthogonal random pairs hold about sum_k log(1 + s_k) < sum_k s_k ~ 20 tr(H)/d = 15.9 of 28.9 nats
    assert exact - got > 5.0
    hits = [m for m in post.messages if "assumed rather than measured" in m]
    assert len(hits) == 1
    explored = int(re.search(r"explored (\d+) of d = 2000", hits[0]).group(1))
    assert explored == post._queries.rows.shape[0] < d
    assert "stated prior precision" in hits[0]


def test_no_flag_once_every_direction_is_measured():
    f = LowRank(4, rank=2)
    post = uq.laplace(f, np.zeros(4), prior_precision=1.0, find_mode=False, vectorized=True, seed=0)
    assert not any("assumed rather than measured" in m for m in post.messages)
    exact = float(np.log1p(f.c).sum())
    assert abs(post.factor.logdet() - exact) < 1e-6  # the default budget fits a quadratic exactly
