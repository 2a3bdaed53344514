"""zo_scipy: zeroth-order optimization (ZoAR, ZoVH) for SciPy, Optuna and PyTorch users.

The public surface is curated here; everything else lives in private modules.
``import zo_scipy`` never imports optuna or botorch; ``zo_scipy.uq`` is imported on first use.
"""
from __future__ import annotations

from typing import Any

from . import core
from ._curvature_hooks import ZoVHCurvature
from ._minimize import METHODS, minimize, register_method
from ._status import Status
from ._zoar import zoar
from ._zovh import zovh
from .core.zoar import ZoAR

__version__ = "0.1.0"

register_method("zoar", zoar)
register_method("zovh", zovh)


def __getattr__(name: str) -> Any:
    if name == "uq":  # lazy: the Laplace tools load scipy.sparse/stats only when used
        import importlib

        return importlib.import_module(".uq", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["METHODS", "Status", "ZoAR", "ZoVHCurvature", "core", "minimize", "register_method", "zoar", "zovh", "__version__"]
