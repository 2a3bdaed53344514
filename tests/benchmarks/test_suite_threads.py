"""Quick form of the ``threads`` suite."""
from __future__ import annotations

from benchmarks import load_suite


def test_quick_cells_and_report():
    suite = load_suite("threads")
    rows = [c.run() for c in suite.cells(quick=True, seeds=None)]
    assert {r["method"] for r in rows} == set(suite.SETTINGS) and all(r["seconds"] > 0 for r in rows)
    text = suite.report(rows, command="python -m benchmarks --quick --suite threads")
    assert "| 200 | 2000 | idle |" in text
