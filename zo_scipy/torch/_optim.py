r"""Forward-only ZoAR and ZoVH as ``torch.optim.Optimizer`` subclasses (``docs/torch.md``).

One step, for a model with parameter tensors :math:`\theta_t` and ``K`` queries:

1. query :math:`k` gets the seed :math:`s_k` = mix(run seed, step, k); the closure runs the
   forward pass with every optimized tensor replaced, inside its own module's forward only,
   by :math:`\theta_t + \mu_g z_k(t)`, :math:`z_k(t)` drawn from the stream (:math:`s_k`, t);
2. the ``K`` losses join the history of (seed, loss) pairs of the last ``N+1`` steps
   (:math:`M = (N+1)K` pairs, the ZoAR paper's query reuse);
3. the step is a linear combination of the stored directions,
   :math:`\Delta_t = \eta_g \sum_j a_j z_j(t)`, formed tensor by tensor from the seeds:
   ZoAR's mean-baseline weights :math:`a_j = (y_j - \bar y)/(\mu_g (M-1))`
   (:func:`zo_scipy.core.estimators.centered_weights`), or ZoVH's inverse-Hessian-gradient
   weights from the ``M x M`` Gram matrix
   (:func:`zo_scipy.core.hessian.inverse_hessian_gradient_weights`).

The parameters themselves change only by :math:`-\Delta_t` (bit for bit); nothing of size
``d`` is stored between steps except Adam's moments when ``update="adam"``/``"radazo"``.
"""
from __future__ import annotations

import inspect
import math
import secrets
import warnings
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from ..core.estimators import centered_weights
from ..core.hessian import auto_damping, inverse_hessian_gradient_weights
from ..core.lowrank import woodbury_weights
from ..core.options import ZoAROptions, check_bool, check_choice, check_real, resolve_seed
from ..core.state import StateError
from ..core.updates import Adam, make_update_rule
from ._streams import Streams, stream_seed

Closure = Callable[..., Any]
FORMAT = "zo_scipy.torch"
VERSION = 1
_LOW_PRECISION = (torch.float16, torch.bfloat16)


def _work_dtype(dtype: torch.dtype) -> torch.dtype:
    """Directions and accumulators: float32, or float64 for float64 parameters."""
    return torch.float64 if dtype == torch.float64 else torch.float32


class _Hook:
    """A forward (pre-)hook that calls back into its optimizer through a weak reference.

    A copied or pickled model carries inert hooks (a deep copy of a hooked model must not
    copy the optimizer), and a model outlives an optimizer that was dropped.
    """

    def __init__(self, opt: ForwardZoAR | None, pre: bool) -> None:
        self._ref = None if opt is None else weakref.ref(opt)
        self.pre = pre

    def __call__(self, module: nn.Module, args: Any, output: Any = None) -> None:
        opt = None if self._ref is None else self._ref()
        if opt is not None:
            opt._perturb(module) if self.pre else opt._restore(module)

    def __deepcopy__(self, memo: dict[int, Any]) -> _Hook:
        return _Hook(None, self.pre)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_Hook, (None, self.pre))


