"""The full form of the multi-process test, run by hand (issue 9: 8 processes x 500 trials).

usage: python tests/integrations/_optuna_stress.py STORAGE_URL WORKERS TRIALS_EACH K [K ...]

For each K (``num_queries``) a new study runs WORKERS processes of ``_optuna_worker.py``
sharing STORAGE_URL (with a heartbeat), then prints one JSON line: trials, their states,
lost trials (not COMPLETE), generations, chosen trials and the result of
:func:`_zoar_checks.check_study` (no fork, the closing rule, every generation the
replay of its predecessor): ``"ok": true`` or the assertion that failed.
"""
from __future__ import annotations

import json
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import optuna  # noqa: E402

from _optuna_worker import SAMPLER_KWARGS  # noqa: E402
from _zoar_checks import check_study, start_worker, wait_all  # noqa: E402


def main() -> None:
    url, workers, each = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    for K in (int(k) for k in sys.argv[4:]):
        kwargs = dict(SAMPLER_KWARGS, num_queries=K)
        name = f"stress-{K}-{uuid.uuid4().hex[:8]}"
        study = optuna.create_study(study_name=name, storage=url)
        t0 = time.monotonic()
        wait_all([start_worker(url, name, each, kwargs) for _ in range(workers)], timeout=7200)
        trials = study.get_trials(deepcopy=False)
        states = Counter(t.state.name for t in trials)
        row = {"storage": url.split(":")[0], "workers": workers, "each": each, "K": K,
               "trials": len(trials), "states": dict(states),
               "lost": workers * each - states.get("COMPLETE", 0),
               "wall_s": round(time.monotonic() - t0, 1)}
        try:
            row.update(check_study(study, max_untagged=workers, **kwargs), ok=True)
        except AssertionError as e:
            row.update(ok=False, error=str(e)[:500])
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
