r"""Update rules: small stateful maps from a gradient estimate to a step.

Each rule returns the displacement :math:`\Delta` with :math:`x \leftarrow x - \Delta`
and keeps its moments as tensors, so rules pickle with the optimizer.

- ``sgd``:    :math:`\Delta = \eta g`
- ``adam``:   :math:`m \leftarrow \beta_1 m + (1-\beta_1) g`,
  :math:`v \leftarrow \beta_2 v + (1-\beta_2) g^2`,
  :math:`\Delta = \eta \hat m / (\sqrt{\hat v} + \epsilon)`
- ``radazo``: as adam but :math:`v` tracks the *updated* first moment,
  :math:`v \leftarrow \beta_2 v + (1-\beta_2) m^2` (the ZoAR paper's rule).

``bias_correction`` divides the moments by :math:`1-\beta^t` (Adam's correction).
The authors run adam/radazo without it, which makes the first radazo step about
:math:`10 \eta\, \mathrm{sign}(g)` (docs/zoar.md); ``bias_correction=False``
reproduces that.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import torch

UPDATE_RULES: tuple[str, ...] = ("sgd", "adam", "radazo")


class UpdateRule(ABC):
    """Base class: ``step(g, lr)`` returns the displacement; ``reset()`` forgets moments."""

    @abstractmethod
    def step(self, g: torch.Tensor, lr: float) -> torch.Tensor:
        """Displacement :math:`\\Delta` for gradient estimate ``g`` and step size ``lr``."""

    def reset(self) -> None:
        """Forget all accumulated state."""


@dataclass
class SGD(UpdateRule):
    """Plain stochastic gradient step :math:`\\Delta = \\eta g`."""

    def step(self, g: torch.Tensor, lr: float) -> torch.Tensor:
        return g * lr


@dataclass
class Adam(UpdateRule):
    """Adam (``second_moment="g"``) or RadaZO (``second_moment="m"``)."""

    betas: tuple[float, float] = (0.9, 0.99)
    eps: float = 1e-8
    bias_correction: bool = True
    second_moment: str = "g"
    t: int = 0
    m: torch.Tensor | None = field(default=None, repr=False)
    v: torch.Tensor | None = field(default=None, repr=False)

    def step(self, g: torch.Tensor, lr: float) -> torch.Tensor:
        b1, b2 = self.betas
        if self.m is None or self.v is None:
            self.m = torch.zeros_like(g)
            self.v = torch.zeros_like(g)
        self.t += 1
        self.m.mul_(b1).add_(g, alpha=1 - b1)
        src = g if self.second_moment == "g" else self.m
        self.v.mul_(b2).addcmul_(src, src, value=1 - b2)
        if self.bias_correction:
            mhat_scale = 1.0 / (1 - b1**self.t)
            vhat_scale = 1.0 / (1 - b2**self.t)
            denom = (self.v * vhat_scale).sqrt_().add_(self.eps)
            return self.m * (lr * mhat_scale) / denom
        return self.m * lr / self.v.sqrt().add_(self.eps)

    def reset(self) -> None:
        self.t, self.m, self.v = 0, None, None


def make_update_rule(
    name: str | UpdateRule,
    *,
    betas: tuple[float, float] = (0.9, 0.99),
    eps: float = 1e-8,
    bias_correction: bool = True,
) -> UpdateRule:
    """Build an update rule by name (``"sgd"``, ``"adam"``, ``"radazo"``) or pass one through."""
    if isinstance(name, UpdateRule):
        return name
    if name == "sgd":
        return SGD()
    if name in ("adam", "radazo"):
        return Adam(betas=(float(betas[0]), float(betas[1])), eps=eps, bias_correction=bias_correction,
                    second_moment="g" if name == "adam" else "m")
    raise ValueError(f"update must be one of {UPDATE_RULES} or an UpdateRule, got {name!r}")
