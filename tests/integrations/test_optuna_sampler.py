"""ZoARSampler behaviour in one process: options, directions, failures, threads, corrupt state."""
from __future__ import annotations

import logging
import warnings

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

import torch

from _zoar_checks import check_study
from zo_scipy.core import ZoAR
from zo_scipy.core.state import encode_array
from zo_scipy.integrations.optuna import ZoARSampler, ZoARStateWarning
from zo_scipy.integrations.optuna import _state as stored

optuna.logging.set_verbosity(optuna.logging.WARNING)
KW = dict(num_queries=4, num_histories=2, warn_independent_sampling=False)


def sphere(trial: optuna.Trial, d: int = 10) -> float:
    x = np.array([trial.suggest_float(f"x{i}", -5.0, 5.0) for i in range(d)])
    return float(np.sum((x - 1.0) ** 2))


@pytest.mark.parametrize("kwargs, match", [
    (dict(num_queries=0), "num_queries"), (dict(num_histories=-1), "num_histories"),
    (dict(num_queries=1, num_histories=0), "num_queries"), (dict(mu=0.0), "mu"),
    (dict(lr=float("inf")), "lr"), (dict(update="lbfgs"), "update"),
    (dict(schedule="cosine"), "schedule"), (dict(directions="cube"), "directions"),
    (dict(seed=-1), "seed"), (dict(n_startup_trials=1.5), "n_startup_trials"),
])
def test_bad_options_name_the_argument(kwargs, match) -> None:
    with pytest.raises(ValueError, match=match):
        ZoARSampler(**kwargs)


def test_bad_types() -> None:
    with pytest.raises(TypeError, match="x0"):
        ZoARSampler(x0=[0.0])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="independent_sampler"):
        ZoARSampler(independent_sampler="random")  # type: ignore[arg-type]


def test_beats_random_search_in_10d() -> None:
    # Random search in [-5, 5]^10 around an optimum at 1: E f = 10 (100/12 + 1) = 93 and
    # the best of 300 draws stays far above 10 (f ~ scaled chi-square with 10 dof).
    # ZoAR with Adam steps of 5% of the range reaches the optimum's neighbourhood in
    # ~20 generations, so a factor 4 is a loose margin, not a tuned one.
    zo = optuna.create_study(sampler=ZoARSampler(seed=1))
    zo.optimize(sphere, n_trials=300)
    rnd = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    rnd.optimize(sphere, n_trials=300)
    assert zo.best_value < 0.25 * rnd.best_value, (zo.best_value, rnd.best_value)


def test_maximize_mirrors_minimize_exactly() -> None:
    # The sampler minimizes y = -value when maximizing: maximizing -f from the same seed
    # must ask for exactly the same parameters as minimizing f.
    a = optuna.create_study(sampler=ZoARSampler(seed=3, **KW))
    a.optimize(lambda t: sphere(t, 3), n_trials=40)
    b = optuna.create_study(sampler=ZoARSampler(seed=3, **KW), direction="maximize")
    b.optimize(lambda t: -sphere(t, 3), n_trials=40)
    assert [t.params for t in a.trials] == [t.params for t in b.trials]
    assert ZoARSampler(seed=3, **KW).get_state(b)["gen"] >= 9


def test_same_seed_same_trials_and_stored_seed_is_adopted() -> None:
    runs = []
    for _ in range(2):
        s = optuna.create_study(sampler=ZoARSampler(seed=7, **KW))
        s.optimize(lambda t: sphere(t, 3), n_trials=20)
        runs.append([t.params for t in s.trials])
    assert runs[0] == runs[1]
    # seed=None: the first sampler draws a seed and stores it; a new sampler object
    # (another worker) continues with the stored seed, not a fresh one.
    s = optuna.create_study(sampler=ZoARSampler(**KW))
    s.optimize(lambda t: sphere(t, 3), n_trials=10)
    seed = ZoARSampler(**KW).get_state(s)["seed"]
    s.sampler = ZoARSampler(**KW)
    s.optimize(lambda t: sphere(t, 3), n_trials=10)
    assert ZoARSampler(**KW).get_state(s)["seed"] == seed


