"""Benchmarks of zo_scipy: ``python -m benchmarks`` from the repository root.

Not part of the installed package (SciPy and Optuna keep theirs the same way):
the suites, their problems, the peers they run and the BoTorch adapters
(:mod:`.botorch_problems`, :mod:`.botorch_bo`) live here, next to ``zo_scipy/``.
See ``docs/benchmarks.md`` for the tables and ``docs/contributing.md`` for how
to run them.

Suites are modules registered in :data:`SUITES` (suite name -> module path) and
imported lazily, so a suite whose dependencies are missing does not stop the
others. Each suite module defines::

    NAME: str
    DESCRIPTION: str
    def cells(*, quick: bool, seeds: list[int] | None) -> list[Cell]: ...
    def report(rows: list[dict], *, command: str) -> str: ...

and may set ``DEFAULT = False`` to stay out of a run that names no suite.
A :class:`~._harness.Cell` is one unit of work (one method x problem x seed,
one timing, ...) with a stable ``key``; the CLI runs the cells whose key is not
yet in the results file and appends each row as soon as its cell finishes.
``report`` returns a Markdown section headed by ``command``.
"""
from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

#: The repository root: docs and default output folders resolve against it, never the cwd.
REPO_ROOT = Path(__file__).resolve().parent.parent
DOCS_DIR = REPO_ROOT / "docs"

#: Registered suites, in the order the CLI runs them by default.
SUITES: dict[str, str] = {
    "peers": "benchmarks.suite_peers",
    "cost": "benchmarks.suite_cost",
    "zoar": "benchmarks.suite_zoar",
    "hessian": "benchmarks.suite_hessian",
    "optuna": "benchmarks.suite_optuna",
    "noise": "benchmarks.suite_noise",
    "threads": "benchmarks.suite_threads",
    "tune": "benchmarks.suite_tune",
    "torch": "benchmarks.suite_torch",
    "uq": "benchmarks.suite_uq",
    "bilevel": "benchmarks.suite_bilevel",
    "smooth": "benchmarks.suite_smooth",
}

_REQUIRED = ("NAME", "DESCRIPTION", "cells", "report")


class SuiteUnavailable(ImportError):
    """A registered suite cannot be imported (module missing or a dependency missing)."""


def load_suite(name: str) -> ModuleType:
    """Import the suite module registered under ``name``.

    Raises
    ------
    KeyError
        ``name`` is not registered (the message lists the registered names).
    SuiteUnavailable
        The module (or one of its imports) is missing, or it lacks part of the
        suite contract (``NAME``, ``DESCRIPTION``, ``cells``, ``report``).
    """
    if name not in SUITES:
        raise KeyError(f"unknown suite {name!r}; registered suites: {', '.join(SUITES)}")
    try:
        module = importlib.import_module(SUITES[name])
    except ImportError as exc:
        raise SuiteUnavailable(f"{type(exc).__name__}: {exc}") from exc
    missing = [attr for attr in _REQUIRED if not hasattr(module, attr)]
    if missing:
        raise SuiteUnavailable(f"module {SUITES[name]} lacks {', '.join(missing)}")
    return module


def default_suites() -> list[str]:
    """The suites a run without ``--suite`` runs (``DEFAULT = False`` ones left out)."""
    out = []
    for name in SUITES:
        try:
            if not getattr(load_suite(name), "DEFAULT", True):
                continue
        except SuiteUnavailable:
            pass  # reported when the run reaches it
        out.append(name)
    return out


__all__ = ["DOCS_DIR", "REPO_ROOT", "SUITES", "SuiteUnavailable", "default_suites", "load_suite"]
