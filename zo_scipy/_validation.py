"""Up-front validation of options, bounds and x0; messages name the argument."""
from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from scipy.optimize import Bounds, OptimizeWarning


def check_unknown_options(unknown: dict[str, Any], method: str) -> None:
    """Warn like SciPy's own methods about options nobody reads."""
    if unknown:
        names = ", ".join(map(str, unknown))
        warnings.warn(f"Unknown solver options for {method}: {names}", OptimizeWarning, stacklevel=4)


def check_int(name: str, value: Any, minimum: int, *, allow_none: bool = False) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"option {name!r} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_positive(name: str, value: Any, *, allow_none: bool = False, allow_zero: bool = False) -> float | None:
    if value is None and allow_none:
        return None
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < 0 or (value == 0 and not allow_zero):
        need = "a finite number >= 0" if allow_zero else "a positive finite number"
        raise ValueError(f"option {name!r} must be {need}, got {value!r}")
    return float(value)


def check_choice(name: str, value: Any, choices: Sequence[str]) -> str:
    if value not in choices:
        raise ValueError(f"option {name!r} must be one of {tuple(choices)}, got {value!r}")
    return str(value)


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


def resolve_seed(seed: Any, rng: Any) -> int | None:
    """One integer seed from SciPy's ``rng`` (int or ``numpy.random.Generator``) or ``seed``."""
    if seed is not None and rng is not None:
        raise ValueError("give either option 'seed' or option 'rng', not both")
    if rng is not None:
        if isinstance(rng, np.random.Generator):
            return int(rng.integers(2**63 - 1))
        if isinstance(rng, numbers.Integral) and not isinstance(rng, bool):
            return int(rng)
        raise ValueError(f"option 'rng' must be an int or a numpy.random.Generator, got {rng!r}")
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"option 'seed' must be a non-negative integer or None, got {seed!r}")
    return int(seed)


def resolve_device(device: Any) -> torch.device:
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
    if isinstance(dtype, torch.dtype) and dtype in (torch.float64, torch.float32):
        return dtype
    if isinstance(dtype, str) and dtype in _DTYPES:
        return _DTYPES[dtype]
    if dtype in (np.float64, np.float32):
        return torch.float64 if dtype is np.float64 else torch.float32
    raise ValueError(f"option 'dtype' must be 'float64' or 'float32', got {dtype!r}")


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
        lb = np.broadcast_to(np.asarray(bounds.lb, dtype=float), (n,)).copy() if np.size(bounds.lb) in (1, n) else None
        ub = np.broadcast_to(np.asarray(bounds.ub, dtype=float), (n,)).copy() if np.size(bounds.ub) in (1, n) else None
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
            lb[i] = -np.inf if lo is None else float(lo)
            ub[i] = np.inf if hi is None else float(hi)
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
    import inspect

    try:
        params = list(inspect.signature(callback).parameters)
    except (TypeError, ValueError):
        params = []
    if params == ["intermediate_result"]:
        return lambda res, xk: callback(intermediate_result=res)
    return lambda res, xk: callback(np.copy(xk))
