"""Batched evaluation of a user objective: counting, hard budget, best point, workers.

The estimator core asks for ``(m, d)`` batches; :class:`BatchObjective` turns a
batch into ``m`` values however the user's function wants to be called:

- a plain Python function, looped over rows (numpy float64 arrays shaped like x0);
- ``vectorized=True``: called once with the whole ``(m, *x0.shape)`` batch and
  returning ``m`` values (note: batch-first, unlike ``differential_evolution``);
- ``tensor_input=True``: rows (or the batch) are passed as torch tensors on the
  estimator's device, so a torch objective never leaves the GPU;
- ``map``: any map-like callable (``Pool.map``, an executor's ``map``, a Dask or
  Ray client's map), SciPy's ``workers`` convention, evaluates the rows in parallel.

Every point counts once in :attr:`nfev`; the objective is never called once the
budget is spent; the best finite value and its point are tracked as values
arrive, so nothing is lost when the objective raises halfway through a batch.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import torch


class BudgetExhausted(RuntimeError):
    """Raised instead of calling the objective beyond ``max_evals``."""


class ObjectiveError(RuntimeError):
    """The user's objective raised; the original exception is ``__cause__``."""


def as_scalar(value: Any) -> float:
    """Coerce one objective value to a Python float, or raise naming ``fun``."""
    if isinstance(value, (float, int)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ValueError(f"fun must return a scalar, got a tensor of shape {tuple(value.shape)}")
        if value.is_complex():
            raise ValueError("fun must return a real scalar, got a complex tensor")
        return float(value.detach().reshape(()).item())
    arr = np.asarray(value)
    if arr.dtype == object or arr.dtype.kind not in "biuf":
        raise ValueError(f"fun must return a real scalar, got {type(value).__name__} {value!r:.80}")
    if arr.size != 1:
        raise ValueError(f"fun must return a scalar, got an array of shape {arr.shape}")
    return float(arr.reshape(()))


class _Call:
    """Picklable ``fun(x, *args)`` for process pools."""

    def __init__(self, fun: Callable[..., Any], args: tuple[Any, ...]):
        self.fun, self.args = fun, args

    def __call__(self, x: Any) -> float:
        return as_scalar(self.fun(x, *self.args))


class BatchObjective:
    """Evaluate batches of points for the estimator core.

    Parameters
    ----------
    fun : callable
        ``fun(x, *args) -> float`` (or ``fun(X, *args) -> (m,)`` when vectorized).
    args : tuple
        Extra arguments.
    shape : tuple of int
        Shape of one point as the user gave ``x0`` (rows are reshaped to it).
    vectorized, tensor_input : bool
        See the module docstring.
    map : callable, optional
        A map-like ``map(func, iterable)`` for parallel evaluation.
    max_evals : int, optional
        Hard budget: :class:`BudgetExhausted` instead of an extra call.
    """

    def __init__(
        self,
        fun: Callable[..., Any],
        args: tuple[Any, ...] = (),
        *,
        shape: Sequence[int],
        vectorized: bool = False,
        tensor_input: bool = False,
        map: Callable[[Callable[[Any], float], Iterable[Any]], Iterable[float]] | None = None,
        max_evals: int | None = None,
    ) -> None:
        if not callable(fun):
            raise TypeError(f"fun must be callable, got {type(fun).__name__}")
        self.fun, self.args = fun, tuple(args)
        self.shape = tuple(shape)
        self.vectorized, self.tensor_input, self.map = vectorized, tensor_input, map
        self.max_evals = max_evals
        self.nfev = 0
        self.best_f = math.inf
        self.best_x: np.ndarray | None = None

    @property
    def remaining(self) -> float:
        return math.inf if self.max_evals is None else self.max_evals - self.nfev

    def _rows(self, X: torch.Tensor) -> Any:
        X = X.detach().reshape((X.shape[0], *self.shape))
        return X if self.tensor_input else X.cpu().numpy()

    def _record(self, row: Any, value: float) -> None:
        if value < self.best_f:  # False for NaN
            self.best_f = value
            arr = row.detach().cpu().numpy() if isinstance(row, torch.Tensor) else row
            self.best_x = np.array(arr, dtype=np.float64, copy=True)

    def __call__(self, X: torch.Tensor) -> torch.Tensor:
        """Values of the ``m`` rows of ``X`` as a float tensor on ``X``'s device."""
        m = X.shape[0]
        if m > self.remaining:
            raise BudgetExhausted(f"evaluating {m} points would exceed max_evals={self.max_evals} "
                                  f"({self.nfev} used)")
        rows = self._rows(X)
        try:
            if self.vectorized:
                values = self._call_vectorized(rows, m)
            elif self.map is not None:
                values = [float(v) for v in self.map(_Call(self.fun, self.args), list(rows))]
                self.nfev += m
                if len(values) != m:
                    raise ValueError(f"the workers map returned {len(values)} values for {m} points")
                for r, v in zip(rows, values):
                    self._record(r, v)
            else:
                values = []
                for r in rows:
                    self.nfev += 1  # counted before the call: a call that raises still happened
                    v = as_scalar(self.fun(r, *self.args))
                    self._record(r, v)
                    values.append(v)
        except (ValueError, TypeError) as exc:
            if "fun must return" in str(exc) or "one value per" in str(exc):
                raise
            raise ObjectiveError(f"the objective raised {type(exc).__name__}: {exc}") from exc
        except (KeyboardInterrupt, BudgetExhausted):
            raise
        except Exception as exc:
            raise ObjectiveError(f"the objective raised {type(exc).__name__}: {exc}") from exc
        return torch.as_tensor(values, dtype=X.dtype, device=X.device)

    def _call_vectorized(self, rows: Any, m: int) -> list[float]:
        self.nfev += m
        out = self.fun(rows, *self.args)
        if isinstance(out, torch.Tensor):
            out = out.detach().cpu().numpy()
        arr = np.asarray(out)
        if arr.dtype == object or arr.dtype.kind not in "biuf" or arr.size != m:
            raise ValueError(f"a vectorized fun must return one value per row: {m} rows gave "
                             f"{type(out).__name__} of shape {arr.shape}")
        values = arr.reshape(m).astype(np.float64).tolist()
        for r, v in zip(rows, values):
            self._record(r, v)
        return values
