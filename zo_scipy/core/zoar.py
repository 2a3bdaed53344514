r"""ZoAR as an ask/tell optimizer (spec section 2).

>>> opt = ZoAR(torch.zeros(3), seed=0)
>>> X = opt.ask()                       # (K, d) points to evaluate
>>> opt.tell(torch.stack([f(x) for x in X]))

The SciPy method, the Optuna sampler and the torch optimizer are loops around
this object. It holds no reference to the objective, so it pickles (checkpoint a
long run, resume it later) and can be rebuilt from stored state.
"""
from __future__ import annotations

import math
from typing import Any

import torch

from .control import StepControl
from .directions import DIRECTION_KINDS, make_generator, sample_directions
from .estimators import Normalization, zoar_gradient
from .history import QueryHistory
from .updates import UpdateRule, make_update_rule

#: Default step size and smoothing radius, as fractions of the problem scale
#: (see :func:`problem_scale`), and the default reuse depth. Chosen by
#: ``python -m zo_scipy.bench.tune_zoar`` on Ackley, Levy, Rosenbrock and the
#: quadratic at d = 1000 with a start seed (1) never used for reporting; mu = 2 lr
#: keeps reuse nearly on-policy (N lr << mu, spec pitfall 4).
DEFAULT_LR_FRACTION = 0.05
DEFAULT_MU_FRACTION = 0.1
#: Stalled windows in a row before a decay once objective noise was detected.
NOISY_PATIENCE = 3
#: Halvings of mu in a row that must leave the batch spread unshrunk before mu is frozen.
#: One alone is not enough: on a noise-free run the spread follows mu |grad f|, and |grad f|
#: can grow by more than sqrt(2) between two levels (seen on a 200-d Rosenbrock).
NOISE_CONFIRMATIONS = 2


def problem_scale(x0: torch.Tensor, lower: torch.Tensor | None, upper: torch.Tensor | None) -> float:
    r"""A length scale for the automatic ``lr`` and ``mu``.

    A quarter of the median finite bound width when all bounds are finite,
    otherwise the RMS of ``x0`` (1 when ``x0 = 0``), so that rescaling the
    variables rescales the defaults with them.
    """
    if lower is not None and upper is not None:
        width = upper - lower
        if bool(torch.isfinite(width).all()) and bool((width > 0).any()):
            return float(width[width > 0].median()) / 4
    rms = float(x0.pow(2).mean().sqrt()) if x0.numel() else 0.0
    return rms if rms > 0 and math.isfinite(rms) else 1.0


