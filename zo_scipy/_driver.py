"""The loop shared by the SciPy-facing methods: ask, evaluate, tell, stop, report.

Any ask/tell object with ``ask(n)``, ``tell(values)``, ``hold(values)``, ``cancel()``,
``held``, ``x``, ``num_queries`` and ``converged`` can be driven; :func:`drive` owns the
SciPy contract (budget, callback conventions, ``StopIteration``, objective
errors, ``KeyboardInterrupt``) so that every method behaves the same.
"""
from __future__ import annotations

import copy
import functools
import math
import warnings
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
import torch
from scipy.optimize import OptimizeResult

from ._status import MESSAGES, Status
from .core.evaluation import BatchObjective, BudgetExhausted, ObjectiveError


class AskTell(Protocol):
    x: torch.Tensor
    num_queries: int
    held: torch.Tensor | None

    @property
    def converged(self) -> bool: ...
    def ask(self, n: int | None = None) -> torch.Tensor: ...
    def tell(self, values: Any) -> None: ...
    def hold(self, values: Any) -> None: ...
    def cancel(self) -> None: ...


def snapshot(opt: AskTell) -> Any:
    """``res.state``: the optimizer's state dict (a copy of the optimizer where its update
    rule cannot be stored as data), so that resuming never changes an earlier result."""
    state_dict = getattr(opt, "state_dict", None)
    if state_dict is not None:
        try:
            return state_dict()
        except TypeError:  # a custom UpdateRule: no data form
            pass
    return copy.deepcopy(opt)


def _progress_bar(total: int | None, enabled: bool, name: str) -> Any:
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - tqdm is a runtime dependency
        raise ImportError("option 'progress' needs tqdm: pip install tqdm") from None
    return tqdm(total=total, desc=name, unit="eval")


def drive(
    opt: AskTell,
    objective: BatchObjective,
    *,
    x0: np.ndarray,
    maxiter: int | None,
    callback: Callable[[OptimizeResult, np.ndarray], Any] | None,
    progress: bool = False,
    disp: bool = False,
    name: str = "zoar",
    extras: Callable[[], dict[str, Any]] | None = None,
) -> OptimizeResult:
    """Run ``opt`` on ``objective`` until a stopping rule fires; always return a result."""
    shape = x0.shape
    status: Status | None = None
    error: ObjectiveError | None = None
    nit = 0
    bar = _progress_bar(objective.max_evals, progress, name)

    def iterate() -> np.ndarray:
        return opt.x.detach().cpu().numpy().astype(np.float64).reshape(shape)

    try:
        while True:
            if opt.converged:
                status = Status.CONVERGED
                break
            if maxiter is not None and nit >= maxiter:
                status = Status.MAXITER
                break
            if objective.remaining < 1:
                status = Status.MAXFEV
                break
            # Always the full batch: when the budget ends in mid-batch the values measured so
            # far are held in the state, and a resumed run finishes the same batch.
            X = opt.ask(opt.num_queries)
            held = 0 if opt.held is None else opt.held.numel()
            todo = X[held:]
            before = objective.nfev
            if todo.shape[0] > objective.remaining:
                part = objective(todo[: int(objective.remaining)])
                opt.hold(part)
            else:
                opt.tell(objective(todo))
                nit += 1
            if bar is not None:
                bar.update(objective.nfev - before)
                bar.set_postfix(best=objective.best_f, refresh=False)
            if opt.held is not None:
                status = Status.MAXFEV
                break
            if objective.best_x is None and nit >= 3:
                status = Status.NONFINITE
                break
            if callback is not None:
                xk = iterate()
                inter = OptimizeResult(
                    x=objective.best_x.copy() if objective.best_x is not None else xk.copy(),
                    fun=objective.best_f if objective.best_x is not None else math.nan,
                    xk=xk, nit=nit, nfev=objective.nfev, snapshot=functools.partial(snapshot, opt),
                    **(extras() if extras else {}))
                callback(inter, xk.copy())
    except StopIteration:
        status = Status.CALLBACK
    except ObjectiveError as exc:
        status, error = Status.OBJECTIVE_ERROR, exc
    except BudgetExhausted:  # defensive: the loop never asks beyond the budget
        status = Status.MAXFEV
    except KeyboardInterrupt:
        status = Status.INTERRUPTED
    finally:
        opt.cancel()
        if bar is not None:
            bar.close()

    message = MESSAGES[status]
    if error is not None:
        message = f"{message}: {error.__cause__!r}" if error.__cause__ else f"{message}: {error}"
        warnings.warn(f"{name}: {message}; returning the best point so far", RuntimeWarning, stacklevel=3)
    if objective.n_neg_inf:
        warnings.warn(f"{name}: the objective returned -inf at {objective.n_neg_inf} points; like NaN and "
                      "+inf, -inf is treated as an invalid value (never the result). An objective "
                      "unbounded below has no minimum to find.", RuntimeWarning, stacklevel=3)
    if getattr(opt, "noisy", False):
        message += (f" The objective is noisy (spread of a batch's values about "
                    f"{getattr(opt, 'noise_level', math.nan):.3g} at the frozen mu): fun is the lowest "
                    "noisy value seen, so it is biased low; evaluate fun at x repeatedly to estimate "
                    "its value.")
    best_x, best_f = objective.best_x, objective.best_f
    if best_x is None and getattr(opt, "best_x", None) is not None:
        # Nothing evaluated in this call (e.g. a resumed run that had converged): the state's best.
        best_x = objective.user_points(opt.best_x.reshape(1, -1))[0].reshape(shape)  # type: ignore[attr-defined]  # checked by getattr
        best_f = float(opt.best_f)  # type: ignore[attr-defined]  # checked by getattr
    if best_x is not None:
        x, fun = best_x.copy(), best_f
    else:
        x, fun = x0.copy(), math.nan
        if status not in (Status.OBJECTIVE_ERROR, Status.INTERRUPTED, Status.CALLBACK):
            status, message = Status.NONFINITE, MESSAGES[Status.NONFINITE]
    res = OptimizeResult(
        x=x, fun=fun, nfev=objective.nfev, nit=nit, success=status == Status.CONVERGED,
        status=int(status), message=message, x_iterate=iterate(), state=snapshot(opt),
        **(extras() if extras else {}))
    if error is not None:
        res.exception = error.__cause__ or error
    if disp:
        print(f"{name}: {message}\n         Current function value: {fun:.6g}\n"
              f"         Iterations: {nit}\n         Function evaluations: {objective.nfev}")
    return res
