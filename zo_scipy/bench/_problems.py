r"""Benchmark problems: noise-free :math:`f`, start, box, known optimum, noise model.

Besides BoTorch's synthetic functions (through
:class:`zo_scipy.integrations.botorch.BoTorchObjective`), two classics whose
structure matters here:

- the papers' quadratic :math:`f(x) = \tfrac12 \|x\|^2`;
- a rotated ellipsoid :math:`f(x) = \sum_i 10^{6 (i-1)/(d-1)} (R x)_i^2` (condition
  number :math:`10^6`, non-separable). A dense random rotation costs
  :math:`O(d^2)` memory, impossible at :math:`d = 10^6`, so
  :math:`R x = \mathrm{DCT}(s \odot x_{\pi})`: a fixed random permutation
  :math:`\pi`, random signs :math:`s` and the orthonormal DCT-II — orthogonal,
  dense in effect (every output mixes every input), :math:`O(d \log d)`.

Noise (observed value only; the harness records the true :math:`f`):
additive :math:`y = f + \sigma \varepsilon` with :math:`\sigma` = ``noise_level``
times :math:`|f(x_0)|` at the seed-0 start, or multiplicative
:math:`y = f (1 + \sigma \varepsilon)`, :math:`\varepsilon \sim N(0,1)`.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Problem:
    """One benchmark problem. ``true_batch`` maps ``(n, d)`` to ``(n,)`` noise-free values."""

    name: str
    d: int
    group: str
    budget: int
    true_batch: Callable[[np.ndarray], np.ndarray]
    lower: np.ndarray | None = None
    upper: np.ndarray | None = None
    fopt: float | None = None
    noise: str | None = None          # None | "additive" | "multiplicative"
    noise_level: float = 0.0
    start: str = "normal"             # "normal": N(0, I); "uniform": uniform in the box
    sigma: float = field(default=0.0, init=False)  # absolute additive sigma, set by prepare()

    @property
    def label(self) -> str:
        noise = "" if self.noise is None else f", {self.noise} noise {self.noise_level:g}"
        return f"{self.name} d={self.d}{noise}"

    def x0(self, seed: int) -> np.ndarray:
        """Seeded start (the same for every method at that seed)."""
        rng = np.random.default_rng([seed, 7919])
        if self.start == "uniform":
            assert self.lower is not None and self.upper is not None
            return rng.uniform(self.lower, self.upper)
        return rng.standard_normal(self.d)

    def prepare(self) -> Problem:
        """Fix the absolute additive noise level from the seed-0 start."""
        if self.noise == "additive":
            self.sigma = self.noise_level * abs(float(self.true_batch(self.x0(0)[None])[0]))
        return self

    def observe(self, values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Observed values from true ones (draws from ``rng`` only when noisy)."""
        if self.noise is None:
            return values
        eps = rng.standard_normal(values.shape)
        if self.noise == "additive":
            return values + self.sigma * eps
        return values * (1.0 + self.noise_level * eps)


def quadratic(X: np.ndarray) -> np.ndarray:
    r""":math:`\tfrac12 \|x\|^2` per row."""
    return 0.5 * np.einsum("ij,ij->i", X, X)


class RotatedEllipsoid:
    r""":math:`\sum_i 10^{6(i-1)/(d-1)} (R x)_i^2`, :math:`R x = \mathrm{DCT}(s \odot x_\pi)` (fixed seed)."""

    def __init__(self, d: int, seed: int = 12345):
        rng = np.random.default_rng(seed)
        self.perm = rng.permutation(d)
        self.signs = rng.choice([-1.0, 1.0], size=d)
        self.weights = 10.0 ** (6.0 * np.arange(d) / max(d - 1, 1))

    def __call__(self, X: np.ndarray) -> np.ndarray:
        from scipy.fft import dct

        Z = dct(X[:, self.perm] * self.signs, type=2, norm="ortho", axis=-1)
        return np.einsum("ij,ij,j->i", Z, Z, self.weights)


def botorch_problem(name: str, d: int, **kw: Any) -> Problem:
    """A :class:`Problem` from a BoTorch synthetic function (through the integration adapter)."""
    from zo_scipy.integrations.botorch import BoTorchObjective

    obj = BoTorchObjective(name, dim=d)
    bounded = kw.pop("bounded", False)
    return Problem(name=name, d=d, true_batch=obj.true_batch, fopt=obj.optimal_value,
                   lower=obj.lower if bounded else None, upper=obj.upper if bounded else None,
                   start="uniform" if bounded else "normal", **kw)


def make(name: str, d: int, *, group: str, budget: int, noise: str | None = None, noise_level: float = 0.0,
         bounded: bool = False) -> Problem:
    """Build a problem by name: ``quadratic``, ``ellipsoid`` (rotated), or any BoTorch synthetic function name (``Levy``, ``Ackley``, ``Rosenbrock``, ...)."""
    kw: dict[str, Any] = dict(group=group, budget=budget, noise=noise, noise_level=noise_level)
    if name == "quadratic":
        p = Problem(name="quadratic", d=d, true_batch=quadratic, fopt=0.0, **kw)
    elif name == "ellipsoid":
        p = Problem(name="rot-ellipsoid", d=d, true_batch=RotatedEllipsoid(d), fopt=0.0, **kw)
    else:
        p = botorch_problem(name, d, bounded=bounded, **kw)
    if p.d != d or not math.isfinite(float(p.true_batch(p.x0(0)[None])[0])):
        raise ValueError(f"problem {name} d={d}: bad construction")
    return p.prepare()
