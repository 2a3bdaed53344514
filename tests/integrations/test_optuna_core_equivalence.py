"""The sampler's update is the core's: its stored states equal an uninterrupted core run.

The study stores every generation as JSON (a journal file: the state goes through real
serialisation); a plain :class:`zo_scipy.core.ZoAR` is told the same points and values in
the same order, without ever being saved. Their iterates must agree bit for bit for every
generation, on a noisy objective on which the core's noise rule freezes ``mu``.
"""
from __future__ import annotations

import numpy as np
import optuna
import pytest
import torch
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend

from zo_scipy.core import ZoAR
from zo_scipy.integrations.optuna import ZoARSampler
from zo_scipy.integrations.optuna import _state as stored

optuna.logging.set_verbosity(optuna.logging.WARNING)
KW = dict(seed=4, num_queries=4, num_histories=2, warn_independent_sampling=False)
GENERATIONS = 520


def noisy_sphere(trial: optuna.Trial) -> float:
    x = np.array([trial.suggest_float(f"x{i}", -5.0, 5.0) for i in range(3)])
    # Noise of sd 1, a function of the trial number only: the replay below sees the same values.
    return float(np.sum((x - 1.0) ** 2) + np.random.default_rng(trial.number).standard_normal())


@pytest.mark.slow
def test_stored_generations_equal_an_uninterrupted_core_run(tmp_path) -> None:
    storage = JournalStorage(JournalFileBackend(str(tmp_path / "journal.log")))
    study = optuna.create_study(storage=storage, sampler=ZoARSampler(**KW))
    study.optimize(noisy_sphere, n_trials=KW["num_queries"] * GENERATIONS + 2)

    sampler = ZoARSampler(**KW)
    trials = study.get_trials(deepcopy=False)
    box, key = sampler._box(sampler.infer_relative_search_space(study, None))
    config = sampler._config(study)
    points = sampler._points(trials, box)
    docs = {t.system_attrs[stored.KEY_GEN]: stored.read(t.system_attrs)
            for t in trials if stored.KEY_STATE in t.system_attrs}
    by_gen: dict[int, list[optuna.trial.FrozenTrial]] = {}
    for t in trials:  # trial 0 comes before any search space: sampled independently, untagged
        if stored.KEY_GEN in t.system_attrs:
            by_gen.setdefault(t.system_attrs[stored.KEY_GEN], []).append(t)
    assert max(docs) >= GENERATIONS

    core, _ = stored.decode(docs[0], config, key, box.dim, points)
    plain = ZoAR(core.x, options=core.options, lower=core.lower, upper=core.upper, seed=core.seed)
    froze_at = None
    for g in range(max(docs)):
        numbers, X, y = sampler._batch(by_gen[g][: config.options.num_queries], box, config)
        plain.tell(y, points=X)
        saved, _ = stored.decode(docs[g + 1], config, key, box.dim, points)
        assert torch.equal(saved.x, plain.x), f"generation {g + 1}: iterates differ"
        assert (saved.mu, saved.lr, saved.mu_floor) == (plain.mu, plain.lr, plain.mu_floor)
        assert torch.equal(saved.history.values(), plain.history.values())
        if froze_at is None and plain.mu_floor > 0:
            froze_at = g + 1
    # The noise rule fired (mu frozen at a floor) well inside the compared generations.
    assert froze_at is not None and froze_at < GENERATIONS - 50, froze_at
    assert plain.control.patience == 3
