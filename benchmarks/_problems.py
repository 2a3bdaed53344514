r"""The one problem registry of the benchmarks: every suite takes its problems from here.

:func:`make` builds a :class:`Problem` (noise-free :math:`f`, start, box, known
optimum, noise model) by name. Besides BoTorch's synthetic functions (through
:class:`benchmarks.botorch_problems.BoTorchObjective`), the registry holds

- the ZoAR paper's four synthetic functions, ``ackley``, ``levy``, ``rosenbrock``
  and ``quadratic`` (lowercase names), written from their formulas in torch so
  that they evaluate in the input's dtype (the paper runs float32), with the
  authors' start (``start="authors"``);
- :func:`shifted_ellipsoid`, the Optuna suite's fixed rotated, shifted ellipsoid;
- problems with analytic gradient and Hessian for the Hessian-error study
  (:data:`DERIVATIVE_PROBLEMS`) and the smooth test problems of the SciPy solver
  studies (:func:`solver_problem`);

and two classics whose structure matters here:

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
    """One benchmark problem. ``true_batch`` maps ``(n, d)`` to ``(n,)`` noise-free values;
    ``torch_batch``, where set, does the same for a torch tensor in the tensor's dtype."""

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
    start: str = "normal"             # "normal" N(0, I); "uniform" in the box; "authors"; "dev"; "origin"
    torch_batch: Callable[[Any], Any] | None = None
    sigma: float = field(default=0.0, init=False)  # absolute additive sigma, set by prepare()

    @property
    def label(self) -> str:
        noise = "" if self.noise is None else f", {self.noise} noise {self.noise_level:g}"
        return f"{self.name} d={self.d}{noise}"

    def x0(self, seed: int) -> np.ndarray:
        """Seeded start (the same for every method at that seed).

        ``"authors"`` is the ZoAR authors' draw (:func:`authors_x0`); ``"dev"`` is
        ``default_rng(seed).standard_normal(d)``, the stream of the tuning runs, apart
        from every reporting start.
        """
        if self.start == "authors":
            return authors_x0(seed, self.d)
        if self.start == "dev":
            return np.random.default_rng(seed).standard_normal(self.d)
        if self.start == "origin":
            return np.zeros(self.d)
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


# -- the ZoAR paper's synthetic functions (standard formulas, batched, in X's dtype) -------------
def ackley_t(X: Any) -> Any:
    r""":math:`-20 e^{-0.2\sqrt{|x|^2/d}} - e^{\sum_i \cos(2\pi x_i)/d} + 20 + e`."""
    import torch

    d = X.shape[-1]
    r = torch.sqrt((X * X).sum(-1) / d)
    return -20.0 * torch.exp(-0.2 * r) - torch.exp(torch.cos(2 * math.pi * X).sum(-1) / d) + 20.0 + math.e


def levy_t(X: Any) -> Any:
    r"""Levy with :math:`w = 1 + (x - 1)/4`: :math:`\sin^2(\pi w_1) + \sum_{i<d} (w_i-1)^2
    [1 + 10\sin^2(\pi w_i + 1)] + (w_d-1)^2 [1 + \sin^2(2\pi w_d)]`."""
    import torch

    W = 1 + (X - 1) / 4
    head = torch.sin(math.pi * W[:, 0]) ** 2
    mid = ((W[:, :-1] - 1) ** 2 * (1 + 10 * torch.sin(math.pi * W[:, :-1] + 1) ** 2)).sum(-1)
    tail = (W[:, -1] - 1) ** 2 * (1 + torch.sin(2 * math.pi * W[:, -1]) ** 2)
    return head + mid + tail


def rosenbrock_t(X: Any, alpha: float = 100.0) -> Any:
    r""":math:`\sum_{i<d} \alpha (x_{i+1} - x_i^2)^2 + (1 - x_i)^2`."""
    return (alpha * (X[..., 1:] - X[..., :-1] ** 2) ** 2 + (1 - X[..., :-1]) ** 2).sum(-1)


def quadratic_t(X: Any) -> Any:
    r""":math:`\tfrac12 |x|^2`."""
    return 0.5 * (X * X).sum(-1)


