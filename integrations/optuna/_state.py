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
directions are recomputed on load. Nothing read from storage is trusted:
:func:`decode` checks the envelope and the core checks every field of its
state; both raise :class:`CorruptState`.
"""
from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from zo_scipy.core.directions import make_generator, sample_directions
from zo_scipy.core.options import ZoAROptions
from zo_scipy.core.state import StateError
from zo_scipy.core.zoar import ZoAR

FORMAT = 2
PREFIX = "zoar:"
KEY_GEN = PREFIX + "gen"
KEY_SPACE = PREFIX + "space"
KEY_STATE = PREFIX + "state"

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


def advance(opt: ZoAR, trials: TrialMap, numbers: list[int], X: torch.Tensor,
            y: torch.Tensor) -> tuple[ZoAR, TrialMap]:
    r"""Generation ``opt.nit + 1``: the core's step with the trials ``numbers`` of generation
    ``opt.nit`` (points ``X`` in the unit box, losses ``y``, minimization sign).

    ``opt`` and ``trials`` are not changed; the result is a deterministic function of
    the arguments.
    """
    new = copy.deepcopy(opt)
    gen = new.nit
    new.tell(y, points=X)
    kept = {r.tag for r in new.records}
    out = {g: list(n) for g, n in trials.items() if g in kept}
    if gen in kept:
        out[gen] = list(numbers)
    return new, out


# -- JSON codec ---------------------------------------------------------------------
def encode(opt: ZoAR, trials: TrialMap, config: Config, space: str) -> dict[str, Any]:
    """The JSON document stored under ``zoar:state``."""
    return {"format": FORMAT, "config": config.key(), "space": space, "gen": opt.nit,
            "seed": opt.seed, "trials": {str(g): list(n) for g, n in sorted(trials.items())},
            "core": opt.state_dict()}


def decode(doc: Any, config: Config, space: str, d: int,
           points: Callable[[list[int]], torch.Tensor]) -> tuple[ZoAR, TrialMap]:
    """Check a stored document and rebuild the optimizer; :class:`CorruptState` if invalid.

    ``points(numbers)`` returns the unit-box points of those trials (it raises
    :class:`CorruptState` when one is missing).
    """
    if not isinstance(doc, dict):
        raise CorruptState(f"expected a JSON object, got {type(doc).__name__}")
    if doc.get("format") != FORMAT:
        raise CorruptState(f"unknown format {doc.get('format')!r:.40} (this sampler writes {FORMAT})")
    if doc.get("config") != config.key():
        raise CorruptState("written by a ZoARSampler with different settings (num_queries, "
                           "num_histories, mu, lr, update, schedule, directions or direction)")
    if doc.get("space") != space:
        raise CorruptState("written for another search space")
    gen, raw = doc.get("gen"), doc.get("trials")
    if isinstance(gen, bool) or not isinstance(gen, int) or gen < 0:
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

    try:
        opt = ZoAR.from_state_dict(doc.get("core"), points=told, device="cpu")  # type: ignore[arg-type]  # checked inside
    except CorruptState:
        raise
    except StateError as e:
        raise CorruptState(str(e)) from None
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
