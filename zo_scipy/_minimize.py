"""``zo_scipy.minimize``: SciPy's ``minimize`` that also knows our methods by name."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import scipy.optimize
from scipy.optimize import OptimizeResult

#: Our methods by name; ``zo_scipy.minimize(..., method="zoar")`` looks them up here.
METHODS: dict[str, Callable[..., OptimizeResult]] = {}


def register_method(name: str, method: Callable[..., OptimizeResult]) -> None:
    """Make ``method`` reachable as ``zo_scipy.minimize(..., method=name)`` (case-insensitive).

    Parameters
    ----------
    name : str
        The name (stored lower-case; a registered name replaces the earlier one).
    method : callable
        A custom ``minimize`` method: ``method(fun, x0, args, **kwargs) -> OptimizeResult``,
        as :func:`scipy.optimize.minimize` calls a callable ``method``.

    See Also
    --------
    minimize : looks the name up.
    zo_scipy.zoar, zo_scipy.zovh : registered as ``"zoar"`` and ``"zovh"``.

    References
    ----------
    - Pauli Virtanen et al., "SciPy 1.0: fundamental algorithms for scientific computing in
      Python", Nature Methods 17, 261-272, 2020 (custom ``minimize`` methods).

    Examples
    --------
    >>> import numpy as np
    >>> import zo_scipy
    >>> zo_scipy.register_method("zoar-small", lambda fun, x0, args=(), **kw: zo_scipy.zoar(
    ...     fun, x0, args, **{**kw, "maxfev": 100, "seed": 0}))
    >>> zo_scipy.minimize(lambda x: float(x @ x), np.ones(2), method="ZoAR-small").nfev
    100
    >>> del zo_scipy.METHODS["zoar-small"]
    """
    METHODS[name.lower()] = method


def minimize(fun: Callable[..., Any], x0: Any, args: Any = (), method: Any = None, **kwargs: Any) -> OptimizeResult:
    """:func:`scipy.optimize.minimize` with ``method="zoar"`` (and our other methods)
    accepted by name; every other method is passed through to SciPy unchanged.

    Parameters
    ----------
    fun, x0, args
        As for :func:`scipy.optimize.minimize`.
    method : str or callable, optional
        ``"zoar"``, ``"zovh"`` or a name given to :func:`register_method` (case-insensitive),
        or anything SciPy accepts.
    **kwargs
        Passed to :func:`scipy.optimize.minimize` (``options``, ``bounds``, ``callback``, ...).

    Returns
    -------
    scipy.optimize.OptimizeResult
        SciPy's result; for our methods see :func:`zo_scipy.zoar` for its fields.

    Raises
    ------
    ValueError
        Whatever :func:`scipy.optimize.minimize` or the method raises, e.g. an unknown
        method name or an invalid option (the message names it).

    See Also
    --------
    zo_scipy.zoar, zo_scipy.zovh : the methods, also usable as ``method=zo_scipy.zoar``.
    register_method : add a name.

    References
    ----------
    - Junbin Qiu, Zhengpeng Xie, Xiangda Yan, Yongjie Yang, Yao Shu, "Zeroth-Order Optimization
      is Secretly Single-Step Policy Optimization", arXiv:2506.14460, 2025 (the ZoAR paper).
    - Pauli Virtanen et al., "SciPy 1.0: fundamental algorithms for scientific computing in
      Python", Nature Methods 17, 261-272, 2020.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.optimize import rosen
    >>> import zo_scipy
    >>> res = zo_scipy.minimize(rosen, np.zeros(5), method="zoar", options=dict(maxfev=1000, seed=0))
    >>> res.nfev, bool(res.fun < rosen(np.zeros(5)))
    (1000, True)
    >>> zo_scipy.minimize(rosen, np.zeros(5), method="Nelder-Mead").success  # SciPy's own
    True
    """
    if isinstance(method, str) and method.lower() in METHODS:
        method = METHODS[method.lower()]
    return scipy.optimize.minimize(fun, x0, args=args, method=method, **kwargs)