#: The ZoAR paper's functions by their lowercase registry names.
PAPER_FUNCTIONS: dict[str, Callable[[Any], Any]] = {
    "ackley": ackley_t, "levy": levy_t, "rosenbrock": rosenbrock_t, "quadratic": quadratic_t,
}


def authors_x0(seed: int, d: int) -> np.ndarray:
    """The ZoAR authors' start: ``torch.manual_seed(seed); torch.randn(d)`` (float32), drawn
    on a local generator (same stream as the global one after ``manual_seed``), as float64."""
    import torch

    gen = torch.Generator().manual_seed(int(seed))
    return torch.randn(d, generator=gen, dtype=torch.float32).double().numpy()


def _numpy_of(fn: Callable[[Any], Any]) -> Callable[[np.ndarray], np.ndarray]:
    def true_batch(X: np.ndarray) -> np.ndarray:
        import torch

        return fn(torch.as_tensor(np.asarray(X, dtype=np.float64))).numpy()
    return true_batch


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
    from .botorch_problems import BoTorchObjective

    obj = BoTorchObjective(name, dim=d)
    bounded = kw.pop("bounded", False)
    return Problem(name=name, d=d, true_batch=obj.true_batch, fopt=obj.optimal_value,
                   lower=obj.lower if bounded else None, upper=obj.upper if bounded else None,
                   start="uniform" if bounded else "normal", **kw)


def make(name: str, d: int, *, group: str, budget: int, noise: str | None = None, noise_level: float = 0.0,
         bounded: bool = False, start: str | None = None) -> Problem:
    """Build a problem by name: ``quadratic``, ``ellipsoid`` (rotated), the ZoAR paper's
    ``ackley``, ``levy``, ``rosenbrock``, or any BoTorch synthetic function name
    (``Levy``, ``Ackley``, ``Rosenbrock``, ...). ``start`` overrides the start rule."""
    kw: dict[str, Any] = dict(group=group, budget=budget, noise=noise, noise_level=noise_level)
    if start is not None:
        kw["start"] = start
    if name == "quadratic":
        p = Problem(name="quadratic", d=d, true_batch=quadratic, fopt=0.0, torch_batch=quadratic_t, **kw)
    elif name in PAPER_FUNCTIONS:
        fn = PAPER_FUNCTIONS[name]
        p = Problem(name=name, d=d, true_batch=_numpy_of(fn), fopt=0.0, torch_batch=fn, **kw)
    elif name == "ellipsoid":
        p = Problem(name="rot-ellipsoid", d=d, true_batch=RotatedEllipsoid(d), fopt=0.0, **kw)
    else:
        p = botorch_problem(name, d, bounded=bounded, **kw)
    if p.d != d or not math.isfinite(float(p.true_batch(p.x0(0)[None])[0])):
        raise ValueError(f"problem {name} d={d}: bad construction")
    return p.prepare()


# -- the smooth suite's problems: standard functions with a shifted optimum -----------------------
SHIFTED_FUNCTIONS: tuple[str, ...] = ("sphere", "ellipsoid-sep", "ellipsoid-rot", "rosenbrock-shifted")


class ShiftedFunction:
    r"""One instance (fixed seed, whatever the run's seed) of a standard test function with its
    optimum moved to :math:`x^* \sim U[-3, 3]^d`, for the box :math:`[-5, 5]^d` and a start at
    the origin; :math:`f^* = 0`.

    - ``sphere``: :math:`|x - x^*|^2`;
    - ``ellipsoid-sep``: :math:`\sum_i 10^{6 (i-1)/(d-1)} (x - x^*)_i^2` (condition :math:`10^6`);
    - ``ellipsoid-rot``: the same in a fixed dense random rotation, :math:`z = R (x - x^*)`;
    - ``rosenbrock-shifted``: :math:`\sum_i 100 (z_{i+1} - z_i^2)^2 + (1 - z_i)^2` with
      :math:`z = x - x^* + 1` (minimum at :math:`x^*`).
    """

    def __init__(self, name: str, d: int, seed: int = 20261208) -> None:
        if name not in SHIFTED_FUNCTIONS:
            raise ValueError(f"unknown shifted function {name!r}")
        rng = np.random.default_rng([seed, d])
        self.name, self.d = name, d
        self.x_star = rng.uniform(-3.0, 3.0, d)
        self.weights = 10.0 ** (6.0 * np.arange(d) / max(d - 1, 1))
        self.rotation = np.linalg.qr(rng.standard_normal((d, d)))[0] if name == "ellipsoid-rot" else None

    def __call__(self, X: np.ndarray) -> np.ndarray:
        Z = np.atleast_2d(X) - self.x_star
        if self.name == "sphere":
            return np.einsum("ij,ij->i", Z, Z)
        if self.name == "rosenbrock-shifted":
            Z = Z + 1.0
            return (100.0 * (Z[:, 1:] - Z[:, :-1] ** 2) ** 2 + (1.0 - Z[:, :-1]) ** 2).sum(1)
        if self.rotation is not None:
            Z = Z @ self.rotation.T
        return np.einsum("ij,ij,j->i", Z, Z, self.weights)


