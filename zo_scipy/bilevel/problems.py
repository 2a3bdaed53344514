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
from typing import Any

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


class HyperCleaning:
    r"""Data hyper-cleaning on ``load_digits`` (Franceschi et al. 2017): one weight
    :math:`\sigma(x_i)` per training sample of a linear softmax classifier, a fraction
    ``corrupt`` of whose training labels are replaced by a uniformly drawn *other* class.

    Features scaled to ``[0, 1]`` (divided by 16) plus a constant column (:math:`a_i \in
    \mathbb{R}^{65}`); the inner variable is the weight matrix :math:`W \in \mathbb{R}^{65\times 10}`
    flattened row-major (``q = 650``); ``p = n_train`` (default 1000).

    Parameters
    ----------
    n_train, n_val : int, optional
        Sizes of the training part (one outer variable per sample) and of the validation
        part; the remaining images of the 1797 are the test part.
    corrupt : float, optional
        Fraction of the training labels replaced by another class (default one half).
    reg : float, optional
        The ridge penalty :math:`\rho` of the inner problem.
    split_seed : int, optional
        Seed of the ``numpy.random.default_rng`` that draws the split and the corruption.
    chunk : int, optional
        Batch rows evaluated per matrix product by :meth:`lower` and :meth:`upper` (memory).

    Attributes
    ----------
    p, q : int
        Numbers of outer (``n_train``) and inner (650) variables.
    corrupted : numpy.ndarray
        Boolean mask of the training samples whose label was corrupted.
    solver_nfev : int
        Function-and-gradient evaluations spent so far by :meth:`y_star` (and :meth:`reference`).

    See Also
    --------
    PerFeatureLogistic : a smaller classification problem with a Newton inner solver.
    zo_scipy.bilevel.hypergradient, zo_scipy.bilevel.minimize : run on these problems in the
        docs' benchmarks.

    Notes
    -----
    The two levels, with :math:`\ell` the softmax cross-entropy, :math:`\tilde t_i` the
    (possibly corrupted) training labels and :math:`\sigma` the logistic sigmoid:

    .. math::
        g(x, W) = \frac1n \sum_i \sigma(x_i)\, \ell(W; a_i, \tilde t_i) + \frac{\rho}2 |W|^2,\qquad
        f(x, W) = \frac1{n_v} \sum_{j \in \text{val}} \ell(W; a_j, t_j).

    Split: a permutation of the 1797 images by ``numpy.random.default_rng(split_seed)`` into
    ``n_train`` / ``n_val`` / the rest (test); the corrupted samples are drawn by the same
    generator. ``lower``/``upper`` take batches (``x`` of shape ``(m, p)``, ``W`` of shape
    ``(m, 650)``) or single points.

    Exact pieces for the benchmark: :meth:`y_star` (L-BFGS-B on the analytic gradient,
    warm-started), the analytic Hessian

    .. math::
        H = \frac1n\sum_i \sigma(x_i)\, (a_i a_i^T) \otimes (\operatorname{diag}\pi_i -
        \pi_i\pi_i^T) + \rho I

    (:meth:`hessian`, :math:`\pi_i` the softmax probabilities of sample :math:`i`) and
    :meth:`hypergradient_at`

    .. math::
        \nabla F_i = -\frac{\sigma'(x_i)}n\, (a_i \otimes (\pi_i - e_{\tilde t_i}))^T H^{-1} \nabla_W f.

    References
    ----------
    - Luca Franceschi, Michele Donini, Paolo Frasconi, Massimiliano Pontil, "Forward and
      Reverse Gradient-Based Hyperparameter Optimization", ICML 2017, arXiv:1703.01785.
    - Amirreza Shaban, Ching-An Cheng, Nathan Hatch, Byron Boots, "Truncated
      Back-propagation for Bilevel Optimization", AISTATS 2019, arXiv:1810.10667.
    - The digits dataset of scikit-learn, ``sklearn.datasets.load_digits`` (a copy of the
      test set of the UCI ML hand-written digits datasets).

    Examples
    --------
    >>> import numpy as np
    >>> from zo_scipy.bilevel.problems import HyperCleaning
    >>> prob = HyperCleaning()                   # 1000 training, 300 validation, 497 test images
    >>> prob.p, prob.q, int(prob.corrupted.sum())
    (1000, 650, 500)
    >>> x, w0 = np.zeros(prob.p), np.zeros(prob.q)
    >>> round(prob.lower(x, w0), 4), round(prob.upper(x, w0), 4)    # sigma(0) log 10, log 10
    (1.1513, 2.3026)
    >>> prob.lower(np.zeros((3, prob.p)), np.zeros((3, prob.q))).shape      # a batch
    (3,)
    >>> w = prob.y_star(x)                       # L-BFGS-B, warm-started at the last solution
    >>> bool(prob.lower(x, w) < prob.lower(x, w + 0.01)), prob.solver_nfev > 0
    (True, True)
    >>> prob.grad_upper(w).shape, prob.hessian(x, w).shape
    ((650,), (650, 650))
    >>> hg = prob.hypergradient_at(x, w)         # descent lowers the weights of corrupted samples
    >>> hg.shape, bool(hg[prob.corrupted].mean() > 0 > hg[~prob.corrupted].mean())
    ((1000,), True)
    >>> prob.accuracy(prob.reference("clean")) > prob.accuracy(prob.reference("all"))
    True
    """

    def __init__(self, *, n_train: int = 1000, n_val: int = 300, corrupt: float = 0.5, reg: float = 1e-3,
                 split_seed: int = 0, chunk: int = 256):
        from sklearn.datasets import load_digits

        data = load_digits()
        X = np.asarray(data.data, dtype=np.float64) / 16.0
        t = np.asarray(data.target, dtype=np.int64)
        rng = np.random.default_rng(split_seed)
        perm = rng.permutation(len(t))
        tr, va, te = perm[:n_train], perm[n_train:n_train + n_val], perm[n_train + n_val:]
        A = np.hstack([X, np.ones((len(t), 1))])
        self.Atr, self.Ava, self.Ate = A[tr], A[va], A[te]
        self.ttr_clean, self.tva, self.tte = t[tr], t[va], t[te]
        self.corrupted = np.zeros(n_train, dtype=bool)
        self.corrupted[rng.choice(n_train, int(round(corrupt * n_train)), replace=False)] = True
        noisy = self.ttr_clean.copy()
        shift = rng.integers(1, 10, n_train)
        noisy[self.corrupted] = (noisy[self.corrupted] + shift[self.corrupted]) % 10
        self.ttr = noisy
        self.k, self.c = A.shape[1], 10
        self.p, self.q = n_train, A.shape[1] * 10
        self.reg, self.chunk = float(reg), int(chunk)
        self.Ytr = np.eye(self.c)[self.ttr]
        self.Yva = np.eye(self.c)[self.tva]
        self._warm = np.zeros(self.q)
        self.solver_nfev = 0  # analytic function-and-gradient evaluations spent by y_star

    @staticmethod
    def _ce(A: np.ndarray, t: np.ndarray, W: np.ndarray) -> np.ndarray:
        """Per-sample cross-entropies, ``W`` of shape ``(m, k, c)`` -> ``(m, n)``."""
        m, k, c = W.shape
        Z = (A @ W.transpose(1, 0, 2).reshape(k, m * c)).reshape(len(A), m, c)  # one matrix product
        zmax = Z.max(-1)
        lse = zmax + np.log(np.exp(Z - zmax[..., None]).sum(-1))
        return (lse - np.take_along_axis(Z, t[:, None, None], axis=-1)[..., 0]).T

    def _batched(self, fn: Any, x: np.ndarray | None, w: np.ndarray) -> np.ndarray | float:
        w = np.asarray(w, dtype=np.float64)
        single = w.ndim == 1
        W = w.reshape(-1, self.k, self.c)
        X = None if x is None else np.asarray(x, dtype=np.float64).reshape(W.shape[0], -1)
        out = np.concatenate([fn(None if X is None else X[i:i + self.chunk], W[i:i + self.chunk])
                              for i in range(0, W.shape[0], self.chunk)])
        return float(out[0]) if single else out

    def lower(self, x: np.ndarray, w: np.ndarray) -> np.ndarray | float:
        r"""The lower (inner) objective :math:`g(x, W)`: the weighted training loss plus the ridge.

        Parameters
        ----------
        x : numpy.ndarray
            Sample weights before the sigmoid, shape ``(p,)`` or ``(m, p)``.
        w : numpy.ndarray
            Flattened weight matrix, shape ``(q,)`` or ``(m, q)``.

        Returns
        -------
        float or numpy.ndarray
            A float for one point, shape ``(m,)`` for a batch.
        """
        def fn(X: np.ndarray, W: np.ndarray) -> np.ndarray:
            s = 0.5 * (1 + np.tanh(X / 2))  # sigmoid, stable
            return ((s * self._ce(self.Atr, self.ttr, W)).mean(-1)
                    + 0.5 * self.reg * (W * W).sum((-2, -1)))
        return self._batched(fn, x, w)

    def upper(self, x: np.ndarray, w: np.ndarray) -> np.ndarray | float:
        r"""The upper (outer) objective :math:`f(x, W)`: the mean validation cross-entropy.

        Parameters
        ----------
        x : numpy.ndarray
            Sample weights before the sigmoid (unused: :math:`f` does not depend on them).
        w : numpy.ndarray
            Flattened weight matrix, shape ``(q,)`` or ``(m, q)``.

        Returns
        -------
        float or numpy.ndarray
            A float for one point, shape ``(m,)`` for a batch.
        """
        return self._batched(lambda X, W: self._ce(self.Ava, self.tva, W).mean(-1), None, w)

    def _probs(self, A: np.ndarray, w: np.ndarray) -> np.ndarray:
        Z = A @ w.reshape(self.k, self.c)
        Z = Z - Z.max(1, keepdims=True)
        E = np.exp(Z)
        return E / E.sum(1, keepdims=True)

    def _fg(self, x: np.ndarray, w: np.ndarray) -> tuple[float, np.ndarray]:
        s = 0.5 * (1 + np.tanh(np.asarray(x) / 2))
        P = self._probs(self.Atr, w)
        n = len(self.ttr)
        f = float((s * self._ce(self.Atr, self.ttr, w.reshape(1, self.k, self.c))[0]).mean()) + 0.5 * self.reg * w @ w
        G = self.Atr.T @ ((s / n)[:, None] * (P - self.Ytr))
        return f, G.reshape(-1) + self.reg * w

    def y_star(self, x: np.ndarray, *, gtol: float = 1e-9, warm: np.ndarray | None = None) -> np.ndarray:
        r"""The inner solution by L-BFGS-B on the analytic gradient, warm-started at the last solution
        (or ``warm``); adds its function-and-gradient evaluations to :attr:`solver_nfev`.

        Parameters
        ----------
        x : numpy.ndarray
            Sample weights before the sigmoid, shape ``(p,)``.
        gtol : float, optional
            Gradient tolerance of L-BFGS-B.
        warm : numpy.ndarray, optional
            Starting point, shape ``(q,)``; by default the last solution found.

        Returns
        -------
        numpy.ndarray
            :math:`W^*(x)` flattened, shape ``(q,)``.
        """
        import scipy.optimize

        res = scipy.optimize.minimize(lambda w: self._fg(x, w), self._warm if warm is None else warm, jac=True,
                                      method="L-BFGS-B", options={"gtol": gtol, "ftol": 0.0, "maxiter": 10_000})
        self.solver_nfev += int(res.nfev)
        self._warm = np.asarray(res.x, dtype=np.float64)
        return self._warm.copy()

    def hessian(self, x: np.ndarray, w: np.ndarray) -> np.ndarray:
        r"""The analytic Hessian :math:`H_{yy}` of the lower problem (650 x 650).

        Parameters
        ----------
        x : numpy.ndarray
            Sample weights before the sigmoid, shape ``(p,)``.
        w : numpy.ndarray
            Flattened weight matrix, shape ``(q,)``.

        Returns
        -------
        numpy.ndarray
            Shape ``(q, q)``, symmetric positive definite (at least :math:`\rho I`).
        """
        s = 0.5 * (1 + np.tanh(np.asarray(x) / 2)) / len(self.ttr)
        P = self._probs(self.Atr, w)
        H = np.zeros((self.k, self.c, self.k, self.c))
        for cls in range(self.c):
            H[:, cls, :, cls] = (self.Atr.T * (s * P[:, cls])) @ self.Atr
        B = (self.Atr[:, :, None] * P[:, None, :]).reshape(len(s), -1)
        return H.reshape(self.q, self.q) - (B.T * s) @ B + self.reg * np.eye(self.q)

    def grad_upper(self, w: np.ndarray) -> np.ndarray:
        r"""The analytic :math:`\nabla_W f` (the upper problem does not depend on ``x``).

        Parameters
        ----------
        w : numpy.ndarray
            Flattened weight matrix, shape ``(q,)``.

        Returns
        -------
        numpy.ndarray
            Shape ``(q,)``, flattened like ``w``.
        """
        P = self._probs(self.Ava, w)
        return (self.Ava.T @ (P - self.Yva) / len(self.tva)).reshape(-1)

    def hypergradient_at(self, x: np.ndarray, w: np.ndarray) -> np.ndarray:
        r""":math:`\nabla F(x)` by the implicit function theorem at the inner solution ``w``.

        Parameters
        ----------
        x : numpy.ndarray
            Sample weights before the sigmoid, shape ``(p,)``.
        w : numpy.ndarray
            The inner solution :math:`W^*(x)` (from :meth:`y_star`), shape ``(q,)``.

        Returns
        -------
        numpy.ndarray
            Shape ``(p,)``; exact when ``w`` is exact (one dense ``q x q`` solve).
        """
        v = np.linalg.solve(self.hessian(x, w), self.grad_upper(w))
        P = self._probs(self.Atr, w)
        s = 0.5 * (1 + np.tanh(np.asarray(x) / 2))
        per = np.einsum("nk,nc,kc->n", self.Atr, P - self.Ytr, v.reshape(self.k, self.c))
        return -s * (1 - s) / len(s) * per

    def accuracy(self, w: np.ndarray, part: str = "test") -> float:
        r"""Classification accuracy of the weights ``w`` on the clean labels of one part.

        Parameters
        ----------
        w : numpy.ndarray
            Flattened weight matrix, shape ``(q,)``.
        part : {"test", "val"}, optional
            The test part (default) or the validation part.

        Returns
        -------
        float
            The fraction of correctly classified images, in ``[0, 1]``.
        """
        A, t = {"test": (self.Ate, self.tte), "val": (self.Ava, self.tva)}[part]
        return float(np.mean(np.argmax(A @ w.reshape(self.k, self.c), 1) == t))

    def reference(self, which: str) -> np.ndarray:
        r"""Inner solution with weight 1 on every training sample (``"all"``) or on the clean ones only
        (``"clean"``, weight 0 on the corrupted).

        The weights are :math:`\sigma(\pm 40)`, i.e. 1 and 0 to double precision; solved by
        :meth:`y_star` from zero (it becomes the next warm start).

        Parameters
        ----------
        which : {"all", "clean"}
            Train on every sample, or on the uncorrupted ones only (the oracle cleaning).

        Returns
        -------
        numpy.ndarray
            The flattened weight matrix, shape ``(q,)``.
        """
        big = 40.0
        x = np.full(self.p, big) if which == "all" else np.where(self.corrupted, -big, big)
        return self.y_star(x, warm=np.zeros(self.q))


__all__ = ["HyperCleaning", "PerFeatureLogistic", "PerFeatureRidge", "RandomQuadratic"]
