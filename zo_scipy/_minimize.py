"""``zo_scipy.minimize``: SciPy's ``minimize`` that also knows our methods by name."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import scipy.optimize
from scipy.optimize import OptimizeResult

#: Our methods by name; ``zo_scipy.minimize(..., method="zoar")`` looks them up here.
METHODS: dict[str, Callable[..., OptimizeResult]] = {}


def register_method(name: str, method: Callable[..., OptimizeResult]) -> None:
    """Make ``method`` reachable as ``zo_scipy.minimize(..., method=name)`` (case-insensitive)."""
    METHODS[name.lower()] = method


def minimize(fun: Callable[..., Any], x0: Any, args: Any = (), method: Any = None, **kwargs: Any) -> OptimizeResult:
    """:func:`scipy.optimize.minimize` with ``method="zoar"`` (and our other methods)
    accepted by name; every other method is passed through to SciPy unchanged."""
    if isinstance(method, str) and method.lower() in METHODS:
        method = METHODS[method.lower()]
    return scipy.optimize.minimize(fun, x0, args=args, method=method, **kwargs)
