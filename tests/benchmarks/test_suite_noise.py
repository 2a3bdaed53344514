"""Quick form of the ``noise`` suite: cells run, rows carry what the report needs."""
from __future__ import annotations

from benchmarks import load_suite


def test_quick_cells_and_report():
    suite = load_suite("noise")
    cells = suite.cells(quick=True, seeds=None)
    rows = [c.run() for c in cells]
    assert {r["method"] for r in rows} == set(suite.VARIANTS)
    for r in rows:  # the budget is a hard limit; the true value is finite and below f(x0)
        assert r["nfev"] <= r["budget"] and 0 <= r["true"] < 5325
    fixed = next(r for r in rows if "fixed" in r["method"])
    assert fixed["num_queries"] == 10
    text = suite.report(rows, command="python -m benchmarks --quick --suite noise")
    assert "python -m benchmarks --quick --suite noise" in text and "| 2000 |" in text
