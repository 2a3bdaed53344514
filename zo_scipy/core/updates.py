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
    r"""Base class of the update rules: a map from a gradient estimate to a step.

    ``step(g, lr)`` returns the displacement :math:`\Delta` (the caller applies
    :math:`x \leftarrow x - \Delta`); ``reset()`` forgets the accumulated moments.
    Subclass it to plug a rule of your own into :class:`zo_scipy.ZoAR`
    (``update=MyRule()``).

    See Also
    --------
    SGD, Adam : the rules shipped with the core.
    make_update_rule : a rule by name.

    Notes
    -----
    A rule keeps its state as tensors, so that an optimizer holding it pickles and
    its state can be saved (:meth:`zo_scipy.ZoAR.state_dict`).

    References
    ----------
    - Junbin Qiu, Zhengpeng Xie, Xiangda Yan, Yongjie Yang, Yao Shu, "Zeroth-Order Optimization
      is Secretly Single-Step Policy Optimization", arXiv:2506.14460, 2025 (the ZoAR paper).

    Examples
    --------
    >>> import torch
    >>> from zo_scipy.core import UpdateRule
    >>> class Clipped(UpdateRule):
    ...     def step(self, g, lr):
    ...         return lr * g.clamp(-1.0, 1.0)
    >>> rule = Clipped()
    >>> rule.step(torch.tensor([0.5, -3.0]), 0.1)
    tensor([ 0.0500, -0.1000])
    >>> rule.reset()                          # the default: nothing to forget
    """

    @abstractmethod
    def step(self, g: torch.Tensor, lr: float) -> torch.Tensor:
        r"""The displacement :math:`\Delta` for the gradient estimate ``g`` and step size ``lr``.

        Parameters
        ----------
        g : torch.Tensor
            Gradient estimate, shape ``(d,)``.
        lr : float
            Step size :math:`\eta`.

        Returns
        -------
        torch.Tensor
            :math:`\Delta`, shape ``(d,)``; the caller sets :math:`x \leftarrow x - \Delta`.
        """

    def reset(self) -> None:
        """Forget all accumulated state (moments, step count)."""


@dataclass
class SGD(UpdateRule):
    r"""Plain stochastic gradient step :math:`\Delta = \eta g` (``update="sgd"``).

    See Also
    --------
    Adam : adaptive per-coordinate steps (the default of ``zoar``).
    make_update_rule : a rule by name.

    Notes
    -----
    With the ZoAR gradient :math:`g` this is the stochastic-approximation iteration
    :math:`x_{t+1} = x_t - \eta g_t` on the Gaussian smoothing
    :math:`F_\mu(x) = E f(x + \mu u)`.

    References
    ----------
    - Herbert Robbins, Sutton Monro, "A Stochastic Approximation Method", Annals of
      Mathematical Statistics 22(3), 400-407, 1951.
    - Yurii Nesterov, Vladimir Spokoiny, "Random gradient-free minimization of convex
      functions", Foundations of Computational Mathematics 17, 527-566, 2017.

    Examples
    --------
    >>> import torch
    >>> from zo_scipy.core import SGD
    >>> SGD().step(torch.tensor([1.0, -2.0]), 0.1)
    tensor([ 0.1000, -0.2000])
    """

    def step(self, g: torch.Tensor, lr: float) -> torch.Tensor:
        return g * lr


