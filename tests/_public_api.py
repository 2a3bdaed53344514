"""The public API, walked from the packages' ``__all__`` (shared by the docstring tests)."""
from __future__ import annotations

import importlib
import inspect
from typing import Any

#: The public packages (docs/api.md documents each of them).
PACKAGES = [
    "zo_scipy", "zo_scipy.core", "zo_scipy.torch", "zo_scipy.uq", "zo_scipy.bilevel",
    "zo_scipy.bilevel.problems", "zo_scipy.integrations.optuna", "zo_scipy.integrations.lightning",
]


def public_objects() -> dict[str, Any]:
    """Every public function and class, by its public name (first package that exports it)."""
    out: dict[str, Any] = {}
    seen: set[int] = set()
    for pkg in PACKAGES:
        mod = importlib.import_module(pkg)
        for name in mod.__all__:
            obj = getattr(mod, name)
            if inspect.ismodule(obj) or not (inspect.isclass(obj) or inspect.isfunction(obj)):
                continue  # constants (METHODS, DEFAULT_MU, ...) and subpackages
            if id(obj) not in seen:
                seen.add(id(obj))
                out[f"{pkg}.{name}"] = obj
    return out


def public_members() -> dict[str, Any]:
    """The public methods and properties each public class defines itself."""
    out: dict[str, Any] = {}
    for qual, cls in public_objects().items():
        if not inspect.isclass(cls):
            continue
        for name, member in vars(cls).items():
            if name.startswith("_"):
                continue
            if isinstance(member, (staticmethod, classmethod)):
                member = member.__func__
            if isinstance(member, property):
                member = member.fget
            if inspect.isfunction(member):
                out[f"{qual}.{name}"] = member
    return out


def defining_modules() -> list[str]:
    """The modules that define the public objects (where their docstrings live)."""
    return sorted({obj.__module__ for obj in public_objects().values()})