class ForwardZoAR(torch.optim.Optimizer):
    r"""ZoAR for ``torch.nn.Module`` training from loss values only (``docs/torch.md``).

    Parameters
    ----------
    params : nn.Module or iterable of tensors or of param-group dicts
        What to optimize. A module stands for all its parameters; with tensors or
        groups, ``model`` must be given.
    lr, mu, weight_decay : float
        Per-group defaults: step size :math:`\eta`, perturbation radius :math:`\mu`,
        decoupled weight decay (``\theta \leftarrow \theta - \eta\,\text{wd}\,\theta``,
        as MeZO does).
    model : nn.Module, optional
        The module whose forward the closure runs; every parameter to optimize must
        belong to it. Its submodules get forward hooks that perturb their own tensors
        for the duration of their own forward during :meth:`step` (inert otherwise).
    num_queries : int
        :math:`K`, forward passes per step (>= 1).
    num_histories : int
        :math:`N`, past steps whose (seed, loss) pairs are reused; :math:`(N+1)K >= 2`.
    update : {"sgd", "adam", "radazo"}
        The core's update rules; ``"sgd"`` (default, as MeZO) keeps no d-sized state.
    betas, eps, bias_correction
        Moment settings of adam/radazo.
    normalization : {"unbiased", "authors"}
        :math:`1/(M-1)` or the ZoAR authors' :math:`1/M`.
    seed : int or None
        Run seed; ``None`` draws one (from ``secrets``, never the global RNG) and, under
        ``torch.distributed``, broadcasts rank 0's so that every rank shares it.
    process_group : optional
        ``torch.distributed`` group whose ranks share the seeds and average the losses;
        default: the default group when one is initialized.

    Raises
    ------
    ValueError
        ``model`` missing or not an ``nn.Module``, an unknown ``update``, an option out of
        range (named), a parameter that is not floating point; at :meth:`step`, no closure
        or a closure that does not return a scalar.

    See Also
    --------
    ForwardZoVH : the same with ZoVH's curvature-aware step.
    zo_scipy.ZoAR : the core optimizer (flat vectors, ask/tell).
    zo_scipy.integrations.lightning.ForwardOnlyModule : the same under Lightning.

    Notes
    -----
    Step :math:`t` draws :math:`K` query seeds :math:`s_k` and evaluates the loss at
    :math:`\theta + \mu z(s_k)`, where :math:`z(s)` is a standard normal vector regenerated
    tensor by tensor from the seed (never stored). With the (seed, loss) pairs of the last
    :math:`N + 1` steps (:math:`M` of them),

    .. math::
        g = \frac{1}{M-1} \sum_{j} (y_j - \bar y)\, \frac{z(s_j)}{\mu}, \qquad
        \theta \leftarrow \theta - \Delta(g),

    applied one tensor at a time, so the extra memory is one tensor's direction, not
    :math:`d`. The seeds-not-directions trick is MeZO's; the averaged baseline and the
    reuse are ZoAR's.

    References
    ----------
    - Junbin Qiu, Zhengpeng Xie, Xiangda Yan, Yongjie Yang, Yao Shu, "Zeroth-Order Optimization
      is Secretly Single-Step Policy Optimization", arXiv:2506.14460, 2025 (the ZoAR paper).
    - Sadhika Malladi, Tianyu Gao, Eshaan Nichani, Alex Damian, Jason D. Lee, Danqi Chen, Sanjeev
      Arora, "Fine-Tuning Language Models with Just Forward Passes", NeurIPS 2023, arXiv:2305.17333
      (MeZO).
    - James C. Spall, "Multivariate stochastic approximation using a simultaneous perturbation
      gradient approximation", IEEE Transactions on Automatic Control 37(3), 332-341, 1992.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from zo_scipy.torch import ForwardZoAR
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> X = torch.randn(64, 3); y = X @ torch.tensor([1.0, -2.0, 0.5])
    >>> model = nn.Linear(3, 1)
    >>> opt = ForwardZoAR(model, lr=0.05, mu=1e-3, num_queries=4, seed=0)
    >>> loss = lambda: nn.functional.mse_loss(model(X).squeeze(1), y)
    >>> first = float(loss().detach())
    >>> for _ in range(300):
    ...     last = opt.step(loss)
    >>> bool(last < 0.1 * first), opt.step_count
    (True, 300)
    """

    _kind = "ForwardZoAR"

    def __init__(self, params: nn.Module | Iterable[torch.Tensor] | Iterable[dict[str, Any]], lr: float = 1e-2,
                 mu: float = 1e-3, weight_decay: float = 0.0, *, model: nn.Module | None = None,
                 num_queries: int = 4, num_histories: int = 0, update: str = "sgd",
                 betas: tuple[float, float] = (0.9, 0.99), eps: float = 1e-8, bias_correction: bool = True,
                 normalization: str = "unbiased", seed: int | None = None, process_group: Any = None) -> None:
        if isinstance(params, nn.Module):
            model = params if model is None else model
            params = params.parameters()
        if not isinstance(model, nn.Module):
            raise ValueError("argument 'model' must be the nn.Module the closure runs (the perturbations are "
                             f"applied inside its submodules' forward), got {type(model).__name__}")
        if isinstance(update, str):
            check_choice("update", update, ("sgd", "adam", "radazo"))
        else:
            raise ValueError(f"option 'update' must be one of ('sgd', 'adam', 'radazo'), got {update!r}")
        #: The validated settings (the core's checks; lr and mu are per-group defaults here).
        self.options = ZoAROptions(num_queries=num_queries, num_histories=num_histories, mu=mu, lr=lr,
                                   update=update, betas=betas, eps=eps, bias_correction=bias_correction,
                                   normalization=normalization, schedule="constant")
        self.model = model
        self.process_group = process_group
        self._streams = Streams()
        self._index: dict[int, int] = {}  # id(param) -> tensor index in its streams
        self._active: tuple[list[float], int] | None = None  # (mu per tensor index, query seed)
        self._swapped: list[tuple[nn.Module, str, torch.Tensor]] = []
        self._seen: set[int] = set()
        self._handles: list[Any] = []
        super().__init__(params, {"lr": lr, "mu": mu, "weight_decay": weight_decay})
        self.seed = self._shared_seed(resolve_seed(seed))
        self.step_count = 0
        self.n_nonfinite = 0
        #: The reuse buffer: one (seeds, losses) pair of lists per stored step, oldest first.
        self.history: list[tuple[list[int], list[float]]] = []
        self._install_hooks()

    # -- param groups ---------------------------------------------------------------------
    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group as :meth:`torch.optim.Optimizer.add_param_group` does (its ``lr``, ``mu``
        and ``weight_decay`` default to the optimizer's); its tensors must be floating point
        and belong to ``model``.

        Examples
        --------
        >>> from torch import nn
        >>> from zo_scipy.torch import ForwardZoAR
        >>> model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 1))
        >>> opt = ForwardZoAR(model[0].parameters(), model=model, lr=0.01, seed=0)
        >>> opt.add_param_group({"params": model[1].parameters(), "lr": 0.001})
        >>> [g["lr"] for g in opt.param_groups]
        [0.01, 0.001]
        """
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        group["lr"] = check_real("lr", group["lr"])
        group["mu"] = check_real("mu", group["mu"])
        group["weight_decay"] = check_real("weight_decay", group["weight_decay"], allow_zero=True)
        for p in group["params"]:
            if not p.is_floating_point():
                raise ValueError(f"argument 'params': can only optimize floating-point tensors, got {p.dtype}")
            self._index.setdefault(id(p), len(self._index))
        if getattr(self, "_handles", None):  # a group added after construction
            self._install_hooks()

    def _mus(self) -> list[float]:
        mus = [0.0] * len(self._index)
        for g in self.param_groups:
            for p in g["params"]:
                mus[self._index[id(p)]] = float(g["mu"])
        return mus

    # -- transient perturbation -------------------------------------------------------------
    def _install_hooks(self) -> None:
        self.remove_hooks()
        for module in self.model.modules():
            if any(id(p) in self._index for p in module.parameters(recurse=False)):
                self._handles.append(module.register_forward_pre_hook(_Hook(self, pre=True)))
                self._handles.append(module.register_forward_hook(_Hook(self, pre=False)))

    def remove_hooks(self) -> None:
        """Detach the forward hooks from the model (the optimizer cannot step afterwards).

        Examples
        --------
        >>> from torch import nn
        >>> from zo_scipy.torch import ForwardZoAR
        >>> opt = ForwardZoAR(nn.Linear(2, 1), seed=0)
        >>> opt.remove_hooks()
        >>> opt.step(lambda: 0.0)
        Traceback (most recent call last):
        ...
        RuntimeError: the forward hooks were removed (remove_hooks()); build a new optimizer
        """
        for h in self._handles:
            h.remove()
        self._handles = []

    def _perturb(self, module: nn.Module) -> None:
        if self._active is None:
            return
        mus, qseed = self._active
        for name, p in list(module._parameters.items()):
            if p is None or id(p) not in self._index:
                continue
            i = self._index[id(p)]
            z = self.direction(qseed, p)
            z.mul_(mus[i]).add_(p)
            # W + mu z, for this forward only: a plain tensor stands in for the Parameter
            module._parameters[name] = z.to(p.dtype)  # type: ignore[assignment]  # restored after the forward
            self._swapped.append((module, name, p))
            self._seen.add(i)

    def _restore(self, module: nn.Module | None = None) -> None:
        keep = []
        for entry in reversed(self._swapped):
            m, name, p = entry
            if module is None or m is module:
                m._parameters[name] = p  # type: ignore[assignment]  # the original Parameter object
            else:
                keep.append(entry)
        self._swapped = keep[::-1]

    def direction(self, query_seed: int, p: torch.Tensor, *, out: torch.Tensor | None = None) -> torch.Tensor:
        """The direction of ``p`` for the query with seed ``query_seed``, drawn again (in float32,
        float64 for float64 parameters, on ``p``'s device; a new tensor, or into ``out``).

        Parameters
        ----------
        query_seed : int
            One of :meth:`query_seeds`.
        p : torch.Tensor
            A parameter of this optimizer.
        out : torch.Tensor, optional
            Where to write the direction (same shape as ``p``).

        Returns
        -------
        torch.Tensor
            The direction :math:`z` of ``p`` (the query evaluated ``p + mu z``).

        Examples
        --------
        >>> import torch
        >>> from torch import nn
        >>> from zo_scipy.torch import ForwardZoAR
        >>> model = nn.Linear(2, 1)
        >>> opt = ForwardZoAR(model, seed=0)
        >>> s = opt.query_seeds()[0]
        >>> bool(torch.equal(opt.direction(s, model.weight), opt.direction(s, model.weight)))
        True
        """
        return self._streams.draw(stream_seed(query_seed, self._index[id(p)]), p.shape,
                                  dtype=_work_dtype(p.dtype), device=p.device, out=out)

    def query_seeds(self, step: int | None = None) -> list[int]:
        """The ``K`` query seeds of step ``step`` (default: the next one).

        Parameters
        ----------
        step : int, optional
            The step (0 is the first); default :attr:`step_count`.

        Returns
        -------
        list of int
            ``K`` seeds, a function of (run seed, step, query) only: the same on every rank.

        Examples
        --------
        >>> from torch import nn
        >>> from zo_scipy.torch import ForwardZoAR
        >>> opt = ForwardZoAR(nn.Linear(2, 1), num_queries=3, seed=0)
        >>> len(opt.query_seeds()), opt.query_seeds(0) == opt.query_seeds()
        (3, True)
        """
        t = self.step_count if step is None else step
        return [stream_seed(self.seed, t, k) for k in range(self.options.num_queries)]

    # -- closure and distributed --------------------------------------------------------------
    def _call(self, closure: Closure) -> float:
        try:
            takes_flag = "backward" in inspect.signature(closure).parameters
        except (TypeError, ValueError):  # a builtin or C callable: no signature to read
            takes_flag = False
        out = closure(backward=False) if takes_flag else closure()
        if isinstance(out, torch.Tensor):
            if out.numel() != 1:
                raise ValueError(f"the closure must return a scalar loss, got a tensor of shape {tuple(out.shape)}")
            return float(out.detach().double().item())
        try:
            return float(out)
        except (TypeError, ValueError):
            raise ValueError(f"the closure must return a scalar loss, got {type(out).__name__}") from None

    def _group(self) -> Any:
        if self.process_group is not None:
            return self.process_group
        return dist.group.WORLD if dist.is_available() and dist.is_initialized() else None

    def _world(self) -> int:
        group = self._group()
        return 1 if group is None else dist.get_world_size(group)

    def _reduce_device(self) -> torch.device:
        group = self._group()
        if group is not None and dist.get_backend(group) == "nccl":
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("cpu")

    def _shared_seed(self, seed: int | None) -> int:
        if seed is None:
            seed = secrets.randbits(63)
            if self._world() > 1:  # every rank must draw the same directions: rank 0's seed
                t = torch.tensor([seed], dtype=torch.int64, device=self._reduce_device())
                dist.broadcast(t, src=dist.get_global_rank(self._group(), 0), group=self._group())
                seed = int(t.item())
        return seed

    def _all_reduce(self, losses: list[float]) -> list[float]:
        world = self._world()
        if world == 1:
            return losses
        t = torch.tensor(losses, dtype=torch.float64, device=self._reduce_device())
        dist.all_reduce(t, op=dist.ReduceOp.SUM, group=self._group())  # K numbers on the wire
        return (t / world).tolist()

    # -- the step -------------------------------------------------------------------------------
    @torch.no_grad()
    def step(self, closure: Closure | None = None) -> float:  # type: ignore[override]  # closure required
        """One ZoAR step; returns the mean of the ``K`` (rank-averaged) losses.

        ``closure()`` runs a forward pass and returns the loss (a scalar tensor or a number;
        anything: accuracy, a simulator's output). It is called ``K`` times under
        ``torch.no_grad()``; a closure that takes a ``backward`` argument is called with
        ``backward=False``. Micro-batches: loop over them inside the closure (all of them see
        the same perturbation).

        Parameters
        ----------
        closure : callable
            ``closure() -> loss``, a forward pass without ``backward()``.

        Returns
        -------
        float
            The mean of the ``K`` losses (averaged over ranks under ``torch.distributed``).

        Raises
        ------
        ValueError
            No closure, or one that does not return a scalar.
        RuntimeError
            The hooks were removed.

        Examples
        --------
        The closure can return any number, here a non-differentiable count:

        >>> import torch
        >>> from torch import nn
        >>> from zo_scipy.torch import ForwardZoAR
        >>> model = nn.Linear(1, 1, bias=False)
        >>> opt = ForwardZoAR(model, lr=0.1, mu=0.05, num_queries=8, seed=0)
        >>> target = torch.full((1, 1), 3.0)
        >>> for _ in range(200):
        ...     _ = opt.step(lambda: float((model(torch.ones(1, 1)) - target).abs().round(decimals=1)))
        >>> bool(abs(model.weight.item() - 3.0) < 0.5)
        True
        """
        if closure is None or not callable(closure):
            raise ValueError("argument 'closure' is required: a function that runs the forward pass and "
                             "returns the loss (zeroth-order optimizers need loss values)")
        if not self._handles:
            raise RuntimeError("the forward hooks were removed (remove_hooks()); build a new optimizer")
        mus = self._mus()
        seeds = self.query_seeds()
        losses = []
        first = self.step_count == 0
        for s in seeds:
            self._active, self._seen = (mus, s), set()
            try:
                losses.append(self._call(closure))
            finally:
                self._active = None
                self._restore()
            if first and len(self._seen) < len(self._index):
                missing = [n for n, p in self.model.named_parameters() if id(p) in self._index
                           and self._index[id(p)] not in self._seen]
                warnings.warn(f"parameters {missing[:5]} were not perturbed: they are not used inside their "
                              "own module's forward, and their update estimate is zero", stacklevel=2)
                first = False
        losses = self._all_reduce(losses)
        self.step_count += 1
        if not all(math.isfinite(v) for v in losses):
            self.n_nonfinite += 1  # a non-finite value would poison the weights: skip this step
            return float("nan")
        self.history.append((seeds, losses))
        del self.history[: max(0, len(self.history) - (self.options.num_histories + 1))]
        all_seeds = [s for ss, _ in self.history for s in ss]
        y = torch.tensor([v for _, vs in self.history for v in vs], dtype=torch.float64)
        if y.numel() >= 2:
            self._apply(all_seeds, self._weights(all_seeds, y))
        return sum(losses) / len(losses)

    def _weights(self, seeds: list[int], y: torch.Tensor) -> list[list[float]]:
        """Per group, the weights :math:`a_j` of the displacement :math:`\\sum_j a_j z_j`."""
        norm = self.options.normalization
        return [centered_weights(y, float(g["mu"]), normalization=norm).tolist()  # type: ignore[arg-type]  # checked by ZoAROptions
                for g in self.param_groups]

    def _tensors(self) -> Iterator[tuple[dict[str, Any], int, torch.Tensor]]:
        for gi, g in enumerate(self.param_groups):
            for p in g["params"]:
                yield g, gi, p

    def _apply(self, seeds: Sequence[int], weights: list[list[float]]) -> None:
        opts = self.options
        for g, gi, p in self._tensors():
            acc = torch.zeros(p.shape, dtype=_work_dtype(p.dtype), device=p.device)
            for s, a in zip(seeds, weights[gi]):
                acc.add_(self.direction(s, p), alpha=a)
            lr, wd = float(g["lr"]), float(g["weight_decay"])
            if opts.update == "sgd":
                if wd:
                    acc.add_(p, alpha=wd)
                disp = acc.mul_(lr)
            else:
                st = self.state[p]
                rule = make_update_rule(opts.update, betas=opts.betas, eps=opts.eps,
                                        bias_correction=opts.bias_correction)
                assert isinstance(rule, Adam)
                rule.t, rule.m, rule.v = int(st.get("t", 0)), st.get("exp_avg"), st.get("exp_avg_sq")
                disp = rule.step(acc, lr)
                st["t"], st["exp_avg"], st["exp_avg_sq"] = rule.t, rule.m, rule.v
                if wd:
                    disp.add_(p, alpha=lr * wd)
            p.sub_(disp.to(p.dtype))

    # -- state ------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """torch's optimizer state plus ``"zo"``: seed, step count, history of (seeds, losses),
        options. Nothing of size ``d`` unless Adam's moments are in ``"state"``.

        Returns
        -------
        dict
            Picklable (``torch.save``); ``state_dict()["zo"]`` holds only numbers and lists.

        Examples
        --------
        >>> import copy, torch
        >>> from torch import nn
        >>> from zo_scipy.torch import ForwardZoAR
        >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
        <torch._C.Generator object at ...>
        >>> model = nn.Linear(2, 1); X = torch.randn(8, 2)
        >>> opt = ForwardZoAR(model, seed=0)
        >>> _ = opt.step(lambda: model(X).pow(2).mean())
        >>> saved = copy.deepcopy((model.state_dict(), opt.state_dict()))
        >>> _ = opt.step(lambda: model(X).pow(2).mean())
        >>> twin = nn.Linear(2, 1); twin.load_state_dict(saved[0])
        <All keys matched successfully>
        >>> opt2 = ForwardZoAR(twin); opt2.load_state_dict(saved[1])
        >>> _ = opt2.step(lambda: twin(X).pow(2).mean())
        >>> bool(torch.equal(model.weight, twin.weight))          # the same bits
        True
        """
        sd = super().state_dict()
        sd["zo"] = {"format": FORMAT, "version": VERSION, "kind": self._kind, "seed": self.seed,
                    "step": self.step_count, "n_nonfinite": self.n_nonfinite,
                    "options": self.options.to_dict(), "settings": self._settings(),
                    "history": [{"seeds": list(s), "losses": list(v)} for s, v in self.history]}
        return sd

    def _settings(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Resume from :meth:`state_dict` (bit-identical continuation); raises
        :class:`~zo_scipy.core.state.StateError` naming the field that is wrong.

        Parameters
        ----------
        state_dict : dict
            From :meth:`state_dict` of an optimizer with the same options and parameters.

        Raises
        ------
        zo_scipy.core.StateError
            The ``"zo"`` entry is missing, of another kind or version, or has invalid fields.

        Examples
        --------
        >>> from torch import nn
        >>> from zo_scipy.torch import ForwardZoAR
        >>> from zo_scipy.core import StateError
        >>> model = nn.Linear(2, 1)
        >>> state = ForwardZoAR(model, num_queries=4, seed=0).state_dict()
        >>> try:
        ...     ForwardZoAR(model, num_queries=8).load_state_dict(state)
        ... except StateError as e:
        ...     print(str(e)[:40])
        state field 'zo.options' differs from th
        """
        zo = state_dict.get("zo")
        if not isinstance(zo, dict) or zo.get("format") != FORMAT:
            raise StateError("state field 'zo' is missing or not a zo_scipy.torch state")
        if zo.get("version") != VERSION or zo.get("kind") != self._kind:
            raise StateError(f"state field 'zo.kind'/'zo.version' is {zo.get('kind')!r}/{zo.get('version')!r}, "
                             f"this optimizer reads {self._kind!r}/{VERSION}")
        if zo.get("options") != self.options.to_dict() or zo.get("settings") != self._settings():
            raise StateError("state field 'zo.options' differs from this optimizer's options "
                             f"({zo.get('options')} vs {self.options.to_dict()})")
        history = []
        K = self.options.num_queries
        for i, rec in enumerate(zo.get("history", [])):
            seeds, losses = rec.get("seeds"), rec.get("losses")
            if (not isinstance(seeds, list) or not isinstance(losses, list) or len(seeds) != K
                    or len(losses) != K or not all(isinstance(s, int) for s in seeds)
                    or not all(isinstance(v, float) and math.isfinite(v) for v in losses)):
                raise StateError(f"state field 'zo.history[{i}]' must hold {K} integer seeds and {K} finite losses")
            history.append((list(seeds), list(losses)))
        for key in ("seed", "step", "n_nonfinite"):
            if not isinstance(zo.get(key), int) or zo[key] < 0:
                raise StateError(f"state field 'zo.{key}' must be a non-negative integer, got {zo.get(key)!r}")
        # torch casts floating state to the parameter's dtype; Adam's moments stay as saved
        saved = {k: {n: v for n, v in st.items() if isinstance(v, torch.Tensor)}
                 for k, st in state_dict.get("state", {}).items()}
        super().load_state_dict({k: v for k, v in state_dict.items() if k != "zo"})
        for k, (_, _, p) in enumerate(self._tensors()):
            for name, v in saved.get(k, {}).items():
                self.state[p][name] = v.to(device=p.device, copy=True)
        self.seed, self.step_count, self.n_nonfinite = zo["seed"], zo["step"], zo["n_nonfinite"]
        self.history = history


class ForwardZoVH(ForwardZoAR):
    r"""ZoVH's curvature-aware step, :math:`d \approx (\lambda I + \hat H)^{-1} g`, from the
    ``M x M`` Gram matrix of the stored directions (``docs/torch.md``, ``docs/zovh.md``).

    The curvature is estimated in the coordinates scaled by each group's ``mu``
    (:math:`\theta = \theta_0 + D\xi`, :math:`D` = the groups' ``mu``); with one ``mu``
    this is exactly the core's ZoVH step. With :math:`M < 3` it falls back to ZoAR's
    step. Extra memory: the ``M`` directions of one parameter tensor at a time.

    Parameters
    ----------
    params, lr, mu, weight_decay, model, num_queries, num_histories, update, betas, eps, bias_correction, normalization, seed, process_group
        As for :class:`ForwardZoAR`.
    lam : float or "auto"
        Damping :math:`\lambda`. ``"auto"`` (default): the core's rule,
        10 x the median of :math:`|c_i||u_i|^2`, and the step is :math:`\lambda d`, on
        the gradient's scale. A float needs one ``mu`` shared by all groups.
    inverse : {"sherman-morrison", "woodbury"}
        The ZoVH paper's guarded per-direction form (with the leave-one-out correction),
        or the exact :math:`(\lambda I + \hat H)^{-1} g` by an ``M x M`` solve.
    correction : bool
        The leave-one-out correction of the Sherman-Morrison form.

    Raises
    ------
    ValueError
        As :class:`ForwardZoAR`; also a numeric ``lam`` with several ``mu`` values.

    See Also
    --------
    ForwardZoAR : the curvature-free step.
    zo_scipy.zovh : the same step for flat vectors, as a SciPy method.
    zo_scipy.core.inverse_hessian_gradient : the step from the directions themselves.

    Notes
    -----
    With weights :math:`w_i = (y_i - \bar y)/\mu`, the Gram matrix :math:`G = ZZ^T` of the
    :math:`M` stored directions and :math:`c_i = (y_i - \bar y)/(\mu^2 (M-1))`, the step is
    :math:`\sum_j a_j z_j` with coefficients :math:`a` from an ``M x M`` computation on
    :math:`G` (:func:`zo_scipy.core.hessian.inverse_hessian_gradient_weights`): nothing of
    size :math:`d` beyond one tensor's directions.

    References
    ----------
    - Junbin Qiu, Zhaowei Hong, Renzhe Xu et al., "Revisiting Zeroth-Order Hessian Approximation:
      A Single-Step Policy Optimization Lens", 2026 (the ZoVH paper; the authors' code is at
      https://github.com/Qjbtiger/ZoVH).
    - Junbin Qiu, Zhengpeng Xie, Xiangda Yan, Yongjie Yang, Yao Shu, "Zeroth-Order Optimization
      is Secretly Single-Step Policy Optimization", arXiv:2506.14460, 2025 (the ZoAR paper).
    - Sadhika Malladi, Tianyu Gao, Eshaan Nichani, Alex Damian, Jason D. Lee, Danqi Chen, Sanjeev
      Arora, "Fine-Tuning Language Models with Just Forward Passes", NeurIPS 2023, arXiv:2305.17333
      (MeZO).

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from zo_scipy.torch import ForwardZoVH
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> X = torch.randn(64, 3); y = X @ torch.tensor([1.0, -2.0, 0.5])
    >>> model = nn.Linear(3, 1)
    >>> opt = ForwardZoVH(model, lr=0.05, mu=1e-3, num_queries=4, seed=0)
    >>> loss = lambda: nn.functional.mse_loss(model(X).squeeze(1), y)
    >>> first = float(loss().detach())
    >>> for _ in range(300):
    ...     last = opt.step(loss)
    >>> bool(last < 0.1 * first)
    True
    """

    _kind = "ForwardZoVH"
    #: The core's factor of the automatic damping (:class:`zo_scipy.core.zovh.CurvatureZoAR`).
    AUTO_LAM_FACTOR = 10.0

    def __init__(self, params: nn.Module | Iterable[torch.Tensor] | Iterable[dict[str, Any]], lr: float = 1e-2,
                 mu: float = 1e-3, weight_decay: float = 0.0, *, lam: float | str = "auto",
                 inverse: str = "sherman-morrison", correction: bool = True, **kwargs: Any) -> None:
        if lam != "auto":
            lam = check_real("lam", lam) if not isinstance(lam, str) else check_choice("lam", lam, ("auto",))
        self.lam = lam
        self.inverse = check_choice("inverse", inverse, ("sherman-morrison", "woodbury"))
        self.correction = check_bool("correction", correction)
        super().__init__(params, lr, mu, weight_decay, **kwargs)

    def _settings(self) -> dict[str, Any]:
        return {"lam": self.lam, "inverse": self.inverse, "correction": self.correction}

    def gram(self, seeds: Sequence[int]) -> torch.Tensor:
        """:math:`G_{ij} = z_i^T z_j` over all optimized tensors (float64, ``M x M``), one tensor's
        ``M`` directions at a time.

        Parameters
        ----------
        seeds : sequence of int
            Query seeds (of this or earlier steps).

        Returns
        -------
        torch.Tensor
            ``(len(seeds), len(seeds))``, float64.

        Examples
        --------
        >>> from torch import nn
        >>> from zo_scipy.torch import ForwardZoVH
        >>> opt = ForwardZoVH(nn.Linear(50, 20), seed=0)
        >>> G = opt.gram(opt.query_seeds())
        >>> G.shape, bool((G.diagonal() / 1020 - 1).abs().max() < 0.2)   # |z|^2 ~ d = 1020
        (torch.Size([4, 4]), True)
        """
        M = len(seeds)
        G = torch.zeros((M, M), dtype=torch.float64)
        for _, _, p in self._tensors():
            Z = torch.empty((M,) + tuple(p.shape), dtype=_work_dtype(p.dtype), device=p.device)
            for j, s in enumerate(seeds):
                self.direction(s, p, out=Z[j])
            Z = Z.reshape(M, -1)
            G += (Z @ Z.T).double().cpu()
            del Z
        return G

    def _weights(self, seeds: list[int], y: torch.Tensor) -> list[list[float]]:
        M = int(y.numel())
        mus = [float(g["mu"]) for g in self.param_groups]
        if self.lam != "auto" and len(set(mus)) > 1:
            raise ValueError("option 'lam' as a number needs one 'mu' shared by all parameter groups, got "
                             f"{mus}; use lam='auto'")
        if M < 3:
            base = super()._weights(seeds, y)
            return base if self.lam == "auto" else [[a / float(self.lam) for a in ws] for ws in base]
        G = self.gram(seeds)
        w = y - y.mean()  # in the scaled coordinates the radius is 1
        coef = w / (M - 1)
        if self.lam == "auto":
            lam_xi = auto_damping(coef, G.diagonal(), self.AUTO_LAM_FACTOR)
        else:
            lam_xi = float(self.lam) * mus[0] ** 2
        if self.inverse == "woodbury":
            try:
                a = woodbury_weights(G, coef, coef, lam_xi)
            except RuntimeError:  # singular lam I + H (torch.linalg.LinAlgError)
                a = coef / lam_xi
        else:
            a = inverse_hessian_gradient_weights(G, y, 1.0, lam_xi, correction=self.correction)
        # back to each group's coordinates: a gradient-scale step (auto) carries 1/mu,
        # the damped Newton step mu (see the class docstring)
        if self.lam == "auto":
            return [(a * lam_xi / m).tolist() for m in mus]
        return [(a * m).tolist() for m in mus]
