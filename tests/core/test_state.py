"""ZoAR's state as data: exact round trips, validation that names the field."""
from __future__ import annotations

import copy
import json
import math
import re

import pytest
import torch

from zo_scipy.core import ZoAR, ZoAROptions
from zo_scipy.core.state import StateError


def _f(X: torch.Tensor) -> torch.Tensor:
    return (X**2).sum(-1) + 0.1 * (X**4).sum(-1)


def _noisy(seed: int):
    gen = torch.Generator().manual_seed(seed)

    def f(X: torch.Tensor) -> torch.Tensor:
        return _f(X) + torch.randn(X.shape[0], generator=gen, dtype=X.dtype)

    return f


def _run(opt: ZoAR, f, n: int) -> None:
    for _ in range(n):
        X = opt.ask()
        opt.tell(f(X))


def _roundtrip(opt: ZoAR) -> ZoAR:
    return ZoAR.from_state_dict(json.loads(json.dumps(opt.state_dict(), allow_nan=False)))


@pytest.mark.parametrize("kw", [
    dict(),
    dict(update="sgd", lr=0.01, mu=0.05),
    dict(update="radazo", bias_correction=False, schedule="constant", normalization="authors"),
    dict(directions="orthogonal", num_queries=3, num_histories=4),
    dict(dtype=torch.float32),
    dict(lower=-0.5 * torch.ones(6, dtype=torch.float64), upper=torch.ones(6, dtype=torch.float64)),
])
def test_resume_through_json_is_bit_identical(kw):
    kw = dict(kw)
    dtype = kw.pop("dtype", torch.float64)
    if "lower" in kw:
        kw["lower"], kw["upper"] = kw["lower"].to(dtype), kw["upper"].to(dtype)
    x0 = torch.linspace(-1, 1, 6, dtype=dtype)
    full = ZoAR(x0, seed=5, dtype=dtype, **kw)
    _run(full, _f, 250)
    part = ZoAR(x0, seed=5, dtype=dtype, **kw)
    for n in (1, 37, 90):  # save and restore several times, at arbitrary iterations
        _run(part, _f, n)
        part = _roundtrip(part)
    _run(part, _f, 250 - 128)
    assert torch.equal(part.x, full.x) and part.lr == full.lr and part.mu == full.mu
    assert part.best_f == full.best_f and torch.equal(part.best_x, full.best_x)
    assert torch.equal(part.history.values(), full.history.values())
    assert torch.equal(part.history.directions(), full.history.directions())


def test_resume_on_a_noisy_objective_keeps_the_noise_rule():
    x0 = torch.full((10,), 0.1, dtype=torch.float64)
    full = ZoAR(x0, seed=1)
    _run(full, _noisy(0), 1500)
    part = ZoAR(x0, seed=1)
    f = _noisy(0)
    _run(part, f, 700)
    part = _roundtrip(part)
    _run(part, f, 800)
    assert full.mu_floor > 0 and part.mu_floor == full.mu_floor
    assert torch.equal(part.x, full.x) and part.control.patience == full.control.patience == 3
    # under noise the batch grew (a stall doubles it): the grown size is part of the state
    assert full.num_queries > 10 and part.num_queries == full.num_queries


def test_state_taken_between_ask_and_tell_asks_the_same_batch_again():
    opt = ZoAR(torch.ones(4, dtype=torch.float64), seed=0)
    _run(opt, _f, 3)
    X = opt.ask()
    again = _roundtrip(opt)
    assert torch.equal(again.ask(), X)
    opt.cancel()  # cancel rewinds the generator as well
    assert torch.equal(opt.ask(), X)


def test_told_points_are_supplied_on_load():
    x0 = torch.zeros(3, dtype=torch.float64)
    opt = ZoAR(x0, seed=0, num_queries=4, mu=0.1, lr=0.05)
    told = {}
    gen = torch.Generator().manual_seed(1)
    for _ in range(5):
        P = opt.x + 0.1 * torch.randn(4, 3, generator=gen, dtype=torch.float64)
        told[opt.nit] = P.clone()
        opt.tell(_f(P), points=P)
    state = json.loads(json.dumps(opt.state_dict()))
    with pytest.raises(StateError, match="pass points="):
        ZoAR.from_state_dict(state)
    back = ZoAR.from_state_dict(state, points=told)
    assert torch.equal(back.history.directions(), opt.history.directions())
    P = back.x + 0.1 * torch.ones(4, 3, dtype=torch.float64)
    back.tell(_f(P), points=P)
    opt.tell(_f(P), points=P)
    assert torch.equal(back.x, opt.x)


def test_the_options_object_is_the_constructor_settings():
    opts = ZoAROptions(num_queries=4, lr=0.1, update="sgd")
    a = ZoAR(torch.ones(3), options=opts, seed=0)
    b = ZoAR(torch.ones(3), num_queries=4, lr=0.1, update="sgd", seed=0)
    assert a.options == b.options and a.state_dict()["options"] == b.state_dict()["options"]
    with pytest.raises(TypeError, match="not both"):
        ZoAR(torch.ones(3), options=opts, lr=0.2)
    with pytest.raises(ValueError, match="option 'num_queries'"):
        ZoAROptions(num_queries=0)
    with pytest.raises(ValueError, match="option 'window'"):
        ZoAROptions(window=True)


