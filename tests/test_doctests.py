"""The Examples sections of the public docstrings run (numpydoc Examples are doctests).

Every module that defines a public object (tests/_public_api.py walks the packages'
``__all__``) is run through :mod:`doctest`; each must hold at least one example.
"""
from __future__ import annotations

import doctest
import importlib

import pytest

from _public_api import defining_modules

MODULES = defining_modules()


def test_the_modules_of_the_public_api_are_found() -> None:
    assert {"zo_scipy._zoar", "zo_scipy._zovh", "zo_scipy.uq._laplace", "zo_scipy.torch._optim",
            "zo_scipy.bilevel._hypergradient", "zo_scipy.integrations.optuna._sampler",
            "zo_scipy.core.zoar", "zo_scipy.core.zovh", "zo_scipy.core.curvature"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MPLBACKEND", "Agg")
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0, result
