r"""The ZoAR optimizer's state as data: a versioned, JSON-safe dictionary.

:meth:`ZoAR.state_dict() <zo_scipy.core.zoar.ZoAR.state_dict>` writes, and
:meth:`~zo_scipy.core.zoar.ZoAR.load_state_dict` reads, a plain ``dict`` of
strings, numbers, lists and ``None``:

``format``, ``version``
    ``"zo_scipy.ZoAR"`` and :data:`VERSION`.
``kind``, ``options``, ``settings``
    The optimizer class, its :class:`~zo_scipy.core.options.ZoAROptions` and the
    class's extra constructor settings.
``dim``, ``dtype``, ``device``, ``x``, ``lower``, ``upper``, ``seed``
    The problem and the iterate.
``num_queries``, ``mu0``, ``mu_floor``, ``nit``, ``best_f``, ``best_x``, ``n_nonfinite``, ``last_step_norm``
    The current batch size (it grows under noise), the radius, the iteration count,
    the best told point and the counters.
``noise``, ``control``, ``update``
    The noise rule, the step control and the update rule's moments.
``generator``, ``held``
    The direction generator's state (``None`` before the first draw), and the values of
    the next batch's first points when a run stopped in mid-batch (see
    :meth:`~zo_scipy.core.zoar.ZoAR.hold`).
``extra``
    A subclass's own state (optional; e.g. the trust-region model of
    :class:`~zo_scipy.core.zovh.CurvatureZoAR` with ``step="newton"``).
``history``
    The reuse buffer: one record per told batch (its tag, center, ``mu``, size,
    values and the generator state its directions were drawn from, or
    ``None`` when the caller told explicit points) and the buffer's write
    position. Directions are never stored: they are drawn again (or computed
    from the points the caller supplies), which gives the same bits.

Arrays are ``{"dtype", "shape", "data"}`` with ``data`` the base64 of the
little-endian bytes (exact, and a quarter of the size of decimal text).
``+inf`` "not yet" sentinels are written as ``None``. Nothing is unpickled:
loading checks every field (type, finite, range, lengths, version) and raises
:class:`StateError`, which names the field.
"""
from __future__ import annotations

import base64
import math
import numbers
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import torch

from .control import StepControl
from .options import ZoAROptions
from .updates import SGD, Adam
from .zoar import BatchRecord, NoiseRule

if TYPE_CHECKING:
    from .zoar import PointsSource, ZoAR

FORMAT = "zo_scipy.ZoAR"
VERSION = 1

_DTYPES: dict[str, torch.dtype] = {"float64": torch.float64, "float32": torch.float32,
                                   "uint8": torch.uint8}
_NP = {"float64": "<f8", "float32": "<f4", "uint8": "u1"}

Z = TypeVar("Z", bound="ZoAR")


#: Counters (iterations, decays, Adam steps) above this are not from a real run.
MAX_COUNT = 2**53


class StateError(ValueError):
    """Stored optimizer state that is not valid; the message names the field.

    Raised by :meth:`zo_scipy.ZoAR.load_state_dict` and :meth:`zo_scipy.ZoAR.from_state_dict`
    (and by the front ends that load a state: ``options=dict(resume=state)``, the torch
    optimizers' ``load_state_dict``) before anything of the optimizer changes.

    See Also
    --------
    zo_scipy.ZoAR.state_dict : writes the state this checks.

    Notes
    -----
    A state is plain JSON-safe data (never unpickled): every field is checked for its
    type, shape, finiteness and consistency with the others, so a corrupt or foreign
    state is refused with the name of the first bad field.

    References
    ----------
    - Junbin Qiu, Zhengpeng Xie, Xiangda Yan, Yongjie Yang, Yao Shu, "Zeroth-Order Optimization
      is Secretly Single-Step Policy Optimization", arXiv:2506.14460, 2025 (the ZoAR paper).

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.optimize import minimize, rosen
    >>> import zo_scipy
    >>> from zo_scipy.core import StateError
    >>> res = minimize(rosen, np.zeros(3), method=zo_scipy.zoar, options=dict(maxfev=100, seed=0))
    >>> bad = dict(res.state, kind="zovh")
    >>> try:
    ...     minimize(rosen, np.zeros(3), method=zo_scipy.zoar, options=dict(resume=bad))
    ... except StateError as e:
    ...     print("refused:", "kind" in str(e))
    refused: True
    """


