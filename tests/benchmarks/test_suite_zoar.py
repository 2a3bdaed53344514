"""The ``zoar`` benchmark suite: quick form complete, sane, and reportable."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmarks import _problems as P
from benchmarks import load_suite
from benchmarks._harness import BudgetReached, Tracker, run_cells
from benchmarks._io import read_jsonl, write_jsonl
from benchmarks.suite_zoar import DEFAULTS_METHODS, PROBLEMS, QUICK, report, value_at

pytest.importorskip("cma")


@pytest.fixture(scope="module")
def rows(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    suite = load_suite("zoar")
    path = tmp_path_factory.mktemp("zoar") / "zoar-quick.jsonl"
    return run_cells(suite.cells(quick=True, seeds=None), path)


def _finite(*values: float) -> bool:
    return all(isinstance(v, (int, float)) and math.isfinite(v) for v in values)


def test_authors_start_reproduces_their_f_x0() -> None:
    # The ZoAR paper's runs (d = 10^4, seed 456) report f(x0) to 3-4 significant digits;
    # the start drawn as the authors draw it must round to the same figures.
    def f(name: str) -> float:
        prob = P.make(name, 10_000, group="g", budget=1, start="authors")
        return value_at(prob, prob.x0(456))

    assert abs(f("levy") - 6767) < 0.5
    assert abs(f("quadratic") - 5054) < 0.5
    assert abs(f("ackley") - 5.36) < 0.005
    assert abs(f("rosenbrock") - 4.07e6) < 5e3


def test_tracker_evaluates_tensors_in_their_dtype() -> None:
    prob = P.make("quadratic", 3, group="g", budget=5)
    t = Tracker(prob, budget=5, seed=0)
    y = t.batch(torch.ones(4, 3, dtype=torch.float32))
    assert isinstance(y, torch.Tensor) and y.dtype == torch.float32 and t.best == 1.5
    with pytest.raises(BudgetReached):
        t.batch(torch.zeros(2, 3))
    assert t.nfev == 5 and t.best == 0.0


def test_faithfulness_rows_complete_and_sane(rows: list[dict]) -> None:
    faith = [r for r in rows if r["study"] == "faithfulness"]
    cells = {(r["problem"], r["num_histories"], r["seed"]) for r in faith}
    expected = {(p, n, s) for p in PROBLEMS for n in QUICK.faith_histories for s in QUICK.faith_seeds}
    assert cells == expected and len(faith) == len(expected)
    for r in faith:
        assert r["x_finite"], r
        assert _finite(r["f0"], r["f_last_iterate"], r["best_evaluated"])
        # constant schedule: no early stop, exactly K = 10 evaluations per iteration
        assert r["iterations"] == QUICK.faith_iters and r["nfev"] == 10 * QUICK.faith_iters
        # zoar's reported best and the harness's counter saw the same evaluations
        assert r["best_evaluated"] == pytest.approx(r["tracker_best"], rel=1e-6)
        ts = [t for t, _ in r["trajectory"]]
        assert ts[0] == 0 and ts[-1] == QUICK.faith_iters and ts == sorted(ts)
        assert r["trajectory"][0][1] == r["f0"]
        # 200 steps of lr = 1e-3 from x0 must make progress on every function
        assert r["f_last_iterate"] < r["f0"]


def test_defaults_study_is_a_peers_configuration(rows: list[dict]) -> None:
    dflt = [r for r in rows if r["study"] == "defaults"]
    cells = {(r["method"], r["name"], r["seed"]) for r in dflt}
    expected = {(m, p, s) for m in DEFAULTS_METHODS for p in PROBLEMS for s in QUICK.def_seeds}
    assert cells == expected and len(dflt) == len(expected)
    for r in dflt:
        # the peers harness's rows: the same accounting and score for every method
        assert r["group"] == "defaults" and r["d"] == QUICK.def_d and r["budget"] == QUICK.def_budget
        assert "error" not in r and not r.get("skipped"), r
        assert 0 < r["nfev"] <= r["budget"] and _finite(r["f0"], r["best"])
        assert r["trace"] and r["trace"][-1] == [r["nfev"], r["best"]]
    # the authors' start, the same for every method at a seed
    assert len({(r["name"], r["seed"], r["f0"]) for r in dflt}) == len(PROBLEMS) * len(QUICK.def_seeds)


def test_rows_round_trip_and_report(rows: list[dict], tmp_path: Path) -> None:
    write_jsonl(tmp_path / "zoar.jsonl", rows)
    back = read_jsonl(tmp_path / "zoar.jsonl")
    assert len(back) == len(rows)
    md = report(back, command="python -m benchmarks --quick --suite zoar")
    assert md.splitlines()[0].startswith("## ")
    assert "python -m benchmarks --quick --suite zoar" in md
    assert "### Faithfulness" in md and "### Defaults at d = " in md
    assert "Estimator overhead" not in md  # one overhead table: the cost suite's
    for m in DEFAULTS_METHODS:
        assert f"| {m} |" in md or f"| **{m}** |" in md
    assert not np.isnan([r["f0"] for r in back]).any()
