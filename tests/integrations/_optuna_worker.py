"""A study worker run as its own process by the multi-process tests.

usage: python _optuna_worker.py STORAGE_URL STUDY_NAME N_TRIALS [SAMPLER_KWARGS_JSON]

With ``ZO_TEST_DIE_WHILE_SAMPLING=n`` in the environment the process kills itself while
sampling its n-th trial (a worker that dies before its objective ever runs).

RDB storages get a heartbeat (``heartbeat_interval=1``, ``grace_period=10``): the trial of
a killed worker is marked failed by Optuna, which lets its generation close.
"""
from __future__ import annotations

import json
import math
import os
import sys
import time

import optuna

from zo_scipy.integrations.optuna import ZoARSampler

#: Settings shared by every worker and by the tests that replay the stored state.
SAMPLER_KWARGS: dict = dict(seed=0, num_queries=4, num_histories=2)
HEARTBEAT = dict(heartbeat_interval=1, grace_period=10)  # generous: a loaded machine delays heartbeats


def objective(trial: optuna.Trial) -> float:
    xs = [trial.suggest_float(f"x{i}", -2.0, 2.0) for i in range(3)]
    n = trial.suggest_int("n", 0, 20)
    lr = trial.suggest_float("lr", 1e-4, 1.0, log=True)
    time.sleep(0.01)  # let the workers interleave
    return sum((x - 0.5) ** 2 for x in xs) + (n - 7) ** 2 / 50 + (math.log10(lr) + 2) ** 2


def storage(url: str) -> optuna.storages.BaseStorage:
    return optuna.storages.RDBStorage(url, **HEARTBEAT)  # type: ignore[arg-type]


def main() -> None:
    url, name, n_trials = sys.argv[1], sys.argv[2], int(sys.argv[3])
    kwargs = json.loads(sys.argv[4]) if len(sys.argv) > 4 else SAMPLER_KWARGS
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = ZoARSampler(**kwargs)
    die_at = int(os.environ.get("ZO_TEST_DIE_WHILE_SAMPLING", "-1"))
    if die_at >= 0:
        sample, count = sampler.sample_relative, [0]

        def sample_or_die(study, trial, space):  # type: ignore[no-untyped-def]
            count[0] += 1
            if count[0] > die_at:
                os._exit(9)
            return sample(study, trial, space)

        sampler.sample_relative = sample_or_die  # type: ignore[method-assign]
    study = optuna.load_study(study_name=name, storage=storage(url), sampler=sampler)
    study.optimize(objective, n_trials=n_trials)


if __name__ == "__main__":
    main()
