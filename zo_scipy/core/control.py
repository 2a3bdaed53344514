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
    """Window-based step-size controller; see the module docstring."""

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
        return self.lr <= self.xtol * self.lr0

    def observe(self, batch_mean: float, x: torch.Tensor) -> str:
        """Record one iteration's batch mean, measured around iterate ``x``.

        Returns the event: ``"restore"`` (return to :attr:`anchor` and forget the
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
