"""Quick form of the ``bilevel`` suite: cells run, rows carry what the report needs."""
from __future__ import annotations

import math

from benchmarks import load_suite


def test_quick_cells_and_report():
    suite = load_suite("bilevel")
    cells = suite.cells(quick=True, seeds=None)
    assert len({c.key for c in cells}) == len(cells)  # stable, unique keys
    rows = [c.run() for c in cells]
    acc = [r for r in rows if r["kind"] == "accuracy"]
    default = next(r for r in acc if r["method"].startswith("default"))
    # the default estimator: cosine >= 0.9 within 10 (p + q) evaluations on the ridge problem
    assert default["cosine"] > 0.99 and default["nfev"] <= 200
    assert all(math.isfinite(r["relerr"]) and r["nfev"] > 0 for r in acc)
    outer = [r for r in rows if r["kind"] == "outer"]
    assert {r["method"] for r in outer} == {"zo_scipy.bilevel L-BFGS-B", "Optuna TPE on F"}
    for r in outer:
        assert r["nfev"] <= r["budget"] and r["subopt"] >= -1e-9
    ours = next(r for r in outer if r["method"].startswith("zo_scipy"))
    assert ours["evals_to_1pct"] is not None
    text = suite.report(rows, command="python -m benchmarks --quick --suite bilevel")
    assert "python -m benchmarks --quick --suite bilevel" in text and "| default (four-point" in text
