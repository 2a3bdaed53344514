r"""The sampler's stored state: the core optimizer's state dict in a small envelope.

Generation :math:`G` of the study is a core :class:`~zo_scipy.core.ZoAR` on the
search space mapped to the unit box, told :math:`G` batches so far (its ``nit``).
Trials of generation :math:`G` evaluate :math:`x_G + \mu u_{G,k}` with directions
drawn from a generator seeded by ``(seed, G)``, so directions are never stored.
A generation's update is the core's own step: load the stored state, ``tell``
the chosen trials' values at their points (the points actually evaluated,
after rounding of int/step parameters), dump the state (:func:`advance`).

The stored document is :func:`encode`'s JSON: the core state (see
:mod:`zo_scipy.core.state`) plus, for each batch still in the core's reuse
buffer, the numbers of the trials it was told, from whose parameters its
directions are recomputed on load, and ``first``: the lowest trial number that
can be a member of the generation (the rule that closes a generation reads
trials from there on). :func:`write` splits the core state over attributes of
at most :data:`CHUNK` characters (a MySQL ``TEXT`` column holds 64 KiB) and
:func:`read` joins them again, checking their hash.

Nothing read from storage is trusted: :func:`decode` checks the envelope, the
core checks every field of its state, and :func:`check_plausible` bounds what
the core accepts but the sampler can never have written (a step of ``1e300``
in the unit box, Adam moments whose square overflows, ``t = 10**400``); all
raise :class:`CorruptState`. Values are clamped to :data:`VALUE_LIMIT` before
they are told, so that every state the sampler writes passes these checks
(:func:`advance` checks its own result).
"""
from __future__ import annotations

import copy
import hashlib
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch

from zo_scipy.core.directions import make_generator, sample_directions
from zo_scipy.core.options import ZoAROptions
from zo_scipy.core.state import StateError, encode_array
from zo_scipy.core.updates import Adam
from zo_scipy.core.zoar import ZoAR

FORMAT = 3
PREFIX = "zoar:"
KEY_GEN = PREFIX + "gen"
KEY_SPACE = PREFIX + "space"
KEY_STATE = PREFIX + "state"
#: Characters of core-state JSON per attribute (``zoar:state:0``, ``zoar:state:1``, ...); stored
#: as a JSON string (quotes escaped: at most 2 CHUNK + 2 bytes) below MySQL's 65 535-byte ``TEXT``.
CHUNK = 30_000
#: At most this many parts (d of about 20 000 at N = 5); a larger document is refused.
MAX_PARTS = 256
#: Values (and their negatives) are clamped to this before the core is told them, so that
#: sums, squares and Adam moments of the estimate stay finite.
VALUE_LIMIT = 1e100
#: Steps, radii and the like are fractions of the unit box: bounds that no state the
#: sampler writes reaches (the constructor takes ``mu`` and ``lr`` in [STEP_MIN, STEP_MAX]).
STEP_MIN, STEP_MAX = 1e-12, 1e3
#: A bound for every count (generations, decays, Adam steps, ...).
COUNT_MAX = 2**53

#: Trial numbers of each batch in the core's buffer, by generation (the batch's tag).
TrialMap = dict[int, list[int]]


class CorruptState(StateError):
    """A value under the ``zoar:`` prefix that is not a state this sampler wrote."""


