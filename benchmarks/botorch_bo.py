r"""BoTorch Bayesian optimisation driven directly, as a benchmark peer (``BoTorch-BO``).

One point per iteration: a Sobol initial design of ``n_init`` points, then

1. fit a ``SingleTaskGP`` (inputs scaled to :math:`[0,1]^d`, outcomes
   standardised) to the negated values :math:`-y` (BoTorch maximises),
2. maximise ``LogExpectedImprovement`` with ``best_f = max(-y)`` by
   ``optimize_acqf`` (multi-start L-BFGS-B in the unit cube),
3. evaluate the maximiser.

The GP fit is :math:`O(n^3)` in the number of evaluations ``n``: meant for low
dimension and small budgets (tens to a few hundred evaluations). Randomness
(Sobol scrambling, acquisition restarts) is seeded through BoTorch's
``manual_seed`` context, which restores torch's global state afterwards.
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch


def botorch_minimize(
    fun_batch: Callable[[np.ndarray], Any],
    lower: Any,
    upper: Any,
    *,
    budget: int,
    n_init: int | None = None,
    seed: int | None = 0,
    num_restarts: int = 4,
    raw_samples: int = 128,
    callback: Callable[[int, float], None] | None = None,
) -> dict[str, Any]:
    """Minimise ``fun_batch`` (rows of an ``(n, d)`` array -> ``n`` values) on a box.

    Parameters
    ----------
    fun_batch : callable
        Vectorized objective; called with ``(n, d)`` float64 arrays.
    lower, upper : array_like
        Finite box bounds, shape ``(d,)``.
    budget : int
        Total evaluations (initial design included); the objective is called for
        exactly ``budget`` points unless it raises.
    n_init : int, optional
        Sobol points before the first GP fit; default ``min(budget, max(2, 2 d))``... capped at
        half the budget when the budget allows at least one BO step.
    seed : int, optional
    num_restarts, raw_samples : int
        ``optimize_acqf`` settings.
    callback : callable, optional
        ``callback(nfev, best_value)`` after each evaluation batch.

    Returns
    -------
    dict
        ``x`` (best observed point), ``fun`` (its observed value), ``nfev``.
    """
    from botorch.acquisition import LogExpectedImprovement
    from botorch.fit import fit_gpytorch_mll
    from botorch.models import SingleTaskGP
    from botorch.models.transforms import Normalize, Standardize
    from botorch.optim import optimize_acqf
    from botorch.utils.sampling import manual_seed
    from gpytorch.mlls import ExactMarginalLogLikelihood

    lo = torch.as_tensor(np.asarray(lower, dtype=np.float64))
    hi = torch.as_tensor(np.asarray(upper, dtype=np.float64))
    if lo.shape != hi.shape or lo.ndim != 1 or not bool(torch.isfinite(lo).all() and torch.isfinite(hi).all()):
        raise ValueError("lower and upper must be finite 1-D bounds of equal shape")
    if budget < 1:
        raise ValueError(f"budget must be >= 1, got {budget}")
    d = lo.numel()
    if n_init is None:
        n_init = max(2, min(2 * d, budget // 2)) if budget >= 4 else budget
    n_init = int(min(n_init, budget))
    unit = torch.stack([torch.zeros(d, dtype=torch.float64), torch.ones(d, dtype=torch.float64)])

    def evaluate(U: torch.Tensor) -> torch.Tensor:
        X = lo + (hi - lo) * U
        y = np.asarray(fun_batch(X.numpy()), dtype=np.float64).reshape(U.shape[0])
        return torch.as_tensor(y)

    with manual_seed(seed if seed is not None else 0):
        sobol = torch.quasirandom.SobolEngine(d, scramble=True, seed=seed)
        U = sobol.draw(n_init).to(torch.float64)
        Y = evaluate(U)
        if callback is not None:
            callback(U.shape[0], float(Y.min()))
        while U.shape[0] < budget:
            finite = torch.isfinite(Y)
            Uf, Yf = U[finite], -Y[finite]
            if Yf.numel() < 2:  # nothing to model yet: keep sampling the design
                nxt = sobol.draw(1).to(torch.float64)
            else:
                model = SingleTaskGP(Uf, Yf.unsqueeze(-1), input_transform=Normalize(d, bounds=unit),
                                     outcome_transform=Standardize(m=1))
                with warnings.catch_warnings():  # numerical warnings of the fit are BoTorch's business
                    warnings.simplefilter("ignore")
                    fit_gpytorch_mll(ExactMarginalLogLikelihood(model.likelihood, model))
                    acq = LogExpectedImprovement(model, best_f=float(Yf.max()))
                    nxt, _ = optimize_acqf(acq, bounds=unit, q=1, num_restarts=num_restarts,
                                           raw_samples=raw_samples)
                nxt = nxt.detach().clamp(0, 1)
            y = evaluate(nxt)
            U, Y = torch.cat([U, nxt]), torch.cat([Y, y])
            if callback is not None:
                callback(U.shape[0], float(torch.where(torch.isfinite(Y), Y, math.inf).min()))
    i = int(torch.where(torch.isfinite(Y), Y, math.inf).argmin())
    return {"x": (lo + (hi - lo) * U[i]).numpy(), "fun": float(Y[i]), "nfev": int(U.shape[0])}