def _fresh_state() -> dict:
    opt = ZoAR(torch.linspace(-1, 1, 4, dtype=torch.float64), seed=2,
               lower=-torch.ones(4, dtype=torch.float64), upper=torch.ones(4, dtype=torch.float64))
    _run(opt, _f, 30)
    return json.loads(json.dumps(opt.state_dict()))


def _set(state: dict, path: str, value) -> dict:
    state = copy.deepcopy(state)
    *parents, last = path.split(".")
    node = state
    for p in parents:
        node = node[int(p)] if isinstance(node, list) else node[p]
    if value is KeyError:
        del node[last]
    else:
        node[last] = value
    return state


@pytest.mark.parametrize("path, value, field", [
    ("version", 99, "version"),
    ("format", "something", "format"),
    ("kind", "Other", "kind"),
    ("dim", 5, "x.shape"),  # the arrays disagree with the stated dimension
    ("mu0", -1.0, "mu0"),
    ("mu0", math.nan, "mu0"),
    ("nit", -3, "nit"),
    ("nit", True, "nit"),
    ("control.lr", 0.0, "control.lr"),
    ("control.means", [1.0] * 50, "control.means"),
    ("control.anchor", {"dtype": "float64", "shape": [3], "data": ""}, "control.anchor.shape"),
    ("x.data", "!!!", "x.data"),
    ("x.dtype", "float16", "x.dtype"),
    ("update.t", "three", "update.t"),
    ("history.position", 10_000, "history.position"),
    ("history.records.0.mu", 0, "history.records[0].mu"),
    ("history.records.0.generator.data", "AAAA", "history.records[0].generator"),
    ("options.num_queries", 0, "options"),
    ("control", KeyError, "control"),
    ("noise.flat_halvings", -1, "noise.flat_halvings"),
])
def test_every_bad_field_raises_one_error_that_names_it(path, value, field):
    bad = _set(_fresh_state(), path, value)
    with pytest.raises(StateError, match=f"'{re.escape(field)}"):
        ZoAR.from_state_dict(bad)


def test_nan_inside_an_array_is_rejected_and_a_failed_load_changes_nothing():
    state = _fresh_state()
    opt = ZoAR.from_state_dict(state)
    before = json.dumps(opt.state_dict())
    x = torch.zeros(4, dtype=torch.float64)
    x[1] = math.nan
    from zo_scipy.core.state import encode_array
    with pytest.raises(StateError, match="'x' holds NaN"):
        opt.load_state_dict(_set(state, "x", encode_array(x)))
    with pytest.raises(StateError, match="outside the bounds"):
        opt.load_state_dict(_set(state, "x", encode_array(torch.full((4,), 3.0, dtype=torch.float64))))
    assert json.dumps(opt.state_dict()) == before


def test_loading_into_an_optimizer_with_other_options_is_refused():
    state = _fresh_state()
    other = ZoAR(torch.zeros(4, dtype=torch.float64), num_queries=5,
                 lower=-torch.ones(4, dtype=torch.float64), upper=torch.ones(4, dtype=torch.float64))
    with pytest.raises(StateError, match=r"differs.*\['num_queries'\]"):
        other.load_state_dict(state)


def test_the_global_rng_is_untouched():
    before = torch.random.get_rng_state()
    opt = ZoAR(torch.ones(5, dtype=torch.float64))  # seed=None: entropy from a local generator
    _run(opt, _f, 5)
    _roundtrip(opt)
    assert torch.equal(torch.random.get_rng_state(), before)


def test_half_infinite_bounds_round_trip_and_nan_bounds_are_rejected():
    lo = torch.tensor([-1.0, -math.inf, 0.0], dtype=torch.float64)
    hi = torch.tensor([math.inf, 2.0, 1.0], dtype=torch.float64)
    opt = ZoAR(torch.zeros(3, dtype=torch.float64), lower=lo, upper=hi, seed=0)
    _run(opt, _f, 5)
    back = _roundtrip(opt)
    assert torch.equal(back.lower, lo) and torch.equal(back.upper, hi)
    from zo_scipy.core.state import encode_array
    state = json.loads(json.dumps(opt.state_dict()))
    for key, value in (("lower", math.nan), ("lower", math.inf), ("upper", -math.inf)):
        bad = lo.clone() if key == "lower" else hi.clone()
        bad[0] = value
        with pytest.raises(StateError, match=f"'{key}' holds NaN"):
            ZoAR.from_state_dict(dict(state, **{key: encode_array(bad)}))


@pytest.mark.parametrize("K, N, steps", [(4, 2, 7), (4, 2, 8), (3, 3, 10), (5, 1, 9)])
def test_a_wrapped_buffer_is_rebuilt_exactly(K, N, steps):
    # The ring has wrapped (steps * K > (N + 1) K), so the replay starts writing in the middle
    # of a buffer that is allocated as it fills: every row must come back, values and directions.
    opt = ZoAR(torch.linspace(-1, 1, 5, dtype=torch.float64), num_queries=K, num_histories=N, seed=3,
               mu=0.1, lr=0.01, schedule="constant")
    _run(opt, _f, steps)
    back = _roundtrip(opt)
    assert back.history._pos == opt.history._pos and back.history.size == opt.history.size
    assert torch.equal(back.history.values(), opt.history.values())
    assert torch.equal(back.history.directions(), opt.history.directions())


def test_huge_numbers_in_the_state_are_state_errors():
    state = _fresh_state()
    for path, value in (("mu0", 10**400), ("nit", 10**400), ("update.t", 10**6)):
        with pytest.raises(StateError):
            ZoAR.from_state_dict(_set(state, path, value))
