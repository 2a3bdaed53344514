"""SciPy-specific input parsing: unknown options, bounds, x0 and callbacks.

The algorithm's options and the seed/device/dtype checks are the core's
(:mod:`zo_scipy.core.options`); they are re-exported here for the SciPy front ends.
Messages name the argument.
"""
from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.optimize import Bounds, OptimizeWarning

from .core.options import (  # noqa: F401  (re-exported for the SciPy front ends)
    check_betas, check_bool, check_choice, check_count, check_int, check_positive, check_real,
    resolve_device, resolve_dtype, resolve_seed,
)


def check_unknown_options(unknown: dict[str, Any], method: str) -> None:
    """Warn like SciPy's own methods about options nobody reads."""
    if unknown:
        names = ", ".join(map(str, unknown))
        warnings.warn(f"Unknown solver options for {method}: {names}", OptimizeWarning, stacklevel=4)


def check_x0(x0: Any) -> np.ndarray:
    """``x0`` as a float64 array (any shape, at least one element, all finite)."""
    try:
        arr = np.asarray(x0)
    except Exception as exc:  # ragged lists and the like
        raise ValueError(f"x0 must be a real numeric array: {exc}") from None
    if arr.dtype == object or arr.dtype.kind not in "biuf":
        raise ValueError(f"x0 must be a real numeric array, got dtype {arr.dtype}")
    arr = np.atleast_1d(arr).astype(np.float64)
    if arr.size == 0:
        raise ValueError("x0 must have at least one element")
    if not np.all(np.isfinite(arr)):
        raise ValueError("x0 contains NaN or inf")
    return arr


def standardize_bounds(bounds: Any, n: int) -> tuple[np.ndarray, np.ndarray] | None:
    """``(lower, upper)`` arrays of length ``n`` from a ``Bounds``, pairs or None."""
    if bounds is None:
        return None
    if isinstance(bounds, Bounds):
        try:
            lbs, ubs = np.asarray(bounds.lb, dtype=float), np.asarray(bounds.ub, dtype=float)
        except (TypeError, ValueError):
            raise ValueError(f"bounds must hold real numbers, got lb={bounds.lb!r:.60}, ub={bounds.ub!r:.60}") from None
        lb = np.broadcast_to(lbs, (n,)).copy() if np.size(lbs) in (1, n) else None
        ub = np.broadcast_to(ubs, (n,)).copy() if np.size(ubs) in (1, n) else None
        if lb is None or ub is None:
            raise ValueError(f"bounds has {np.size(bounds.lb)} lower and {np.size(bounds.ub)} upper "
                             f"entries but x0 has {n} elements")
    else:
        try:
            pairs = list(bounds)
        except TypeError:
            raise ValueError(f"bounds must be a scipy.optimize.Bounds or a sequence of (min, max) pairs, "
                             f"got {type(bounds).__name__}") from None
        if len(pairs) != n:
            raise ValueError(f"bounds has {len(pairs)} pairs but x0 has {n} elements")
        lb, ub = np.empty(n), np.empty(n)
        for i, pair in enumerate(pairs):
            try:
                lo, hi = pair
            except (TypeError, ValueError):
                raise ValueError(f"bounds[{i}] must be a (min, max) pair, got {pair!r}") from None
            try:
                lb[i] = -np.inf if lo is None else float(lo)
                ub[i] = np.inf if hi is None else float(hi)
            except (TypeError, ValueError):
                raise ValueError(f"bounds[{i}] must hold real numbers or None, got {pair!r}") from None
    if np.isnan(lb).any() or np.isnan(ub).any():
        raise ValueError("bounds contain NaN")
    bad = np.flatnonzero(lb > ub)
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"bounds: lower bound {lb[i]} exceeds upper bound {ub[i]} for variable {i}")
    if np.all(np.isneginf(lb)) and np.all(np.isposinf(ub)):
        return None
    return lb, ub


def clip_x0(x0: np.ndarray, lu: tuple[np.ndarray, np.ndarray] | None) -> np.ndarray:
    if lu is None:
        return x0
    flat = x0.reshape(-1)
    clipped = np.clip(flat, lu[0], lu[1])
    if not np.array_equal(clipped, flat):
        warnings.warn("x0 lies outside the bounds; it was clipped into them", OptimizeWarning, stacklevel=4)
    return clipped.reshape(x0.shape)


def make_callback(callback: Callable[..., Any] | None) -> Callable[[Any, np.ndarray], None] | None:
    """SciPy's two callback conventions: ``callback(intermediate_result=res)`` when the only
    parameter is named ``intermediate_result``, else ``callback(np.copy(xk))``."""
    if callback is None:
        return None
    if not callable(callback):
        raise ValueError(f"callback must be callable, got {type(callback).__name__}")
    try:
        params = list(inspect.signature(callback).parameters)
    except (TypeError, ValueError):
        params = []
    if params == ["intermediate_result"]:
        return lambda res, xk: callback(intermediate_result=res)
    return lambda res, xk: callback(np.copy(xk))
