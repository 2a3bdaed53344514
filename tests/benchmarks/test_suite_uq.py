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
    lo = [r for r in rows if r["bench"] == "logistic"]
    assert lo and all(math.isnan(r["mean_err_nuts"]) for r in lo)  # no NUTS in the quick form
    text = suite.report(rows, command="python -m benchmarks --quick --suite uq")
    assert "load_breast_cancer" in text and "std err vs NUTS" in text
    assert "python -m benchmarks --quick --suite uq" in text and "load_diabetes" in text and "k-hat" in text


def test_nuts_and_laplace_torch_never_run_in_the_quick_form(tmp_path, monkeypatch):
    """The quick form has no NUTS or laplace-torch cell; the NUTS cache is keyed by its settings and
    ``run=False`` never samples."""
    import numpy as np

    from benchmarks import suite_uq

    monkeypatch.setenv("ZO_SCIPY_BENCH_CACHE", str(tmp_path))
    quick = [c.key for c in suite_uq.cells(quick=True, seeds=None)]
    assert not any("nuts" in k or "laplace-torch" in k for k in quick)
    full = [c.key for c in suite_uq.cells(quick=False, seeds=[0])]
    first_logistic = next(i for i, k in enumerate(full) if k.startswith("logistic|"))
    assert full[first_logistic] == "logistic|nuts reference|-|0"  # the rows after it read its cache
    assert suite_uq.nuts_reference(1.0, run=False) is None
    key = suite_uq._nuts_key(1.0, suite_uq.NUTS_SETTINGS)
    assert key != suite_uq._nuts_key(2.0, suite_uq.NUTS_SETTINGS)
    assert key != suite_uq._nuts_key(1.0, {**suite_uq.NUTS_SETTINGS, "num_samples": 10})
    np.savez(tmp_path / f"nuts-breast-cancer-{key}.npz", mean=np.zeros(31), std=np.ones(31))
    ref = suite_uq.nuts_reference(1.0, run=False)
    assert ref is not None and ref["std"].shape == (31,)
    errs = suite_uq._nuts_errors(np.full(31, 0.5), np.full(31, 1.1), True)
    assert math.isclose(errs["mean_err_nuts"], 0.5) and math.isclose(errs["std_err_nuts"], 0.1)
    assert math.isnan(suite_uq._nuts_errors(np.zeros(31), np.ones(31), False)["mean_err_nuts"])


def test_docs_figures_are_written_from_a_cached_reference(tmp_path, monkeypatch):
    """``python -m benchmarks.suite_uq DIR`` writes the docs' figures; a stand-in NUTS cache (draws
    from the exact-Hessian Laplace) keeps NUTS out of the tests."""
    import numpy as np

    from benchmarks import suite_uq

    monkeypatch.setenv("ZO_SCIPY_BENCH_CACHE", str(tmp_path / "cache"))
    (tmp_path / "cache").mkdir()
    ref = suite_uq.LogisticNLL().reference
    draws = np.random.default_rng(0).multivariate_normal(ref["mode"], ref["S"], size=500)
    key = suite_uq._nuts_key(1.0, suite_uq.NUTS_SETTINGS)
    np.savez(tmp_path / "cache" / f"nuts-breast-cancer-{key}.npz", mean=draws.mean(0), std=draws.std(0), draws=draws)
    written = suite_uq.docs_plots(tmp_path / "fig")
    names = sorted(p.name for p in written)
    assert names == ["banana_pairs.png", "diabetes_marginals.png", "logistic_marginals.png", "logistic_pairs.png"]
    assert all(p.stat().st_size > 10_000 for p in written)
