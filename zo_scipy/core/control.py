r"""Step-size control from the function values the estimator already has.

Every iteration evaluates :math:`K` points :math:`x_t + \mu u_k`; their mean is an
unbiased estimate of :math:`F_\mu(x_t)` that costs nothing extra. The controller
averages these batch means over windows of ``window`` iterations and compares
consecutive windows:

- the window improved: keep going; after ``grow_after`` improving windows in a
  row multiply ``lr`` by ``growth`` (recovers from an initial step that is too
  small for the problem's scale, and from decays caused by noisy comparisons);
- it did not, ``patience`` times in a row: multiply ``lr`` by ``decay`` (the
  fixed-lr noise floor of normalized updates, docs/zoar.md, is left by
  shrinking the step). ``patience`` is 1 on noise-free problems; the ZoAR
  optimizer raises it once it detects objective noise, where comparisons of
  window means are close to coin flips and a decay on every tie would collapse
  ``lr`` geometrically;
- it got worse than the best window by more than ``restore_sigmas`` times the
  window's own spread, or a whole batch was non-finite: the run is diverging.
  Return to the anchor (``restore``): the iterate with the lowest batch mean in
  the best window; the caller forgets its reuse buffer and moments; ``lr`` decays.

``converged`` is set once ``lr`` fell below ``xtol`` times its initial value.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch


@dataclass
class StepControl:
    r"""Window-based step-size controller from the batch means the estimator already has.

    Parameters
    ----------
    lr : float
        Initial step size (changed in place by the controller).
    window : int
        Iterations per window of batch means.
    decay, growth : float
        Factors applied to ``lr`` on a stall and after ``grow_after`` improving windows.
    grow_after : int
        Improving windows in a row before ``lr`` grows.
    restore_sigmas : float
        A window worse than the best by more than this many spreads is a divergence.
    xtol : float
        ``converged`` once ``lr <= xtol * lr0``.
    patience : int
        Stalled windows in a row before a decay (raised by ZoAR under noise).

    See Also
    --------
    zo_scipy.ZoAR : the optimizer that feeds it one batch mean per iteration.

    Notes
    -----
    The mean of the :math:`K` values :math:`f(x_t + \mu u_k)` is an unbiased estimate of
    the smoothed objective :math:`F_\mu(x_t) = E f(x_t + \mu u)`. Windows of these means
    are compared: an improvement keeps ``lr`` (growing it after ``grow_after`` of them), a
    stall decays it, a jump above the best window by more than ``restore_sigmas`` spreads
    returns to the best window's iterate (``anchor``). See the module notes above for the
    full rule.

    References
    ----------
    - Junbin Qiu, Zhengpeng Xie, Xiangda Yan, Yongjie Yang, Yao Shu, "Zeroth-Order Optimization
      is Secretly Single-Step Policy Optimization", arXiv:2506.14460, 2025 (the ZoAR paper).
    - Yurii Nesterov, Vladimir Spokoiny, "Random gradient-free minimization of convex
      functions", Foundations of Computational Mathematics 17, 527-566, 2017 (the smoothing
      :math:`F_\mu`).

    Examples
    --------
    >>> import torch
    >>> from zo_scipy.core import StepControl
    >>> c = StepControl(lr=0.1, window=2)
    >>> x = torch.zeros(3)
    >>> [c.observe(m, x) for m in (10.0, 9.0, 8.0, 7.0, 8.0, 9.0)]  # improve, then stall
    ['', '', '', '', '', 'decay']
    >>> c.lr, c.converged
    (0.05, False)
    >>> c.undo_decay(); c.lr                  # the caller handled the stall another way
    0.1
    """

    lr: float
    window: int = 4
    decay: float = 0.5
    growth: float = 1.25
    grow_after: int = 3
    restore_sigmas: float = 4.0
    xtol: float = 1e-7
    patience: int = 1
    lr0: float = field(init=False)
    best: float = field(default=math.inf, init=False)
    anchor: torch.Tensor | None = field(default=None, init=False, repr=False)
    n_decays: int = field(default=0, init=False)
    n_restores: int = field(default=0, init=False)
    _prev: float = field(default=math.inf, init=False)
    _means: list[float] = field(default_factory=list, init=False, repr=False)
    _streak: int = field(default=0, init=False)
    _fails: int = field(default=0, init=False)
    _win_best: float = field(default=math.inf, init=False)
    _win_x: torch.Tensor | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.lr0 = self.lr

    @property
    def converged(self) -> bool:
        """``lr`` fell below ``xtol`` times its initial value."""
        return self.lr <= self.xtol * self.lr0

    def observe(self, batch_mean: float, x: torch.Tensor) -> str:
        """Record one iteration's batch mean, measured around iterate ``x``.

        Parameters
        ----------
        batch_mean : float
            Mean of the iteration's values (non-finite: a divergence).
        x : torch.Tensor
            The iterate the batch was drawn around (copied when it becomes the anchor).

        Returns
        -------
        str
            The event: ``"restore"`` (return to :attr:`anchor` and forget the
            history and moments), ``"decay"`` or ``"grow"`` (``lr`` changed) or ``""``.
        """
        if not math.isfinite(batch_mean):
            return self._diverged()
        self._means.append(batch_mean)
        if batch_mean < self._win_best:
            self._win_best, self._win_x = batch_mean, x.detach().clone()
        if len(self._means) < self.window:
            return ""
        means, self._means = self._means, []
        wm = sum(means) / len(means)
        spread = sum(abs(m - wm) for m in means) / len(means)
        win_x, self._win_best, self._win_x = self._win_x, math.inf, None
        if wm < self.best:
            self.best = wm
            self.anchor = win_x
        if wm < self._prev:
            self._fails = 0
            self._streak += 1
            if self._streak >= self.grow_after and self.growth != 1.0:
                self.lr *= self.growth
                self._streak = 0
                self._prev = wm
                return "grow"
        else:
            self._streak = 0
            if wm - self.best > self.restore_sigmas * spread and self.anchor is not None:
                self._prev = math.inf
                return self._diverged()
            self._fails += 1
            if self._fails >= self.patience:
                self._fails = 0
                self._decay()
                self._prev = wm
                return "decay"
        self._prev = wm
        return ""

    def undo_decay(self) -> None:
        """Take back the last decay (the caller reacted to the stall in another way)."""
        self.lr /= self.decay
        self.n_decays -= 1

    def _decay(self) -> None:
        self.lr *= self.decay
        self.n_decays += 1

    def _diverged(self) -> str:
        self._means, self._win_best, self._win_x = [], math.inf, None
        self._streak = self._fails = 0
        self._decay()
        self.n_restores += 1
        return "restore"
