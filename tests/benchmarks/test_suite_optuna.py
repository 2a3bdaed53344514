"""The Optuna benchmark suite's cells and report (tiny sizes)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from benchmarks import _problems as P
from benchmarks import suite_optuna

pytest.importorskip("optuna")


def test_cells_and_report() -> None:
    rows = [suite_optuna.run_cell(m, 0, 30, [10, 30], d=5) for m in ("zoar", "random")]
    for r in rows:
        assert r["n_trials"] == 30 and set(r["best_at"]) == {"10", "30"}
        assert r["best_at"]["30"] <= r["best_at"]["10"]  # best-so-far never increases
        assert r["best"] == r["best_at"]["30"] and math.isfinite(r["best"])
        assert all(v >= 0 for v in r["overhead_ms"].values())
        assert [n for n, _ in r["trace"]] == sorted(n for n, _ in r["trace"])
    md = suite_optuna.report(rows + [{"method": "gp", "seed": 0, "skipped": "no GP"}],
                             command="python -m benchmarks --suite optuna")
    assert md.startswith("## Optuna samplers") and "python -m benchmarks --suite optuna" in md
    assert "| zoar |" in md and "| random |" in md and "gp: no GP" in md


def test_quick_cells() -> None:
    keys = [c.key for c in suite_optuna.cells(quick=True, seeds=None)]
    assert len(keys) == len(set(keys)) == len(suite_optuna.METHODS)


def test_problem_instance_is_fixed() -> None:
    f, g = P.shifted_ellipsoid(5), P.shifted_ellipsoid(5)
    x = np.array([0.3, -1.0, 2.0, 0.0, 4.0])
    assert f(x) == g(x) > 0