def shifted_problem(name: str, d: int, *, group: str, budget: int) -> Problem:
    """A :class:`ShiftedFunction` as a problem: box [-5, 5]^d, start at the origin, f* = 0."""
    box = np.full(d, 5.0)
    return Problem(name=name, d=d, group=group, budget=budget, true_batch=ShiftedFunction(name, d),
                   lower=-box, upper=box, fopt=0.0, start="origin").prepare()


# -- the Optuna suite's problem -----------------------------------------------------------------
def shifted_ellipsoid(d: int = 50) -> Callable[[np.ndarray], float]:
    r""":math:`f(x) = \sum_i 10^{2 (i-1)/(d-1)} (R (x - x^*))_i^2`: condition number 100, a fixed
    dense random rotation :math:`R` and a fixed random :math:`x^* \in [-3, 3]^d` (one instance,
    whatever the run's seed), for the box :math:`[-5, 5]^d`."""
    rng = np.random.default_rng(20261123)
    R, _ = np.linalg.qr(rng.standard_normal((d, d)))
    x_star = rng.uniform(-3.0, 3.0, d)
    w = 10.0 ** (2.0 * np.arange(d) / max(d - 1, 1))

    def f(x: np.ndarray) -> float:
        z = R @ (x - x_star)
        return float(np.sum(w * z * z))

    return f


# -- problems with analytic derivatives (the ZoVH paper's Hessian-error experiment) --------------
def _symmetric_operator(**kw: Any) -> Any:
    from .hessian_baselines import SymmetricOperator

    return SymmetricOperator(**kw)


class SpectrumQuadratic:
    r""":math:`\tfrac12 x^T A x`, :math:`A = Q \operatorname{diag}(\mathrm{linspace}(1, 10, d)) Q^T`,
    :math:`Q` a random rotation drawn from ``seed``."""

    name = "quadratic"

    def __init__(self, d: int, seed: int) -> None:
        import torch

        g = torch.Generator().manual_seed(seed)
        self.Q, _ = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=torch.float64))
        self.lam = torch.linspace(1, 10, d, dtype=torch.float64)

    def value(self, X: Any) -> Any:
        Z = X @ self.Q
        return 0.5 * (Z * Z * self.lam).sum(-1)

    def grad(self, x: Any) -> Any:
        return self.Q @ (self.lam * (self.Q.T @ x))

    def hessian(self, x: Any) -> Any:
        Q, lam = self.Q, self.lam
        return _symmetric_operator(matmat=lambda V: Q @ (lam[:, None] * (Q.T @ V)),
                                   diagonal=((Q * Q) @ lam), fro2=float((lam * lam).sum()))


class ScaledRosenbrock:
    r"""Rosenbrock with :math:`\alpha = 10` (:func:`rosenbrock_t`), banded Hessian."""

    name = "rosenbrock"
    alpha = 10.0

    def __init__(self, d: int, seed: int) -> None:
        pass

    def value(self, X: Any) -> Any:
        return rosenbrock_t(X, self.alpha)

    def grad(self, x: Any) -> Any:
        import torch

        a = self.alpha
        g = torch.zeros_like(x)
        t = x[1:] - x[:-1] ** 2
        g[:-1] += -4 * a * x[:-1] * t - 2 * (1 - x[:-1])
        g[1:] += 2 * a * t
        return g

    def hessian(self, x: Any) -> Any:
        import torch

        a = self.alpha
        diag = torch.zeros_like(x)
        diag[:-1] += 2 + a * (12 * x[:-1] ** 2 - 4 * x[1:])
        diag[1:] += 2 * a
        off = -4 * a * x[:-1]

        def matmat(V: Any) -> Any:
            out = diag[:, None] * V
            out[:-1] += off[:, None] * V[1:]
            out[1:] += off[:, None] * V[:-1]
            return out

        return _symmetric_operator(matmat=matmat, diagonal=diag, fro2=float(diag @ diag + 2 * off @ off))


