r"""The sampler's optimizer state: a small JSON document and its update rule.

One *generation* :math:`G` is a center :math:`x_G \in [0, 1]^d` (the search space
as a unit box), a smoothing radius :math:`\mu`, a step size, the update rule's
moments, the step control, and the centers of the last :math:`N` generations
(for query reuse). Trials of generation :math:`G` evaluate
:math:`x_G + \mu u_{G,k}` with directions drawn from a generator seeded by
``(seed, G)``, so directions are never stored.

The state of generation :math:`G+1` is a deterministic function of the state of
:math:`G` and a set of finished trials (:func:`advance`), and records that set
(trial numbers), so anyone can replay and check it. The estimator is the core's
:func:`~zo_scipy.core.estimators.zoar_gradient` over the buffer

.. math::
    B = \{(u_j, y_j)\}, \qquad u_j = (x(\theta_j) - x_{s_j}) / \mu, \qquad
    g = \frac{1}{M-1}\sum_{j \in B} (y_j - \bar y)\, \frac{u_j}{\mu},

where :math:`x(\theta_j)` is trial :math:`j`'s parameters mapped to the box (the
direction actually queried, after rounding of int/step parameters and clipping)
and :math:`x_{s_j}` the center it was drawn around. The step is the core's
update rule, :math:`x_{G+1} = \Pi_{[0,1]^d}(x_G - \Delta(g))`.

Nothing read from storage is trusted: :func:`decode` validates every field and
raises :class:`CorruptState` instead of guessing.
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from typing import Any

import torch

from zo_scipy.core.control import StepControl
from zo_scipy.core.directions import make_generator, sample_directions
from zo_scipy.core.estimators import zoar_gradient
from zo_scipy.core.updates import Adam, UpdateRule, make_update_rule

FORMAT = 1
PREFIX = "zoar:"
KEY_GEN = PREFIX + "gen"
KEY_SPACE = PREFIX + "space"
KEY_STATE = PREFIX + "state"


class CorruptState(ValueError):
    """A value under the ``zoar:`` prefix that is not a state this sampler wrote."""


@dataclass(frozen=True)
class Config:
    """Settings that every worker of a study must share (checked against stored state)."""

    num_queries: int
    num_histories: int
    update: str
    schedule: str
    directions: str
    mu: float
    lr: float
    adapt_mu: bool
    window: int
    maximize: bool

    def key(self) -> str:
        return hashlib.sha256(repr(self).encode()).hexdigest()[:16]


@dataclass
class State:
    """Generation ``gen`` of the optimizer (see the module docstring)."""

    gen: int
    seed: int
    x: list[float]
    mu: float
    moments: dict[str, Any] | None
    control: dict[str, Any] | None
    hist: list[dict[str, Any]] = field(default_factory=list)  # [{"g", "x", "mu", "n"}], oldest first
    used: dict[str, list[int]] = field(default_factory=dict)  # gen -> trial numbers used

    @property
    def lr(self) -> float:
        assert self.control is not None
        return float(self.control["lr"])


# -- directions ---------------------------------------------------------------------
def generation_seed(seed: int, gen: int) -> int:
    """A 63-bit seed for generation ``gen``: the same on every worker and machine."""
    digest = hashlib.blake2b(f"zoar:{int(seed)}:{int(gen)}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & ((1 << 63) - 1)


def generation_directions(seed: int, gen: int, m: int, d: int, kind: str) -> torch.Tensor:
    """The ``m`` directions of generation ``gen`` (row ``k`` is slot ``k``)."""
    return sample_directions(m, d, generator=make_generator(generation_seed(seed, gen)),
                             kind=kind)  # type: ignore[arg-type]


# -- JSON codec ---------------------------------------------------------------------
def _num(v: float) -> float | None:
    return float(v) if math.isfinite(v) else None  # strict JSON has no inf


def _control_to_json(c: StepControl) -> dict[str, Any]:
    return {"lr": c.lr, "lr0": c.lr0, "best": _num(c.best), "prev": _num(c._prev),
            "means": list(c._means), "streak": c._streak, "n_decays": c.n_decays,
            "n_restores": c.n_restores,
            "anchor": None if c.anchor is None else c.anchor.tolist()}


def _control_from_json(j: dict[str, Any], window: int) -> StepControl:
    c = StepControl(lr=float(j["lr"]), window=window)
    c.lr0 = float(j["lr0"])
    c.best = math.inf if j["best"] is None else float(j["best"])
    c._prev = math.inf if j["prev"] is None else float(j["prev"])
    c._means = [float(v) for v in j["means"]]
    c._streak, c.n_decays, c.n_restores = int(j["streak"]), int(j["n_decays"]), int(j["n_restores"])
    c.anchor = None if j["anchor"] is None else torch.tensor(j["anchor"], dtype=torch.float64)
    return c


def _moments_to_json(rule: UpdateRule) -> dict[str, Any] | None:
    if isinstance(rule, Adam):
        return {"t": rule.t, "m": None if rule.m is None else rule.m.tolist(),
                "v": None if rule.v is None else rule.v.tolist()}
    return None


def _rule_from_json(name: str, j: dict[str, Any] | None) -> UpdateRule:
    rule = make_update_rule(name)
    if isinstance(rule, Adam) and j is not None:
        rule.t = int(j["t"])
        rule.m = None if j["m"] is None else torch.tensor(j["m"], dtype=torch.float64)
        rule.v = None if j["v"] is None else torch.tensor(j["v"], dtype=torch.float64)
    return rule


def encode(state: State, config: Config, space: str) -> dict[str, Any]:
    """The JSON document stored under ``zoar:state``."""
    return {"format": FORMAT, "config": config.key(), "space": space, "gen": state.gen,
            "seed": state.seed, "x": list(state.x), "mu": state.mu, "moments": state.moments,
            "control": state.control, "hist": state.hist, "used": state.used}


def _vector(v: Any, d: int, what: str, lo: float = -math.inf, hi: float = math.inf) -> list[float]:
    if not isinstance(v, list) or len(v) != d:
        raise CorruptState(f"{what} must be a list of {d} numbers")
    out = []
    for e in v:
        if isinstance(e, bool) or not isinstance(e, (int, float)) or not lo <= e <= hi:
            raise CorruptState(f"{what} holds {e!r}, not a finite number in [{lo}, {hi}]")
        out.append(float(e))
    return out


def _int(v: Any, what: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise CorruptState(f"{what} must be a non-negative int, got {v!r:.40}")
    return v


def _pos(v: Any, what: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not (0 < v < math.inf):
        raise CorruptState(f"{what} must be a positive finite number, got {v!r:.40}")
    return float(v)


def decode(doc: Any, config: Config, space: str, d: int) -> State:
    """Validate a stored document and rebuild the :class:`State`; :class:`CorruptState` if invalid."""
    if not isinstance(doc, dict):
        raise CorruptState(f"expected a JSON object, got {type(doc).__name__}")
    if doc.get("format") != FORMAT:
        raise CorruptState(f"unknown format {doc.get('format')!r:.40} (this sampler writes {FORMAT})")
    if doc.get("config") != config.key():
        raise CorruptState("written by a ZoARSampler with different settings (num_queries, "
                           "num_histories, mu, lr, update, schedule, directions or direction)")
    if doc.get("space") != space:
        raise CorruptState("written for another search space")
    try:
        gen = _int(doc["gen"], "gen")
        seed = _int(doc["seed"], "seed")
        x = _vector(doc["x"], d, "x", 0.0, 1.0)
        mu = _pos(doc["mu"], "mu")
        moments = doc["moments"]
        if config.update in ("adam", "radazo"):
            if not isinstance(moments, dict):
                raise CorruptState("moments must be an object")
            _int(moments["t"], "moments.t")
            for k in ("m", "v"):
                if moments[k] is not None:
                    _vector(moments[k], d, f"moments.{k}", 0.0 if k == "v" else -math.inf)
        elif moments is not None:
            raise CorruptState("moments must be null for sgd")
        control = doc["control"]
        if not isinstance(control, dict):
            raise CorruptState("control must be an object")
        _pos(control["lr"], "control.lr")
        _pos(control["lr0"], "control.lr0")
        for k in ("best", "prev"):
            if control[k] is not None:
                _vector([control[k]], 1, f"control.{k}")
        if not isinstance(control["means"], list) or len(control["means"]) > config.window:
            raise CorruptState("control.means must be a short list")
        _vector(control["means"], len(control["means"]), "control.means")
        for k in ("streak", "n_decays", "n_restores"):
            _int(control[k], f"control.{k}")
        if control["anchor"] is not None:
            _vector(control["anchor"], d, "control.anchor", 0.0, 1.0)
        hist = doc["hist"]
        if not isinstance(hist, list) or len(hist) > config.num_histories:
            raise CorruptState(f"hist must be a list of at most num_histories entries")
        for h in hist:
            if not isinstance(h, dict) or set(h) != {"g", "x", "mu", "n"}:
                raise CorruptState("hist entries must be {g, x, mu, n}")
            if _int(h["g"], "hist.g") >= gen:
                raise CorruptState("hist entries must be older than the state")
            _vector(h["x"], d, "hist.x", 0.0, 1.0)
            _pos(h["mu"], "hist.mu")
            if not isinstance(h["n"], list):
                raise CorruptState("hist.n must be a list of trial numbers")
            for n in h["n"]:
                _int(n, "hist.n")
        used = doc["used"]
        if not isinstance(used, dict) or not all(
                isinstance(k, str) and k.isdigit() and isinstance(v, list) for k, v in used.items()):
            raise CorruptState("used must map generations to lists of trial numbers")
        for v in used.values():
            for n in v:
                _int(n, "used trial number")
    except (KeyError, TypeError) as e:  # missing field or wrong container type
        raise CorruptState(f"malformed state ({type(e).__name__}: {e})") from None
    return State(gen=gen, seed=seed, x=x, mu=mu, moments=moments, control=control, hist=hist,
                 used={k: list(v) for k, v in used.items()})


# -- the state machine --------------------------------------------------------------
def initial_state(x0: list[float], seed: int, config: Config) -> State:
    """Generation 0 at ``x0`` (unit-box coordinates)."""
    control = StepControl(lr=config.lr, window=config.window)
    control.anchor = torch.tensor(x0, dtype=torch.float64)
    return State(gen=0, seed=int(seed), x=[float(v) for v in x0], mu=config.mu,
                 moments=_moments_to_json(make_update_rule(config.update)),
                 control=_control_to_json(control))


Batch = tuple[int, list[float], float, list[int], torch.Tensor, torch.Tensor]


def advance(state: State, batches: list[Batch], config: Config) -> State:
    r"""One ZoAR step: the state of generation ``state.gen + 1``.

    ``batches[0]`` holds the trials of the current generation chosen by the
    caller's fixed rule, ``batches[1:]`` those recorded in ``state.hist`` (each:
    ``(gen, center, mu, trial_numbers, X, y)`` with ``X`` the trials' points in the
    unit box and ``y`` their losses, minimization sign). Everything else comes from
    ``state``: the result is a deterministic function of its arguments, and it
    records the trial numbers it used (``used`` and the new ``hist`` entry).
    """
    x = torch.tensor(state.x, dtype=torch.float64)
    Us, ys = [], []
    current_mean = math.nan
    for g, center, mu_s, _, X, y in batches:
        Us.append((X - torch.tensor(center, dtype=torch.float64)) / mu_s)
        ys.append(y)
        if g == state.gen:
            finite = y[torch.isfinite(y)]
            current_mean = float(finite.mean()) if finite.numel() else math.nan
    U, y = torch.cat(Us), torch.cat(ys)
    finite = torch.isfinite(y)
    rule = _rule_from_json(config.update, state.moments)
    control = _control_from_json(state.control or {}, config.window)
    new_x = x
    if bool(finite.any()):
        # Non-finite losses get the worst finite one (as the core ZoAR does): a penalty.
        y = torch.where(finite, y, y[finite].max())
        if y.numel() >= 2:
            g = zoar_gradient(U, y, state.mu)
            new_x = torch.clamp(x - rule.step(g, control.lr), 0.0, 1.0)
    entry = {"g": state.gen, "x": list(state.x), "mu": state.mu, "n": list(batches[0][3])}
    hist = [*state.hist, entry][-config.num_histories:] if config.num_histories else []
    mu = state.mu
    if config.schedule == "adaptive":
        event = control.observe(current_mean, new_x)
        if event == "restore":
            new_x = x if control.anchor is None else control.anchor.clone()
            rule.reset()
            hist = []
        if config.adapt_mu:
            mu = config.mu * control.lr / control.lr0
            if event:  # values taken at another mu are not comparable: drop them
                hist = []
    used = {str(b[0]): list(b[3]) for b in batches}
    return State(gen=state.gen + 1, seed=state.seed, x=new_x.tolist(), mu=mu,
                 moments=_moments_to_json(rule), control=_control_to_json(control), hist=hist,
                 used=used)
