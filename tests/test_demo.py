"""``python -m zo_scipy.demo``: the equal-budget wrapper and a tiny end-to-end run."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.optimize import rosen

from zo_scipy.demo import METHODS, CountedObjective, LimitReached, _scipy, run_method


def test_counted_objective_never_evaluates_past_the_budget():
    calls = []

    def f(x):
        calls.append(1)
        return float(np.sum(x**2))

    obj = CountedObjective(f, budget=3)
    values = [obj(np.full(2, v)) for v in (2.0, 1.0, 3.0)]
    assert values == [8.0, 2.0, 18.0]
    with pytest.raises(LimitReached):
        obj(np.zeros(2))
    assert len(calls) == 3 and obj.nfev == 3 and obj.stopped_by == "budget spent"
    assert obj.trace == [8.0, 2.0, 2.0]  # best so far, monotone


def test_noise_is_seen_by_the_method_but_not_recorded():
    obj = CountedObjective(lambda x: 1.0, budget=100, noise=0.5, seed=0)
    seen = np.array([obj(np.zeros(1)) for _ in range(100)])
    # Seen values are 1 + 0.5 N(0, 1): their sample std is 0.5 within a few
    # standard errors (se of a std estimate ~ 0.5 / sqrt(2 * 100) = 0.035).
    assert abs(seen.std() - 0.5) < 0.15 and np.all(seen != 1.0)
    assert obj.trace == [1.0] * 100 and obj.best == 1.0


def test_run_method_caps_a_scipy_method_that_would_overrun_the_budget():
    # Powell asked for far more than the cap: the wrapper stops it at exactly the cap.
    solve = _scipy("Powell")
    row = run_method("Powell", lambda o, x0, b, s: solve(o, x0, 10**6, s), rosen, np.zeros(30),
                     budget=500, noise=0.0, seed=0, time_limit=None)
    assert row.nfev == 500 and len(row.trace) == 500 and row.stopped_by == "budget spent"
    assert row.best == min(row.trace) < rosen(np.zeros(30))


def test_quick_demo_end_to_end(tmp_path: Path):
    out = tmp_path / "demo"
    proc = subprocess.run([sys.executable, "-m", "zo_scipy.demo", "--quick", "--out", str(out)],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path,
                          env={**os.environ, "MPLBACKEND": "Agg"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "| method | evaluations | best true f |" in proc.stdout

    png = out / "convergence.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000

    table = (out / "results.md").read_text()
    for label, _ in METHODS:
        assert table.count(f"| {label} |") == 2  # one row per problem (noiseless, noisy)

    summary = json.loads((out / "results.json").read_text())
    budget = summary["budget"]
    assert budget == 20 * summary["dim"]
    rows = summary["rows"]
    assert len(rows) == 2 * len(METHODS)
    for r in rows:
        assert 0 < r["nfev"] <= budget and math.isfinite(r["best"])
    zoar = [r for r in rows if r["method"] == METHODS[0][0]]
    # zoar at defaults makes progress on both problems (d = 40, 800 evaluations).
    assert all(r["best"] < 0.5 * r["f0"] for r in zoar)


def test_quick_demo_has_the_torch_section(tmp_path: Path):
    from zo_scipy.torch._demo import torch_section

    text = torch_section(0, str(tmp_path), 400)
    assert "ForwardZoAR (defaults)" in text and "MeZO-style SPSA" in text
    png = tmp_path / "torch-demo.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    start = float(text.split("mean squared error ")[1].split(" ")[0])
    finals = [float(line.split("|")[2]) for line in text.splitlines() if line.startswith("| For")]
    assert finals and finals[0] < start  # 100 steps from loss values alone make progress


def test_quick_demo_has_the_uq_section(tmp_path: Path):
    from zo_scipy.uq._demo import uq_section

    text = uq_section(0, str(tmp_path), 300)
    assert "SIR calibration" in text and "95% interval" in text
    png = tmp_path / "uq-sir-posterior.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = [line for line in text.splitlines() if line.startswith("| beta") or line.startswith("| gamma")
            or line.startswith("| I0")]
    assert len(rows) == 3 and all(r.rstrip().endswith("| yes |") for r in rows)  # truth inside every interval
