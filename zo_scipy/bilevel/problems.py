r"""Bilevel test problems with closed-form hypergradients (examples, tests and benchmarks).

:class:`PerFeatureRidge`: per-feature ridge regularization (Pedregosa 2016, HOAG's first
example), on a scikit-learn dataset, with :math:`x_j = \log \lambda_j`,

.. math::
    g(x, w) = \frac{1}{2n}|X w - t|^2 + \frac12 \sum_j e^{x_j} w_j^2,\qquad
    f(x, w) = \frac{1}{2 n_v}|X_v w - t_v|^2,

:math:`A = X^TX/n + \operatorname{diag}(e^x)`, :math:`w^* = A^{-1}X^Tt/n` and
:math:`\nabla F = -e^x \odot w^* \odot A^{-1}\nabla_w f(w^*)`.

:class:`RandomQuadratic`: :math:`g = \frac12 z^T A z + b^T z` and
:math:`f = \frac12 z^T C z + c^T z` in :math:`z = (x, y)`, with
:math:`y^* = -A_{yy}^{-1}(A_{yx}x + b_y)` and
:math:`\nabla F = \nabla_x f - A_{xy} A_{yy}^{-1}\nabla_y f`.

The callables accept one point (``x`` of shape ``(p,)``) or a batch (``(m, p)``), so they
work with ``vectorized=True`` as well.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


class PerFeatureRidge:
    r"""Per-feature ridge on ``load_diabetes`` (default) or another scikit-learn regression set.

    Features standardized on the training part, target standardized, split
    ``train_test_split(test_size=0.33, random_state=0)`` (scikit-learn's example settings).

    Lower and upper problems: the ridge training loss with penalties :math:`e^{x_j}`, and the
    validation loss; :math:`w^*(x)` and :math:`\nabla F` in closed form.

    See Also
    --------
    zo_scipy.bilevel.hypergradient, zo_scipy.bilevel.minimize : run on these problems in the
        docs' benchmarks.

    References
    ----------
    - Fabian Pedregosa, "Hyperparameter optimization with approximate gradient", ICML 2016,
      arXiv:1602.02355.

    Examples
    --------
    >>> import numpy as np
    >>> from zo_scipy.bilevel.problems import PerFeatureRidge
    >>> prob = PerFeatureRidge()
    >>> prob.p, prob.q, prob.hypergradient(np.zeros(prob.p)).shape
    (10, 10, (10,))
    >>> x = np.zeros(prob.p); w = prob.y_star(x)
    >>> bool(np.isclose(prob.value(x), prob.upper(x, w))), bool(prob.lower(x, w) > 0)
    (True, True)
    >>> prob.hessp(x, w, np.zeros(prob.q)).tolist() == [0.0] * prob.q    # H_ww v is linear in v
    True
    """

    def __init__(self, dataset: str = "diabetes", *, test_size: float = 0.33, random_state: int = 0):
        from sklearn import datasets
        from sklearn.model_selection import train_test_split

        loader = getattr(datasets, f"load_{dataset}")
        data = loader()
        X, t = np.asarray(data.data, dtype=np.float64), np.asarray(data.target, dtype=np.float64)
        Xtr, Xva, ttr, tva = train_test_split(X, t, test_size=test_size, random_state=random_state)
        mean, std = Xtr.mean(0), Xtr.std(0)
        std[std == 0] = 1.0
        tm, ts = ttr.mean(), ttr.std()
        self.Xtr, self.Xva = (Xtr - mean) / std, (Xva - mean) / std
        self.ttr, self.tva = (ttr - tm) / ts, (tva - tm) / ts
        self.n, self.nv = self.Xtr.shape[0], self.Xva.shape[0]
        self.p = self.q = self.Xtr.shape[1]
        self.gram = self.Xtr.T @ self.Xtr / self.n
        self.xty = self.Xtr.T @ self.ttr / self.n

    # -- the two levels (one point or a batch) ---------------------------------------------------
    def lower(self, x: np.ndarray, w: np.ndarray) -> np.ndarray | float:
        r"""The lower (inner) objective :math:`g(x, y)` (rows of ``y`` for a batch)."""
        r = w @ self.Xtr.T - self.ttr
        out = 0.5 * (r * r).sum(-1) / self.n + 0.5 * (np.exp(x) * w * w).sum(-1)
        return out if np.ndim(out) else float(out)

    def upper(self, x: np.ndarray, w: np.ndarray) -> np.ndarray | float:
        r"""The upper (outer) objective :math:`f(x, y)` (rows of ``y`` for a batch)."""
        r = w @ self.Xva.T - self.tva
        out = 0.5 * (r * r).sum(-1) / self.nv
        return out if np.ndim(out) else float(out)

    # -- closed forms ------------------------------------------------------------------------------
    def y_star(self, x: np.ndarray) -> np.ndarray:
        r"""The exact inner solution :math:`y^*(x)`."""
        return np.linalg.solve(self.gram + np.diag(np.exp(x)), self.xty)

    def value(self, x: np.ndarray) -> float:
        """:math:`F(x) = f(x, w^*(x))`."""
        return float(self.upper(x, self.y_star(x)))

    def hypergradient(self, x: np.ndarray) -> np.ndarray:
        r"""The exact :math:`\nabla F(x)` (closed form)."""
        A = self.gram + np.diag(np.exp(x))
        w = np.linalg.solve(A, self.xty)
        gw = self.Xva.T @ (self.Xva @ w - self.tva) / self.nv
        return -np.exp(x) * w * np.linalg.solve(A, gw)

    def hessp(self, x: np.ndarray, w: np.ndarray, v: np.ndarray) -> np.ndarray:
        """:math:`H_{ww} v` of the lower problem (exact)."""
        return self.gram @ v + np.exp(x) * v


@dataclass
class RandomQuadratic:
    r"""A random bilevel quadratic with ``p`` outer and ``q`` inner variables (``seed`` fixes it).

    :math:`g(x, y) = \tfrac12 z^T A z + b^T z` and :math:`f(x, y) = \tfrac12 z^T C z + c^T z` with
    :math:`z = (x, y)`; :math:`y^*(x)`, :math:`F` and :math:`\nabla F` in closed form.

    See Also
    --------
    zo_scipy.bilevel.hypergradient, zo_scipy.bilevel.minimize : run on these problems in the
        docs' benchmarks.

    References
    ----------
    - Fabian Pedregosa, "Hyperparameter optimization with approximate gradient", ICML 2016,
      arXiv:1602.02355.

    Examples
    --------
    >>> import numpy as np
    >>> from zo_scipy.bilevel.problems import RandomQuadratic
    >>> prob = RandomQuadratic(p=2, q=3, seed=1)
    >>> x = np.ones(2)
    >>> bool(np.isclose(prob.value(x), prob.upper(x, prob.y_star(x))))
    True
    >>> bool(prob.lower(x, prob.y_star(x)) <= prob.lower(x, prob.y_star(x) + 0.1))   # y* minimizes g
    True
    >>> prob.hypergradient(x).shape
    (2,)
    """

    p: int = 4
    q: int = 6
    seed: int = 0
    cond: float = 10.0

    def __post_init__(self) -> None:
        rng = np.random.default_rng(self.seed)
        d = self.p + self.q
        Q, _ = np.linalg.qr(rng.standard_normal((d, d)))
        self.A = Q @ np.diag(np.geomspace(1.0, self.cond, d)) @ Q.T
        B = rng.standard_normal((d, d)) / np.sqrt(d)
        self.C = B @ B.T + 0.1 * np.eye(d)
        self.b, self.c = rng.standard_normal(d), rng.standard_normal(d)

    def lower(self, x: np.ndarray, y: np.ndarray) -> np.ndarray | float:
        r"""The lower (inner) objective :math:`g(x, y)` (rows of ``y`` for a batch)."""
        z = np.concatenate([x, y], axis=-1)
        out = 0.5 * ((z @ self.A) * z).sum(-1) + z @ self.b
        return out if np.ndim(out) else float(out)

    def upper(self, x: np.ndarray, y: np.ndarray) -> np.ndarray | float:
        r"""The upper (outer) objective :math:`f(x, y)` (rows of ``y`` for a batch)."""
        z = np.concatenate([x, y], axis=-1)
        out = 0.5 * ((z @ self.C) * z).sum(-1) + z @ self.c
        return out if np.ndim(out) else float(out)

    def y_star(self, x: np.ndarray) -> np.ndarray:
        r"""The exact inner solution :math:`y^*(x)`."""
        p = self.p
        return -np.linalg.solve(self.A[p:, p:], self.A[p:, :p] @ x + self.b[p:])

    def value(self, x: np.ndarray) -> float:
        r""":math:`F(x) = f(x, y^*(x))`."""
        return float(self.upper(x, self.y_star(x)))

    def hypergradient(self, x: np.ndarray) -> np.ndarray:
        r"""The exact :math:`\nabla F(x)` (closed form)."""
        p = self.p
        z = np.concatenate([x, self.y_star(x)])
        gf = self.C @ z + self.c
        return gf[:p] - self.A[:p, p:] @ np.linalg.solve(self.A[p:, p:], gf[p:])





class PerFeatureLogistic:
    r"""Per-feature L2 logistic regression on ``load_breast_cancer`` (30 penalties ``exp(x_j)``, 31 weights
    with an unpenalized intercept); features standardized on the training part, split
    ``train_test_split(test_size=0.33, random_state=0)``.

    .. math::
        g(x, w) = \frac1n \sum_i \log(1 + e^{-t_i a_i^T w}) + \frac12 \sum_{j \le 30} e^{x_j} w_j^2,\qquad
        f(x, w) = \text{the same mean loss on the validation part};

    :math:`y^*(x)` by Newton's method, :math:`\nabla F = -e^x \odot w^*_{1..30} \odot [H^{-1}\nabla_w f]_{1..30}`
    with the analytic Hessian :math:`H = A^T S A/n + \operatorname{diag}(e^x, 0)`.

    See Also
    --------
    zo_scipy.bilevel.hypergradient, zo_scipy.bilevel.minimize : run on these problems in the
        docs' benchmarks.

    References
    ----------
    - Fabian Pedregosa, "Hyperparameter optimization with approximate gradient", ICML 2016,
      arXiv:1602.02355.

    Examples
    --------
    >>> import numpy as np
    >>> from zo_scipy.bilevel.problems import PerFeatureLogistic
    >>> prob = PerFeatureLogistic()
    >>> prob.p, prob.q
    (30, 31)
    >>> x = np.zeros(prob.p); w = prob.y_star(x)                 # Newton's method
    >>> float(np.abs(prob.grad_y_lower(x, w)).max()) < 1e-10    # the inner optimality condition
    True
    >>> bool(np.isclose(prob.value(x), prob.upper(x, w))), bool(prob.lower(x, w) > 0), prob.lipschitz(x) > 0
    (True, True, True)
    >>> [g.shape for g in prob.grads_upper(x, w)], prob.hypergradient(x).shape
    ([(30,), (31,)], (30,))
    """

    def __init__(self, *, test_size: float = 0.33, random_state: int = 0):
        from sklearn.datasets import load_breast_cancer
        from sklearn.model_selection import train_test_split

        data = load_breast_cancer()
        X, t = np.asarray(data.data, dtype=np.float64), np.where(data.target > 0, 1.0, -1.0)
        Xtr, Xva, ttr, tva = train_test_split(X, t, test_size=test_size, random_state=random_state)
        mean, std = Xtr.mean(0), Xtr.std(0)
        self.Atr = np.hstack([(Xtr - mean) / std, np.ones((len(Xtr), 1))])
        self.Ava = np.hstack([(Xva - mean) / std, np.ones((len(Xva), 1))])
        self.ttr, self.tva = ttr, tva
        self.p, self.q = X.shape[1], X.shape[1] + 1
        self._warm = np.zeros(self.q)

    @staticmethod
    def _loss(A: np.ndarray, t: np.ndarray, w: np.ndarray) -> np.ndarray:
        return np.logaddexp(0.0, -(w @ A.T) * t).mean(-1)

    def _pen(self, x: np.ndarray) -> np.ndarray:
        return np.concatenate([np.exp(x), np.zeros((*np.shape(x)[:-1], 1))], axis=-1)

    def lower(self, x: np.ndarray, w: np.ndarray) -> np.ndarray | float:
        r"""The lower (inner) objective :math:`g(x, y)` (rows of ``y`` for a batch)."""
        out = self._loss(self.Atr, self.ttr, w) + 0.5 * (self._pen(x) * w * w).sum(-1)
        return out if np.ndim(out) else float(out)

    def upper(self, x: np.ndarray, w: np.ndarray) -> np.ndarray | float:
        r"""The upper (outer) objective :math:`f(x, y)` (rows of ``y`` for a batch)."""
        out = self._loss(self.Ava, self.tva, w)
        return out if np.ndim(out) else float(out)

    def _grad_hess(self, x: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        m = self.Atr @ w * self.ttr
        s = 0.5 * (1 - np.tanh(m / 2))  # sigmoid(-m), stable
        g = -(self.Atr.T @ (s * self.ttr)) / len(m) + self._pen(x) * w
        H = (self.Atr.T * (s * (1 - s))) @ self.Atr / len(m) + np.diag(self._pen(x))
        return g, H

    def grad_y_lower(self, x: np.ndarray, w: np.ndarray) -> np.ndarray:
        r""":math:`\nabla_y g(x, y)` (analytic)."""
        return self._grad_hess(x, w)[0]

    def grads_upper(self, x: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        r""":math:`(\nabla_x f, \nabla_y f)` at ``(x, y)`` (analytic)."""
        m = self.Ava @ w * self.tva
        s = 0.5 * (1 - np.tanh(m / 2))
        return np.zeros(self.p), -(self.Ava.T @ (s * self.tva)) / len(m)

    def lipschitz(self, x: np.ndarray) -> float:
        r"""A Lipschitz constant of :math:`\nabla_y g(x, \cdot)` (for gradient steps on the inner problem)."""
        return float(np.linalg.eigvalsh(self.Atr.T @ self.Atr / (4 * len(self.ttr)) + np.diag(self._pen(x))).max())

    def y_star(self, x: np.ndarray) -> np.ndarray:
        r"""The exact inner solution :math:`y^*(x)`."""
        w = self._warm.copy()
        for _ in range(100):
            g, H = self._grad_hess(x, w)
            step = np.linalg.solve(H, g)
            w = w - step
            if float(np.linalg.norm(step)) <= 1e-13 * max(1.0, float(np.linalg.norm(w))):
                break
        return w

    def value(self, x: np.ndarray) -> float:
        r""":math:`F(x) = f(x, y^*(x))`."""
        return float(self.upper(x, self.y_star(x)))

    def hypergradient(self, x: np.ndarray) -> np.ndarray:
        r"""The exact :math:`\nabla F(x)` (closed form)."""
        w = self.y_star(x)
        _, H = self._grad_hess(x, w)
        v = np.linalg.solve(H, self.grads_upper(x, w)[1])
        return -np.exp(x) * w[: self.p] * v[: self.p]
__all__ = ["PerFeatureLogistic", "PerFeatureRidge", "RandomQuadratic"]
