"""Every public function and class carries the numpydoc sections users look for.

Walks the packages' ``__all__`` (tests/_public_api.py): each public object must have
Examples (run by tests/test_doctests.py), References and See Also, and every public
method or property of a public class a docstring. docs/api.md renders these docstrings,
so the reference pages show the sections.
"""
from __future__ import annotations

import inspect
import warnings

import pytest
from numpydoc.docscrape import NumpyDocString

from _public_api import public_members, public_objects

REQUIRED = ("Examples", "References", "See Also")

OBJECTS = public_objects()


def _sections(obj: object) -> NumpyDocString:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an unknown section or a malformed one is a failure
        # SciPy's "Options" section of a minimize method (rendered by docs/_ext/zo_docs.py)
        warnings.filterwarnings("ignore", message="Unknown section Options")
        return NumpyDocString(inspect.getdoc(obj) or "")


def test_the_walk_finds_the_public_api() -> None:
    assert len(OBJECTS) > 60
    for name in ("zo_scipy.zoar", "zo_scipy.torch.ForwardZoAR", "zo_scipy.uq.laplace",
                 "zo_scipy.bilevel.hypergradient", "zo_scipy.integrations.optuna.ZoARSampler"):
        assert name in OBJECTS


@pytest.mark.parametrize("name", sorted(OBJECTS))
def test_public_object_has_examples_references_and_see_also(name: str) -> None:
    doc = _sections(OBJECTS[name])
    missing = [s for s in REQUIRED if not doc[s]]
    assert not missing, f"{name} lacks {missing}"
    assert any(">>>" in line for line in doc["Examples"]), f"{name}: Examples without a doctest"


@pytest.mark.parametrize("name", sorted(public_members()))
def test_public_method_has_a_docstring(name: str) -> None:
    # inherited from the base class where a method overrides one (UpdateRule.step)
    assert (inspect.getdoc(public_members()[name]) or "").strip(), f"{name} has no docstring"


def _documented_in_api_md() -> set[str]:
    """Public names that docs/api.md renders: autoclass/autofunction targets, and the
    ``__all__`` of each ``automodule`` shown with ``:members:`` (minus ``:exclude-members:``)."""
    import importlib
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "api.md").read_text()
    names = set(re.findall(r"^\.\. auto(?:class|function):: (\S+)", text, re.M))
    for mod, opts in re.findall(r"^\.\. automodule:: (\S+)\n((?:   :.*\n)*)", text, re.M):
        if ":members:" in opts and ":no-members:" not in opts:
            excluded = set(re.findall(r":exclude-members: (.*)", opts)[0].replace(" ", "").split(",")) \
                if ":exclude-members:" in opts else set()
            names |= {f"{mod}.{n}" for n in getattr(importlib.import_module(mod), "__all__", []) if n not in excluded}
    return names


def test_docs_api_md_renders_every_public_object() -> None:
    documented = _documented_in_api_md()
    # zo_scipy.ZoAR is rendered once, under the name zo_scipy exports (zo_scipy.core excludes it)
    missing = [n for n in OBJECTS if n not in documented]
    assert not missing, f"docs/api.md does not render {missing}"


#: Methods the framework calls, not the user: the class example runs them
#: (``study.optimize`` calls the sampler's hooks, ``trainer.fit`` the training step).
FRAMEWORK_HOOKS = {
    "zo_scipy.integrations.optuna.ZoARSampler." + n for n in (
        "reseed_rng", "before_trial", "after_trial", "infer_relative_search_space",
        "sample_relative", "sample_independent")
} | {"zo_scipy.integrations.lightning.ForwardOnlyModule.training_step"}


@pytest.mark.parametrize("name", sorted(public_members()))
def test_public_method_is_exercised_by_an_example(name: str) -> None:
    owner, method = name.rsplit(".", 1)
    if name in FRAMEWORK_HOOKS:
        assert any(">>>" in line for line in _sections(OBJECTS[owner])["Examples"])
        return
    own = "\n".join(_sections(public_members()[name])["Examples"])
    of_class = "\n".join(_sections(OBJECTS[owner])["Examples"])
    assert ">>>" in own or f".{method}" in of_class, (
        f"{name}: no example of its own, and its class's Examples never call it")
