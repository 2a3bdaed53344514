r"""``ZoARSampler``: ZoAR as an Optuna relative sampler whose state lives in storage.

Generation :math:`G` of the optimizer asks for points :math:`x_G + \mu u_{G,k}` in
the search space mapped to the unit box; a trial takes slot
:math:`k = \text{number} \bmod 4K`, its direction drawn from a generator seeded by
``(seed, G)``. Generation :math:`G` closes on the first :math:`K` complete trials
of :math:`G` by trial number, once no trial before them can still change that
choice (:meth:`ZoARSampler._closing_trials`): a rule of trial numbers and final
states, never of timing, so every worker that closes it computes the same
generation :math:`G+1` (a deterministic function, see :mod:`._state`) and stores
it as JSON on the trial it is sampling. Workers never hold state of their own
that others lack: a new or restarted worker reads the newest stored generation
and continues from it.
"""
from __future__ import annotations

import hashlib
import json
import math
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
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from zo_scipy.core.options import ZoAROptions, check_count
from zo_scipy.core.zoar import ZoAR

from . import _state as stored
from ._optuna_private import UnitBox, record_first_heartbeat, set_system_attr, started_dead_before

_logger = optuna.logging.get_logger(__name__)

#: Default smoothing radius and step size, as fractions of each parameter's range
#: (the unit box). Larger than the SciPy method's defaults because tuning
#: objectives are usually noisy and low-dimensional.
DEFAULT_MU = 0.1
DEFAULT_LR = 0.05


#: A decoded generation: the core optimizer, the trials of the batches in its buffer and
#: the lowest trial number that can be one of its members.
_Loaded = tuple[ZoAR, stored.TrialMap, int]
_PENDING = (TrialState.RUNNING, TrialState.WAITING)


class ZoARStateWarning(UserWarning):
    """Stored state under the ``zoar:`` prefix was ignored (corrupt or foreign).

    A sampler warns once per cause (the first trial it was found in is named, with the
    settings that differ when that is the cause) and continues from older stored state,
    or from the start.

    See Also
    --------
    ZoARSampler : the sampler that writes and checks the state.

    References
    ----------
    - Takuya Akiba, Shotaro Sano, Toshihiko Yanase, Takeru Ohta, Masanori Koyama, "Optuna: A
      Next-generation Hyperparameter Optimization Framework", KDD 2019, arXiv:1907.10902.

    Examples
    --------
    >>> import warnings, optuna
    >>> from zo_scipy.integrations.optuna import ZoARSampler, ZoARStateWarning
    >>> optuna.logging.set_verbosity(optuna.logging.WARNING)
    >>> f = lambda t: t.suggest_float("x", -5, 5) ** 2 + t.suggest_float("y", -5, 5) ** 2
    >>> study = optuna.create_study(sampler=ZoARSampler(seed=0, num_queries=4))
    >>> study.optimize(f, n_trials=12)
    >>> other = optuna.load_study(study_name=study.study_name, storage=study._storage,
    ...                           sampler=ZoARSampler(seed=0, num_queries=6))
    >>> with warnings.catch_warnings(record=True) as w:
    ...     warnings.simplefilter("always")
    ...     other.optimize(f, n_trials=3)
    >>> [str(r.message).split("(")[1].split(")")[0] for r in w if r.category is ZoARStateWarning]
    ['num_queries: 4 in the study, 6 here']
    """


def _supported(dist: BaseDistribution) -> bool:
    return isinstance(dist, (FloatDistribution, IntDistribution)) and not dist.single()


def _space_key(search_space: dict[str, BaseDistribution]) -> str:
    items = sorted((n, optuna.distributions.distribution_to_json(d)) for n, d in search_space.items())
    return hashlib.sha256(json.dumps(items).encode()).hexdigest()[:16]


