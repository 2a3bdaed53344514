r"""``ZoARSampler``: ZoAR as an Optuna relative sampler whose state lives in storage.

Generation :math:`G` of the optimizer asks for points :math:`x_G + \mu u_{G,k}` in
the search space mapped to the unit box; a trial takes slot
:math:`k = \text{number} \bmod 4K`, its direction drawn from a generator seeded by
``(seed, G)``. Once :math:`K` trials of generation :math:`G` are complete, any
worker computes generation :math:`G+1` from the stored state of :math:`G` and the
complete trials of the reuse window (a deterministic function, see
:mod:`._state`) and stores it as JSON on the trial it is sampling. Workers never
hold state of their own that others lack: a new or restarted worker reads the
newest stored generation and continues from it.
"""
from __future__ import annotations

import hashlib
import json
import math
import secrets
import threading
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import optuna
import torch
from optuna.distributions import BaseDistribution, FloatDistribution, IntDistribution
from optuna.samplers import BaseSampler, RandomSampler
from optuna.samplers._base import _INDEPENDENT_SAMPLING_WARNING_TEMPLATE
from optuna.search_space import IntersectionSearchSpace
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from zo_scipy.core.options import ZoAROptions, check_count
from zo_scipy.core.zoar import ZoAR

from . import _state as stored
from ._optuna_private import UnitBox, set_system_attr

_logger = optuna.logging.get_logger(__name__)

#: Default smoothing radius and step size, as fractions of each parameter's range
#: (the unit box). Larger than the SciPy method's defaults because tuning
#: objectives are usually noisy and low-dimensional.
DEFAULT_MU = 0.1
DEFAULT_LR = 0.05


#: A decoded generation: the core optimizer and the trials of the batches in its buffer.
_Loaded = tuple[ZoAR, stored.TrialMap]


class ZoARStateWarning(UserWarning):
    """Stored state under the ``zoar:`` prefix was ignored (corrupt or foreign)."""


def _supported(dist: BaseDistribution) -> bool:
    return isinstance(dist, (FloatDistribution, IntDistribution)) and not dist.single()


def _space_key(search_space: dict[str, BaseDistribution]) -> str:
    items = sorted((n, optuna.distributions.distribution_to_json(d)) for n, d in search_space.items())
    return hashlib.sha256(json.dumps(items).encode()).hexdigest()[:16]