# -- encoding -----------------------------------------------------------------------------
def _dtype_name(dtype: torch.dtype) -> str:
    for name, dt in _DTYPES.items():
        if dt == dtype:
            return name
    raise TypeError(f"cannot store a tensor of dtype {dtype}")


def encode_array(t: torch.Tensor) -> dict[str, Any]:
    """A tensor as ``{"dtype", "shape", "data"}`` (base64 of little-endian bytes)."""
    name = _dtype_name(t.dtype)
    arr = np.ascontiguousarray(t.detach().cpu().numpy(), dtype=_NP[name])
    return {"dtype": name, "shape": list(arr.shape), "data": base64.b64encode(arr.tobytes()).decode("ascii")}


def _opt(t: torch.Tensor | None) -> dict[str, Any] | None:
    return None if t is None else encode_array(t)


def _sentinel(v: float) -> float | None:
    """``+inf`` (a "nothing yet" value) as ``None``; other values as they are."""
    return None if v == math.inf else float(v)


def dump_zoar(opt: ZoAR) -> dict[str, Any]:
    """The state of ``opt`` as a JSON-safe dict (see the module docstring)."""
    c = opt.control
    rule = opt.update
    if isinstance(rule, Adam):
        update: dict[str, Any] = {"t": rule.t, "m": _opt(rule.m), "v": _opt(rule.v)}
    elif type(rule) is SGD:
        update = {}
    else:
        raise TypeError(f"the update rule {type(rule).__name__} cannot be stored as data")
    pending = opt._pending
    gen = opt._generator
    if pending is not None:
        gen_state: torch.Tensor | None = pending[2]  # before the pending ask: it is asked again
    else:
        gen_state = None if gen is None else gen.get_state()
    n = opt.noise
    return {
        "format": FORMAT, "version": VERSION, "kind": type(opt).__name__,
        "options": opt.options.to_dict(), "settings": opt._extra_settings(),
        "dim": opt.dim, "dtype": _dtype_name(opt.dtype), "device": str(opt.device),
        "num_queries": opt.num_queries,
        "x": encode_array(opt.x), "lower": _opt(opt.lower), "upper": _opt(opt.upper),
        "seed": opt.seed, "mu0": opt.mu0, "mu_floor": opt.mu_floor, "nit": opt.nit,
        "best_f": _sentinel(opt.best_f), "best_x": _opt(opt.best_x),
        "n_nonfinite": opt.n_nonfinite, "last_step_norm": opt._last_step_norm,
        "noise": {"spread_sum": n.spread_sum, "spread_count": n.spread_count,
                  "level_mu": n.level_mu, "level_spread": n.level_spread,
                  "flat_halvings": n.flat_halvings, "first_flat_mu": n.first_flat_mu},
        "control": {
            "lr": c.lr, "lr0": c.lr0, "window": c.window, "decay": c.decay, "growth": c.growth,
            "grow_after": c.grow_after, "restore_sigmas": c.restore_sigmas, "xtol": c.xtol,
            "patience": c.patience, "best": _sentinel(c.best), "anchor": _opt(c.anchor),
            "n_decays": c.n_decays, "n_restores": c.n_restores, "prev": _sentinel(c._prev),
            "means": [float(m) for m in c._means], "streak": c._streak, "fails": c._fails,
            "window_best": _sentinel(c._win_best), "window_x": _opt(c._win_x)},
        "update": update,
        "generator": _opt(gen_state),
        "held": _opt(opt.held),
        "extra": opt._extra_state(),
        "history": {
            "position": opt.history._pos, "size": opt.history.size,
            "records": [{"tag": r.tag, "center": encode_array(r.center), "mu": r.mu, "size": r.size,
                         "values": encode_array(r.values), "generator": _opt(r.rng_state)}
                        for r in opt.records]},
    }