class ZoARSampler(BaseSampler):
    r"""Optuna sampler running ZoAR (averaged-baseline, query-reuse zeroth-order descent).

    Float and int parameters (log and step included) that every complete trial
    has, with the newest complete trial's distributions, are mapped to the unit box :math:`[0, 1]^d`. Generation :math:`G` has a
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
        Default None. Seeds the directions and the startup trials (each from ``(seed, trial
        number, parameter)``, so that processes never repeat a point). With ``None``
        it is derived from the study's name and first trial: all workers agree.
    n_startup_trials : int
        Default 0. Trials sampled by ``independent_sampler`` before ZoAR starts; ZoAR then
        starts at the best of them (unless ``x0`` is given). With 0, the study's first
        trial evaluates the starting point itself (``x0`` or the middle of the box).
    independent_sampler : optuna.samplers.BaseSampler, optional
        For categorical and other unsupported parameters (with Optuna's standard
        warning) and startup trials. Default: ``RandomSampler(seed=seed)``.
    mu, lr : float, optional
        Smoothing radius and initial step size as fractions of each parameter's
        range, in [1e-12, 1e3]. Defaults ``DEFAULT_MU`` (0.1) and ``DEFAULT_LR`` (0.05).
    num_queries : int
        :math:`K`, trials per generation. Default 10.
    num_histories : int
        :math:`N`, past generations whose trials are reused in the estimate. Default 5.
    x0 : dict, optional
        Initial parameter values (the rest start at the middle of their range). Default None.
    update : {"adam", "radazo", "sgd"}
        Update rule of the core (:func:`zo_scipy.core.make_update_rule`). Default ``"adam"``.
    schedule : {"adaptive", "constant"}
        ``adaptive`` (default) shrinks the step when progress stalls
        (:class:`zo_scipy.core.StepControl`).
    adapt_mu : bool, optional
        Shrink ``mu`` with the step (default: True when ``mu`` is not given).
    directions : {"gaussian", "sphere", "orthogonal"}
        The core's direction distributions (:func:`zo_scipy.core.sample_directions`).
        Default ``"gaussian"``.
    warn_independent_sampling : bool
        Log Optuna's warning when a parameter falls back to the independent sampler.
        Default True.

    Raises
    ------
    ValueError
        An option out of range (the message names it); at sampling time, a
        multi-objective study or an ``x0`` value outside its parameter's range.
    TypeError
        ``x0`` not a dict, ``independent_sampler`` not an Optuna sampler.

    See Also
    --------
    zo_scipy.ZoAR : the core optimizer each generation steps.
    optuna.samplers.CmaEsSampler : the closest Optuna sampler (see the docs' benchmark).

    Notes
    -----
    All workers of a study must use the same settings (stored state written with
    other settings is ignored with a :class:`ZoARStateWarning`). Stored state is
    validated, never unpickled; corrupt or implausible entries are skipped with a
    warning. A generation closes by a rule of trial numbers (see
    :meth:`_closing_trials`): give the storage a heartbeat so that Optuna fails the
    trials of dead workers. A changed search space starts a new optimizer.

    References
    ----------
    - Junbin Qiu, Zhengpeng Xie, Xiangda Yan, Yongjie Yang, Yao Shu, "Zeroth-Order Optimization
      is Secretly Single-Step Policy Optimization", arXiv:2506.14460, 2025 (the ZoAR paper).
    - Takuya Akiba, Shotaro Sano, Toshihiko Yanase, Takeru Ohta, Masanori Koyama, "Optuna: A
      Next-generation Hyperparameter Optimization Framework", KDD 2019, arXiv:1907.10902.
    - Diederik P. Kingma, Jimmy Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015,
      arXiv:1412.6980 (the default update).

    Examples
    --------
    >>> import optuna
    >>> from zo_scipy.integrations.optuna import ZoARSampler
    >>> optuna.logging.set_verbosity(optuna.logging.WARNING)
    >>> def objective(trial):
    ...     return sum((trial.suggest_float(f"x{i}", -5, 5) - 1) ** 2 for i in range(5))
    >>> study = optuna.create_study(sampler=ZoARSampler(seed=0, num_queries=4))
    >>> study.optimize(objective, n_trials=200)
    >>> study.trials[0].params["x0"]                # trial 0 evaluates the box's middle
    0.0
    >>> bool(study.best_value < 0.25 * objective(study.trials[0]))
    True
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
        for name, v in (("mu", mu), ("lr", lr)):
            if v is not None and isinstance(v, (int, float)) and not isinstance(v, bool) and not (
                    stored.STEP_MIN <= v <= stored.STEP_MAX):
                raise ValueError(f"option {name!r} is a fraction of each parameter's range and must "
                                 f"lie in [{stored.STEP_MIN:g}, {stored.STEP_MAX:g}], got {v!r}")
        self._options = ZoAROptions(
            num_queries=num_queries, num_histories=num_histories, update=update, schedule=schedule,
            directions=directions, mu=DEFAULT_MU if mu is None else mu,
            lr=DEFAULT_LR if lr is None else lr,
            adapt_mu=(mu is None) if adapt_mu is None else adapt_mu,
            # A generation is closed by num_queries trials: the batch does not grow under noise.
            max_queries=num_queries)
        self._seed = seed
        self._n_startup_trials = n_startup_trials
        # The default independent sampler is seeded per trial (see _sample_independent).
        self._default_independent = independent_sampler is None
        self._independent_sampler = independent_sampler or RandomSampler(seed=seed)
        self._x0 = dict(x0) if x0 is not None else None
        self._warn_independent_sampling = bool(warn_independent_sampling)
        num_queries, num_histories = self._options.num_queries, self._options.num_histories
        # Only the newest trials are scanned for state (older ones only through the trial
        # numbers the state records), so the cost per trial does not grow with the study.
        self._scan = max(256, 4 * num_queries * (num_histories + 2))
        self._spaces: dict[int, _SpaceTracker] = {}
        self._lock = threading.RLock()
        self._dead_before: Any = None  # see started_dead_before(); set under the lock
        self._decoded: dict[tuple[Any, ...], _Loaded | None] = {}  # (None: bad)
        self._warned_blocked: set[tuple[str, int]] = set()
        self._warned: set[str] = set()  # causes already warned about (see _warn)
        self._dirs: dict[tuple[int, int, int], torch.Tensor] = {}
        self._boxes: dict[str, UnitBox] = {}

    # -- Optuna API ---------------------------------------------------------------
    def reseed_rng(self) -> None:
        """Reseed the independent sampler (the directions are seeded by the stored seed)."""
        # Directions are seeded by (stored seed, generation): nothing to reseed here.
        self._independent_sampler.reseed_rng()

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        """Optuna's hook: records the trial's first heartbeat, then the independent sampler's hook."""
        # A worker killed while sampling must leave a trial that the heartbeat check can fail,
        # or the generation it blocks would never close.
        record_first_heartbeat(study, trial)
        self._independent_sampler.before_trial(study, trial)

    def after_trial(self, study: optuna.Study, trial: FrozenTrial, state: TrialState,
                    values: Sequence[float] | None) -> None:
        """Optuna's hook: passed to the independent sampler."""
        self._independent_sampler.after_trial(study, trial, state, values)

    def infer_relative_search_space(self, study: optuna.Study,
                                    trial: FrozenTrial) -> dict[str, BaseDistribution]:
        """The float and int parameters every complete trial has (see *Search space* in the docs)."""
        with self._lock:
            tracker = self._spaces.setdefault(study._study_id, _SpaceTracker())
            space = tracker.calculate(study)
        return {n: d for n, d in space.items() if _supported(d)}

    def sample_relative(self, study: optuna.Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        """ZoAR's values for the relative search space (empty during startup)."""
        self._check_single_objective(study)
        numeric = {n: d for n, d in search_space.items() if _supported(d)}
        params: dict[str, Any] = self._sample_zoar(study, trial, numeric) if numeric else {}
        for name, dist in search_space.items():  # only when handed a categorical directly
            if name not in params and not _supported(dist) and not dist.single():
                params[name] = self._sample_independent(study, trial, name, dist)
        return params

    def sample_independent(self, study: optuna.Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        """A parameter outside the relative search space: the independent sampler's value (trial 0 of a study without startup trials: the starting point)."""
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
        return self._sample_independent(study, trial, param_name, param_distribution)

    def _sample_independent(self, study: optuna.Study, trial: FrozenTrial, name: str,
                            dist: BaseDistribution) -> Any:
        """The independent sampler's value; the default one draws from a generator seeded by
        ``(seed, trial number, name)``, so that workers in other processes never repeat a
        startup trial (with ``seed=None`` every process has its own random generator).

        The study's first trial (number 0) is the exception when there are no startup
        trials: its float and int parameters are ZoAR's starting point (``x0``, else the
        middle of the box), the center that generation 0 then samples around. Optuna
        knows a define-by-run search space only once a trial has completed, so trial 0
        is always sampled here, not by :meth:`sample_relative`.
        """
        if trial.number == 0 and self._n_startup_trials == 0 and _supported(dist):
            return self._start_params(UnitBox({name: dist}))[name]
        if self._default_independent and self._seed is not None:
            rs = RandomSampler(seed=stored.trial_seed(self._seed, trial.number, name))
            return rs.sample_independent(study, trial, name, dist)
        return self._independent_sampler.sample_independent(study, trial, name, dist)

    # -- public inspection -------------------------------------------------------------
    def get_state(self, study: optuna.Study) -> dict[str, Any] | None:
        """The optimizer's current generation: ``gen``, ``seed``, ``params`` (its center as
        parameter values), ``mu`` and ``lr`` (fractions of each range) and
        ``document`` (the stored JSON, see :mod:`zo_scipy.integrations.optuna._state`).

        ``None`` before ZoAR has sampled (startup, or no numeric parameter yet).

        Examples
        --------
        >>> import optuna
        >>> from zo_scipy.integrations.optuna import ZoARSampler
        >>> optuna.logging.set_verbosity(optuna.logging.WARNING)
        >>> sampler = ZoARSampler(seed=0, num_queries=4, x0={"x": 2.0})
        >>> study = optuna.create_study(sampler=sampler)
        >>> study.optimize(lambda t: (t.suggest_float("x", -5, 5) - 1) ** 2, n_trials=3)
        >>> state = sampler.get_state(study)
        >>> state["gen"], state["params"]             # generation 0, centered at x0
        (0, {'x': 2.0})
        """
        space = self.infer_relative_search_space(study, None)  # type: ignore[arg-type]  # Optuna's own samplers pass None too
        if not space:
            return None
        config = self._config(study)
        with self._lock:
            self._dead_before = started_dead_before(study)
            box, key = self._box(space)
            trials = study.get_trials(deepcopy=False)
            loaded = self._load_scoped(trials, box, key, config)
            if loaded is None:
                return None
            opt, told, first, _ = self._advance_all(*loaded, trials, box, key, config, None)
        return {"gen": opt.nit, "seed": opt.seed, "params": box.from_unit(opt.x.numpy()),
                "mu": opt.mu, "lr": opt.lr,
                "document": stored.encode(opt, told, config, key, first)}

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
        """Warn once per cause (``what``) and sampler: the first trial it was found in is
        named; later trials with the same cause are skipped silently."""
        if what in self._warned:
            return
        self._warned.add(what)
        warnings.warn(f"ZoARSampler ignores the state stored in trial {trial.number}: {what}. "
                      "Continuing from older stored state (or from the start); stored state "
                      "with the same cause is ignored without a further warning.",
                      ZoARStateWarning, stacklevel=4)

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
                    doc = stored.read(t.system_attrs)
                    opt, told = stored.decode(doc, config, key, box.dim, points)
                    if opt.nit != t.system_attrs.get(stored.KEY_GEN):
                        raise stored.CorruptState(f"its generation {opt.nit} does not match the tag")
                    self._decoded[ck] = opt, told, stored.first_member(doc)
                except stored.CorruptState as e:
                    self._decoded[ck] = None
                    self._warn(t, str(e))
            hit = self._decoded[ck]
            if hit is not None:
                return hit
        return None

    def _load_scoped(self, trials: list[FrozenTrial], box: UnitBox, key: str,
                     config: stored.Config) -> _Loaded | None:
        """:meth:`_load` over the newest trials, over all of them only when that finds nothing."""
        recent = trials[-self._scan:]
        loaded = self._load(recent, trials, box, key, config)
        if loaded is None and len(recent) < len(trials):
            return self._load(trials, trials, box, key, config)
        return loaded

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
            y = -t.value if config.maximize else t.value
            ys.append(min(max(y, -stored.VALUE_LIMIT), stored.VALUE_LIMIT))  # see VALUE_LIMIT
            numbers.append(t.number)
        if not rows:
            return None
        return (numbers, torch.tensor(np.array(rows), dtype=torch.float64),
                torch.tensor(ys, dtype=torch.float64))

    def _advance_all(self, opt: ZoAR, told: stored.TrialMap, first: int,
                     trials: list[FrozenTrial], box: UnitBox, key: str, config: stored.Config,
                     current: int | None) -> tuple[ZoAR, stored.TrialMap, int, bool]:
        """Close every generation that :meth:`_closing_trials` lets close (``current``: the
        number of the trial being sampled, whose own generation this call decides)."""
        advanced = False
        while True:
            chosen = self._closing_trials(_from(trials, first), opt.nit, key, box.names,
                                          config.options.num_queries, current)
            batch = None if chosen is None else self._batch(chosen, box, config)
            if batch is None:
                return opt, told, first, advanced
            opt, told = stored.advance(opt, told, *batch, config=config)
            first = min(batch[0])
            advanced = True

    def _closing_trials(self, window: list[FrozenTrial], gen: int, key: str, names: list[str],
                        K: int, current: int | None) -> list[FrozenTrial] | None:
        """The fixed rule: the first ``K`` complete trials of generation ``gen`` by number,
        chosen once no trial before the ``K``-th can change the choice; else ``None``.

        ``window`` holds the trials from the generation's ``first`` number on (sorted by
        number). Scanning it in order, a trial of the generation that is complete (with a
        value and every parameter) is chosen; one that failed or was pruned is passed over;
        one still running or waiting, and any trial not yet tagged that is still running or
        waiting (a worker may be about to tag it with this generation), makes the choice
        wait. Trials of other generations or search spaces are passed over, and so is
        ``current``: the caller tags it with the generation this call leaves open. The
        answer depends on trial numbers and final states only, so every worker that closes
        the generation chooses the same trials, whatever the timing. A trial whose worker
        died stays RUNNING and keeps the generation open until Optuna marks it failed:
        use a storage with a heartbeat (``RDBStorage(heartbeat_interval=...,
        grace_period=...)``); meanwhile new trials are sampled from the open generation.
        """
        chosen: list[FrozenTrial] = []
        for t in window:
            if t.number == current:
                continue
            attrs = t.system_attrs
            if stored.KEY_GEN in attrs:
                tag = attrs[stored.KEY_GEN]
                if attrs.get(stored.KEY_SPACE) != key or type(tag) is not int or tag != gen:
                    continue  # another generation or search space (or a bad tag): not a member
            if t.state in _PENDING:
                if (stored.KEY_GEN not in attrs and self._dead_before is not None
                        and t.datetime_start is not None and t.datetime_start < self._dead_before):
                    continue  # untagged past the heartbeat's grace: died before sampling
                self._warn_blocked(window, t, gen, key, K)
                return None
            if stored.KEY_GEN not in attrs:
                continue  # finished without a tag: never a member
            if t.state == TrialState.COMPLETE and t.value is not None and all(
                    n in t.params for n in names):
                chosen.append(t)
                if len(chosen) == K:
                    return chosen
        return None

    def _warn_blocked(self, window: list[FrozenTrial], blocker: FrozenTrial, gen: int, key: str,
                      K: int) -> None:
        """Log once per generation that waits on one trial while many more have been sampled."""
        if len(window) <= 8 * K or (key, gen) in self._warned_blocked:
            return
        members = sum(t.system_attrs.get(stored.KEY_GEN) == gen for t in window)
        if members > 4 * K:
            self._warned_blocked.add((key, gen))
            _logger.warning(
                f"ZoARSampler: generation {gen} waits for trial {blocker.number}, still "
                f"{blocker.state.name}, while {members} trials of the generation exist. If its "
                "worker died, use a storage with a heartbeat (RDBStorage(heartbeat_interval=..., "
                "grace_period=...)) so that Optuna marks it failed.")

    def _startup_trials(self, trials: list[FrozenTrial], box: UnitBox,
                        current: int | None) -> list[FrozenTrial] | None:
        """The first ``n_startup_trials`` complete untagged trials by number, once no trial
        before the last of them can still become one (the rule of :meth:`_closing_trials`);
        ``None`` while they are not all known."""
        done: list[FrozenTrial] = []
        if self._n_startup_trials == 0:
            return done
        for t in trials:
            if t.number == current or stored.KEY_GEN in t.system_attrs:
                continue
            if t.state in _PENDING:
                return None
            if t.state == TrialState.COMPLETE and t.value is not None and all(
                    n in t.params for n in box.names):
                done.append(t)
                if len(done) == self._n_startup_trials:
                    return done
        return None

    def _start_params(self, box: UnitBox) -> dict[str, int | float]:
        """The starting point as parameters: ``x0`` where given, the middle of the box
        (of the log scale for log parameters) elsewhere."""
        params = box.from_unit(np.full(box.dim, 0.5))
        for name, v in (self._x0 or {}).items():
            if name in params:
                dist = box.search_space[name]
                assert isinstance(dist, (FloatDistribution, IntDistribution))  # _supported()
                if not isinstance(v, (int, float)) or isinstance(v, bool) or not (
                        dist.low <= v <= dist.high):
                    raise ValueError(f"x0[{name!r}] = {v!r} is outside {dist}")
                params[name] = v
        return params

    def _initial_x(self, done: list[FrozenTrial], box: UnitBox, config: stored.Config) -> list[float]:
        if self._x0 is not None:
            return box.to_unit(self._start_params(box)).tolist()
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
            self._dead_before = started_dead_before(study)
            box, key = self._box(space)
            trials = study.get_trials(deepcopy=False)
            loaded = self._load_scoped(trials, box, key, config)
            was_stored = loaded is not None
            if loaded is None:
                done = self._startup_trials(trials, box, trial.number)
                if done is None:
                    return {}  # still a startup trial
                seed = self._seed if self._seed is not None else _study_seed(study, trials)
                loaded = stored.initial(self._initial_x(done, box, config), seed, config), {}, 0
            opt, told, first, advanced = self._advance_all(*loaded, trials, box, key, config,
                                                           trial.number)
            U = self._directions(opt.seed, opt.nit, box.dim, config)
            u = U[trial.number % U.shape[0]].numpy()
            x = np.clip(opt.x.numpy() + opt.mu * u, 0.0, 1.0)
            set_system_attr(study, trial, stored.KEY_SPACE, key)
            set_system_attr(study, trial, stored.KEY_GEN, opt.nit)
            if advanced or not was_stored:
                for name, value in stored.write(stored.encode(opt, told, config, key, first)):
                    set_system_attr(study, trial, name, value)
            return box.from_unit(x)

    def __getstate__(self) -> dict[str, Any]:
        d = self.__dict__.copy()
        d["_lock"] = None
        return d

    def __setstate__(self, d: dict[str, Any]) -> None:
        self.__dict__.update(d)
        self._lock = threading.RLock()


def _from(trials: list[FrozenTrial], first: int) -> list[FrozenTrial]:
    """The trials numbered ``first`` and later (``trials`` is sorted by number)."""
    if 0 <= first < len(trials) and trials[first].number == first:  # the usual layout
        return trials[first:]
    return [t for t in trials if t.number >= first]


def _study_seed(study: optuna.Study, trials: list[FrozenTrial]) -> int:
    """The seed of a study run with ``seed=None``: derived from the study's name and its
    first trial's id, so that every worker that starts the optimizer agrees on it."""
    first = min(trials, key=lambda t: t.number)._trial_id if trials else 0
    digest = hashlib.blake2b(f"zoar:seed:{study.study_name}:{first}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & ((1 << 62) - 1)


class _SpaceTracker:
    """The relative search space: the parameters every complete trial has, each with the
    distribution of the newest complete trial (highest number). Unlike Optuna's
    ``IntersectionSearchSpace``, a parameter whose range changes stays in the space with its
    new range (its key changes: a new optimizer starts). Incremental: trials before the
    first unfinished one are read once."""

    def __init__(self) -> None:
        self._cursor = 0
        self._names: set[str] | None = None
        self._newest: tuple[int, dict[str, BaseDistribution]] = (-1, {})

    def calculate(self, study: optuna.Study) -> dict[str, BaseDistribution]:
        trials = study.get_trials(deepcopy=False)
        cursor = None
        for t in reversed(trials):
            if t.number < self._cursor:
                break
            if not t.state.is_finished():
                cursor = t.number
                continue
            if t.state != TrialState.COMPLETE:
                continue
            names = set(t.distributions)
            self._names = names if self._names is None else self._names & names
            if t.number > self._newest[0]:
                self._newest = (t.number, dict(t.distributions))
        if trials:
            self._cursor = cursor if cursor is not None else max(self._cursor, trials[-1].number + 1)
        if self._names is None:
            return {}
        newest = self._newest[1]
        return {n: newest[n] for n in sorted(self._names) if n in newest}