@dataclass
class Adam(UpdateRule):
    r"""Adam (``second_moment="g"``) or RadaZO (``second_moment="m"``).

    Parameters
    ----------
    betas : tuple of float
        :math:`(\beta_1, \beta_2)`, the decay rates of the first and second moments.
    eps : float
        Added to :math:`\sqrt{\hat v}` in the denominator.
    bias_correction : bool
        Divide the moments by :math:`1 - \beta^t` (Adam's correction). The ZoAR authors'
        code runs without it.
    second_moment : {"g", "m"}
        ``"g"``: :math:`v` tracks :math:`g^2` (Adam); ``"m"``: :math:`v` tracks the updated
        first moment :math:`m^2` (RadaZO, the ZoAR paper's rule).
    t : int
        Steps taken so far.
    m, v : torch.Tensor, optional
        The moments (allocated on the first step).

    See Also
    --------
    SGD : the plain step.
    make_update_rule : ``"adam"`` and ``"radazo"`` by name.

    Notes
    -----
    .. math::
        m \leftarrow \beta_1 m + (1-\beta_1) g, \qquad
        v \leftarrow \beta_2 v + (1-\beta_2) s^2, \qquad
        \Delta = \eta\, \hat m / (\sqrt{\hat v} + \epsilon),

    with :math:`s = g` (Adam) or :math:`s = m` (RadaZO), and
    :math:`\hat m = m / (1 - \beta_1^t)`, :math:`\hat v = v / (1 - \beta_2^t)` when
    ``bias_correction`` is on (else :math:`\hat m = m`, :math:`\hat v = v`).

    References
    ----------
    - Diederik P. Kingma, Jimmy Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015,
      arXiv:1412.6980.
    - Junbin Qiu, Zhengpeng Xie, Xiangda Yan, Yongjie Yang, Yao Shu, "Zeroth-Order Optimization
      is Secretly Single-Step Policy Optimization", arXiv:2506.14460, 2025 (the ZoAR paper; RadaZO).

    Examples
    --------
    The first bias-corrected Adam step is :math:`\eta\, \mathrm{sign}(g)` (up to ``eps``):

    >>> import torch
    >>> from zo_scipy.core import Adam
    >>> rule = Adam()
    >>> rule.step(torch.tensor([3.0, -0.2]), 0.01)
    tensor([ 0.0100, -0.0100])
    >>> rule.t
    1
    >>> rule.reset(); rule.t, rule.m
    (0, None)
    """

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
    r"""Build an update rule by name (``"sgd"``, ``"adam"``, ``"radazo"``) or pass one through.

    Parameters
    ----------
    name : {"sgd", "adam", "radazo"} or UpdateRule
        The rule; an :class:`UpdateRule` instance is returned as it is.
    betas, eps, bias_correction
        Passed to :class:`Adam` for ``"adam"`` and ``"radazo"``; ignored for ``"sgd"``.

    Returns
    -------
    UpdateRule
        A new rule (or ``name`` itself when it is a rule).

    Raises
    ------
    ValueError
        ``name`` is neither a known name nor an :class:`UpdateRule`.

    See Also
    --------
    SGD, Adam : the rules built here.

    Notes
    -----
    ``"radazo"`` is :class:`Adam` with ``second_moment="m"``:
    :math:`v \leftarrow \beta_2 v + (1-\beta_2) m^2`.

    References
    ----------
    - Diederik P. Kingma, Jimmy Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015,
      arXiv:1412.6980.
    - Junbin Qiu, Zhengpeng Xie, Xiangda Yan, Yongjie Yang, Yao Shu, "Zeroth-Order Optimization
      is Secretly Single-Step Policy Optimization", arXiv:2506.14460, 2025 (the ZoAR paper).

    Examples
    --------
    >>> from zo_scipy.core import make_update_rule
    >>> make_update_rule("radazo").second_moment
    'm'
    >>> make_update_rule("lbfgs")
    Traceback (most recent call last):
    ...
    ValueError: update must be one of ('sgd', 'adam', 'radazo') or an UpdateRule, got 'lbfgs'
    """
    if isinstance(name, UpdateRule):
        return name
    if name == "sgd":
        return SGD()
    if name in ("adam", "radazo"):
        return Adam(betas=(float(betas[0]), float(betas[1])), eps=eps, bias_correction=bias_correction,
                    second_moment="g" if name == "adam" else "m")
    raise ValueError(f"update must be one of {UPDATE_RULES} or an UpdateRule, got {name!r}")