def test_int_log_step_params_are_builtin_and_in_bounds() -> None:
    def obj(t: optuna.Trial) -> float:
        a = t.suggest_int("a", 3, 9, step=2)
        b = t.suggest_int("b", 1, 1000, log=True)
        c = t.suggest_float("c", 1e-6, 1.0, log=True)
        d = t.suggest_float("d", -1.0, 1.0, step=0.25)
        assert type(a) is int and type(b) is int and type(c) is float and type(d) is float
        assert a in (3, 5, 7, 9) and 1 <= b <= 1000 and 1e-6 <= c <= 1.0 and -1 <= d <= 1
        assert d / 0.25 == round(d / 0.25)
        return (a - 7) ** 2 + np.log(b) ** 2 + np.log10(c) ** 2 + d ** 2
    s = optuna.create_study(sampler=ZoARSampler(seed=0, mu=0.3, **KW))
    s.optimize(obj, n_trials=40)
    assert all(t.state == TrialState.COMPLETE for t in s.trials)
    check_study(s, max_untagged=1, seed=0, mu=0.3, **KW)


def test_failed_and_pruned_trials_are_skipped() -> None:
    def obj(t: optuna.Trial) -> float:
        v = sphere(t, 3)
        if t.number % 5 == 1:
            raise RuntimeError("objective failed")
        if t.number % 5 == 2:
            t.report(v, 0)
            raise optuna.TrialPruned()
        return v
    s = optuna.create_study(sampler=ZoARSampler(seed=0, **KW))
    s.optimize(obj, n_trials=50, catch=(RuntimeError,))
    states = {t.state for t in s.trials}
    assert states == {TrialState.COMPLETE, TrialState.FAIL, TrialState.PRUNED}
    counts = check_study(s, max_untagged=1, seed=0, **KW)  # chosen trials are all COMPLETE
    assert counts["generations"] >= 6  # 30 complete trials, K = 4: none of them wasted


def test_multi_objective_is_a_clear_error() -> None:
    s = optuna.create_study(directions=["minimize", "minimize"], sampler=ZoARSampler())
    with pytest.raises(ValueError, match="single-objective"):
        s.optimize(lambda t: (t.suggest_float("x", 0, 1), 0.0), n_trials=1, catch=())


def test_threads_share_one_sampler() -> None:
    s = optuna.create_study(sampler=ZoARSampler(seed=0, **KW))
    s.optimize(lambda t: sphere(t, 3), n_trials=40, n_jobs=2)
    counts = check_study(s, max_untagged=2, seed=0, **KW)
    assert counts["complete"] == 40 and counts["chosen"] >= 20


def test_categorical_falls_back_with_optunas_warning(caplog) -> None:
    optuna.logging.enable_propagation()
    try:
        s = optuna.create_study(sampler=ZoARSampler(seed=0, num_queries=4))
        with caplog.at_level(logging.WARNING):
            s.optimize(lambda t: sphere(t, 2) + len(t.suggest_categorical("c", ["a", "bb"])),
                       n_trials=6)
    finally:
        optuna.logging.disable_propagation()
    msgs = [r.getMessage() for r in caplog.records]
    assert any("`c`" in m and "instead of `ZoARSampler`" in m for m in msgs)
    assert not any("`x0`" in m for m in msgs)  # numeric params are ZoAR's after trial 0
    assert all(t.params["c"] in ("a", "bb") for t in s.trials)


