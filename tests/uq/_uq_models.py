"""Closed-form linear-Gaussian models for the uq tests (Bishop, PRML sec. 3.5)."""
from __future__ import annotations

import numpy as np


class LinearGaussian:
    """y = X w + noise (precision beta), prior w ~ N(0, alpha^-1 I); fun = the negative log likelihood."""

    def __init__(self, n: int = 40, d: int = 4, beta: float = 4.0, seed: int = 0, noise_sd: float = 0.0) -> None:
        rng = np.random.default_rng(seed)
        self.X = rng.normal(size=(n, d))
        self.y = self.X @ rng.normal(size=d) + rng.normal(size=n) / np.sqrt(beta)
        self.beta, self.n, self.d = beta, n, d
        self.noise_sd = noise_sd
        self._rng = np.random.default_rng(seed + 1000)
        self.calls = 0

    def __call__(self, w: np.ndarray) -> float:
        self.calls += 1
        r = self.y - self.X @ w
        val = 0.5 * self.beta * r @ r - 0.5 * self.n * np.log(self.beta / (2 * np.pi))
        return float(val + (self.noise_sd * self._rng.normal() if self.noise_sd else 0.0))

    def exact(self, alpha: float) -> tuple[np.ndarray, np.ndarray, float]:
        A = alpha * np.eye(self.d) + self.beta * self.X.T @ self.X
        S = np.linalg.inv(A)
        m = self.beta * S @ self.X.T @ self.y
        logz = (0.5 * self.d * np.log(alpha) + 0.5 * self.n * np.log(self.beta)
                - 0.5 * self.beta * np.sum((self.y - self.X @ m) ** 2) - 0.5 * alpha * m @ m
                - 0.5 * np.linalg.slogdet(A)[1] - 0.5 * self.n * np.log(2 * np.pi))
        return m, S, float(logz)
