"""Several real processes share one study through SQLite, PostgreSQL and MariaDB storage.

Each test ends with :func:`_zoar_checks.check_study`: every trial accounted for,
no forked generation, and every stored generation equal to the replay of its
predecessor (see that module's docstring). Workers use a heartbeat
(``_optuna_worker.HEARTBEAT``).
"""
from __future__ import annotations

import os
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from _optuna_worker import HEARTBEAT, SAMPLER_KWARGS
from _zoar_checks import check_study, start_worker, wait_all
from zo_scipy.integrations.optuna import ZoARSampler
from zo_scipy.integrations.optuna import _state as stored

optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.fixture
def sqlite_url(tmp_path) -> Iterator[str]:
    """SQLite on a RAM disk when there is one: on a slow disk every commit is an fsync."""
    shm = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    d = Path(tempfile.mkdtemp(prefix="zoar-sqlite-", dir=shm)) if shm else tmp_path
    yield f"sqlite:///{d / 'study.db'}"
    if shm:
        shutil.rmtree(d, ignore_errors=True)


def _run_parallel(url: str, name: str, n_workers: int, n_each: int,
                  sampler_kwargs: dict | None = None) -> optuna.Study:
    study = optuna.create_study(study_name=name, storage=url)
    wait_all([start_worker(url, name, n_each, sampler_kwargs) for _ in range(n_workers)])
    return study


def _check_parallel(study: optuna.Study, total: int) -> None:
    counts = check_study(study, max_untagged=3)
    assert counts["complete"] == total
    # Waste: complete trials not chosen by any generation (stragglers sampled while a
    # generation waited for its chosen trials). With 3 workers at most ~2 per
    # generation of K = 4 can straggle; require at least half of all trials used.
    assert counts["chosen"] >= total // 2, counts
    # The current state is the newest stored generation, or the one after it when the
    # last trials completed that generation (it is stored by the next sample).
    gen = ZoARSampler(**SAMPLER_KWARGS).get_state(study)["gen"]
    assert gen in (counts["generations"] - 1, counts["generations"]), (gen, counts)


def test_three_processes_sqlite(sqlite_url) -> None:
    study = _run_parallel(sqlite_url, "mp", n_workers=3, n_each=20)
    _check_parallel(study, 60)


@pytest.mark.postgres
def test_three_processes_postgres(postgres_url) -> None:
    study = _run_parallel(postgres_url, "mp-pg", n_workers=3, n_each=20)
    _check_parallel(study, 60)


@pytest.mark.mariadb
def test_three_processes_mariadb(mariadb_url) -> None:
    study = _run_parallel(mariadb_url, "mp-my", n_workers=3, n_each=20)
    _check_parallel(study, 60)


def _more_workers_than_queries(url: str, name: str, K: int) -> None:
    """Issue 9 item 10 (a smaller form of 8 processes x 500 trials): with fewer queries per
    generation than workers, a generation used to be stored in two versions."""
    kwargs = dict(SAMPLER_KWARGS, num_queries=K)
    study = _run_parallel(url, name, n_workers=4, n_each=30, sampler_kwargs=kwargs)
    trials = study.get_trials(deepcopy=False)
    assert len(trials) == 120 and all(t.state == TrialState.COMPLETE for t in trials)  # none lost
    counts = check_study(study, max_untagged=4, **kwargs)  # no fork, every generation replays
    assert counts["generations"] >= 120 // (4 * K), counts


@pytest.mark.parametrize("K", [2, 3])
def test_more_workers_than_queries_sqlite(sqlite_url, K) -> None:
    _more_workers_than_queries(sqlite_url, f"fork-{K}", K)


@pytest.mark.postgres
@pytest.mark.parametrize("K", [2, 3])
def test_more_workers_than_queries_postgres(postgres_url, K) -> None:
    _more_workers_than_queries(postgres_url, f"fork-pg-{K}", K)


@pytest.mark.mariadb
@pytest.mark.parametrize("K", [2, 3])
def test_more_workers_than_queries_mariadb(mariadb_url, K) -> None:
    _more_workers_than_queries(mariadb_url, f"fork-my-{K}", K)


