r"""ZoAR as an ask/tell optimizer (the ZoAR paper's method; see docs/zoar.md).

>>> import torch
>>> from zo_scipy.core import ZoAR
>>> def f(x):
...     return (x ** 2).sum()
>>> opt = ZoAR(torch.ones(3), seed=0)
>>> X = opt.ask()                       # (K, d) points to evaluate
>>> opt.tell(torch.stack([f(x) for x in X]))

The SciPy methods and the Optuna sampler are loops around
this object. It holds no reference to the objective; :meth:`ZoAR.state_dict`
gives its whole state as JSON-safe data (see :mod:`zo_scipy.core.state`) and
:meth:`ZoAR.from_state_dict` rebuilds it, so a resumed run continues
bit-identically.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch

from .control import StepControl
from .directions import make_generator, sample_directions
from .estimators import zoar_gradient
from .history import QueryHistory
from .options import ZoAROptions
from .updates import make_update_rule

#: Default step size and smoothing radius, as fractions of the problem scale
#: (see :func:`problem_scale`). Chosen by the benchmarks' tuning study on Ackley,
#: Levy, Rosenbrock and the quadratic at d = 1000 with a start seed (1) never used
#: for reporting; mu = 2 lr keeps reuse nearly on-policy (N lr << mu, docs/zoar.md).
DEFAULT_LR_FRACTION = 0.05
DEFAULT_MU_FRACTION = 0.1
#: Stalled windows in a row before a decay once objective noise was detected.
NOISY_PATIENCE = 3
#: Halvings of mu in a row that must leave the batch spread unshrunk before mu is frozen.
#: One alone is not enough: on a noise-free run the spread follows mu |grad f|, and |grad f|
#: can grow by more than sqrt(2) between two levels (seen on a 200-d Rosenbrock).
NOISE_CONFIRMATIONS = 2

_TINY = float(torch.finfo(torch.float32).tiny)

#: Points of earlier told batches, by tag, for :meth:`ZoAR.load_state_dict`.
PointsSource = Callable[[int], Any] | Mapping[int, Any]


def problem_scale(x0: torch.Tensor, lower: torch.Tensor | None, upper: torch.Tensor | None) -> float:
    r"""A length scale for the automatic ``lr`` and ``mu``.

    A quarter of the median finite bound width when all bounds are finite,
    otherwise the RMS of ``x0`` (1 when ``x0 = 0``), so that rescaling the
    variables rescales the defaults with them.

    Parameters
    ----------
    x0 : torch.Tensor
        The start (1-D).
    lower, upper : torch.Tensor or None
        The box, when there is one.

    Returns
    -------
    float
        The length scale; ``lr = 0.05`` and ``mu = 0.1`` times it are ZoAR's defaults.

    See Also
    --------
    ZoAR : the optimizer whose automatic ``lr`` and ``mu`` use it.

    References
    ----------
    - Junbin Qiu, Zhengpeng Xie, Xiangda Yan, Yongjie Yang, Yao Shu, "Zeroth-Order Optimization
      is Secretly Single-Step Policy Optimization", arXiv:2506.14460, 2025 (the ZoAR paper,
      whose step size and radius are absolute constants; here they follow the problem's scale).

    Examples
    --------
    >>> import torch
    >>> from zo_scipy.core import problem_scale
    >>> problem_scale(torch.zeros(3), torch.full((3,), -5.0), torch.full((3,), 5.0))
    2.5
    >>> problem_scale(torch.full((4,), 3.0), None, None)  # no box: the RMS of x0
    3.0
    """
    if lower is not None and upper is not None:
        width = upper - lower
        if bool(torch.isfinite(width).all()) and bool((width > 0).any()):
            return float(width[width > 0].median()) / 4
    rms = float(x0.pow(2).mean().sqrt()) if x0.numel() else 0.0
    return rms if rms > 0 and math.isfinite(rms) else 1.0


def bound_in_dtype(bound: Any, dtype: torch.dtype, device: torch.device | str, *, up: bool) -> torch.Tensor:
    """A bound in ``dtype``, rounded into the box when ``dtype`` cannot hold it exactly (a float32
    estimator inside a float64 box): every point the estimator projects stays inside the box."""
    exact = torch.as_tensor(bound, device=device).detach()
    b = exact.to(dtype)
    if exact.dtype == dtype or not exact.is_floating_point():
        return b.clone()
    outside = b.to(exact.dtype) < exact if up else b.to(exact.dtype) > exact
    step = torch.nextafter(b, torch.full_like(b, math.inf if up else -math.inf))
    return torch.where(outside & torch.isfinite(b), step, b)


@dataclass
class NoiseRule:
    r"""Detects objective noise from how the batch spread follows ``mu``.

    Without noise the spread of a batch's values scales like :math:`\mu |\nabla f|`,
    so halving ``mu`` halves it; at a noise floor it stays. A halving whose spread
    ratio exceeds :math:`\sqrt{\mu_{new}/\mu_{old}}` (the midpoint, in logs) is
    *flat*; ``NOISE_CONFIRMATIONS`` flat halvings in a row confirm noise, and ``mu``
    is frozen at the first of them.
    """

    spread_sum: float = 0.0  # batch standard deviations seen at the current mu level
    spread_count: int = 0
    level_mu: float = 0.0  # the previous level's mu (0: none yet) and mean spread
    level_spread: float = 0.0
    flat_halvings: int = 0  # flat halvings in a row, and the mu of the first of them
    first_flat_mu: float = 0.0

    def record(self, spread: float) -> None:
        self.spread_sum += spread
        self.spread_count += 1

    def close_level(self, mu_before: float) -> float | None:
        """End the level at ``mu_before``; returns the mu to freeze at once noise is confirmed."""
        if self.spread_count == 0:
            return None
        spread = self.spread_sum / self.spread_count
        frozen = None
        if self.level_mu > mu_before and self.level_spread > 0:
            if spread / self.level_spread > math.sqrt(mu_before / self.level_mu):
                if self.flat_halvings == 0:
                    self.first_flat_mu = mu_before
                self.flat_halvings += 1
                if self.flat_halvings >= NOISE_CONFIRMATIONS:
                    frozen = self.first_flat_mu
            else:
                self.flat_halvings, self.first_flat_mu = 0, 0.0
        self.level_mu, self.level_spread = mu_before, spread
        self.spread_sum, self.spread_count = 0.0, 0
        return frozen


@dataclass
class BatchRecord:
    """What regenerates one told batch's rows of the reuse buffer.

    ``rng_state`` is the generator state before :meth:`ZoAR.ask` drew the batch
    (its directions are drawn again from it); ``None`` for a batch told with
    explicit ``points`` (the caller supplies them again on load).
    """

    tag: int
    center: torch.Tensor
    mu: float
    size: int
    values: torch.Tensor
    rng_state: torch.Tensor | None


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
    options : ZoAROptions, optional
        The settings as one checked object; the keyword settings below build one
        when it is not given (give one or the other).
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
        (the estimate scales like noise / mu): see :class:`NoiseRule`; once noise is
        confirmed ``mu`` is frozen (:attr:`mu_floor`) and only ``lr`` keeps adapting,
        with a step control that decays only after 3 stalled windows in a row.
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
        Seed of the direction generator (drawn from fresh entropy when None, and
        kept in :attr:`seed` so that the run can be saved and resumed).
    dtype, device
        Where all tensors live (float64 on CPU by default).
    window, xtol
        Step-control window (iterations) and relative step tolerance.

    See Also
    --------
    zo_scipy.zoar : the ``scipy.optimize.minimize`` method that drives this optimizer.
    zo_scipy.core.CurvatureZoAR : the same loop with ZoVH's curvature (and a trust-region step).
    zo_scipy.core.state : the state dict's format.

    References
    ----------
    - Junbin Qiu, Zhengpeng Xie, Xiangda Yan, Yongjie Yang, Yao Shu, "Zeroth-Order Optimization
      is Secretly Single-Step Policy Optimization", arXiv:2506.14460, 2025 (the ZoAR paper: the
      averaged baseline and the query reuse).
    - Yurii Nesterov, Vladimir Spokoiny, "Random gradient-free minimization of convex
      functions", Foundations of Computational Mathematics 17, 527-566, 2017.
    - Diederik P. Kingma, Jimmy Ba, "Adam: A Method for Stochastic Optimization",
      arXiv:1412.6980, 2014 (the default update rule).

    Examples
    --------
    Ask for a batch, evaluate it, tell the values (here a whole batch at once):

    >>> import json
    >>> import torch
    >>> from zo_scipy.core import ZoAR
    >>> def f(X):
    ...     return (X ** 2).sum(-1)
    >>> opt = ZoAR(torch.ones(4), seed=0)
    >>> for _ in range(100):
    ...     opt.tell(f(opt.ask()))
    >>> bool(f(opt.x[None])[0] < 0.5), opt.dim, opt.converged, opt.noisy, opt.noise_level
    (True, 4, False, False, None)
    >>> bool(opt.lr > 0 and opt.mu > 0 and opt.reuse_drift >= 0), opt.generator.initial_seed()
    (True, 0)

    A budget that ends in mid-batch: hold the values measured so far; the next ask draws the
    same batch and tell completes it. ``cancel`` forgets an ask whose values never come:

    >>> X = opt.ask()
    >>> opt.hold(f(X[:3]))
    >>> X2 = opt.ask()
    >>> bool(torch.equal(X, X2))
    True
    >>> opt.tell(f(X2[3:]))
    >>> _ = opt.ask()
    >>> opt.cancel()

    The state as JSON-safe data; a rebuilt optimizer continues bit for bit:

    >>> state = json.loads(json.dumps(opt.state_dict()))
    >>> twin = ZoAR.from_state_dict(state)
    >>> bool(torch.equal(twin.ask(), opt.ask()))
    True
    >>> other = ZoAR(torch.ones(4), seed=0)
    >>> other.load_state_dict(state)
    >>> bool(torch.equal(other.x, opt.x))
    True
    """

    def __init__(
        self,
        x0: Any,
        *,
        options: ZoAROptions | None = None,
        lower: torch.Tensor | None = None,
        upper: torch.Tensor | None = None,
        seed: int | None = None,
        dtype: torch.dtype = torch.float64,
        device: torch.device | str = "cpu",
        **settings: Any,
    ) -> None:
        if options is None:
            options = ZoAROptions(**settings)
        elif settings:
            raise TypeError(f"give either options= or the settings {sorted(settings)}, not both")
        elif not isinstance(options, ZoAROptions):
            raise TypeError(f"options must be a ZoAROptions, got {type(options).__name__}")
        self.options = options
        x = torch.as_tensor(x0, dtype=dtype, device=device).detach().clone()
        if x.ndim != 1:
            raise ValueError(f"x0 must be 1-D, got shape {tuple(x.shape)}")
        if not bool(torch.isfinite(x).all()):
            raise ValueError(f"x0 must be finite in the estimator's dtype {dtype} (an entry is NaN, "
                             "inf or beyond its range)")
        self.device = torch.device(device)
        self.dtype = dtype
        self.lower = None if lower is None else bound_in_dtype(lower, dtype, device, up=True)
        self.upper = None if upper is None else bound_in_dtype(upper, dtype, device, up=False)
        self._bounded = self.lower is not None or self.upper is not None
        x = self._project(x)
        scale = problem_scale(x, self.lower, self.upper)
        self.mu0 = options.mu if options.mu is not None else DEFAULT_MU_FRACTION * scale
        lr = options.lr if options.lr is not None else DEFAULT_LR_FRACTION * scale
        for name, val in (("mu", self.mu0), ("lr", lr)):
            if not (val > 0 and math.isfinite(val)):
                raise ValueError(f"option {name!r} must be a positive finite number, got {val}")
        self.adapt_mu = options.resolved_adapt_mu
        self.num_queries = options.num_queries
        self.num_histories = options.num_histories
        self.directions = options.directions
        self.normalization = options.normalization
        self.schedule = options.schedule
        self.update = make_update_rule(options.update, betas=options.betas, eps=options.eps,
                                       bias_correction=options.bias_correction)
        self.history = QueryHistory(options.capacity, x.numel(), dtype=dtype, device=device)
        # A concrete seed even when none was given, so that the state can be saved; drawn
        # from a local generator (never the global one).
        self.seed = int(seed) if seed is not None else int(torch.Generator().seed())
        self._generator: torch.Generator | None = None  # created at the first ask()
        self.control = StepControl(lr=lr, window=options.resolved_window, xtol=options.xtol)
        self.control.anchor = x.clone()
        self.x = x
        self.nit = 0
        self.best_x: torch.Tensor | None = None
        self.best_f = math.inf
        self.n_nonfinite = 0
        self.mu_floor = 0.0
        self.noise = NoiseRule()
        self.records: list[BatchRecord] = []  # the told batches whose rows are in the buffer
        self._pending: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None
        self.held: torch.Tensor | None = None  # values of the next batch's first points (see hold())
        self._last_step_norm = 0.0

    # -- geometry -----------------------------------------------------------------
    def _project(self, x: torch.Tensor) -> torch.Tensor:
        if not self._bounded:
            return x
        return torch.clamp(x, min=self.lower, max=self.upper)

    @property
    def generator(self) -> torch.Generator:
        """The direction generator (seeded by :attr:`seed`)."""
        if self._generator is None:
            self._generator = make_generator(self.seed, self.device)
        return self._generator

    @property
    def lr(self) -> float:
        """The current step size (adapted by the step control)."""
        return self.control.lr

    @property
    def mu(self) -> float:
        """Current smoothing radius (follows ``lr`` when ``adapt_mu``)."""
        if self.adapt_mu and self.schedule == "adaptive":
            # (never 0: an extreme lr0 must not underflow the radius into a division by zero)
            return max(self.mu0 * self.control.lr / self.control.lr0, self.mu_floor, _TINY)
        return self.mu0

    @property
    def dim(self) -> int:
        """The dimension :math:`d` of the iterate."""
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
    def _draw(self, n: int, generator: torch.Generator, center: torch.Tensor,
              mu: float) -> tuple[torch.Tensor, torch.Tensor]:
        """Directions and points of one batch; :meth:`load_state_dict` repeats it exactly."""
        U = sample_directions(n, center.numel(), generator=generator, kind=self.directions,  # type: ignore[arg-type]  # checked by ZoAROptions
                              dtype=self.dtype, device=self.device)
        X = torch.add(center, U, alpha=mu)
        if self._bounded:
            X = self._project(X)
            U = (X - center) / mu  # the direction actually queried
        return U, X

    def ask(self, n: int | None = None) -> torch.Tensor:
        """The next ``n`` (default ``num_queries``) points to evaluate, shape ``(n, d)``."""
        if self._pending is not None:
            raise RuntimeError("ask() called twice: tell() the values of the previous batch first")
        n = self.num_queries if n is None else int(n)
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        if self.held is not None and n <= self.held.numel():
            raise ValueError(f"ask({n}): {self.held.numel()} values of the next batch are held; ask for more")
        rng_state = self.generator.get_state()
        U, X = self._draw(n, self.generator, self.x, self.mu)
        self._pending = (U, X, rng_state)
        return X

    def hold(self, values: Any) -> None:
        """Keep the values of the first ``len(values)`` points of the pending batch and forget
        the ask (the budget ran out in mid-batch). The generator is rewound: the next
        :meth:`ask` draws the same batch, and :meth:`tell` then takes the held values followed
        by those of the remaining points, so a resumed run continues exactly as an
        uninterrupted one. Held values are part of :meth:`state_dict`."""
        if self._pending is None:
            raise RuntimeError("hold() needs a pending ask()")
        v = torch.as_tensor(values, dtype=self.dtype, device=self.device).reshape(-1)
        already = 0 if self.held is None else self.held.numel()
        if not 0 < v.numel() < self._pending[1].shape[0] - already:
            raise ValueError(f"hold() takes 1 to {self._pending[1].shape[0] - already - 1} values, got {v.numel()}")
        held = v if self.held is None else torch.cat([self.held, v])
        self.cancel()
        self.held = held

    def cancel(self) -> None:
        """Forget a pending :meth:`ask` whose values will never come (e.g. the objective
        raised). The generator is rewound, so the next ask draws the same batch: a run
        resumed after an interruption continues as if it had not been interrupted."""
        if self._pending is not None:
            self.generator.set_state(self._pending[2])
        self._pending = None

    def tell(self, values: Any, *, points: Any = None) -> None:
        """Take the values of a batch and take one step.

        Without ``points`` the values belong to the last :meth:`ask` (after any held
        values, see :meth:`hold`: ``values`` may then be only those of the remaining points). With
        ``points`` (shape ``(n, d)``) they were measured at those points instead,
        around the current iterate (e.g. the asked points after rounding, or
        points chosen by a caller such as the Optuna sampler); the estimator then
        uses the directions :math:`(p - x)/\\mu`.

        Non-finite values never become the best point; in the estimator they are
        replaced by the largest finite value seen in the buffer (a penalty that
        pushes away from the region). A batch with no finite value is treated as
        divergence by the step control.
        """
        rng_state: torch.Tensor | None = None
        if points is not None:
            X = torch.as_tensor(points, dtype=self.dtype, device=self.device)
            if X.ndim != 2 or X.shape[1] != self.dim:
                raise ValueError(f"points must have shape (n, {self.dim}), got {tuple(X.shape)}")
            if self._pending is not None and X.shape[0] != self._pending[1].shape[0]:
                raise ValueError(f"points has {X.shape[0]} rows but ask() gave {self._pending[1].shape[0]}")
            U = (X - self.x) / self.mu
        elif self._pending is None:
            raise RuntimeError("tell() called without a pending ask() (or pass points=)")
        else:
            U, X, rng_state = self._pending
        y = torch.as_tensor(values, dtype=self.dtype, device=self.device).reshape(-1)
        if self.held is not None and points is None and y.shape[0] + self.held.numel() == U.shape[0]:
            y = torch.cat([self.held, y])
        if y.shape[0] != U.shape[0]:
            raise ValueError(f"tell() expected {U.shape[0]} values, got {y.shape[0]}")
        self._pending = None
        self.held = None
        tag = self.nit
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
            self.noise.record(float(y[finite].std()))
        self.history.append(U, y)
        self._remember(BatchRecord(tag=tag, center=self.x, mu=self.mu, size=int(y.shape[0]),
                                   values=y.clone(), rng_state=rng_state))
        x_eval = self.x  # the iterate these values were measured around (x is replaced, not mutated)
        if len(self.history) >= 2:
            delta = self.update.step(self._direction(), self.lr)
            self._last_step_norm = float(delta.norm())
            self.x = self._project(self.x - delta)
        self._after_step(float(y.mean()) if n_finite else math.nan, x_eval)

    def _remember(self, record: BatchRecord) -> None:
        """Keep the records of the batches that still have rows in the buffer."""
        self.records.append(record)
        while sum(r.size for r in self.records[1:]) >= self.history.capacity:
            self.records.pop(0)

    def _grow_batch(self, num_queries: int) -> None:
        """Use batches of ``num_queries`` from now on, with a reuse buffer of N + 1 of them.
        The buffer starts empty (its rows are comparable, but a clean start keeps the buffer
        a whole number of batches, which :meth:`state_dict` relies on)."""
        self.num_queries = int(num_queries)
        self.history = QueryHistory((self.num_histories + 1) * self.num_queries, self.dim,
                                    dtype=self.dtype, device=self.device)
        self.records.clear()

    @property
    def noisy(self) -> bool:
        """True once objective noise was detected (``mu`` is frozen at :attr:`mu_floor`)."""
        return self.mu_floor > 0

    @property
    def noise_level(self) -> float | None:
        """The batch spread where noise was detected: about the noise's standard deviation."""
        return self.noise.level_spread if self.noisy else None

    def _forget_history(self) -> None:
        self.history.clear()
        self.records.clear()

    def _direction(self) -> torch.Tensor:
        """The vector the update rule steps along (the ZoAR gradient); the curvature-aware
        optimizer overrides this with its curvature-aware direction."""
        return zoar_gradient(self.history.directions(), self.history.values(), self.mu,
                             normalization=self.normalization)  # type: ignore[arg-type]  # checked by ZoAROptions

    def _after_step(self, batch_mean: float, x_eval: torch.Tensor) -> None:
        if self.schedule != "adaptive":
            return
        mu_before = self.mu
        event = self.control.observe(batch_mean, x_eval)
        if event and self.adapt_mu:
            frozen = self.noise.close_level(mu_before)
            if frozen is not None:
                self.mu_floor = max(self.mu_floor, frozen)
                self.control.patience = NOISY_PATIENCE
        grow = (event in ("decay", "restore") and self.noisy and math.isfinite(batch_mean)
                and self.num_queries < self.options.resolved_max_queries)
        if grow:
            # A noise floor: a stalled or worsening run has a noisy estimate, and a smaller
            # step only slows it down; more queries per step lower the noise. Double the
            # batch instead of halving the step (a restore still returns to the anchor).
            self.control.undo_decay()
            self._grow_batch(min(2 * self.num_queries, self.options.resolved_max_queries))
        if event == "restore":
            assert self.control.anchor is not None
            self.x = self.control.anchor.clone()
            self._forget_history()
            self.update.reset()
        elif self.mu != mu_before and not grow:
            # Values taken at another mu differ by ~mu^2 tr(H)/2: not comparable, drop them.
            self._forget_history()

    # -- state as data ------------------------------------------------------------
    def _extra_settings(self) -> dict[str, Any]:
        """Constructor settings beyond :class:`ZoAROptions` (subclasses add theirs)."""
        return {}

    def _batch_range(self) -> tuple[int, int]:
        """The smallest and largest batch a valid state can hold."""
        return self.options.num_queries, self.options.resolved_max_queries

    def _extra_state(self) -> dict[str, Any]:
        """A subclass's own state (JSON-safe; ``{}`` here), stored under ``extra``."""
        return {}

    def _read_extra_state(self, r: Any) -> Any:
        """Check the ``extra`` field (a reader of :mod:`zo_scipy.core.state`) and return what
        :meth:`_apply_extra_state` installs once every field is valid."""
        if r.data:
            from .state import StateError

            raise StateError(f"state field 'extra' must be empty for {type(self).__name__}, got keys {sorted(r.data)}")
        return None

    def _apply_extra_state(self, extra: Any) -> None:
        """Install what :meth:`_read_extra_state` returned."""

    def state_dict(self) -> dict[str, Any]:
        """Everything that determines the next step, as a versioned JSON-safe dict.

        A pending :meth:`ask` is not part of it: the restored optimizer asks the
        same batch again. See :mod:`zo_scipy.core.state` for the format.
        """
        from .state import dump_zoar

        return dump_zoar(self)

    def load_state_dict(self, state: Mapping[str, Any], *, points: PointsSource | None = None) -> None:
        """Replace this optimizer's state by ``state`` (from :meth:`state_dict`).

        ``points`` gives, by tag, the points of batches that were told with
        ``points=`` (their directions are not stored). Every field is checked;
        :class:`~zo_scipy.core.state.StateError` names the first bad one.
        """
        from .state import load_zoar

        load_zoar(self, state, points=points)

    @classmethod
    def from_state_dict(cls, state: Mapping[str, Any], *, points: PointsSource | None = None,
                        device: torch.device | str | None = None) -> ZoAR:
        """A new optimizer continuing from ``state`` (optionally on another ``device``)."""
        from .state import build_zoar

        return build_zoar(cls, state, points=points, device=device)

    # -- pickling: torch.Generator state is saved explicitly ----------------------
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        gen = self._generator
        state["_generator"] = None if gen is None else gen.get_state()
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        gstate = state.get("_generator")
        self.__dict__.update(state)
        self._generator = None
        if gstate is not None:
            self.generator.set_state(gstate)
