"""Layering: the installed package never reaches into the benchmarks, and the torch core
imports no SciPy, Optuna or BoTorch (``docs/contributing.md``, layout)."""
from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "zo_scipy"
FRONT_ENDS = ("scipy", "optuna", "botorch")


def _imports(path: Path) -> set[str]:
    """Top-level names of every module ``path`` imports (absolute imports; relative ones are
    resolved against the package, so ``from .. import x`` inside zo_scipy stays zo_scipy)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in (
                "import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant):
            names.add(str(node.args[0].value).split(".")[0])
    return names


def _sources(folder: Path, pattern: str) -> list[Path]:
    # resolve() so that a symlinked folder is scanned where it points, once
    return sorted({p.resolve() for p in folder.glob(pattern) if "__pycache__" not in p.parts})


def test_package_never_imports_the_benchmarks() -> None:
    offenders = {str(p.relative_to(ROOT)) for p in _sources(PACKAGE, "**/*.py")
                 if p.is_relative_to(ROOT) and "benchmarks" in _imports(p)}
    assert not offenders, f"zo_scipy must not import benchmarks: {sorted(offenders)}"


def test_core_sources_import_no_front_end() -> None:
    files = _sources(PACKAGE / "core", "*.py")
    assert files, "zo_scipy/core/*.py not found"
    offenders = {str(p.relative_to(ROOT)): sorted(_imports(p) & set(FRONT_ENDS)) for p in files
                 if _imports(p) & set(FRONT_ENDS)}
    assert not offenders, f"zo_scipy.core must stay torch-only: {offenders}"


def _loaded_after_core() -> list[str]:
    """Third-party front ends in ``sys.modules`` after importing the core's modules alone.

    ``import zo_scipy.core`` would first run ``zo_scipy/__init__.py``, which loads the SciPy
    front ends on purpose; the core is loaded under an empty parent package instead, so the
    check sees exactly what the core itself pulls in.
    """
    code = ("import sys, json, types\n"
            "pkg = types.ModuleType('zo_scipy')\n"
            f"pkg.__path__ = [{str(PACKAGE)!r}]\n"
            "sys.modules['zo_scipy'] = pkg\n"
            "import zo_scipy.core, zo_scipy.core.state, zo_scipy.core.curvature, zo_scipy.core.lowrank\n"
            f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & {set(FRONT_ENDS)!r})))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          cwd=ROOT.parent)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_the_core_loads_no_scipy_optuna_or_botorch() -> None:
    assert _loaded_after_core() == []


def test_every_type_ignore_names_its_error_and_gives_a_reason() -> None:
    # mypy runs in CI with zero errors (`make typecheck`); an ignore must say which error it
    # silences and why, e.g. `# type: ignore[arg-type]  # checked by ZoAROptions`.
    bare = []
    for folder in (PACKAGE, ROOT / "integrations"):
        for path in _sources(folder, "**/*.py"):
            for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if "type: ignore" in line and not re.search(r"type: ignore\[[a-z-, ]+\]  # \S", line):
                    bare.append(f"{path.relative_to(ROOT)}:{n}")
    assert not bare, bare