@dataclass(frozen=True)
class Config:
    """Settings that every worker of a study must share (checked against stored state)."""

    options: ZoAROptions
    maximize: bool

    def key(self) -> str:
        text = json.dumps([self.options.to_dict(), self.maximize], sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


# -- directions ---------------------------------------------------------------------
def generation_seed(seed: int, gen: int) -> int:
    """A 63-bit seed for generation ``gen``: the same on every worker and machine."""
    digest = hashlib.blake2b(f"zoar:{int(seed)}:{int(gen)}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & ((1 << 63) - 1)


def trial_seed(seed: int, number: int, name: str) -> int:
    """A 32-bit seed (NumPy's legacy limit) for parameter ``name`` of trial ``number`` sampled independently
    (startup trials): a function of the study's seed and the trial, not of any process."""
    digest = hashlib.blake2b(f"zoar:trial:{int(seed)}:{int(number)}:{name}".encode(),
                             digest_size=4).digest()
    return int.from_bytes(digest, "little")


def generation_directions(seed: int, gen: int, m: int, d: int, kind: str) -> torch.Tensor:
    """The ``m`` directions of generation ``gen`` (row ``k`` is slot ``k``)."""
    return sample_directions(m, d, generator=make_generator(generation_seed(seed, gen)),
                             kind=kind)  # type: ignore[arg-type]  # checked by ZoAROptions


# -- the state machine --------------------------------------------------------------
def initial(x0: list[float], seed: int, config: Config) -> ZoAR:
    """Generation 0 at ``x0`` (unit-box coordinates)."""
    d = len(x0)
    return ZoAR(torch.tensor(x0, dtype=torch.float64), options=config.options,
                lower=torch.zeros(d, dtype=torch.float64), upper=torch.ones(d, dtype=torch.float64),
                seed=seed)


def restart(opt: ZoAR, config: Config) -> ZoAR:
    """A fresh optimizer at ``opt``'s center, numbered as ``opt``'s next generation."""
    new = initial(opt.x.tolist(), opt.seed, config)
    new.nit = opt.nit + 1
    return new


def advance(opt: ZoAR, trials: TrialMap, numbers: list[int], X: torch.Tensor,
            y: torch.Tensor, config: Config | None = None) -> tuple[ZoAR, TrialMap]:
    r"""Generation ``opt.nit + 1``: the core's step with the trials ``numbers`` of generation
    ``opt.nit`` (points ``X`` in the unit box, losses ``y``, minimization sign).

    ``opt`` and ``trials`` are not changed; the result is a deterministic function of
    the arguments. A step that fails, or whose result :func:`check_plausible` would
    reject on load, gives :func:`restart` instead (with ``config``; without it the error
    propagates): the sampler never stores a state it would refuse to read.
    """
    new = copy.deepcopy(opt)
    gen = new.nit
    try:
        new.tell(y.clamp(-VALUE_LIMIT, VALUE_LIMIT), points=X)
        check_plausible(new)
    except (ArithmeticError, ValueError, RuntimeError):
        if config is None:
            raise
        return restart(opt, config), {}
    kept = {r.tag for r in new.records}
    out = {g: list(n) for g, n in trials.items() if g in kept}
    if gen in kept:
        out[gen] = list(numbers)
    return new, out


def _bounded(name: str, v: float, lo: float, hi: float) -> None:
    if not (lo <= v <= hi):  # False for NaN too
        raise CorruptState(f"{name} = {v!r:.40} is outside [{lo:g}, {hi:g}]")


def _bounded_tensor(name: str, t: torch.Tensor | None, limit: float) -> None:
    if t is not None and not bool((t.abs() <= limit).all()):
        raise CorruptState(f"{name} holds a value beyond {limit:g}")


def check_plausible(opt: ZoAR) -> None:
    """What the core's loader accepts but the sampler never writes: :class:`CorruptState`.

    Every step size and radius lies in the unit box's scale, every value within
    :data:`VALUE_LIMIT`, every count within :data:`COUNT_MAX` (Adam's step count within
    the generation number) and Adam's moments square without overflow.
    """
    c = opt.control
    for name, v in (("mu0", opt.mu0), ("lr0", c.lr0)):
        _bounded(name, v, STEP_MIN, STEP_MAX)
    for name, v in (("lr", c.lr), ("mu", opt.mu)):
        _bounded(name, v, 1e-300, STEP_MAX)
    _bounded("mu_floor", opt.mu_floor, 0.0, STEP_MAX)
    big = 1e300
    _bounded("last_step_norm", opt._last_step_norm, 0.0, big)
    for name, v in (("best_f", opt.best_f), ("control.best", c.best), ("control.prev", c._prev),
                    ("control.window_best", c._win_best)):
        if v != math.inf:
            _bounded(name, v, -VALUE_LIMIT, VALUE_LIMIT)
    for m in c._means:
        _bounded("control.means", m, -VALUE_LIMIT, VALUE_LIMIT)
    n = opt.noise
    for name, v in (("noise.spread_sum", n.spread_sum), ("noise.level_spread", n.level_spread)):
        _bounded(name, v, 0.0, big)
    for name, v in (("noise.level_mu", n.level_mu), ("noise.first_flat_mu", n.first_flat_mu)):
        _bounded(name, v, 0.0, STEP_MAX)
    counts = [("nit", opt.nit), ("n_nonfinite", opt.n_nonfinite), ("control.n_decays", c.n_decays),
              ("control.n_restores", c.n_restores), ("control.streak", c._streak),
              ("control.fails", c._fails), ("noise.spread_count", n.spread_count),
              ("noise.flat_halvings", n.flat_halvings), ("control.window", c.window),
              ("control.patience", c.patience), ("control.grow_after", c.grow_after)]
    for name, k in counts:
        _bounded(name, k, 0, COUNT_MAX)
    for name, v in (("control.decay", c.decay), ("control.growth", c.growth),
                    ("control.restore_sigmas", c.restore_sigmas)):
        _bounded(name, v, 0.0, STEP_MAX)
    rule = opt.update
    if isinstance(rule, Adam):
        _bounded("update.t", rule.t, 0, opt.nit)
        _bounded_tensor("update.m", rule.m, 1e150)
        _bounded_tensor("update.v", rule.v, big)
    for name, t in (("best_x", opt.best_x), ("control.anchor", c.anchor), ("control.window_x", c._win_x)):
        _bounded_tensor(name, t, 1.0)
    for i, r in enumerate(opt.records):
        _bounded(f"history.records[{i}].mu", r.mu, 1e-300, STEP_MAX)
        _bounded_tensor(f"history.records[{i}].center", r.center, 1.0)
        _bounded_tensor(f"history.records[{i}].values", r.values, VALUE_LIMIT)


# -- JSON codec ---------------------------------------------------------------------
def encode(opt: ZoAR, trials: TrialMap, config: Config, space: str, first: int) -> dict[str, Any]:
    """The JSON document of a generation (stored by :func:`write`).

    ``first``: the lowest trial number that can be a member of the generation.
    """
    core = opt.state_dict()
    del core["lower"], core["upper"]  # the unit box: put back by decode
    return {"format": FORMAT, "config": config.key(), "space": space, "gen": opt.nit,
            "seed": opt.seed, "first": int(first),
            "trials": {str(g): list(n) for g, n in sorted(trials.items())}, "core": core}


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def write(doc: dict[str, Any]) -> list[tuple[str, Any]]:
    """The system attributes that store ``doc``, in the order to write them: the parts of
    the core state's JSON (``zoar:state:<i>``, :data:`CHUNK` characters each), then the
    envelope under ``zoar:state`` (so a reader that sees it finds every part)."""
    text = json.dumps(doc["core"], sort_keys=True, separators=(",", ":"), allow_nan=False)
    parts = [text[i:i + CHUNK] for i in range(0, len(text), CHUNK)]
    head = dict(doc, core={"parts": len(parts), "sha256": _digest(text)})
    return [*((f"{KEY_STATE}:{i}", p) for i, p in enumerate(parts)), (KEY_STATE, head)]


def read(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """The document :func:`write` stored in ``attrs`` (a trial's system attributes), parts
    joined and checked against their hash; :class:`CorruptState` if they do not fit."""
    head = attrs.get(KEY_STATE)
    if not isinstance(head, dict):
        raise CorruptState(f"expected a JSON object, got {type(head).__name__}")
    ref = head.get("core")
    if not isinstance(ref, dict) or set(ref) != {"parts", "sha256"}:
        raise CorruptState("core must name its parts and their hash")
    n, digest = ref["parts"], ref["sha256"]
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_PARTS:
        raise CorruptState(f"core.parts = {n!r:.40} is not a part count in [1, {MAX_PARTS}]")
    parts = [attrs.get(f"{KEY_STATE}:{i}") for i in range(n)]
    if not all(isinstance(p, str) and len(p) <= CHUNK for p in parts):
        raise CorruptState(f"a part of the core state ({KEY_STATE}:<i>, i < {n}) is missing or too long")
    text = "".join(parts)  # type: ignore[arg-type]  # all str, checked above
    if digest != _digest(text):
        raise CorruptState("the parts of the core state do not match their hash")
    try:
        core = json.loads(text)
    except (ValueError, RecursionError):
        raise CorruptState("the core state is not JSON") from None
    return dict(head, core=core)


def decode(doc: Any, config: Config, space: str, d: int,
           points: Callable[[list[int]], torch.Tensor]) -> tuple[ZoAR, TrialMap]:
    """Check a stored document and rebuild the optimizer; :class:`CorruptState` if invalid.

    ``points(numbers)`` returns the unit-box points of those trials (it raises
    :class:`CorruptState` when one is missing).
    """
    if not isinstance(doc, dict):
        raise CorruptState(f"expected a JSON object, got {type(doc).__name__}")
    first = doc.get("first")
    if isinstance(first, bool) or not isinstance(first, int) or not 0 <= first <= COUNT_MAX:
        raise CorruptState(f"first must be a trial number, got {first!r:.40}")
    if doc.get("format") != FORMAT:
        raise CorruptState(f"unknown format {doc.get('format')!r:.40} (this sampler writes {FORMAT})")
    if doc.get("config") != config.key():
        raise CorruptState(f"written by a ZoARSampler with different settings ({settings_diff(doc, config)})")
    if doc.get("space") != space:
        raise CorruptState("written for another search space")
    gen, raw = doc.get("gen"), doc.get("trials")
    if isinstance(gen, bool) or not isinstance(gen, int) or not 0 <= gen <= COUNT_MAX:
        raise CorruptState(f"gen must be a non-negative int, got {gen!r:.40}")
    if not isinstance(raw, dict) or not all(
            isinstance(k, str) and k.isdigit() and isinstance(v, list)
            and all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in v)
            for k, v in raw.items()):
        raise CorruptState("trials must map generations to lists of trial numbers")
    trials = {int(k): list(v) for k, v in raw.items()}

    def told(tag: int) -> torch.Tensor:
        if tag not in trials:
            raise CorruptState(f"no trial numbers recorded for generation {tag}")
        return points(trials[tag])

    core = doc.get("core")
    if not isinstance(core, dict) or "lower" in core or "upper" in core:
        raise CorruptState("core must be a JSON object without bounds (the unit box is implied)")
    core = core_state(doc, d)
    try:
        opt = ZoAR.from_state_dict(core, points=told, device="cpu")
        check_plausible(opt)
    except CorruptState:
        raise
    except StateError as e:
        raise CorruptState(str(e)) from None
    except (ArithmeticError, LookupError, TypeError, ValueError, RuntimeError, RecursionError) as e:
        # The core's checks should raise StateError for every bad field; anything else
        # (e.g. OverflowError from float(10**400)) is a corrupt state all the same.
        raise CorruptState(f"the core state is invalid ({type(e).__name__}: {e})") from None
    if opt.nit != gen or opt.dim != d or opt.options != config.options:
        raise CorruptState(f"the core state (generation {opt.nit}, dimension {opt.dim}) does not "
                           f"match the envelope (generation {gen}, dimension {d})")
    unit = torch.zeros(d, dtype=torch.float64), torch.ones(d, dtype=torch.float64)
    if opt.lower is None or opt.upper is None or not (
            torch.equal(opt.lower, unit[0]) and torch.equal(opt.upper, unit[1])):
        raise CorruptState("the core state is not on the unit box")
    if doc.get("seed") != opt.seed:
        raise CorruptState("seed differs from the core state's")
    if set(trials) != {r.tag for r in opt.records}:
        raise CorruptState("trials does not list exactly the batches in the core state")
    return opt, trials


def settings_diff(doc: dict[str, Any], config: Config) -> str:
    """Which of this sampler's settings differ from those that wrote ``doc``, as
    ``name: stored -> here`` (the options the core state records, else the direction)."""
    mine = config.options.to_dict()
    theirs = doc.get("core", {}).get("options") if isinstance(doc.get("core"), dict) else None
    if isinstance(theirs, dict):
        diff = [f"{k}: {theirs[k]!r:.40} in the study, {mine[k]!r:.40} here" for k in mine
                if k in theirs and theirs[k] != mine[k] and k != "max_queries"]
        if diff:  # max_queries follows num_queries: never named on its own
            return "; ".join(diff)
    return "the study's direction or an option the state does not record"


def core_state(doc: dict[str, Any], d: int) -> dict[str, Any]:
    """The core's state dict of a document: its ``core`` with the unit box's bounds."""
    return dict(doc["core"], lower=encode_array(torch.zeros(d, dtype=torch.float64)),
                upper=encode_array(torch.ones(d, dtype=torch.float64)))


def first_member(doc: dict[str, Any]) -> int:
    """``first`` of a document :func:`decode` accepted."""
    return int(doc["first"])
