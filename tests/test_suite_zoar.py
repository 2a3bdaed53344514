"""The ``zoar`` benchmark suite (issue 2): quick form complete, sane, and reportable."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from zo_scipy.bench import load_suite
from zo_scipy.bench._io import read_jsonl, write_jsonl
from zo_scipy.bench.suite_zoar import (
    DEFAULTS_METHODS, PROBLEMS, QUICK, BudgetReached, Counter, authors_x0, quadratic, report, value_at,
)


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    suite = load_suite("zoar")
    return suite.run(quick=True, out_dir=tmp_path_factory.mktemp("zoar"), seeds=None, progress=False)


def _finite(*values: float) -> bool:
    return all(isinstance(v, (int, float)) and math.isfinite(v) for v in values)


def test_authors_start_reproduces_their_f_x0():
    # Spec section 2 lists f(x0) of the authors' runs (d = 10^4, seed 456) to 3-4 significant
    # digits; the start drawn as they draw it must round to the same figures.
    x0 = authors_x0(456, 10_000)
    assert abs(value_at(PROBLEMS["levy"], x0) - 6767) < 0.5
    assert abs(value_at(PROBLEMS["quadratic"], x0) - 5054) < 0.5
    assert abs(value_at(PROBLEMS["ackley"], x0) - 5.36) < 0.005
    assert abs(value_at(PROBLEMS["rosenbrock"], x0) - 4.07e6) < 5e3


def test_counter_stops_at_exactly_the_budget():
    c = Counter(quadratic, budget=5)
    for _ in range(5):
        c.scalar(np.ones(3))
    with pytest.raises(BudgetReached):
        c.scalar(np.ones(3))
    assert c.n == 5 and c.best == 1.5
    with pytest.raises(BudgetReached):
        c.batch(torch.ones(1, 3))


def test_faithfulness_rows_complete_and_sane(rows):
    faith = [r for r in rows if r["study"] == "faithfulness"]
    cells = {(r["problem"], r["num_histories"], r["seed"]) for r in faith}
    expected = {(p, n, s) for p in PROBLEMS for n in QUICK.faith_histories for s in QUICK.faith_seeds}
    assert cells == expected and len(faith) == len(expected)
    for r in faith:
        assert r["x_finite"], r
        assert _finite(r["f0"], r["f_last_iterate"], r["best_evaluated"])
        # constant schedule: no early stop, exactly K = 10 evaluations per iteration
        assert r["iterations"] == QUICK.faith_iters and r["nfev"] == 10 * QUICK.faith_iters
        # zoar's reported best and the independent counter saw the same evaluations
        assert r["best_evaluated"] == pytest.approx(r["counter_best"], rel=1e-12)
        ts = [t for t, _ in r["trajectory"]]
        assert ts[0] == 0 and ts[-1] == QUICK.faith_iters and ts == sorted(ts)
        assert r["trajectory"][0][1] == r["f0"]
        # 200 steps of lr = 1e-3 from x0 must make progress on every function
        assert r["f_last_iterate"] < r["f0"]


def test_defaults_rows_complete_and_sane(rows):
    dflt = [r for r in rows if r["study"] == "defaults"]
    cells = {(r["method"], r["problem"], r["seed"]) for r in dflt}
    expected = {(m, p, s) for m in DEFAULTS_METHODS for p in PROBLEMS for s in QUICK.def_seeds}
    assert cells == expected and len(dflt) == len(expected)
    for r in dflt:
        assert _finite(r["f0"], r["best_f"]), r
        assert 0 < r["nfev"] <= r["budget"] == QUICK.def_budget
        if r.get("stopped_by") == "budget":
            assert r["nfev"] == r["budget"]
        assert r["trace"] and r["trace"][-1][1] == r["best_f"]
    for r in (r for r in dflt if r["method"] == "zoar"):
        assert r["x_finite"] and _finite(r["f_last_iterate"])
        assert r["reported_fun"] == r["best_f"]
        assert r["diverged"] == (r["best_f"] > r["f0"])


def test_overhead_rows(rows):
    over = [r for r in rows if r["study"] == "overhead"]
    assert {r["method"] for r in over} == {"ZoAR (defaults)", "ZoAR (authors)"}
    for r in over:
        assert r["d"] == QUICK.over_d and r["M"] == (r["N"] + 1) * r["K"]
        assert _finite(r["zoar_ms"], r["bare_ms"], r["ratio"]) and r["zoar_ms"] > 0 and r["bare_ms"] > 0
        assert r["ratio"] == pytest.approx(r["zoar_ms"] / r["bare_ms"])


def test_rows_round_trip_and_report(rows, tmp_path):
    write_jsonl(tmp_path / "zoar.jsonl", rows)
    back = read_jsonl(tmp_path / "zoar.jsonl")
    assert len(back) == len(rows)
    md = report(back, command="python -m zo_scipy.bench --quick --suite zoar")
    assert md.splitlines()[0].startswith("## ")
    assert "python -m zo_scipy.bench --quick --suite zoar" in md
    for heading in ("### Faithfulness", "### Defaults at d = ", "### Estimator overhead"):
        assert heading in md
    # one table line per method of the defaults study
    for m in DEFAULTS_METHODS:
        assert f"| {m} |" in md
