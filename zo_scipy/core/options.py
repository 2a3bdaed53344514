r"""ZoAR's options, validated once, and the checks every front end shares.

:class:`ZoAROptions` is the one place where the algorithm's settings are
checked: :func:`zo_scipy.zoar`, :class:`~zo_scipy.core.zoar.ZoAR`, the Optuna
sampler and the torch optimizers build one and read their settings from it.
Front-end specific input (SciPy bounds and callbacks, Optuna distributions)
stays in the front end. Messages name the option (``option 'lr' must be ...``).
No SciPy import here: the core runs without it.
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
import torch

from .directions import DIRECTION_KINDS
from .updates import UPDATE_RULES, UpdateRule

SCHEDULES: tuple[str, ...] = ("adaptive", "constant")
NORMALIZATIONS: tuple[str, ...] = ("unbiased", "authors")
#: Default growth limit of the batch size once noise is detected (``max_queries``).
NOISY_GROWTH = 8
#: The generator seed is a 64-bit unsigned integer in torch.
MAX_SEED = 2**64 - 1


# -- single-value checks (messages name the option) --------------------------------------
def check_int(name: str, value: Any, minimum: int, *, allow_none: bool = False) -> int | None:
    """``value`` as an int ``>= minimum`` (``None`` passes when ``allow_none``)."""
    if value is None and allow_none:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) or int(value) < minimum:
        raise ValueError(f"option {name!r} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_count(name: str, value: Any, minimum: int) -> int:
    """:func:`check_int` for a value that may not be None."""
    out = check_int(name, value, minimum)
    assert out is not None
    return out


def check_positive(name: str, value: Any, *, allow_none: bool = False, allow_zero: bool = False) -> float | None:
    """``value`` as a positive (or non-negative) finite float."""
    if value is None and allow_none:
        return None
    ok = isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)) and math.isfinite(value)
    if not ok or float(value) < 0 or (float(value) == 0 and not allow_zero):
        need = "a finite number >= 0" if allow_zero else "a positive finite number"
        raise ValueError(f"option {name!r} must be {need}, got {value!r}")
    return float(value)


def check_real(name: str, value: Any, *, allow_zero: bool = False) -> float:
    """:func:`check_positive` for a value that may not be None."""
    out = check_positive(name, value, allow_zero=allow_zero)
    assert out is not None
    return out


def check_choice(name: str, value: Any, choices: Sequence[str]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"option {name!r} must be one of {tuple(choices)}, got {value!r}")
    return value


def check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"option {name!r} must be True or False, got {value!r}")
    return bool(value)


def check_betas(value: Any) -> tuple[float, float]:
    try:
        b1, b2 = (float(b) for b in value)
    except (TypeError, ValueError):
        raise ValueError(f"option 'betas' must be a pair (beta1, beta2), got {value!r}") from None
    if not (0 <= b1 < 1 and 0 <= b2 < 1):
        raise ValueError(f"option 'betas' must lie in [0, 1), got {value!r}")
    return b1, b2


def resolve_seed(seed: Any, rng: Any = None) -> int | None:
    """One integer seed from ``seed`` or SciPy's ``rng`` (an int or a ``numpy.random.Generator``)."""
    if seed is not None and rng is not None:
        raise ValueError("give either option 'seed' or option 'rng', not both")
    if rng is not None:
        if isinstance(rng, np.random.Generator):
            return int(rng.integers(2**63 - 1))
        if isinstance(rng, numbers.Integral) and not isinstance(rng, (bool, np.bool_)):
            if not 0 <= int(rng) <= MAX_SEED:
                raise ValueError(f"option 'rng' must lie in [0, 2**64 - 1], got {rng!r}")
            return int(rng)
        raise ValueError(f"option 'rng' must be an int or a numpy.random.Generator, got {rng!r}")
    if seed is None:
        return None
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral) or not 0 <= int(seed) <= MAX_SEED:
        raise ValueError(f"option 'seed' must be an integer in [0, 2**64 - 1] or None, got {seed!r}")
    return int(seed)


