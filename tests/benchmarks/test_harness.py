"""The benchmark CLI (``python -m benchmarks``): quick suites run, their output is complete,
reruns skip finished cells, and the docs page does not depend on the cwd."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import benchmarks as bench
from benchmarks import __main__ as cli
from benchmarks import _problems as P
from benchmarks._harness import BudgetReached, Cell, Method, Tracker, run_cell, run_cells
from benchmarks._io import read_jsonl, write_jsonl

ROOT = Path(__file__).resolve().parents[2]

pytest.importorskip("matplotlib")
pytest.importorskip("cma")


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bench")
    status = cli.main(["--quick", "--suite", "peers", "--suite", "cost", "--out", str(out), "--no-progress"])
    assert status == 0
    return out


def test_peers_output_is_complete(quick_run: Path) -> None:
    from benchmarks import suite_peers
    from benchmarks._methods import all_methods

    rows = read_jsonl(quick_run / "peers-quick.jsonl")
    expected = {(m.name, p.label, s) for m in all_methods() for p in suite_peers.problems(True) for s in (0, 1)}
    got = [(r["method"], r["problem"], r["seed"]) for r in rows]
    assert len(got) == len(set(got)), "a cell appears twice"
    assert set(got) == expected, "cells missing or extra"
    for r in rows:
        if r.get("skipped"):
            assert isinstance(r["skipped"], str) and len(r["skipped"]) > 10, r
            continue
        # ours that are still being written may raise; every peer this suite drives must not
        if r["family"] != "ours" or r["method"] == "zoar":
            assert "error" not in r, (r["method"], r["problem"], r.get("error"))
        assert 1 <= r["nfev"] <= r["budget"], r
        assert math.isfinite(r["best"]) and math.isfinite(r["f0"]), r
        ev = [e for e, _ in r["trace"]]
        best = [b for _, b in r["trace"]]
        assert ev == sorted(ev) and ev[-1] == r["nfev"] and best[-1] == r["best"]
        assert all(b2 <= b1 for b1, b2 in zip(best, best[1:]))
    by = {(r["method"], r["problem"]): r for r in rows}
    big = next(p.label for p in suite_peers.problems(True) if p.d >= 5000)
    assert "O(d^2) memory" in by[("Nelder-Mead", big)]["skipped"]
    assert "needs a box" in by[("BoTorch-BO", big)]["skipped"]
    assert "exceed the budget" in by[("ZoVH+trust-ncg", big)]["skipped"]
    assert "error" not in by[("zoar", big)] and by[("zoar", big)]["nfev"] == by[("zoar", big)]["budget"]
    md = (quick_run / "peers-quick.md").read_text()
    assert "python -m benchmarks --quick --suite peers --suite cost" in md
    assert "zoar at d >= 1000" in md and "Skipped cells" in md
    for png in ("peers-quick-ecdf.png", "peers-quick-budget-d.png", "peers-quick-low-d.png"):
        assert (quick_run / png).stat().st_size > 1000


def test_cost_output(quick_run: Path) -> None:
    from benchmarks.suite_cost import CONFIGS

    rows = read_jsonl(quick_run / "cost-quick.jsonl")
    assert {(r["config"], r["d"]) for r in rows} == {(c, d) for c in CONFIGS for d in (10_000, 100_000)}
    for r in rows:
        assert "error" not in r, r
        assert r["zoar_ms"] > 0 and r["bare_ms"] > 0 and r["evals_per_iter"] == 10
        assert r["ratio"] == pytest.approx(r["zoar_ms"] / r["bare_ms"])
        assert r["M"] == (r["N"] + 1) * r["K"] and r["ask_ms"] <= r["zoar_ms"] and r["draw_ms"] <= r["bare_ms"]
    assert {r["N"] for r in rows if r["config"] == "paper"} == {5}
    md = (quick_run / "cost-quick.md").read_text()
    assert md.count("| 1e+0") == 4 and "ratio" in md and "## Estimator overhead per iteration" in md


def test_report_writes_the_docs_page(quick_run: Path, tmp_path: Path) -> None:
    docs = tmp_path / "docs" / "benchmarks.md"
    docs.parent.mkdir()
    docs.write_text(f"old\n{cli.READING_BEGIN}\nmy reading\n{cli.READING_END}\n")
    assert cli.main(["--report", "--quick", "--docs", str(docs), "--out", str(quick_run),
                     "--suite", "peers", "--suite", "cost"]) == 0
    text = docs.read_text()
    assert "my reading" in text and "old" not in text.split(cli.READING_BEGIN)[0]
    assert "## Peers at equal evaluation budgets" in text and "## Estimator overhead per iteration" in text
    assert "(_static/bench/peers-quick-ecdf.png)" in text
    assert (docs.parent / "_static" / "bench" / "peers-quick-ecdf.png").exists()
    assert "Suite run time" in text and "python -m benchmarks --quick" in text


def test_docs_page_does_not_depend_on_the_cwd(tmp_path: Path) -> None:
    code = ("import json, benchmarks, benchmarks.__main__ as m; "
            "print(json.dumps([str(m.DOCS_PAGE), str(m.DEFAULT_OUT), str(benchmarks.REPO_ROOT)]))")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                         env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    page, default_out, root = map(Path, json.loads(out.stdout.strip().splitlines()[-1]))
    assert root == ROOT and page == ROOT / "docs" / "benchmarks.md" and default_out == ROOT / "bench-results"
    assert page.exists()


def test_rerun_skips_finished_cells(tmp_path: Path) -> None:
    calls: list[str] = []

    def cell(key: str, fail: bool = False) -> Cell:
        def run() -> dict:
            calls.append(key)
            if fail:
                raise RuntimeError("kaput")
            return {"value": len(calls)}
        return Cell(key, run)

    path = tmp_path / "s.jsonl"
    errors: list[str] = []
    rows = run_cells([cell("a"), cell("b", fail=True)], path, on_error=lambda c, tb: errors.append(c.key))
    assert calls == ["a", "b"] and errors == ["b"] and [r["cell"] for r in rows] == ["a"]
    # each finished cell is on disk at once; the failed one left no row, so it is retried
    rows = run_cells([cell("a"), cell("b"), cell("c")], path)
    assert calls == ["a", "b", "b", "c"]
    assert [r["cell"] for r in rows] == ["a", "b", "c"] and rows[0]["value"] == 1
    assert [r["cell"] for r in read_jsonl(path)] == ["a", "b", "c"]


def test_cli_rerun_runs_nothing_new(quick_run: Path, capsys: pytest.CaptureFixture) -> None:
    before = (quick_run / "cost-quick.jsonl").read_text()
    assert cli.main(["--quick", "--suite", "cost", "--out", str(quick_run), "--no-progress", "--no-plots"]) == 0
    assert "suite cost: 0 new cells, 4 of 4 saved" in capsys.readouterr().out
    assert (quick_run / "cost-quick.jsonl").read_text() == before
    meta = json.loads((quick_run / "cost-quick.meta.json").read_text())
    assert len(meta["commands"]) == 2  # both commands head the report


def test_missing_suite_is_reported(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setitem(bench.SUITES, "nope", "benchmarks.suite_that_does_not_exist")
    assert cli.main(["--list"]) == 0
    assert "nope" in capsys.readouterr().out
    assert cli.main(["--suite", "nope", "--out", str(tmp_path)]) == 2
    assert "suite nope not available: ModuleNotFoundError" in capsys.readouterr().err
    with pytest.raises(KeyError, match="registered suites"):
        bench.load_suite("unregistered")


def test_parse_seeds() -> None:
    assert cli.parse_seeds("0,1,2") == [0, 1, 2]
    assert cli.parse_seeds("0-2,7") == [0, 1, 2, 7]
    with pytest.raises(Exception, match="--seeds"):
        cli.parse_seeds("a")


def test_tracker_caps_budget_and_scores_true_values() -> None:
    p = P.make("quadratic", 3, group="g", budget=5, noise="multiplicative", noise_level=0.5)
    t = Tracker(p, budget=5, seed=0)
    x = np.ones(3)
    obs = t.batch(np.tile(x, (4, 1)))
    assert not np.allclose(obs, 1.5)          # observed values are noisy ...
    assert t.best == pytest.approx(1.5)       # ... the score is the true f
    with pytest.raises(BudgetReached):
        t.batch(np.zeros((3, 3)))             # only one more point fits
    assert t.nfev == 5 and t.best == 0.0
    with pytest.raises(BudgetReached):
        t(x)
    t.finish()
    assert t.trace[-1] == [5, 0.0]


def test_run_cell_records_skip_and_errors() -> None:
    p = P.make("quadratic", 3, group="g", budget=10)

    def boom(t: Tracker, *a: object) -> None:
        t(np.zeros(3))
        raise RuntimeError("kaput")

    row = run_cell(Method("boom", "x", boom), p, 0)
    assert row["error"] == "RuntimeError: kaput" and row["nfev"] == 1 and row["best"] == 0.0
    row = run_cell(Method("never", "x", boom, skip=lambda p: "skipped: because"), p, 0)
    assert row["skipped"] == "skipped: because" and "best" not in row


def test_jsonl_roundtrip_nonfinite(tmp_path: Path) -> None:
    rows = [{"a": np.float64(np.inf), "b": [np.nan, 1], "c": np.int64(3)}]
    write_jsonl(tmp_path / "x.jsonl", rows)
    back = read_jsonl(tmp_path / "x.jsonl")
    assert back[0]["a"] == math.inf and math.isnan(back[0]["b"][0]) and back[0]["c"] == 3
