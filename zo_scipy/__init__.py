"""zo_scipy: zeroth-order optimization (ZoAR, ZoVH) for SciPy, Optuna and PyTorch users.

The public surface is curated here; everything else lives in private modules.
``import zo_scipy`` never imports optuna or botorch.
"""
from __future__ import annotations

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

__all__ = ["METHODS", "Status", "ZoAR", "ZoVHCurvature", "core", "minimize", "register_method", "zoar", "zovh", "__version__"]
