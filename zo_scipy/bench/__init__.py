"""Benchmark harness: ``python -m zo_scipy.bench`` (console script ``zo-bench``).

Suites are modules registered in :data:`SUITES` (suite name -> module path) and
imported lazily, so a suite whose dependencies are missing does not stop the
others. Each suite module defines::

    NAME: str
    DESCRIPTION: str
    def run(*, quick: bool, out_dir: pathlib.Path, seeds: list[int] | None = None,
            progress: bool = False) -> list[dict]: ...
    def report(rows: list[dict], *, command: str) -> str: ...

``run`` returns JSON-serialisable rows, one per (method, problem, seed) cell; a
cell that cannot run is a row with ``"skipped": "<reason>"``. ``report`` returns
a Markdown section headed by ``command``. Rows that carry a ``"trace"``
(``[[evaluations, best_so_far], ...]``) are also plotted by the CLI
(best-so-far vs evaluations and an ECDF of targets reached).
"""
from __future__ import annotations

import importlib
from types import ModuleType

#: Registered suites, in the order the CLI runs them by default.
SUITES: dict[str, str] = {
    "peers": "zo_scipy.bench.suite_peers",
    "cost": "zo_scipy.bench.suite_cost",
    "zoar": "zo_scipy.bench.suite_zoar",
    "hessian": "zo_scipy.bench.suite_hessian",
    "optuna": "zo_scipy.bench.suite_optuna",
}

_REQUIRED = ("NAME", "DESCRIPTION", "run", "report")


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
        suite contract (``NAME``, ``DESCRIPTION``, ``run``, ``report``).
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


def available_suites() -> dict[str, ModuleType | str]:
    """Every registered suite: its module, or the reason it cannot be imported."""
    out: dict[str, ModuleType | str] = {}
    for name in SUITES:
        try:
            out[name] = load_suite(name)
        except SuiteUnavailable as exc:
            out[name] = str(exc)
    return out


__all__ = ["SUITES", "SuiteUnavailable", "available_suites", "load_suite"]
