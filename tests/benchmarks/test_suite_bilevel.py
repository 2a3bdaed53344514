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
    bias = next(r for r in acc if "bias_check" in r["method"])
    assert bias["nfev"] == 2 * default["nfev"] and bias["coverage"] >= default["coverage"]
    # data hyper-cleaning, quick size (120 training samples): above the all-data reference
    ref = next(r for r in rows if r["kind"] == "hyperclean_reference")
    hc = {r["method"]: r for r in rows if r["kind"] == "hyperclean"}
    assert set(hc) == {"zo_scipy.bilevel Adam (matrix-free CG, v reused)", "exact hypergradient Adam (ceiling)"}
    ours = hc["zo_scipy.bilevel Adam (matrix-free CG, v reused)"]
    assert ours["outer_points"] >= 2 and ours["inner_solved"] and ours["cg_iterations"] > 0
    # F1 above 2/3, what flagging every sample scores at half corrupted
    assert ours["test_accuracy"] > ref["test_accuracy_all"] and ours["f1"] > 2 / 3
    text = suite.report(rows, command="python -m benchmarks --quick --suite bilevel")
    assert "python -m benchmarks --quick --suite bilevel" in text and "| default (four-point" in text
    assert "Data hyper-cleaning" in text and "References: all training data" in text
