"""Quick form of the ``smooth`` suite: cells run, the report states every target."""
from __future__ import annotations

from benchmarks import _problems as P
from benchmarks import load_suite


def test_quick_cells_and_report():
    suite = load_suite("smooth")
    cells = suite.cells(quick=True, seeds=None)
    rows = [c.run() for c in cells]
    assert {r["method"] for r in rows} == {"L-BFGS-B-FD", "CMA-ES", "zoar", "zovh (step=direction)",
                                           "zovh (step=newton)", "zovh"}
    assert all(not r.get("error") and not r.get("skipped") for r in rows)
    for r in rows:  # inside the budget, and below the start's value (the optimum is shifted away)
        assert r["best"] < r["f0"]
    text = suite.report(rows, command="python -m benchmarks --quick --suite smooth")
    assert "python -m benchmarks --quick --suite smooth" in text
    assert "sphere d=6: zovh f - f* <= 1e-8 in every seed" in text
    assert "ellipsoid-rot d=6: zovh within 10x of L-BFGS-B-FD" in text


def test_shifted_functions_have_their_optimum_at_x_star():
    for name in P.SHIFTED_FUNCTIONS:
        f = P.ShiftedFunction(name, 7)
        assert f(f.x_star[None])[0] == 0.0
        assert f(f.x_star[None] + 0.1)[0] > 0.0
        assert f(f.x_star[None])[0] == 0.0 == P.shifted_problem(name, 7, group="g", budget=10).fopt
