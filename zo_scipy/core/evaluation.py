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

The points the objective sees are float64 (whatever the estimator's dtype),
projected onto the float64 box ``[lower, upper]``, and copies: an objective that
writes into its argument changes nothing here, and :attr:`best_x` is exactly the
point whose value is :attr:`best_f`. ``-inf`` counts as invalid, like NaN and
``+inf`` (:attr:`n_neg_inf` counts it): it never becomes the best point.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import torch


class BudgetExhausted(RuntimeError):
    """Raised instead of calling the objective beyond ``max_evals``.

    :class:`BatchObjective` raises it before a batch that would not fit in the budget,
    so the budget is hard: the objective is never called once more than allowed. The
    SciPy methods turn it into ``res.status == 1`` ("maximum number of function
    evaluations has been reached").

    See Also
    --------
    BatchObjective : the evaluator that enforces ``max_evals``.
    ObjectiveError : the objective itself raised.

    References
    ----------
    - Junbin Qiu, Zhengpeng Xie, Xiangda Yan, Yongjie Yang, Yao Shu, "Zeroth-Order Optimization
      is Secretly Single-Step Policy Optimization", arXiv:2506.14460, 2025 (the ZoAR paper).

    Examples
    --------
    >>> import torch
    >>> from zo_scipy.core import BatchObjective, BudgetExhausted
    >>> f = BatchObjective(lambda x: float(x.sum()), shape=(2,), max_evals=3)
    >>> f(torch.zeros(2, 2)).tolist()
    [0.0, 0.0]
    >>> try:
    ...     f(torch.zeros(2, 2))
    ... except BudgetExhausted as e:
    ...     print(e)
    evaluating 2 points would exceed max_evals=3 (2 used)
    """


class ObjectiveError(RuntimeError):
    """The user's objective raised; the original exception is ``__cause__``.

    The SciPy methods report it as ``res.status == 4`` with the best point found
    before the exception; a :class:`KeyboardInterrupt` is not wrapped.

    See Also
    --------
    BatchObjective : the evaluator that wraps the objective's exceptions.
    BudgetExhausted : the budget, not the objective, stopped the batch.

    References
    ----------
    - Junbin Qiu, Zhengpeng Xie, Xiangda Yan, Yongjie Yang, Yao Shu, "Zeroth-Order Optimization
      is Secretly Single-Step Policy Optimization", arXiv:2506.14460, 2025 (the ZoAR paper).

    Examples
    --------
    >>> import torch
    >>> from zo_scipy.core import BatchObjective, ObjectiveError
    >>> def f(x):
    ...     raise KeyError("missing")
    >>> try:
    ...     BatchObjective(f, shape=(2,))(torch.zeros(1, 2))
    ... except ObjectiveError as e:
    ...     print(type(e.__cause__).__name__, "|", e)
    KeyError | the objective raised KeyError: 'missing'
    """


class ObjectiveValueError(ValueError):
    """The objective returned something that is not one real value per point."""


def as_scalar(value: Any) -> float:
    """Coerce one objective value to a Python float, or raise naming ``fun``."""
    if isinstance(value, (float, int)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ObjectiveValueError(f"fun must return a scalar, got a tensor of shape {tuple(value.shape)}")
        if value.is_complex():
            raise ObjectiveValueError("fun must return a real scalar, got a complex tensor")
        return float(value.detach().reshape(()).item())
    arr = np.asarray(value)
    if arr.dtype == object or arr.dtype.kind not in "biuf":
        raise ObjectiveValueError(f"fun must return a real scalar, got {type(value).__name__} {value!r:.80}")
    if arr.size != 1:
        raise ObjectiveValueError(f"fun must return a scalar, got an array of shape {arr.shape}")
    return float(arr.reshape(()))


class _Call:
    """Picklable ``fun(x, *args)`` for process pools."""

    def __init__(self, fun: Callable[..., Any], args: tuple[Any, ...]):
        self.fun, self.args = fun, args

    def __call__(self, x: Any) -> float:
        return as_scalar(self.fun(x, *self.args))


class BatchObjective:
    """Evaluate batches of points for the estimator core.

    Called with an ``(m, n)`` tensor of flat points, it returns their ``m`` values as a
    tensor on the same device. It counts evaluations (``nfev``), enforces a hard
    budget, projects every point onto the float64 box, hands the objective copies (so
    an objective that writes into its argument cannot change the estimator's points)
    and remembers the best finite value and its point (``best_f``, ``best_x``).

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
    lower, upper : numpy.ndarray, optional
        The float64 box (flattened) every point is projected onto before the call.

    Raises
    ------
    TypeError
        ``fun`` is not callable.
    BudgetExhausted
        (when called) the batch would exceed ``max_evals``.
    ObjectiveError
        (when called) the objective raised; the original exception is ``__cause__``.
    ObjectiveValueError
        (when called) the objective returned something that is not one real value per point.

    See Also
    --------
    zo_scipy.ZoAR.ask, zo_scipy.ZoAR.tell : the ask/tell loop this evaluator serves.

    Notes
    -----
    ``-inf`` is counted (``n_neg_inf``) and never becomes ``best_f``: it is treated as
    invalid like NaN (see the behaviour page of the docs).

    References
    ----------
    - Junbin Qiu, Zhengpeng Xie, Xiangda Yan, Yongjie Yang, Yao Shu, "Zeroth-Order Optimization
      is Secretly Single-Step Policy Optimization", arXiv:2506.14460, 2025 (the ZoAR paper).

    Examples
    --------
    >>> import numpy as np, torch
    >>> from zo_scipy.core import BatchObjective
    >>> f = BatchObjective(lambda x: float(np.sum(x**2)), shape=(2,),
    ...                    lower=np.array([-1.0, -1.0]), upper=np.array([1.0, 1.0]))
    >>> f(torch.tensor([[3.0, 0.0], [0.5, 0.5]], dtype=torch.float64))  # the first is clipped
    tensor([1.0000, 0.5000], dtype=torch.float64)
    >>> f.nfev, f.best_f, f.best_x.tolist(), f.remaining
    (2, 0.5, [0.5, 0.5], inf)
    >>> f.user_points(torch.tensor([[-7.0, 0.25]]))  # what the objective would be called at
    array([[-1.  ,  0.25]])
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
        lower: np.ndarray | None = None,
        upper: np.ndarray | None = None,
    ) -> None:
        if not callable(fun):
            raise TypeError(f"fun must be callable, got {type(fun).__name__}")
        self.fun, self.args = fun, tuple(args)
        self.shape = tuple(shape)
        self.vectorized, self.tensor_input, self.map = vectorized, tensor_input, map
        self.max_evals = max_evals
        self.lower = None if lower is None else np.asarray(lower, dtype=np.float64).reshape(-1)
        self.upper = None if upper is None else np.asarray(upper, dtype=np.float64).reshape(-1)
        self.nfev = 0
        self.n_neg_inf = 0
        self.best_f = math.inf
        self.best_x: np.ndarray | None = None

    @property
    def remaining(self) -> float:
        """Evaluations left in the budget (``inf`` without ``max_evals``)."""
        return math.inf if self.max_evals is None else self.max_evals - self.nfev

    def user_points(self, X: torch.Tensor) -> np.ndarray:
        """The float64 points the objective is called at for estimator points ``X`` (flat rows):
        projected onto the float64 box, so they are inside it exactly whatever ``X``'s dtype."""
        P = X.detach().to(device="cpu", dtype=torch.float64).numpy().reshape(X.shape[0], -1)
        if self.lower is not None and self.upper is not None:
            return np.clip(P, self.lower, self.upper)  # a new array already
        return P.copy()  # may share memory with X: never hand that out

    def _rows(self, P: np.ndarray, device: torch.device) -> Any:
        """A fresh copy of the points for the objective, in the form it wants."""
        rows = P.reshape((P.shape[0], *self.shape)).copy()
        return torch.from_numpy(rows).to(device) if self.tensor_input else rows

    def _record(self, point: np.ndarray, value: float) -> None:
        if value == -math.inf:
            self.n_neg_inf += 1
        elif value < self.best_f and math.isfinite(value):
            self.best_f = value
            self.best_x = point.reshape(self.shape).copy()

    def __call__(self, X: torch.Tensor) -> torch.Tensor:
        """Values of the ``m`` rows of ``X`` as a float tensor on ``X``'s device."""
        m = X.shape[0]
        if m > self.remaining:
            raise BudgetExhausted(f"evaluating {m} points would exceed max_evals={self.max_evals} "
                                  f"({self.nfev} used)")
        P = self.user_points(X)  # kept pristine: the objective gets copies
        rows = self._rows(P, X.device)
        try:
            if self.vectorized:
                values = self._call_vectorized(rows, P, m)
            elif self.map is not None:
                # Every point of the batch is handed to the workers: all count, even when one raises.
                self.nfev += m
                values = [float(v) for v in self.map(_Call(self.fun, self.args), list(rows))]
                if len(values) != m:
                    raise ObjectiveValueError(f"the workers map returned {len(values)} values for {m} points")
                for p, v in zip(P, values):
                    self._record(p, v)
            else:
                values = []
                for p, r in zip(P, rows):
                    self.nfev += 1  # counted before the call: a call that raises still happened
                    v = as_scalar(self.fun(r, *self.args))
                    self._record(p, v)
                    values.append(v)
        except (ObjectiveValueError, KeyboardInterrupt, BudgetExhausted):
            raise
        except Exception as exc:
            raise ObjectiveError(f"the objective raised {type(exc).__name__}: {exc}") from exc
        return torch.as_tensor(values, dtype=X.dtype, device=X.device)

    def _call_vectorized(self, rows: Any, P: np.ndarray, m: int) -> list[float]:
        self.nfev += m
        out = self.fun(rows, *self.args)
        if isinstance(out, torch.Tensor):
            out = out.detach().cpu().numpy()
        arr = np.asarray(out)
        if arr.dtype == object or arr.dtype.kind not in "biuf" or arr.size != m:
            raise ObjectiveValueError(f"a vectorized fun must return one value per row: {m} rows gave "
                                      f"{type(out).__name__} of shape {arr.shape}")
        values = arr.reshape(m).astype(np.float64).tolist()
        for p, v in zip(P, values):
            self._record(p, v)
        return values