def test_x0_and_startup_trials_set_the_first_center() -> None:
    s = optuna.create_study(sampler=ZoARSampler(seed=0, x0={"x0": 2.5, "x1": -1.0}, **KW))
    s.optimize(lambda t: sphere(t, 2), n_trials=2)
    state = ZoARSampler(seed=0, x0={"x0": 2.5, "x1": -1.0}, **KW).get_state(s)
    assert state["gen"] == 0 and state["params"] == pytest.approx({"x0": 2.5, "x1": -1.0})
    with pytest.raises(ValueError, match="x0"):
        bad = optuna.create_study(sampler=ZoARSampler(x0={"x0": 9.0}, **KW))
        bad.optimize(lambda t: sphere(t, 2), n_trials=2, catch=())
    s = optuna.create_study(sampler=ZoARSampler(seed=0, n_startup_trials=5, **KW))
    s.optimize(lambda t: sphere(t, 2), n_trials=6)
    startup = s.trials[:5]
    assert all(stored.KEY_GEN not in t.system_attrs for t in startup)
    best = min(startup, key=lambda t: t.value)
    first = s.trials[5].system_attrs[stored.KEY_STATE]
    assert first["gen"] == 0
    x = ZoAR.from_state_dict(first["core"]).x.numpy()
    assert ZoARSampler(seed=0, n_startup_trials=5, **KW)._box(
        {n: d for n, d in best.distributions.items()})[0].from_unit(x) == pytest.approx(best.params)


CORRUPT = [
    "80049500000000",                                   # a pickle, as hex: never unpickled
    {"format": 99},                                     # foreign format
    {"format": stored.FORMAT, "config": "someone-else"},   # another sampler's settings
    "MISSING_FIELD",                                    # a valid doc with a field removed
    "NAN_CENTER",                                       # a valid doc with x = NaN
    "TRUE_GEN",                                         # a valid doc with gen = True
]


@pytest.mark.parametrize("bad", CORRUPT)
def test_corrupt_state_warns_and_falls_back(bad) -> None:
    s = optuna.create_study(storage=optuna.storages.RDBStorage("sqlite:///:memory:"),
                            sampler=ZoARSampler(seed=0, **KW))
    s.optimize(lambda t: sphere(t, 3), n_trials=21)
    good = ZoARSampler(seed=0, **KW).get_state(s)
    newest = max(t.system_attrs[stored.KEY_GEN] for t in s.trials if stored.KEY_STATE in t.system_attrs)
    doc = next(t.system_attrs[stored.KEY_STATE] for t in s.trials
               if t.system_attrs.get(stored.KEY_GEN) == newest and stored.KEY_STATE in t.system_attrs)
    if bad == "MISSING_FIELD":
        bad = dict(doc, core={k: v for k, v in doc["core"].items() if k != "update"})
    elif bad == "NAN_CENTER":
        d = doc["core"]["dim"]
        bad = dict(doc, core=dict(doc["core"], x=encode_array(torch.full((d,), float("nan"), dtype=torch.float64))))
    elif bad == "TRUE_GEN":
        bad = dict(doc, gen=True)
    # A trial claiming a newer generation, carrying the bad document.
    t = s.ask()
    s._storage.set_trial_system_attr(t._trial_id, stored.KEY_SPACE, doc["space"])
    s._storage.set_trial_system_attr(t._trial_id, stored.KEY_GEN, newest + 3)
    s._storage.set_trial_system_attr(t._trial_id, stored.KEY_STATE, bad)
    s.tell(t, state=TrialState.FAIL)
    with pytest.warns(ZoARStateWarning, match=f"trial {t.number}"):
        s.optimize(lambda t: sphere(t, 3), n_trials=8)
    with pytest.warns(ZoARStateWarning):  # a fresh sampler object warns again, once
        after = ZoARSampler(seed=0, **KW).get_state(s)
    assert good["gen"] < after["gen"] <= good["gen"] + 2  # continued, not restarted, not jumped
    with warnings.catch_warnings():
        warnings.simplefilter("error", ZoARStateWarning)
        s.optimize(lambda t: sphere(t, 3), n_trials=1)  # the same sampler warns once only
