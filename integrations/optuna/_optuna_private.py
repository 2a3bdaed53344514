"""Every private Optuna API the sampler touches, in one place.

Why each is needed (Optuna 5.0; re-check when Optuna changes):

- ``optuna._transform._SearchSpaceTransform`` maps float/int/log/step parameters
  to a continuous box and back. Optuna has no public equivalent; every built-in
  relative sampler (CMA-ES, GP, QMC) uses it.
- ``study._storage.set_trial_system_attr``: Optuna 5 removed the public
  ``Trial.set_system_attr``; a sampler only sees a ``FrozenTrial`` and must write
  its state through the storage, as the built-in samplers do.
- ``optuna.storages._heartbeat``: Optuna records a trial's first heartbeat only once the
  objective runs, after sampling; a worker that dies while sampling would leave a RUNNING
  trial that no heartbeat check ever fails, and a generation that never closes. The
  sampler records that first heartbeat itself, before it samples.
"""
from __future__ import annotations

import datetime
from typing import Any

import numpy as np
import optuna
from optuna._transform import _SearchSpaceTransform
from optuna.distributions import BaseDistribution, FloatDistribution, IntDistribution
from optuna.trial import FrozenTrial


def record_first_heartbeat(study: optuna.Study, trial: FrozenTrial) -> None:
    """Give a new trial its first heartbeat now (storages with a heartbeat only)."""
    from optuna.storages._heartbeat import BaseHeartbeat, is_heartbeat_enabled

    storage = study._storage
    if isinstance(storage, BaseHeartbeat) and is_heartbeat_enabled(storage):
        storage.record_heartbeat(trial._trial_id)


def started_dead_before(study: optuna.Study) -> datetime.datetime | None:
    """Untagged trials started before this time and still pending are dead (``None``: the
    storage has no heartbeat). A worker killed between creating a trial and the sampler's
    first heartbeat leaves such a trial, which Optuna's heartbeat check never fails. A live
    worker tags its trial within the few storage calls between creating it and sampling, so
    one heartbeat grace period (the time after which Optuna itself declares a silent trial
    dead) is ample; a trial that finishes untagged (sampled independently) is never a member
    of a generation either way."""
    from optuna.storages._heartbeat import BaseHeartbeat, is_heartbeat_enabled

    storage = study._storage
    if not (isinstance(storage, BaseHeartbeat) and is_heartbeat_enabled(storage)):
        return None
    backend = getattr(storage, "_backend", storage)
    interval = storage.get_heartbeat_interval() or 60
    grace = getattr(backend, "grace_period", None) or 2 * interval
    return datetime.datetime.now() - datetime.timedelta(seconds=grace)


def set_system_attr(study: optuna.Study, trial: FrozenTrial, key: str, value: Any) -> None:
    """Write one JSON-serialisable system attribute of a running trial."""
    study._storage.set_trial_system_attr(trial._trial_id, key, value)


class UnitBox:
    """The search space as the unit box :math:`[0, 1]^d` (log and step handled).

    ``to_unit`` maps parameters to the box; ``from_unit`` maps a point of the box
    back to parameters, clipped into each distribution's bounds and returned as
    builtin ``int``/``float`` (the private transform can return ``np.float64`` at
    ``high`` and does not clip).
    """

    def __init__(self, search_space: dict[str, BaseDistribution]) -> None:
        self.search_space = dict(search_space)
        self.names = list(self.search_space)
        self._t = _SearchSpaceTransform(self.search_space, transform_log=True, transform_step=True,
                                        transform_0_1=True)
        self.dim = len(self.names)

    def to_unit(self, params: dict[str, Any]) -> np.ndarray:
        return np.clip(self._t.transform({n: params[n] for n in self.names}), 0.0, 1.0)

    def from_unit(self, x: np.ndarray) -> dict[str, int | float]:
        raw = self._t.untransform(np.clip(np.asarray(x, dtype=float), 0.0, 1.0))
        out: dict[str, int | float] = {}
        for name, dist in self.search_space.items():
            v = raw[name]
            if isinstance(dist, IntDistribution):
                out[name] = int(min(max(int(round(float(v))), dist.low), dist.high))
            else:
                assert isinstance(dist, FloatDistribution)
                out[name] = float(min(max(float(v), dist.low), dist.high))
        return out
