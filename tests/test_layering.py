"""Layering: the installed package never reaches into the benchmarks, and the torch core
imports no SciPy, Optuna or BoTorch (``docs/contributing.md``, layout)."""
from __future__ import annotations

import ast
import json
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
    code = ("import sys, json, zo_scipy.core\n"
            f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & {set(FRONT_ENDS)!r})))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          cwd=ROOT.parent)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_import_core_loads_no_optuna_or_botorch() -> None:
    assert not set(_loaded_after_core()) & {"optuna", "botorch"}


@pytest.mark.xfail(strict=True, reason="zo_scipy/__init__.py imports the SciPy front end (_minimize, _zoar), "
                   "and `import zo_scipy.core` runs it first; remove this mark once it no longer does")
def test_import_core_loads_no_scipy() -> None:
    assert "scipy" not in _loaded_after_core()