def test_startup_trials_are_distinct_across_processes(sqlite_url) -> None:
    """Issue 9 item 12: every process used to draw the same startup points from seed=0."""
    kwargs = dict(SAMPLER_KWARGS, n_startup_trials=12)
    study = _run_parallel(sqlite_url, "startup", n_workers=4, n_each=8, sampler_kwargs=kwargs)
    trials = study.get_trials(deepcopy=False)
    startup = [t for t in trials if stored.KEY_GEN not in t.system_attrs]
    assert len(startup) >= 12
    points = [tuple(sorted(t.params.items())) for t in startup]
    assert len(set(points)) == len(points), "a startup point was sampled twice"
    # Each is a function of (seed, trial number, parameter): the same in any process.
    for t in startup:
        for name, dist in t.distributions.items():
            rs = optuna.samplers.RandomSampler(seed=stored.trial_seed(0, t.number, name))
            assert rs.sample_independent(study, t, name, dist) == t.params[name]
    check_study(study, max_untagged=len(startup), **kwargs)


def _kill_and_restart(url: str, name: str) -> None:
    study = optuna.create_study(study_name=name, storage=url)
    victim = start_worker(url, name, 10_000)
    deadline = time.monotonic() + 90
    gen_before = -1
    while time.monotonic() < deadline:  # let it reach generation 5, then kill it mid-study
        time.sleep(0.2)
        gens = [t.system_attrs.get(stored.KEY_GEN, -1) for t in study.get_trials(deepcopy=False)
                if stored.KEY_STATE in t.system_attrs]
        gen_before = max(gens, default=-1)
        if gen_before >= 5:
            break
    victim.send_signal(signal.SIGKILL)
    victim.communicate()
    assert victim.returncode == -signal.SIGKILL
    assert gen_before >= 5, "the first worker never got going"
    n_before = len(study.get_trials(deepcopy=False))
    state_before = ZoARSampler(**SAMPLER_KWARGS).get_state(study)
    # The killed worker's trial is RUNNING and keeps its generation open until it is stale:
    # the restarted worker's first trial (Optuna's heartbeat check) then marks it failed.
    time.sleep(HEARTBEAT["grace_period"] + 1)
    wait_all([start_worker(url, name, 24)])
    trials = study.get_trials(deepcopy=False)
    new = [t for t in trials if t.number >= n_before]
    assert len(new) == 24 and all(t.state == TrialState.COMPLETE for t in new)
    # The new process starts from the stored generation, not from scratch ...
    assert min(t.system_attrs[stored.KEY_GEN] for t in new) >= state_before["gen"]
    # ... and keeps advancing (K = 4: 24 trials close about 6 generations, once Optuna's
    # heartbeat check has failed the killed worker's RUNNING trial).
    state_after = ZoARSampler(**SAMPLER_KWARGS).get_state(study)
    assert state_after["gen"] >= state_before["gen"] + 4
    check_study(study, max_untagged=1)


def test_a_worker_dying_while_sampling_does_not_block_the_study(sqlite_url) -> None:
    # Optuna records a trial's first heartbeat only when the objective starts; the sampler
    # records it before sampling, so a trial whose worker died in mid-sample goes stale and
    # is failed like any other, and its generation closes.
    name = "die-sampling"
    optuna.create_study(study_name=name, storage=sqlite_url)
    victim = start_worker(sqlite_url, name, 100, env_extra={"ZO_TEST_DIE_WHILE_SAMPLING": "14"})
    victim.communicate(timeout=120)
    assert victim.returncode == 9
    study = optuna.load_study(study_name=name, storage=sqlite_url)
    running = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.RUNNING]
    assert len(running) == 1 and stored.KEY_GEN not in running[0].system_attrs
    before = ZoARSampler(**SAMPLER_KWARGS).get_state(study)["gen"]
    time.sleep(HEARTBEAT["grace_period"] + 1)
    wait_all([start_worker(sqlite_url, name, 24)])
    after = ZoARSampler(**SAMPLER_KWARGS).get_state(study)["gen"]
    assert after >= before + 4, (before, after)
    assert study.get_trials(deepcopy=False)[running[0].number].state == TrialState.FAIL


def test_kill_and_restart_sqlite(sqlite_url) -> None:
    _kill_and_restart(sqlite_url, "restart")


@pytest.mark.postgres
def test_kill_and_restart_postgres(postgres_url) -> None:
    _kill_and_restart(postgres_url, "restart-pg")


@pytest.mark.mariadb
def test_kill_and_restart_mariadb(mariadb_url) -> None:
    _kill_and_restart(mariadb_url, "restart-my")
