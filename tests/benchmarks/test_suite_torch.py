"""The torch benchmark suite's cells and report at tiny sizes (the full form: docs/torch.md)."""
from __future__ import annotations

import math

import pytest

pytest.importorskip("sklearn")

from benchmarks import suite_torch as S  # noqa: E402


def test_training_cells_and_report() -> None:
    rows = [S.run_cell(bench, m, 0, 60) for bench in ("logreg", "digits") for m in S.ALL_METHODS]
    rows += [S.run_cell("digits-acc", m, 0, 40) for m in S.ZO_METHODS]
    rows = [r for r in rows if not r.get("skipped")]  # torchzero, when it is not installed
    for r in rows:
        assert r["nfev"] >= r["budget"] and math.isfinite(r["final"])
        marks = [f for f, _, _ in r["curve"]]
        assert marks == sorted(marks) and marks[-1] <= r["nfev"]
        assert [t for _, _, t in r["curve"]] == sorted(t for _, _, t in r["curve"])
    logreg = [r for r in rows if r["bench"] == "logreg"]
    assert all(r["final"] > -1e-6 for r in logreg)  # suboptimality against the L-BFGS optimum
    md = S.report(rows, command="python -m benchmarks --quick --suite torch")
    assert md.startswith("## zo_scipy.torch") and "python -m benchmarks --quick --suite torch" in md
    for bench in ("logreg", "digits", "digits-acc"):
        assert f"### {bench}:" in md
    assert "| mezo |" in md and "| adam |" in md


def test_memory_cell_and_report() -> None:
    row = S._memory_cell(48, "zoar", 2, 0, 1)
    assert row["d"] == 4 * 48 * 48 + 4 * 48 and row["regenerations_per_step"] == 4
    assert 0 <= row["regen_share"] <= 1 and row["step_ms"] > 0
    assert "### memory" in S.report([row], command="x")


def test_quick_cells_are_unique_and_cover_the_three_benchmarks() -> None:
    keys = [c.key for c in S.cells(quick=True, seeds=None)]
    assert len(keys) == len(set(keys))
    assert {k.split("|")[0] for k in keys} == {"logreg", "digits", "digits-acc", "memory"}


def test_first_reaching() -> None:
    curve = [[10, 0.5, 0.1], [20, 0.7, 0.2], [40, 0.9, 0.3]]
    assert S.first_reaching(curve, 0.7, higher=True) == 20
    assert S.first_reaching(curve, 0.95, higher=True) == math.inf
    assert S.first_reaching(curve, 0.6, higher=False) == 10