# -- decoding (every field checked) ---------------------------------------------------------
class _Reader:
    """Checked access to one level of a stored dict; errors name the field's path."""

    def __init__(self, data: Any, path: str) -> None:
        if not isinstance(data, Mapping):
            raise StateError(f"{path or 'state'} must be a mapping, got {type(data).__name__}")
        self.data, self.path = data, path

    def _name(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def get(self, key: str) -> Any:
        if key not in self.data:
            raise StateError(f"state field {self._name(key)!r} is missing")
        return self.data[key]

    def sub(self, key: str) -> _Reader:
        return _Reader(self.get(key), self._name(key))

    def fail(self, key: str, need: str, value: Any) -> StateError:
        return StateError(f"state field {self._name(key)!r} must be {need}, got {value!r:.60}")

    def integer(self, key: str, lo: int = 0, hi: int = MAX_COUNT) -> int:
        v = self.get(key)
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or not lo <= int(v) <= hi:
            raise self.fail(key, f"an integer in [{lo}, {hi}]", v)
        return int(v)

    def boolean(self, key: str) -> bool:
        v = self.get(key)
        if not isinstance(v, bool):
            raise self.fail(key, "true or false", v)
        return v

    def real(self, key: str, *, positive: bool = False, nonneg: bool = False,
              sentinel: bool = False) -> float:
        v = self.get(key)
        if v is None and sentinel:
            return math.inf
        try:  # float() of a huge int overflows
            finite = not isinstance(v, bool) and isinstance(v, numbers.Real) and math.isfinite(float(v))
        except OverflowError:
            finite = False
        if not finite:
            raise self.fail(key, "a finite number" + (" or null" if sentinel else ""), v)
        if (positive and not float(v) > 0) or (nonneg and not float(v) >= 0):
            raise self.fail(key, "a positive number" if positive else "a number >= 0", v)
        return float(v)

    def array(self, key: str, dtype: str, shape: tuple[int, ...], *, device: torch.device,
              optional: bool = False, finite: bool = True) -> torch.Tensor | None:
        v = self.get(key)
        if v is None and optional:
            return None
        name = self._name(key)
        a = _Reader(v, name)
        if a.get("dtype") != dtype:
            raise a.fail("dtype", repr(dtype), a.get("dtype"))
        got = a.get("shape")
        if not isinstance(got, list) or tuple(got) != shape:
            raise a.fail("shape", str(list(shape)), got)
        data = a.get("data")
        try:
            raw = base64.b64decode(data, validate=True) if isinstance(data, str) else None
        except ValueError:
            raw = None
        size = int(np.prod(shape)) * np.dtype(_NP[dtype]).itemsize
        if raw is None or len(raw) != size:
            raise a.fail("data", f"base64 of {size} bytes", data)
        arr = np.frombuffer(raw, dtype=_NP[dtype]).reshape(shape).copy()
        if finite and not np.all(np.isfinite(arr)):
            raise StateError(f"state field {name!r} holds NaN or inf")
        return torch.from_numpy(arr.astype(arr.dtype.newbyteorder("="))).to(device)

    def vector(self, key: str, dtype: str, d: int, *, device: torch.device,
               optional: bool = False) -> torch.Tensor | None:
        return self.array(key, dtype, (d,), device=device, optional=optional)


def _require(t: torch.Tensor | None) -> torch.Tensor:
    assert t is not None
    return t


def _generator_state(r: _Reader, key: str, device: torch.device, optional: bool = True) -> torch.Tensor | None:
    v = r.get(key)
    if v is None and optional:
        return None
    shape = _Reader(v, r._name(key)).get("shape")
    if not (isinstance(shape, list) and len(shape) == 1 and isinstance(shape[0], int) and 0 < shape[0] <= 1 << 16):
        raise r.fail(key, "a generator state", v)
    state = r.array(key, "uint8", (shape[0],), device=torch.device("cpu"), finite=False)
    try:  # a state this generator type rejects is corrupt
        torch.Generator(device=device).set_state(_require(state))
    except (RuntimeError, ValueError) as e:
        raise StateError(f"state field {r._name(key)!r} is not a generator state for {device}: {e}") from None
    return state


def _check_header(state: Any, kind: str) -> tuple[_Reader, ZoAROptions]:
    """The format, version and class of a state, and its options."""
    r = _Reader(state, "")
    if r.get("format") != FORMAT:
        raise r.fail("format", repr(FORMAT), r.get("format"))
    version = r.get("version")
    if version != VERSION:
        raise StateError(f"state field 'version' is {version!r:.40}; this version of zo_scipy reads "
                         f"version {VERSION}")
    if r.get("kind") != kind:
        raise StateError(f"state field 'kind' is {r.get('kind')!r:.40}; expected {kind!r} "
                         f"(use {r.get('kind')}.from_state_dict)")
    try:
        return r, ZoAROptions.from_dict(r.get("options"))
    except (TypeError, ValueError) as e:
        raise StateError(f"state field 'options' is invalid: {e}") from None


def build_zoar(cls: type[Z], state: Mapping[str, Any], *, points: PointsSource | None = None,
               device: torch.device | str | None = None) -> Z:
    """A new ``cls`` continuing from ``state``."""
    r, options = _check_header(state, cls.__name__)
    settings = r.get("settings")
    if not isinstance(settings, dict):
        raise r.fail("settings", "a mapping", settings)
    dtype = r.get("dtype")
    if dtype not in ("float64", "float32"):
        raise r.fail("dtype", "'float64' or 'float32'", dtype)
    dev = torch.device(device) if device is not None else _device(r)
    d = r.integer("dim", 1)
    x = _require(r.vector("x", dtype, d, device=dev))
    lower, upper = _bounds(r, dtype, d, dev)
    seed = r.integer("seed", 0, 2**64 - 1)
    try:
        opt = cls(x, options=options, lower=lower, upper=upper, seed=seed, dtype=_DTYPES[dtype],
                  device=dev, **settings)
    except (TypeError, ValueError) as e:
        raise StateError(f"state field 'settings' is invalid: {e}") from None
    load_zoar(opt, state, points=points)
    return opt


def _bounds(r: _Reader, dtype: str, d: int, device: torch.device) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """The box: each side optional; infinite entries allowed (no bound on that side), NaN not."""
    out = []
    for key, bad in (("lower", math.inf), ("upper", -math.inf)):
        b = r.array(key, dtype, (d,), device=device, optional=True, finite=False)
        if b is not None and bool((torch.isnan(b) | (b == bad)).any()):
            raise StateError(f"state field {key!r} holds NaN or {bad}")
        out.append(b)
    lo, hi = out
    if lo is not None and hi is not None and bool((lo > hi).any()):
        raise StateError("state fields 'lower' and 'upper' cross (a lower bound above its upper bound)")
    return lo, hi


def _device(r: _Reader) -> torch.device:
    v = r.get("device")
    try:
        return torch.device(v)
    except (RuntimeError, TypeError):
        raise r.fail("device", "a torch device", v) from None


def load_zoar(opt: ZoAR, state: Mapping[str, Any], *, points: PointsSource | None = None) -> None:
    """Check ``state`` against ``opt``'s options and dimension, then replace ``opt``'s state.

    Nothing of ``opt`` changes when a field is invalid.
    """
    r, stored = _check_header(state, type(opt).__name__)
    mine = opt.options.to_dict()
    diff = [k for k, v in stored.to_dict().items() if mine[k] != v]
    if diff:
        raise StateError(f"state field 'options' differs from this optimizer's in {diff}")
    if r.get("settings") != opt._extra_settings():
        raise StateError("state field 'settings' differs from this optimizer's "
                         f"({r.get('settings')!r:.80} vs {opt._extra_settings()!r:.80})")
    dt = _dtype_name(opt.dtype)
    if r.get("dtype") != dt:
        raise r.fail("dtype", repr(dt), r.get("dtype"))
    d = r.integer("dim", 1)
    if d != opt.dim:
        raise r.fail("dim", str(opt.dim), d)
    dev = opt.device
    x = _require(r.vector("x", dt, d, device=dev))
    lower, upper = _bounds(r, dt, d, dev)
    for name, mine_b, theirs in (("lower", opt.lower, lower), ("upper", opt.upper, upper)):
        if (mine_b is None) != (theirs is None) or (
                mine_b is not None and theirs is not None and not torch.equal(mine_b, theirs)):
            raise StateError(f"state field {name!r} differs from this optimizer's bounds")
    if opt._bounded and not torch.equal(opt._project(x), x):
        raise StateError("state field 'x' lies outside the bounds")
    seed = r.integer("seed", 0, 2**64 - 1)
    mu0 = r.real("mu0", positive=True)
    mu_floor = r.real("mu_floor", nonneg=True)
    nit = r.integer("nit")
    best_f = r.real("best_f", sentinel=True)
    best_x = r.vector("best_x", dt, d, device=dev, optional=True)
    if (best_x is None) != (best_f == math.inf):
        raise StateError("state fields 'best_x' and 'best_f' disagree (one is set, the other not)")
    n_nonfinite = r.integer("n_nonfinite")
    last_step_norm = r.real("last_step_norm", nonneg=True)

    nr = r.sub("noise")
    noise = NoiseRule(spread_sum=nr.real("spread_sum", nonneg=True), spread_count=nr.integer("spread_count"),
                      level_mu=nr.real("level_mu", nonneg=True), level_spread=nr.real("level_spread", nonneg=True),
                      flat_halvings=nr.integer("flat_halvings"),
                      first_flat_mu=nr.real("first_flat_mu", nonneg=True))

    cr = r.sub("control")
    control = StepControl(lr=cr.real("lr", positive=True), window=cr.integer("window", 1),
                          decay=cr.real("decay", positive=True), growth=cr.real("growth", positive=True),
                          grow_after=cr.integer("grow_after", 1), restore_sigmas=cr.real("restore_sigmas", nonneg=True),
                          xtol=cr.real("xtol", nonneg=True), patience=cr.integer("patience", 1))
    if control.window != opt.options.resolved_window or control.xtol != opt.options.xtol:
        raise StateError("state fields 'control.window'/'control.xtol' differ from the options")
    control.lr0 = cr.real("lr0", positive=True)
    control.best = cr.real("best", sentinel=True)
    control.anchor = cr.vector("anchor", dt, d, device=dev, optional=True)
    control.n_decays, control.n_restores = cr.integer("n_decays"), cr.integer("n_restores")
    control._prev = cr.real("prev", sentinel=True)
    means = cr.get("means")
    if not isinstance(means, list) or len(means) >= control.window:
        raise cr.fail("means", f"a list of fewer than {control.window} numbers", means)
    if not all(isinstance(m, numbers.Real) and not isinstance(m, bool) and math.isfinite(m) for m in means):
        raise cr.fail("means", "a list of finite numbers", means)
    control._means = [float(m) for m in means]
    control._streak, control._fails = cr.integer("streak"), cr.integer("fails")
    control._win_best = cr.real("window_best", sentinel=True)
    control._win_x = cr.vector("window_x", dt, d, device=dev, optional=True)
    if (control._win_x is None) != (control._win_best == math.inf):
        raise StateError("state fields 'control.window_best' and 'control.window_x' disagree")

    ur = r.sub("update")
    rule = opt.update
    moments: dict[str, Any] = {}
    if isinstance(rule, Adam):
        moments["t"] = ur.integer("t")
        moments["m"] = ur.vector("m", dt, d, device=dev, optional=True)
        moments["v"] = ur.vector("v", dt, d, device=dev, optional=True)
        if (moments["m"] is None) != (moments["v"] is None) or (moments["m"] is None) != (moments["t"] == 0):
            raise StateError("state fields 'update.t', 'update.m' and 'update.v' disagree")
        if moments["v"] is not None and bool((moments["v"] < 0).any()):
            raise StateError("state field 'update.v' holds negative second moments")
        if moments["t"] > nit:
            raise StateError(f"state field 'update.t' ({moments['t']}) exceeds the iterations 'nit' ({nit})")
    elif type(rule) is SGD:
        if ur.data:
            raise StateError(f"state field 'update' must be empty for sgd, got keys {sorted(ur.data)}")
    else:
        raise TypeError(f"the update rule {type(rule).__name__} cannot be loaded from data")

    gen_state = _generator_state(r, "generator", dev)
    num_queries = r.integer("num_queries", *opt._batch_range())
    held = None
    if r.get("held") is not None:
        shape = _Reader(r.get("held"), "held").get("shape")
        if not (isinstance(shape, list) and len(shape) == 1 and isinstance(shape[0], int)
                and 0 < shape[0] < num_queries):
            raise StateError(f"state field 'held.shape' must be [n] with 0 < n < num_queries, got {shape!r:.40}")
        held = r.array("held", dt, (shape[0],), device=dev, finite=False)

    hr = r.sub("history")
    capacity = (opt.num_histories + 1) * num_queries
    position = hr.integer("position", 0, capacity - 1)
    size = hr.integer("size", 0, capacity)
    recs = hr.get("records")
    if not isinstance(recs, list):
        raise hr.fail("records", "a list", recs)
    records: list[BatchRecord] = []
    for i, raw in enumerate(recs):
        rr = _Reader(raw, f"history.records[{i}]")
        n = rr.integer("size", 1)
        records.append(BatchRecord(tag=rr.integer("tag"), center=_require(rr.vector("center", dt, d, device=dev)),
                                   mu=rr.real("mu", positive=True), size=n,
                                   values=_require(rr.array("values", dt, (n,), device=dev)),
                                   rng_state=_generator_state(rr, "generator", dev)))
    total = sum(rec.size for rec in records)
    if min(total, capacity) != size or (records and sum(rec.size for rec in records[1:]) >= capacity):
        raise StateError(f"state field 'history' is inconsistent: records hold {total} rows for a "
                         f"buffer of size {size} (capacity {capacity})")
    rows = [_rows(opt, rec, points) for rec in records]
    # (absent from states written before subclasses stored their own)
    extra = opt._read_extra_state(r.sub("extra") if r.data.get("extra") is not None else _Reader({}, "extra"))

    # Every field is valid: replace the state.
    opt.x, opt.seed, opt.mu0, opt.mu_floor, opt.nit = x, seed, mu0, mu_floor, nit
    opt.best_f, opt.best_x, opt.n_nonfinite, opt._last_step_norm = best_f, best_x, n_nonfinite, last_step_norm
    opt.noise = noise
    opt.control = control
    if isinstance(rule, Adam):
        rule.t, rule.m, rule.v = moments["t"], moments["m"], moments["v"]
    opt._generator = None
    if gen_state is not None:
        opt.generator.set_state(gen_state)
    opt._pending = None
    opt.held = held
    if num_queries != opt.num_queries or opt.history.capacity != capacity:
        opt._grow_batch(num_queries)
    opt.history.clear()
    advance = sum(min(rec.size, capacity) for rec in records)
    opt.history._pos = (position - advance) % capacity  # replay the appends where they were made
    opt.records = []
    for rec, U in zip(records, rows):
        opt.history.append(U, rec.values)
        opt.records.append(rec)
    if opt.history._pos != position or opt.history.size != size:
        raise StateError("state field 'history.position' does not match its records")  # pragma: no cover - checked above
    opt._apply_extra_state(extra)


def _rows(opt: ZoAR, rec: BatchRecord, points: PointsSource | None) -> torch.Tensor:
    """The directions of one record: drawn again, or computed from the caller's points."""
    center, mu, n = rec.center, rec.mu, rec.size
    if rec.rng_state is not None:
        gen = torch.Generator(device=opt.device)
        gen.set_state(rec.rng_state)
        U, _ = opt._draw(n, gen, center, mu)
        return U
    tag = rec.tag
    if points is None:
        raise StateError(f"state field 'history' has a batch (tag {tag}) told with explicit points: "
                         "pass points= to load it")
    try:
        P = points(tag) if callable(points) else points[tag]
    except (KeyError, IndexError, LookupError):
        raise StateError(f"points= has no points for the batch with tag {tag}") from None
    X = torch.as_tensor(P, dtype=opt.dtype, device=opt.device)
    if tuple(X.shape) != (n, opt.dim) or not bool(torch.isfinite(X).all()):
        raise StateError(f"points for the batch with tag {tag} must be {n} finite points of dimension "
                         f"{opt.dim}, got shape {tuple(X.shape)}")
    return (X - center) / mu


#: Public names of the encoding helpers, for subclasses' own state (``extra``).
optional_array = _opt
sentinel = _sentinel

__all__ = ["FORMAT", "VERSION", "StateError", "build_zoar", "dump_zoar", "encode_array", "load_zoar",
           "optional_array", "sentinel"]
