"""The Examples sections of the public docstrings run (numpydoc Examples are doctests)."""
from __future__ import annotations

import doctest
import importlib

import pytest

#: Modules whose docstring examples are complete programs.
MODULES = ["zo_scipy._zoar", "zo_scipy._zovh"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0, result
