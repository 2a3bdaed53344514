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