class StyblinskiTang:
    r""":math:`\tfrac12 \sum_i x_i^4 - 16 x_i^2 + 5 x_i`, diagonal Hessian."""

    name = "styblinski-tang"

    def __init__(self, d: int, seed: int) -> None:
        pass

    def value(self, X: Any) -> Any:
        return 0.5 * (X**4 - 16 * X**2 + 5 * X).sum(-1)

    def grad(self, x: Any) -> Any:
        return 0.5 * (4 * x**3 - 32 * x + 5)

    def hessian(self, x: Any) -> Any:
        diag = 6 * x**2 - 16
        return _symmetric_operator(matmat=lambda V: diag[:, None] * V, diagonal=diag, fro2=float(diag @ diag))


#: Problems with ``value`` (batched), ``grad`` and ``hessian`` (a ``SymmetricOperator``).
DERIVATIVE_PROBLEMS = (SpectrumQuadratic, ScaledRosenbrock, StyblinskiTang)


# -- smooth problems of the SciPy solver studies -------------------------------------------------
def solver_problem(name: str, d: int) -> tuple[str, Callable[[np.ndarray], float], Callable[[np.ndarray], np.ndarray],
                                                np.ndarray]:
    """``(label, f, grad, x0)``: ``"rosenbrock"`` (SciPy's, from 0), ``"quadratic-rotated"``
    (:math:`\tfrac12 x^T A x`, :math:`A` with eigenvalues logspace(0, 2, d) in a fixed random basis,
    from 1) or ``"quadratic-diagonal"`` (the same spectrum on the axes, from 1)."""
    from scipy.optimize import rosen, rosen_der

    if name == "rosenbrock":
        return f"rosenbrock-{d}", rosen, rosen_der, np.zeros(d)
    lam = np.logspace(0, 2, d)
    if name == "quadratic-rotated":
        Q, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((d, d)))
        A = Q @ np.diag(lam) @ Q.T
        return f"quadratic-{d}-cond1e2", (lambda x: 0.5 * x @ A @ x), (lambda x: A @ x), np.ones(d)
    if name == "quadratic-diagonal":
        return (f"quadratic-{d}", (lambda x: 0.5 * float(np.sum(lam * x * x))), (lambda x: lam * x),
                np.ones(d))
    raise ValueError(f"unknown solver problem {name!r}")


# -- a noisy, ill-conditioned problem (ZoAR's noise handling) ------------------------------------
class NoisyIllConditioned:
    r""":math:`f(x) = \sum_i w_i z_i^2 + 5 \sum_i \sin^2 z_i + \tfrac12 \sum_i z_i z_{i+1} + N(0, 5^2)`,
    :math:`z = x - \mathrm{linspace}(-3, 3, d)`, :math:`w = \mathrm{logspace}(0, 2, d)`, on
    :math:`[-5, 5]^d` from :math:`x_0 = 0`; ``true`` is the noise-free value."""

    bounds = (-5.0, 5.0)

    def __init__(self, d: int = 50, sigma: float = 5.0, seed: int = 0) -> None:
        self.c, self.w, self.sigma = np.linspace(-3, 3, d), np.logspace(0, 2, d), sigma
        self.rng = np.random.default_rng(seed)

    def true(self, x: np.ndarray) -> float:
        z = np.asarray(x, dtype=float) - self.c
        return float(np.sum(self.w * z**2) + 5 * np.sum(np.sin(z) ** 2) + 0.5 * np.sum(z[:-1] * z[1:]))

    def __call__(self, x: np.ndarray) -> float:
        return self.true(x) + self.sigma * float(self.rng.standard_normal())
