"""Every script in examples/ runs to completion at its quick size.

Each example reads ``ZO_SCIPY_EXAMPLE_QUICK=1`` and shrinks itself; the scripts
assert their own claims (e.g. that a resumed run reproduces an uninterrupted
one), so exit status 0 means the example still does what it says.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.py"))
TIMEOUT_S = 60


def test_the_readme_examples_exist():
    names = {p.name for p in EXAMPLES}
    assert {"quickstart.py", "checkpoint_resume.py"} <= names


@pytest.mark.parametrize("script", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_runs(script: Path, tmp_path: Path):
    env = {**os.environ, "ZO_SCIPY_EXAMPLE_QUICK": "1", "MPLBACKEND": "Agg"}
    # Run from an empty folder: examples must not depend on the working directory
    # (they may write scratch files there).
    try:
        proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{script.name} did not finish within {TIMEOUT_S} s at its quick size")
    assert proc.returncode == 0, (
        f"{script.name} exited with {proc.returncode}\n--- stdout\n{proc.stdout[-3000:]}"
        f"\n--- stderr\n{proc.stderr[-3000:]}")


def _gallery_conf() -> dict:
    """``sphinx_gallery_conf`` of docs/conf.py, read without running Sphinx."""
    import ast

    conf = Path(__file__).resolve().parents[1] / "docs" / "conf.py"
    for node in ast.parse(conf.read_text()).body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "sphinx_gallery_conf":
            return ast.literal_eval(node.value)
    raise AssertionError("docs/conf.py defines no sphinx_gallery_conf")


def test_every_example_is_in_the_gallery_and_all_but_one_run_there():
    import re

    conf = _gallery_conf()
    assert conf["examples_dirs"] == "../examples"
    assert (EXAMPLES[0].parent / "GALLERY_HEADER.rst").is_file()
    for script in EXAMPLES:  # sphinx-gallery needs an RST title as the docstring's first lines
        lines = script.read_text().split("\n")
        assert lines[0].startswith('"""') and set(lines[1]) == {"="} and len(lines[1]) >= len(lines[0]) - 3, (
            f"{script.name} does not open with a gallery title")
    executed = {p.name for p in EXAMPLES if re.search(conf["filename_pattern"], "/" + p.name)}
    assert {p.name for p in EXAMPLES} - executed == {"optuna_high_dim.py"}  # starts processes
