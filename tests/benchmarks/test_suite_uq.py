"""Quick form of the ``uq`` suite: cells run, rows carry what the report needs, exact cases are exact."""
from __future__ import annotations

import math

from benchmarks import load_suite


def test_quick_cells_and_report():
    suite = load_suite("uq")
    cells = suite.cells(quick=True, seeds=None)
    keys = [c.key for c in cells]
    assert len(keys) == len(set(keys))
    rows = [c.run() for c in cells]
    dia = {(r["method"], r["budget"]): r for r in rows if r["bench"] == "diabetes"}
    exact = dia[("zo-laplace (regression)", 177)]
    assert exact["nfev"] == 177 and exact["dlogz"] < 1e-6 and exact["std_err"] < 1e-6
    peer = dia[("scipy.differentiate.hessian", None)]
    assert peer["nfev"] > exact["nfev"] and peer["dlogz"] < 1e-6
    scale = [r for r in rows if r["bench"] == "scale"]
    assert scale and all(r["bytes_held"] < 8 * 250 * r["d"] and r["sample_var_ok"] for r in scale)
    ban = {r["c"]: r for r in rows if r["bench"] == "banana"}
    assert ban[0.1]["flagged"] and not ban[0.0]["flagged"]
    assert math.isclose(ban[0.0]["logz_laplace"], ban[0.0]["logz_exact"], abs_tol=1e-6)
    text = suite.report(rows, command="python -m benchmarks --quick --suite uq")
    assert "python -m benchmarks --quick --suite uq" in text and "load_diabetes" in text and "k-hat" in text