def resolve_device(device: Any) -> torch.device:
    """``"cpu"``, ``"cuda"``, ``"auto"`` or a ``torch.device``; CUDA must be available."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"option 'device' must be 'cpu', 'cuda', 'auto' or a torch.device, got {device!r}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"option 'device' is {device!r} but CUDA is not available here; use 'cpu' or 'auto'")
    return dev


_DTYPES = {"float64": torch.float64, "float32": torch.float32, "double": torch.float64, "float": torch.float32}


def resolve_dtype(dtype: Any) -> torch.dtype:
    """The estimator's floating dtype: float64 (default) or float32."""
    if isinstance(dtype, torch.dtype) and dtype in (torch.float64, torch.float32):
        return dtype
    if isinstance(dtype, str) and dtype in _DTYPES:
        return _DTYPES[dtype]
    if dtype in (np.float64, np.float32):
        return torch.float64 if dtype is np.float64 else torch.float32
    raise ValueError(f"option 'dtype' must be 'float64' or 'float32', got {dtype!r}")


def default_window(num_queries: int) -> int:
    """Step-control window: enough iterations for about 40 evaluations, at least 4."""
    return max(4, math.ceil(40 / num_queries))


# -- the options object ------------------------------------------------------------------
@dataclass(frozen=True)
class ZoAROptions:
    r"""The settings of a ZoAR run, checked on construction.

    Parameters
    ----------
    num_queries : int
        :math:`K`, new queries per iteration (>= 1).
    num_histories : int
        :math:`N`, past iterations whose queries are reused (>= 0); the buffer
        holds :math:`M = (N+1)K >= 2` values (the averaged baseline needs two).
    mu, lr : float or None
        Smoothing radius and step size; ``None`` lets the optimizer scale its
        defaults by the problem's length scale.
    adapt_mu : bool or None
        Let ``mu`` follow ``lr``; ``None``: True exactly when ``mu`` is automatic.
    update : {"adam", "radazo", "sgd"} or UpdateRule
    betas, eps, bias_correction
        Moment parameters of adam/radazo.
    schedule : {"adaptive", "constant"}
    directions : {"gaussian", "sphere", "orthogonal"}
    normalization : {"unbiased", "authors"}
    window : int or None
        Step-control window in iterations; ``None``: :func:`default_window`.
    xtol : float
        Relative step tolerance of the adaptive schedule, in [0, 1).
    max_queries : int or None
        Once objective noise is detected, a stalled step control doubles the batch size
        (up to ``max_queries``) instead of halving the step: averaging more queries is
        what lowers the noise of the estimate. ``None``: 8 ``num_queries``;
        ``max_queries=num_queries`` keeps the batch fixed.

    Raises
    ------
    ValueError
        An option out of range or of the wrong kind; the message names the option.

    See Also
    --------
    zo_scipy.ZoAR : the optimizer these options configure.
    zo_scipy.zoar : the SciPy method (its options are these plus the SciPy ones).

    Notes
    -----
    Frozen and validated once: every front end (the SciPy methods, the Optuna sampler,
    the torch optimizers) builds one of these, so an option is checked and named the
    same way everywhere. :meth:`to_dict` / :meth:`from_dict` make it part of a saved
    state.

    References
    ----------
    - Junbin Qiu, Zhengpeng Xie, Xiangda Yan, Yongjie Yang, Yao Shu, "Zeroth-Order Optimization
      is Secretly Single-Step Policy Optimization", arXiv:2506.14460, 2025 (the ZoAR paper).
    - Yurii Nesterov, Vladimir Spokoiny, "Random gradient-free minimization of convex
      functions", Foundations of Computational Mathematics 17, 527-566, 2017.

    Examples
    --------
    >>> from zo_scipy.core import ZoAROptions
    >>> opts = ZoAROptions(num_queries=4, num_histories=2)
    >>> opts.capacity, opts.resolved_max_queries, opts.resolved_adapt_mu, opts.resolved_window
    (12, 32, True, 10)
    >>> opts.as_kwargs()["num_histories"]
    2
    >>> opts.replace(lr=0.01).lr
    0.01
    >>> ZoAROptions.from_dict(opts.to_dict()) == opts
    True
    >>> ZoAROptions(num_queries=0)
    Traceback (most recent call last):
    ...
    ValueError: option 'num_queries' must be an integer >= 1, got 0
    """

    num_queries: int = 10
    num_histories: int = 2
    mu: float | None = None
    lr: float | None = None
    adapt_mu: bool | None = None
    update: str | UpdateRule = "adam"
    betas: tuple[float, float] = (0.9, 0.99)
    eps: float = 1e-8
    bias_correction: bool = True
    schedule: str = "adaptive"
    directions: str = "gaussian"
    normalization: str = "unbiased"
    window: int | None = None
    xtol: float = 1e-7
    max_queries: int | None = None

    def __post_init__(self) -> None:
        put = object.__setattr__  # frozen: normalise the values once, here
        put(self, "num_queries", check_count("num_queries", self.num_queries, 1))
        put(self, "num_histories", check_count("num_histories", self.num_histories, 0))
        if self.num_queries * (self.num_histories + 1) < 2:
            raise ValueError("options 'num_queries' * ('num_histories' + 1) must be >= 2: the "
                             "averaged baseline needs at least two values")
        put(self, "mu", check_positive("mu", self.mu, allow_none=True))
        put(self, "lr", check_positive("lr", self.lr, allow_none=True))
        if self.adapt_mu is not None:
            put(self, "adapt_mu", check_bool("adapt_mu", self.adapt_mu))
        if not isinstance(self.update, UpdateRule):
            put(self, "update", check_choice("update", self.update, UPDATE_RULES))
        put(self, "betas", check_betas(self.betas))
        put(self, "eps", check_real("eps", self.eps))
        put(self, "bias_correction", check_bool("bias_correction", self.bias_correction))
        put(self, "schedule", check_choice("schedule", self.schedule, SCHEDULES))
        put(self, "directions", check_choice("directions", self.directions, DIRECTION_KINDS))
        put(self, "normalization", check_choice("normalization", self.normalization, NORMALIZATIONS))
        put(self, "window", check_int("window", self.window, 1, allow_none=True))
        put(self, "xtol", check_real("xtol", self.xtol, allow_zero=True))
        put(self, "max_queries", check_int("max_queries", self.max_queries, self.num_queries, allow_none=True))
        if self.xtol >= 1:  # lr <= xtol * lr0 would hold before the first step
            raise ValueError(f"option 'xtol' is a fraction of the initial step size and must be < 1, "
                             f"got {self.xtol!r}")

    @property
    def capacity(self) -> int:
        """:math:`M = (N+1)K`, the size of the reuse buffer."""
        return (self.num_histories + 1) * self.num_queries

    @property
    def resolved_max_queries(self) -> int:
        """``max_queries``, or its default 8 ``num_queries`` when it is ``None``."""
        return self.max_queries if self.max_queries is not None else NOISY_GROWTH * self.num_queries

    @property
    def resolved_window(self) -> int:
        """``window``, or :func:`default_window` of ``num_queries`` when it is ``None``."""
        return self.window if self.window is not None else default_window(self.num_queries)

    @property
    def resolved_adapt_mu(self) -> bool:
        """``adapt_mu``, or (when it is ``None``) whether ``mu`` is automatic."""
        return (self.mu is None) if self.adapt_mu is None else bool(self.adapt_mu)

    def replace(self, **changes: Any) -> ZoAROptions:
        """A copy with ``changes`` applied (and checked)."""
        return type(self)(**{**self.as_kwargs(), **changes})

    def as_kwargs(self) -> dict[str, Any]:
        """Every field by name, as keyword arguments of the constructor."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (built-in update rules only)."""
        if isinstance(self.update, UpdateRule):
            raise TypeError("a custom UpdateRule instance cannot be stored as data; use one of "
                            f"{UPDATE_RULES} or pickle the optimizer instead")
        out = asdict(self)
        out["betas"] = list(self.betas)
        return out

    @classmethod
    def from_dict(cls, data: Any) -> ZoAROptions:
        """Rebuild from :meth:`to_dict`; unknown or missing keys raise ``ValueError``."""
        if not isinstance(data, dict):
            raise ValueError(f"options must be a mapping, got {type(data).__name__}")
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        missing = sorted(names - set(data))
        if unknown or missing:
            raise ValueError(f"options: unknown keys {unknown}, missing keys {missing}")
        kwargs = dict(data)
        kwargs["betas"] = tuple(kwargs["betas"]) if isinstance(kwargs["betas"], list) else kwargs["betas"]
        return cls(**kwargs)
