"""Checks of a study's stored ZoAR state, shared by the integration tests.

"Consistent" means, from the stored state only:

1. every trial is accounted for: each tagged with the generation it was sampled
   from, each generation's chosen trials complete, of that generation, used once,
   and exactly the first K complete trials of the generation from its ``first``
   trial number on (the closing rule, applied to the final trial states);
2. no fork: all snapshots stored for one generation are identical;
3. every stored generation G+1 is exactly ``advance(state G, trials it records)``:
   replaying the core's step from storage reproduces it bit for bit.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import optuna
from optuna.trial import TrialState

from zo_scipy.integrations.optuna import ZoARSampler
from zo_scipy.integrations.optuna import _state as stored


from _optuna_worker import SAMPLER_KWARGS

WORKER = Path(__file__).with_name("_optuna_worker.py")


def check_study(study: optuna.Study, max_untagged: int, **sampler_kwargs) -> dict[str, int]:
    """Assert points 1-3 of the module docstring; return counts for further checks.

    Trials that start before any trial is complete have no search space to relate
    to and are sampled independently (untagged): one per worker at most.
    """
    sampler = ZoARSampler(**(sampler_kwargs or SAMPLER_KWARGS))
    trials = study.get_trials(deepcopy=False)
    by_number = {t.number: t for t in trials}
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    space = sampler.infer_relative_search_space(study, None)
    box, key = sampler._box(space)
    config = sampler._config(study)
    docs: dict[int, list[dict]] = {}
    untagged = [t.number for t in complete if stored.KEY_GEN not in t.system_attrs]
    assert len(untagged) <= max_untagged, untagged
    for t in complete:
        if t.number not in untagged:
            assert t.system_attrs.get(stored.KEY_SPACE) == key, f"trial {t.number} is not ZoAR's"
            assert isinstance(t.system_attrs.get(stored.KEY_GEN), int)
    for t in trials:
        if stored.KEY_STATE in t.system_attrs:
            docs.setdefault(t.system_attrs[stored.KEY_GEN], []).append(stored.read(t.system_attrs))
    for g, ds in docs.items():  # (2) no fork
        diff = sorted({k for d in ds for k in d if d.get(k) != ds[0].get(k)})
        assert not diff, f"generation {g} was stored in {len(ds)} different versions (fields {diff})"
    gens = sorted(docs)
    assert gens == list(range(len(gens))), f"generations missing from storage: {gens}"
    chosen: set[int] = set()
    points = sampler._points(trials, box)
    for g in gens[:-1]:  # (3) replay
        opt, told = stored.decode(docs[g][0], config, key, box.dim, points)
        first, nxt = docs[g][0]["first"], docs[g + 1][0]
        members = [t for t in trials if t.number >= first and t.system_attrs.get(stored.KEY_GEN) == g
                   and t.system_attrs.get(stored.KEY_SPACE) == key and t.state == TrialState.COMPLETE]
        used = sorted(members, key=lambda t: t.number)[: config.options.num_queries]
        used = [t.number for t in used]
        if str(g) in nxt["trials"]:
            assert nxt["trials"][str(g)] == used, (g, nxt["trials"][str(g)], used)
        assert nxt["first"] == min(used)
        batch = sampler._batch([by_number[n] for n in used], box, config)
        replayed = stored.encode(*stored.advance(opt, told, *batch, config=config), config, key,
                                 min(used))
        assert replayed == nxt, f"generation {g + 1} is not the replay of {g}"
        assert len(used) == config.options.num_queries
        for n in used:  # (1) chosen trials: complete, of this generation, used once
            assert by_number[n].state == TrialState.COMPLETE
            assert by_number[n].system_attrs[stored.KEY_GEN] == g
            assert n not in chosen
            chosen.add(n)
    return {"complete": len(complete), "generations": len(gens), "chosen": len(chosen)}


def start_worker(url: str, study_name: str, n_trials: int,
                 sampler_kwargs: dict | None = None, env_extra: dict | None = None) -> subprocess.Popen:
    """One study worker in its own process (see ``_optuna_worker.py``)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", **(env_extra or {}))
    extra = [json.dumps(sampler_kwargs)] if sampler_kwargs is not None else []
    return subprocess.Popen([sys.executable, str(WORKER), url, study_name, str(n_trials), *extra],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wait_all(procs: list[subprocess.Popen], timeout: float = 150.0) -> None:
    deadline = time.monotonic() + timeout
    for p in procs:
        try:
            out, _ = p.communicate(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            raise
        assert p.returncode == 0, f"worker failed with {p.returncode}:\n{out[-3000:]}"