class ZoAR:
    r"""Zeroth-order optimizer with an averaged baseline and query reuse.

    Iteration :math:`t` asks for :math:`K` points :math:`x_t + \mu u_{t,k}`,
    :math:`u \sim N(0, I)`; :meth:`tell` appends the values to a FIFO buffer of the
    newest :math:`(N+1)K` pairs, forms

    .. math:: g_t = \frac{1}{M-1}\sum_{j \in B} (y_j - \bar y)\frac{u_j}{\mu},
              \qquad \bar y = \frac1M \sum_{j\in B} y_j,

    and takes one step of the update rule. Reuse is off-policy: it is accurate
    while the iterate moves little compared with :math:`\mu` over :math:`N`
    iterations (:attr:`reuse_drift` reports that ratio).

    Parameters
    ----------
    x0 : torch.Tensor or array_like
        Starting point, 1-D.
    num_queries : int
        :math:`K`, new queries per iteration.
    num_histories : int
        :math:`N`, past iterations whose queries are reused.
    mu, lr : float, optional
        Smoothing radius and step size; ``None`` scales the defaults
        (``DEFAULT_MU_FRACTION``, ``DEFAULT_LR_FRACTION``) by :func:`problem_scale`.
    adapt_mu : bool, optional
        Shrink and grow ``mu`` with ``lr`` (ratio kept fixed). Default: True when
        ``mu`` is automatic. The returned point is an evaluated query
        :math:`x + \mu u`, whose value exceeds :math:`f(x)` by about
        :math:`\mu^2 \operatorname{tr} H / 2`: a fixed ``mu`` is an accuracy floor.
        On a noisy objective, shrinking ``mu`` below the noise only amplifies it
        (the estimate scales like noise / mu): when halving ``mu`` does not shrink
        the spread of the batch values (by at least :math:`1/\sqrt 2`, the
        midpoint between a noise-free halving and no change) at two halvings in a
        row, ``mu`` is frozen at the first of those levels (:attr:`mu_floor`) and
        only ``lr`` keeps adapting, with a step control that decays only after 3
        stalled windows in a row.
    update : {"adam", "radazo", "sgd"} or UpdateRule
    betas, eps, bias_correction
        Moment parameters of adam/radazo.
    schedule : {"adaptive", "constant"}
        ``adaptive`` runs :class:`~zo_scipy.core.control.StepControl` on the batch
        means; ``constant`` keeps ``lr`` fixed (the authors' behaviour).
    lower, upper : torch.Tensor, optional
        Box bounds. Queries are projected into the box and the direction actually
        used, :math:`(\Pi(x + \mu u) - x)/\mu`, is what the estimator sees.
    directions : {"gaussian", "sphere", "orthogonal"}
    normalization : {"unbiased", "authors"}
        Divide by :math:`M-1` (unbiased) or by :math:`M` (authors' ZoAR code).
    seed : int, optional
    dtype, device
        Where all tensors live (float64 on CPU by default).
    window, xtol
        Step-control window (iterations) and relative step tolerance.
    """

    def __init__(
        self,
        x0: Any,
        *,
        num_queries: int = 10,
        num_histories: int = 2,
        mu: float | None = None,
        lr: float | None = None,
        adapt_mu: bool | None = None,
        update: str | UpdateRule = "adam",
        betas: tuple[float, float] = (0.9, 0.99),
        eps: float = 1e-8,
        bias_correction: bool = True,
        schedule: str = "adaptive",
        lower: torch.Tensor | None = None,
        upper: torch.Tensor | None = None,
        directions: str = "gaussian",
        normalization: Normalization = "unbiased",
        seed: int | None = None,
        dtype: torch.dtype = torch.float64,
        device: torch.device | str = "cpu",
        window: int | None = None,
        xtol: float = 1e-7,
    ) -> None:
        x = torch.as_tensor(x0, dtype=dtype, device=device).detach().clone()
        if x.ndim != 1:
            raise ValueError(f"x0 must be 1-D, got shape {tuple(x.shape)}")
        if num_queries < 1:
            raise ValueError(f"num_queries must be >= 1, got {num_queries}")
        if num_histories < 0:
            raise ValueError(f"num_histories must be >= 0, got {num_histories}")
        if num_queries + num_queries * num_histories < 2:
            raise ValueError("num_queries * (num_histories + 1) must be >= 2: the averaged "
                             "baseline needs two values")
        if directions not in DIRECTION_KINDS:
            raise ValueError(f"directions must be one of {DIRECTION_KINDS}, got {directions!r}")
        if schedule not in ("adaptive", "constant"):
            raise ValueError(f"schedule must be 'adaptive' or 'constant', got {schedule!r}")
        if normalization not in ("unbiased", "authors"):
            raise ValueError(f"normalization must be 'unbiased' or 'authors', got {normalization!r}")
        self.device = torch.device(device)
        self.dtype = dtype
        self.lower = None if lower is None else torch.as_tensor(lower, dtype=dtype, device=device)
        self.upper = None if upper is None else torch.as_tensor(upper, dtype=dtype, device=device)
        self._bounded = self.lower is not None or self.upper is not None
        x = self._project(x)
        scale = problem_scale(x, self.lower, self.upper)
        self.mu0 = float(mu) if mu is not None else DEFAULT_MU_FRACTION * scale
        self.adapt_mu = (mu is None) if adapt_mu is None else bool(adapt_mu)
        lr = float(lr) if lr is not None else DEFAULT_LR_FRACTION * scale
        for name, val in (("mu", self.mu0), ("lr", lr)):
            if not (val > 0 and math.isfinite(val)):
                raise ValueError(f"{name} must be a positive finite number, got {val}")
        self.num_queries = int(num_queries)
        self.num_histories = int(num_histories)
        self.directions = directions
        self.normalization: Normalization = normalization
        self.schedule = schedule
        self.update = make_update_rule(update, betas=betas, eps=eps, bias_correction=bias_correction)
        self.history = QueryHistory((num_histories + 1) * num_queries, x.numel(), dtype=dtype, device=device)
        self.generator = make_generator(seed, self.device)
        if window is None:
            window = max(4, math.ceil(40 / num_queries))
        self.control = StepControl(lr=lr, window=int(window), xtol=xtol)
        self.control.anchor = x.clone()
        self.x = x
        self.nit = 0
        self.best_x: torch.Tensor | None = None
        self.best_f = math.inf
        self.n_nonfinite = 0
        self.mu_floor = 0.0
        self._spread = [0.0, 0]  # sum and count of batch standard deviations at the current mu
        self._prev_level: tuple[float, float] | None = None  # (mu, mean spread) of the last level
        self._flat: tuple[int, float] = (0, 0.0)  # halvings in a row that left the spread, first such mu
        self._pending: tuple[torch.Tensor, torch.Tensor] | None = None
        self._last_step_norm = 0.0

    # -- geometry -----------------------------------------------------------------
    def _project(self, x: torch.Tensor) -> torch.Tensor:
        if not self._bounded:
            return x
        return torch.clamp(x, min=self.lower, max=self.upper)

    @property
    def lr(self) -> float:
        return self.control.lr

    @property
    def mu(self) -> float:
        """Current smoothing radius (follows ``lr`` when ``adapt_mu``)."""
        if self.adapt_mu and self.schedule == "adaptive":
            return max(self.mu0 * self.control.lr / self.control.lr0, self.mu_floor)
        return self.mu0

    @property
    def dim(self) -> int:
        return self.x.numel()

    @property
    def converged(self) -> bool:
        """True once adaptive step control shrank ``lr`` below ``xtol * lr0``."""
        return self.schedule == "adaptive" and self.control.converged

    @property
    def reuse_drift(self) -> float:
        r"""Distance moved over the reuse window relative to the query radius,
        :math:`\approx N |\Delta x| / (\mu \sqrt d)`; reuse is accurate while this is << 1."""
        return self.num_histories * self._last_step_norm / (self.mu * math.sqrt(self.dim))

    # -- ask / tell ---------------------------------------------------------------
    def ask(self, n: int | None = None) -> torch.Tensor:
        """The next ``n`` (default ``num_queries``) points to evaluate, shape ``(n, d)``."""
        if self._pending is not None:
            raise RuntimeError("ask() called twice: tell() the values of the previous batch first")
        n = self.num_queries if n is None else int(n)
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        U = sample_directions(n, self.dim, generator=self.generator, kind=self.directions,  # type: ignore[arg-type]
                              dtype=self.dtype, device=self.device)
        X = torch.add(self.x, U, alpha=self.mu)
        if self._bounded:
            X = self._project(X)
            U = (X - self.x) / self.mu  # the direction actually queried
        self._pending = (U, X)
        return X

    def cancel(self) -> None:
        """Forget a pending :meth:`ask` whose values will never come (e.g. the objective raised)."""
        self._pending = None

    def tell(self, values: Any) -> None:
        """Take the values of the last :meth:`ask` batch and take one step.

        Non-finite values never become the best point; in the estimator they are
        replaced by the largest finite value seen in the buffer (a penalty that
        pushes away from the region). A batch with no finite value is treated as
        divergence by the step control.
        """
        if self._pending is None:
            raise RuntimeError("tell() called without a pending ask()")
        U, X = self._pending
        y = torch.as_tensor(values, dtype=self.dtype, device=self.device).reshape(-1)
        if y.shape[0] != U.shape[0]:
            raise ValueError(f"tell() expected {U.shape[0]} values, got {y.shape[0]}")
        self._pending = None
        self.nit += 1
        finite = torch.isfinite(y)
        n_finite = int(finite.sum())
        self.n_nonfinite += y.shape[0] - n_finite
        if n_finite:
            i = int(torch.where(finite, y, torch.inf).argmin())
            if float(y[i]) < self.best_f:
                self.best_f, self.best_x = float(y[i]), X[i].clone()
        if n_finite < y.shape[0]:
            known = torch.cat([self.history.values(), y[finite]])
            if known.numel() == 0:
                self._after_step(math.nan, self.x)
                return
            y = torch.where(finite, y, known.max())
        if n_finite >= 2:
            self._spread[0] += float(y[finite].std())
            self._spread[1] += 1
        self.history.append(U, y)
        x_eval = self.x  # the iterate these values were measured around (x is replaced, not mutated)
        if len(self.history) >= 2:
            delta = self.update.step(self._direction(), self.lr)
            self._last_step_norm = float(delta.norm())
            self.x = self._project(self.x - delta)
        self._after_step(float(y.mean()) if n_finite else math.nan, x_eval)

    def _direction(self) -> torch.Tensor:
        """The vector the update rule steps along (the ZoAR gradient); the ZoVH
        optimizer overrides this with its curvature-aware direction."""
        return zoar_gradient(self.history.directions(), self.history.values(), self.mu,
                             normalization=self.normalization)

    def _after_step(self, batch_mean: float, x_eval: torch.Tensor) -> None:
        if self.schedule != "adaptive":
            return
        mu_before = self.mu
        event = self.control.observe(batch_mean, x_eval)
        if event and self.adapt_mu:
            self._new_mu_level(mu_before)
        if event == "restore":
            self.x = self.control.anchor.clone()  # type: ignore[union-attr]
            self.history.clear()
            self.update.reset()
        elif self.mu != mu_before:
            # Values taken at another mu differ by ~mu^2 tr(H)/2: not comparable, drop them.
            self.history.clear()

    def _new_mu_level(self, mu_before: float) -> None:
        """Freeze ``mu`` once ``NOISE_CONFIRMATIONS`` halvings in a row left the batch
        spread unshrunk (a noise floor), at the first level where it stopped shrinking."""
        total, count = self._spread
        if count == 0:
            return
        spread = total / count
        prev = self._prev_level
        if prev is not None and prev[0] > mu_before and prev[1] > 0:
            if spread / prev[1] > math.sqrt(mu_before / prev[0]):
                n, first_mu = self._flat
                self._flat = (n + 1, first_mu if n else mu_before)
                if self._flat[0] >= NOISE_CONFIRMATIONS:
                    self.mu_floor = max(self.mu_floor, self._flat[1])
                    self.control.patience = NOISY_PATIENCE
            else:
                self._flat = (0, 0.0)
        self._prev_level = (mu_before, spread)
        self._spread = [0.0, 0]

    # -- pickling: torch.Generator state is saved explicitly ----------------------
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["generator"] = (str(self.device), self.generator.get_state())
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        device, gstate = state["generator"]
        gen = torch.Generator(device=device)
        gen.set_state(gstate)
        state["generator"] = gen
        state.setdefault("_flat", (0, 0.0))  # states pickled before the confirmation rule
        self.__dict__.update(state)
