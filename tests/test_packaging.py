"""What a user gets from ``pip install``: lazy optional imports, py.typed, the
``zo_scipy.integrations`` package mapped from the top-level ``integrations/`` folder (one
module identity, no top-level ``integrations``), and no benchmark code."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from importlib import resources
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True,
                          timeout=120)


def test_import_does_not_import_optuna_or_botorch(tmp_path: Path):
    code = ("import sys, json, zo_scipy, zo_scipy.core, zo_scipy.demo, zo_scipy.integrations\n"
            "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('optuna', 'botorch'))))")
    proc = _run(code, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == []


def test_py_typed_is_in_the_installed_package():
    assert resources.files("zo_scipy").joinpath("py.typed").is_file()


def test_integrations_only_under_the_zo_scipy_namespace(tmp_path: Path):
    ok = _run("import zo_scipy.integrations as m; print(m.__name__)", tmp_path)
    assert ok.returncode == 0 and ok.stdout.strip() == "zo_scipy.integrations", ok.stderr
    bare = _run("import integrations", tmp_path)  # outside the repository root
    assert bare.returncode != 0 and "No module named 'integrations'" in bare.stderr


def test_one_module_identity_for_the_adapters_from_the_repository_root():
    # From the root the folder is on sys.path, but only one name imports it.
    code = ("import sys, zo_scipy.integrations.optuna._state as s\n"
            "try:\n    import integrations\nexcept ImportError as e:\n    print('refused:', e)\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'integrations'))\n"
            "print(s.__file__)")
    proc = _run(code, ROOT)
    assert proc.returncode == 0, proc.stderr
    refused, modules, path = proc.stdout.strip().splitlines()[-3:]
    assert refused.startswith("refused: the adapters are the package zo_scipy.integrations")
    assert modules == "[]"
    assert Path(path) == ROOT / "integrations" / "optuna" / "_state.py"
    assert not (ROOT / "zo_scipy" / "integrations").exists()  # no symlink, no second copy


@pytest.mark.slow
def test_wheel_ships_py_typed_and_the_integrations(tmp_path: Path):
    """Build a wheel from a copy of the sources (no network: the venv's setuptools)."""
    # pyproject.toml needs setuptools >= 77 (SPDX license string); a fresh venv may carry an
    # older one, since `pip install -e .` builds in an isolated environment.
    pytest.importorskip("setuptools", minversion="77")
    src = tmp_path / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "zo_scipy", src / "zo_scipy", ignore=ignore)
    shutil.copytree(ROOT / "integrations", src / "integrations", ignore=ignore)
    shutil.copytree(ROOT / "benchmarks", src / "benchmarks", ignore=ignore)  # must stay out
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                           "-q", "-w", str(tmp_path / "dist"), str(src)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (wheel,) = (tmp_path / "dist").glob("zo_scipy-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "zo_scipy/py.typed" in names
    assert "zo_scipy/integrations/__init__.py" in names
    assert "zo_scipy/integrations/optuna/__init__.py" in names
    assert "zo_scipy/integrations/optuna/_sampler.py" in names
    assert not any(n.startswith(("integrations/", "benchmarks/")) for n in names)
    assert not any("bench" in n or "botorch" in n for n in names), sorted(names)


def test_every_package_folder_is_listed_for_the_wheel():
    # pyproject lists the packages explicitly (integrations/ is mapped): a new subpackage
    # that is not listed would be missing from the wheel.
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "zo_scipy").rglob("__init__.py")}
    found |= {"zo_scipy." + ".".join(p.parent.relative_to(ROOT).parts)
              for p in (ROOT / "integrations").rglob("__init__.py")}
    found = {name for name in found if "__pycache__" not in name}
    assert found == listed, (sorted(found - listed), sorted(listed - found))
