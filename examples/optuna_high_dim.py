"""Optuna: a 100-d problem, two worker processes
=============================================

A 100-dimensional continuous study shared by two worker processes.

Two processes run ``study.optimize`` on the same study, stored in an Optuna
journal file (one machine; use an RDB URL such as PostgreSQL across machines); ZoARSampler keeps
its whole state in the study's storage, so both drive ONE optimizer. The problem
is a shifted, rotated ellipsoid (condition number 100) in [-5, 5]^100; the same
budget with Optuna's RandomSampler is shown for scale.

Run:  python examples/optuna_high_dim.py
Quick (CI): ZO_SCIPY_EXAMPLE_QUICK=1 python examples/optuna_high_dim.py
"""
from __future__ import annotations

import multiprocessing as mp
import os
import tempfile

import numpy as np
import optuna

from zo_scipy.integrations.optuna import ZoARSampler

QUICK = os.environ.get("ZO_SCIPY_EXAMPLE_QUICK") == "1"
D = 100
TRIALS_PER_WORKER = 60 if QUICK else 1500
_rng = np.random.default_rng(0)
R, _ = np.linalg.qr(_rng.standard_normal((D, D)))
X_STAR = _rng.uniform(-3, 3, D)
W = 10.0 ** (2.0 * np.arange(D) / (D - 1))


def objective(trial: optuna.Trial) -> float:
    x = np.array([trial.suggest_float(f"x{i}", -5.0, 5.0) for i in range(D)])
    z = R @ (x - X_STAR)
    return float(np.sum(W * z * z))


def open_storage(path: str) -> optuna.storages.JournalStorage:
    return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(path))


def worker(path: str) -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name="ellipsoid", storage=open_storage(path),
                              sampler=ZoARSampler(seed=0, num_queries=20))
    study.optimize(objective, n_trials=TRIALS_PER_WORKER)


def main() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "journal.log")
        study = optuna.create_study(study_name="ellipsoid", storage=open_storage(path))
        ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
        procs = [ctx.Process(target=worker, args=(path,)) for _ in range(2)]
        for p in procs:
            p.start()
        for p in procs:
            p.join()
            if p.exitcode != 0:
                raise SystemExit(f"a worker failed with exit code {p.exitcode}")
        state = ZoARSampler(seed=0, num_queries=20).get_state(study)
        n = len(study.trials)
        print(f"ZoAR, 2 processes, {n} trials: best f = {study.best_value:.4g} "
              f"(f at the box center {objective(optuna.trial.FixedTrial({f'x{i}': 0.0 for i in range(D)})):.4g}); "
              f"generation {state['gen'] if state else '-'}")
    rnd = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    rnd.optimize(objective, n_trials=n)
    print(f"RandomSampler, {n} trials: best f = {rnd.best_value:.4g}")


if __name__ == "__main__":
    main()
