"""A study worker run as its own process by the multi-process tests.

usage: python _optuna_worker.py STORAGE_URL STUDY_NAME N_TRIALS
"""
from __future__ import annotations

import math
import sys
import time

import optuna

from zo_scipy.integrations.optuna import ZoARSampler

#: Settings shared by every worker and by the tests that replay the stored state.
SAMPLER_KWARGS = dict(seed=0, num_queries=4, num_histories=2)


def objective(trial: optuna.Trial) -> float:
    xs = [trial.suggest_float(f"x{i}", -2.0, 2.0) for i in range(3)]
    n = trial.suggest_int("n", 0, 20)
    lr = trial.suggest_float("lr", 1e-4, 1.0, log=True)
    time.sleep(0.01)  # let the workers interleave
    return sum((x - 0.5) ** 2 for x in xs) + (n - 7) ** 2 / 50 + (math.log10(lr) + 2) ** 2


def main() -> None:
    url, name, n_trials = sys.argv[1], sys.argv[2], int(sys.argv[3])
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name=name, storage=url, sampler=ZoARSampler(**SAMPLER_KWARGS))
    study.optimize(objective, n_trials=n_trials)


if __name__ == "__main__":
    main()