class ZoARSampler(BaseSampler):
    r"""Optuna sampler running ZoAR (averaged-baseline, query-reuse zeroth-order descent).

    Float and int parameters (log and step included) of the intersection search
    space are mapped to the unit box :math:`[0, 1]^d`. Generation :math:`G` has a
    center :math:`x_G` and asks :math:`K` trials at :math:`x_G + \mu u_k`,
    :math:`u_k \sim N(0, I)`; with the losses :math:`y_j` (negated values when
    maximizing) of the complete trials of the last :math:`N+1` generations,

    .. math::
        g = \frac{1}{M-1}\sum_j (y_j - \bar y)\,\frac{u_j}{\mu},\qquad
        x_{G+1} = \Pi_{[0,1]^d}\bigl(x_G - \Delta(g)\bigr),

    with :math:`u_j` the displacement actually queried (after rounding and
    clipping) and :math:`\Delta` the update rule (Adam by default). The state is
    small JSON in trial system attributes under ``zoar:``; any number of threads
    and processes can share a study and a restarted worker continues where the
    study stands.

    Parameters
    ----------
    seed : int, optional
        Seeds the directions (and the independent sampler). With ``None`` the
        first worker draws one and stores it; later workers adopt it.
    n_startup_trials : int
        Trials sampled by ``independent_sampler`` before ZoAR starts; ZoAR then
        starts at the best of them (unless ``x0`` is given).
    independent_sampler : optuna.samplers.BaseSampler, optional
        For categorical and other unsupported parameters (with Optuna's standard
        warning) and startup trials. Default: ``RandomSampler(seed=seed)``.
    mu, lr : float, optional
        Smoothing radius and initial step size as fractions of each parameter's
        range. Defaults ``DEFAULT_MU`` (0.1) and ``DEFAULT_LR`` (0.05).
    num_queries : int
        :math:`K`, trials per generation.
    num_histories : int
        :math:`N`, past generations whose trials are reused in the estimate.
    x0 : dict, optional
        Initial parameter values (the rest start at the middle of their range).
    update : {"adam", "radazo", "sgd"}
        Update rule of the core (:func:`zo_scipy.core.updates.make_update_rule`).
    schedule : {"adaptive", "constant"}
        ``adaptive`` shrinks the step when progress stalls
        (:class:`zo_scipy.core.control.StepControl`).
    adapt_mu : bool, optional
        Shrink ``mu`` with the step (default: True when ``mu`` is not given).
    directions : {"gaussian", "sphere", "orthogonal"}
    warn_independent_sampling : bool
        Log Optuna's warning when a parameter falls back to the independent sampler.

    Notes
    -----
    All workers of a study must use the same settings (stored state written with
    other settings is ignored with a :class:`ZoARStateWarning`). Stored state is
    validated, never unpickled; corrupt entries are skipped with a warning.
    """

    def __init__(
        self,
        *,
        seed: int | None = None,
        n_startup_trials: int = 0,
        independent_sampler: BaseSampler | None = None,
        mu: float | None = None,
        lr: float | None = None,
        num_queries: int = 10,
        num_histories: int = 5,
        x0: dict[str, Any] | None = None,
        update: str = "adam",
        schedule: str = "adaptive",
        adapt_mu: bool | None = None,
        directions: str = "gaussian",
        warn_independent_sampling: bool = True,
    ) -> None:
        if seed is not None:
            seed = check_count("seed", seed, 0)
        n_startup_trials = check_count("n_startup_trials", n_startup_trials, 0)
        if x0 is not None and not isinstance(x0, dict):
            raise TypeError(f"x0 must be a dict of parameter values, got {type(x0).__name__}")
        if independent_sampler is not None and not isinstance(independent_sampler, BaseSampler):
            raise TypeError("independent_sampler must be an optuna.samplers.BaseSampler, got "
                            f"{type(independent_sampler).__name__}")
        # The step size and radius are fractions of each parameter's range: the unit box.
        self._options = ZoAROptions(
            num_queries=num_queries, num_histories=num_histories, update=update, schedule=schedule,
            directions=directions, mu=DEFAULT_MU if mu is None else mu,
            lr=DEFAULT_LR if lr is None else lr,
            adapt_mu=(mu is None) if adapt_mu is None else adapt_mu)
        self._seed = seed
        self._n_startup_trials = n_startup_trials
        self._independent_sampler = independent_sampler or RandomSampler(seed=seed)
        self._x0 = dict(x0) if x0 is not None else None
        self._warn_independent_sampling = bool(warn_independent_sampling)
        num_queries, num_histories = self._options.num_queries, self._options.num_histories
        # Only the newest trials are scanned for state (older ones only through the trial
        # numbers the state records), so the cost per trial does not grow with the study.
        self._scan = max(256, 4 * num_queries * (num_histories + 2))
        self._search_space = IntersectionSearchSpace()
        self._lock = threading.RLock()
        self._decoded: dict[tuple[Any, ...], tuple[ZoAR, stored.TrialMap] | None] = {}  # (None: bad)
        self._warned: set[tuple[int, str]] = set()
        self._dirs: dict[tuple[int, int, int], torch.Tensor] = {}
        self._boxes: dict[str, UnitBox] = {}

    # -- Optuna API ---------------------------------------------------------------
    def reseed_rng(self) -> None:
        # Directions are seeded by (stored seed, generation): nothing to reseed here.
        self._independent_sampler.reseed_rng()

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self._independent_sampler.before_trial(study, trial)

    def after_trial(self, study: optuna.Study, trial: FrozenTrial, state: TrialState,
                    values: Sequence[float] | None) -> None:
        self._independent_sampler.after_trial(study, trial, state, values)

    def infer_relative_search_space(self, study: optuna.Study,
                                    trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return {n: d for n, d in self._search_space.calculate(study).items() if _supported(d)}

    def sample_relative(self, study: optuna.Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        self._check_single_objective(study)
        numeric = {n: d for n, d in search_space.items() if _supported(d)}
        params: dict[str, Any] = self._sample_zoar(study, trial, numeric) if numeric else {}
        for name, dist in search_space.items():  # only when handed a categorical directly
            if name not in params and not _supported(dist) and not dist.single():
                params[name] = self._independent_sampler.sample_independent(study, trial, name, dist)
        return params

    def sample_independent(self, study: optuna.Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        self._check_single_objective(study)
        # Warn only about parameters ZoAR cannot take over: not about a numeric parameter
        # of a trial that started before any trial had completed (nothing to relate to).
        if (self._warn_independent_sampling
                and self._n_complete(study) >= max(1, self._n_startup_trials)
                and param_name not in self.infer_relative_search_space(study, trial)):
            _logger.warning(_INDEPENDENT_SAMPLING_WARNING_TEMPLATE.format(
                param_name=param_name, trial_number=trial.number,
                independent_sampler_name=type(self._independent_sampler).__name__,
                sampler_name=type(self).__name__,
                fallback_reason="dynamic search space and `CategoricalDistribution` are not "
                                "supported by `ZoARSampler`"))
        return self._independent_sampler.sample_independent(study, trial, param_name,
                                                            param_distribution)

    # -- public inspection -------------------------------------------------------------
    def get_state(self, study: optuna.Study) -> dict[str, Any] | None:
        """The optimizer's current generation: ``gen``, ``seed``, ``params`` (its center as
        parameter values), ``mu`` and ``lr`` (fractions of each range) and
        ``document`` (the stored JSON, see :mod:`zo_scipy.integrations.optuna._state`).

        ``None`` before ZoAR has sampled (startup, or no numeric parameter yet).
        """
        space = self.infer_relative_search_space(study, None)  # type: ignore[arg-type]  # Optuna's own samplers pass None too
        if not space:
            return None
        config = self._config(study)
        with self._lock:
            box, key = self._box(space)
            trials = study.get_trials(deepcopy=False)
            loaded, scope = self._load_scoped(trials, box, key, config)
            if loaded is None:
                return None
            opt, told, _ = self._advance_all(*loaded, scope, trials, box, key, config)
        return {"gen": opt.nit, "seed": opt.seed, "params": box.from_unit(opt.x.numpy()),
                "mu": opt.mu, "lr": opt.lr,
                "document": stored.encode(opt, told, config, key)}

    # -- internals ---------------------------------------------------------------------
    def _check_single_objective(self, study: optuna.Study) -> None:
        if len(study.directions) > 1:
            raise ValueError("ZoARSampler supports single-objective studies only; this study has "
                             f"{len(study.directions)} objectives")

    def _config(self, study: optuna.Study) -> stored.Config:
        return stored.Config(options=self._options, maximize=study.direction == StudyDirection.MAXIMIZE)

    @staticmethod
    def _n_complete(study: optuna.Study) -> int:
        return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))

    def _box(self, space: dict[str, BaseDistribution]) -> tuple[UnitBox, str]:
        key = _space_key(space)
        if key not in self._boxes:
            self._boxes[key] = UnitBox(space)
        return self._boxes[key], key

    def _warn(self, trial: FrozenTrial, what: str) -> None:
        if (trial._trial_id, what) in self._warned:
            return
        self._warned.add((trial._trial_id, what))
        warnings.warn(f"ZoARSampler ignores the state stored in trial {trial.number}: {what}. "
                      "Continuing from older stored state (or from the start).",
                      ZoARStateWarning, stacklevel=4)

    def _trials_by_generation(self, trials: list[FrozenTrial], key: str) -> dict[int, list[FrozenTrial]]:
        """Trials of this search space by generation, each list sorted by number."""
        tagged: dict[int, list[FrozenTrial]] = {}
        for t in trials:
            attrs = t.system_attrs
            if stored.KEY_GEN not in attrs:
                continue
            if attrs.get(stored.KEY_SPACE) != key:
                continue  # another search space (or a corrupt tag): not ours to use
            g = attrs[stored.KEY_GEN]
            if isinstance(g, bool) or not isinstance(g, int) or g < 0:
                self._warn(t, f"{stored.KEY_GEN} = {g!r:.40} is not a generation number")
                continue
            tagged.setdefault(g, []).append(t)
        for v in tagged.values():
            v.sort(key=lambda t: t.number)
        return tagged

    def _points(self, trials: list[FrozenTrial], box: UnitBox) -> Callable[[list[int]], torch.Tensor]:
        """Trial numbers -> their parameters in the unit box (the points the core was told)."""
        by_number: dict[int, FrozenTrial] = {}

        def lookup(n: int) -> FrozenTrial | None:
            if 0 <= n < len(trials) and trials[n].number == n:  # the usual layout: O(1)
                return trials[n]
            if not by_number:
                by_number.update((t.number, t) for t in trials)
            return by_number.get(n)

        def points(numbers: list[int]) -> torch.Tensor:
            rows = []
            for n in numbers:
                t = lookup(n)
                if t is None or t.state != TrialState.COMPLETE or any(p not in t.params for p in box.names):
                    raise stored.CorruptState(f"trial {n}, recorded in the state, is not a complete trial "
                                          "of this search space")
                rows.append(box.to_unit(t.params))
            return torch.tensor(np.array(rows), dtype=torch.float64).reshape(len(rows), box.dim)

        return points

    def _load(self, candidates: list[FrozenTrial], trials: list[FrozenTrial], box: UnitBox, key: str,
              config: stored.Config) -> _Loaded | None:
        """The newest valid stored generation among ``candidates`` (lowest trial number among
        equals), decoded against all ``trials``. The result is shared: never mutate it."""
        cands = [t for t in candidates if stored.KEY_STATE in t.system_attrs
                 and t.system_attrs.get(stored.KEY_SPACE) == key]

        def order(t: FrozenTrial) -> tuple[int, int]:
            g = t.system_attrs.get(stored.KEY_GEN)
            return (-(g if isinstance(g, int) and not isinstance(g, bool) else -1), t.number)

        if len(self._decoded) > 64:
            self._decoded.clear()
        points = self._points(trials, box)
        for t in sorted(cands, key=order):
            # Finished or not, a trial's snapshot is written once: decode it once.
            ck = (t._trial_id, t.datetime_start, key)
            if ck not in self._decoded:
                try:
                    loaded = stored.decode(t.system_attrs[stored.KEY_STATE], config, key, box.dim, points)
                    if loaded[0].nit != t.system_attrs.get(stored.KEY_GEN):
                        raise stored.CorruptState(f"its generation {loaded[0].nit} does not match the tag")
                    self._decoded[ck] = loaded
                except stored.CorruptState as e:
                    self._decoded[ck] = None
                    self._warn(t, str(e))
            hit = self._decoded[ck]
            if hit is not None:
                return hit
        return None

    def _load_scoped(self, trials: list[FrozenTrial], box: UnitBox, key: str,
                     config: stored.Config) -> tuple[_Loaded | None, list[FrozenTrial]]:
        """:meth:`_load` over the newest trials, over all of them only when that finds nothing."""
        recent = trials[-self._scan:]
        loaded = self._load(recent, trials, box, key, config)
        if loaded is None and len(recent) < len(trials):
            return self._load(trials, trials, box, key, config), trials
        return loaded, recent

    def _batch(self, members: list[FrozenTrial], box: UnitBox,
               config: stored.Config) -> tuple[list[int], torch.Tensor, torch.Tensor] | None:
        """Trial numbers, unit-box points and losses (minimization sign) of ``members``."""
        rows, ys, numbers = [], [], []
        for t in members:
            if t.state != TrialState.COMPLETE or t.value is None:
                continue
            if any(n not in t.params for n in box.names):
                continue
            rows.append(box.to_unit(t.params))
            ys.append(-t.value if config.maximize else t.value)
            numbers.append(t.number)
        if not rows:
            return None
        return (numbers, torch.tensor(np.array(rows), dtype=torch.float64),
                torch.tensor(ys, dtype=torch.float64))

    def _advance_all(self, opt: ZoAR, told: stored.TrialMap, scope: list[FrozenTrial],
                     trials: list[FrozenTrial], box: UnitBox, key: str,
                     config: stored.Config) -> tuple[ZoAR, stored.TrialMap, bool]:
        """Close every generation whose chosen trials are all known (see :meth:`_closing_trials`).

        ``scope`` (the newest trials) is searched for members of the open generation.
        """
        tagged = self._trials_by_generation(scope, key)
        advanced = False
        while True:
            chosen = self._closing_trials(tagged.get(opt.nit, []), scope, config.options.num_queries)
            batch = None if chosen is None else self._batch(chosen, box, config)
            if batch is None:
                return opt, told, advanced
            opt, told = stored.advance(opt, told, *batch)
            advanced = True

    @staticmethod
    def _closing_trials(members: list[FrozenTrial], trials: list[FrozenTrial],
                K: int) -> list[FrozenTrial] | None:
        """The fixed rule: the first ``K`` complete trials of the generation by number.

        A running trial before the ``K``-th complete one (tagged, or untagged and
        possibly about to be tagged by a worker in mid-sample) makes the choice
        wait, so that every worker that closes the generation picks the same
        trials; it stops blocking once ``K`` complete trials follow it (a dead
        worker's trial must not stall the study).
        """
        if not members:
            return None
        first = members[0].number
        member_ids = {t._trial_id for t in members}
        pending = (TrialState.RUNNING, TrialState.WAITING)
        cands = sorted([*members, *(t for t in trials if t.number > first and t.state in pending
                                    and stored.KEY_GEN not in t.system_attrs
                                    and t._trial_id not in member_ids)],
                       key=lambda t: t.number)
        complete_after = [0] * (len(cands) + 1)
        for i in range(len(cands) - 1, -1, -1):
            is_member = cands[i]._trial_id in member_ids
            complete_after[i] = complete_after[i + 1] + (
                is_member and cands[i].state == TrialState.COMPLETE and cands[i].value is not None)
        chosen: list[FrozenTrial] = []
        for i, t in enumerate(cands):
            if t._trial_id in member_ids and t.state == TrialState.COMPLETE and t.value is not None:
                chosen.append(t)
                if len(chosen) == K:
                    return chosen
            elif t.state in pending and complete_after[i + 1] < K:
                return None
        return None

    def _initial_x(self, trials: list[FrozenTrial], box: UnitBox, config: stored.Config) -> list[float]:
        if self._x0 is not None:
            params = box.from_unit(np.full(box.dim, 0.5))
            for name, v in self._x0.items():
                if name in params:
                    dist = box.search_space[name]
                    assert isinstance(dist, (FloatDistribution, IntDistribution))  # _supported()
                    if not isinstance(v, (int, float)) or isinstance(v, bool) or not (
                            dist.low <= v <= dist.high):
                        raise ValueError(f"x0[{name!r}] = {v!r} is outside {dist}")
                    params[name] = v
            return box.to_unit(params).tolist()
        if self._n_startup_trials > 0:
            done = [t for t in sorted(trials, key=lambda t: t.number)
                    if t.state == TrialState.COMPLETE and all(n in t.params for n in box.names)]
            done = done[: self._n_startup_trials]
            if done:
                sign = -1.0 if config.maximize else 1.0
                best = min(done, key=lambda t: sign * (t.value if t.value is not None else math.inf))
                return box.to_unit(best.params).tolist()
        return [0.5] * box.dim

    def _directions(self, seed: int, gen: int, d: int, config: stored.Config) -> torch.Tensor:
        k = (seed, gen, d)
        if k not in self._dirs:
            if len(self._dirs) > 16:
                self._dirs.clear()
            self._dirs[k] = stored.generation_directions(seed, gen, 4 * config.options.num_queries, d,
                                                     config.options.directions)
        return self._dirs[k]

    def _sample_zoar(self, study: optuna.Study, trial: FrozenTrial,
                     space: dict[str, BaseDistribution]) -> dict[str, Any]:
        config = self._config(study)
        with self._lock:
            box, key = self._box(space)
            trials = study.get_trials(deepcopy=False)
            loaded, scope = self._load_scoped(trials, box, key, config)
            was_stored = loaded is not None
            if loaded is None:
                if self._n_complete(study) < self._n_startup_trials:
                    return {}
                seed = self._seed if self._seed is not None else secrets.randbits(62)
                loaded = stored.initial(self._initial_x(trials, box, config), seed, config), {}
            opt, told, advanced = self._advance_all(*loaded, scope, trials, box, key, config)
            U = self._directions(opt.seed, opt.nit, box.dim, config)
            u = U[trial.number % U.shape[0]].numpy()
            x = np.clip(opt.x.numpy() + opt.mu * u, 0.0, 1.0)
            set_system_attr(study, trial, stored.KEY_SPACE, key)
            set_system_attr(study, trial, stored.KEY_GEN, opt.nit)
            if advanced or not was_stored:
                set_system_attr(study, trial, stored.KEY_STATE, stored.encode(opt, told, config, key))
            return box.from_unit(x)

    def __getstate__(self) -> dict[str, Any]:
        d = self.__dict__.copy()
        d["_lock"] = None
        return d

    def __setstate__(self, d: dict[str, Any]) -> None:
        self.__dict__.update(d)
        self._lock = threading.RLock()
