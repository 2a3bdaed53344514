"""zo_scipy.torch: exact restore, RNG hygiene, resume, schedulers and hooks, ZoVH's step,
closures (accumulation, accuracy, autocast) and argument errors."""
from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from zo_scipy.core.estimators import centered_weights
from zo_scipy.core.hessian import inverse_hessian_gradient
from zo_scipy.core.lowrank import LowRankHessian, woodbury_solve
from zo_scipy.core.state import StateError
from zo_scipy.torch import ForwardZoAR, ForwardZoVH


def _mlp(dtype: torch.dtype = torch.float32, seed: int = 0) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    model = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 1))
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)
    return model.to(dtype)


def _data(dtype: torch.dtype = torch.float32, n: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    X = torch.randn(n, 6, generator=g)
    return X.to(dtype), torch.sin(X.sum(1, keepdim=True)).to(dtype)


def _closure(model: nn.Module, X: torch.Tensor, Y: torch.Tensor):
    return lambda: ((model(X) - Y) ** 2).mean()


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_parameters_change_by_exactly_the_update(dtype: torch.dtype) -> None:
    model, (X, Y) = _mlp(dtype), _data(dtype)
    opt = ForwardZoAR(model, lr=1e-2, mu=1e-2, num_queries=3, num_histories=0, seed=5)
    for _ in range(5):
        before = [p.detach().clone() for p in model.parameters()]
        opt.step(_closure(model, X, Y))
        seeds, losses = opt.history[-1]
        a = centered_weights(torch.tensor(losses, dtype=torch.float64), 1e-2).tolist()
        for p, b in zip(model.parameters(), before):
            acc = torch.zeros(p.shape, dtype=torch.float32)
            for s, aj in zip(seeds, a):
                acc.add_(opt.direction(s, p), alpha=aj)
            expected = b - acc.mul_(1e-2).to(dtype)
            assert p.dtype == dtype and torch.equal(p, expected)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_no_drift_with_zero_step(dtype: torch.dtype) -> None:
    # MeZO's +mu, -2mu, +mu in place drifts in half precision; transient perturbations cannot
    model, (X, Y) = _mlp(dtype), _data(dtype)
    before = copy.deepcopy(model.state_dict())
    opt = ForwardZoAR(model, lr=1e-30, mu=1e-2, num_queries=2, num_histories=0, seed=0)
    opt.param_groups[0]["lr"] = 0.0
    for _ in range(20):
        opt.step(_closure(model, X, Y))
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_global_rng_untouched_and_same_shapes_get_different_noise() -> None:
    model = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4))
    X, _ = _data()
    opt = ForwardZoAR(model, num_queries=2, seed=3)
    import numpy as np

    torch.manual_seed(123)
    state, np_state = torch.random.get_rng_state(), np.random.get_state()
    opt.step(lambda: model(X[:, :4]).pow(2).mean())
    assert torch.equal(torch.random.get_rng_state(), state)
    assert all(np.array_equal(a, b) for a, b in zip(np.random.get_state(), np_state))
    s = opt.history[-1][0]
    w0, w1 = model[0].weight, model[1].weight
    assert not torch.equal(opt.direction(s[0], w0), opt.direction(s[0], w1))
    assert not torch.equal(opt.direction(s[0], w0), opt.direction(s[1], w0))
    assert torch.equal(opt.direction(s[0], w0), opt.direction(s[0], w0))  # regenerated, same bits


def test_seed_none_draws_without_the_global_rng() -> None:
    torch.manual_seed(0)
    m1, m2 = nn.Linear(2, 1), nn.Linear(2, 1)  # module init draws from the global RNG; the optimizer must not
    state = torch.random.get_rng_state()
    a, b = ForwardZoAR(m1), ForwardZoAR(m2)
    assert a.seed != b.seed and torch.equal(torch.random.get_rng_state(), state)


@pytest.mark.parametrize("cls,kw", [(ForwardZoAR, {"update": "sgd", "num_histories": 2}),
                                    (ForwardZoAR, {"update": "adam", "weight_decay": 0.1}),
                                    (ForwardZoVH, {"num_queries": 3, "num_histories": 1})])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_resume_is_bit_identical(cls, kw, dtype) -> None:
    X, Y = _data(dtype)
    ref = _mlp(dtype)
    opt = cls(ref, lr=1e-2, seed=11, **kw)
    for _ in range(4):
        opt.step(_closure(ref, X, Y))
    saved_model, saved_opt = copy.deepcopy(ref.state_dict()), copy.deepcopy(opt.state_dict())
    for _ in range(4):
        opt.step(_closure(ref, X, Y))
    other = _mlp(dtype, seed=9)
    other.load_state_dict(saved_model)
    opt2 = cls(other, lr=1e-2, seed=0, **kw)
    opt2.load_state_dict(saved_opt)
    assert opt2.step_count == 4 and opt2.seed == 11
    for _ in range(4):
        opt2.step(_closure(other, X, Y))
    for (k, v), v2 in zip(ref.state_dict().items(), other.state_dict().values()):
        assert torch.equal(v, v2), k


def test_load_state_dict_rejects_other_options_and_bad_fields() -> None:
    model = _mlp()
    sd = ForwardZoAR(model, num_queries=3, seed=0).state_dict()
    with pytest.raises(StateError, match="options"):
        ForwardZoAR(_mlp(), num_queries=4).load_state_dict(sd)
    bad = copy.deepcopy(sd)
    bad["zo"]["history"] = [{"seeds": [1, 2], "losses": [0.0, 1.0, 2.0]}]
    with pytest.raises(StateError, match=r"zo\.history\[0\]"):
        ForwardZoAR(_mlp(), num_queries=3).load_state_dict(bad)
    with pytest.raises(StateError, match="zo"):
        ForwardZoAR(_mlp(), num_queries=3).load_state_dict({"state": {}, "param_groups": sd["param_groups"]})


def test_scheduler_hooks_param_groups_and_zero_grad() -> None:
    model, (X, Y) = _mlp(), _data()
    opt = ForwardZoAR([{"params": model[0].parameters(), "lr": 0.05, "mu": 1e-2},
                       {"params": model[2].parameters()}], lr=0.01, model=model, seed=0)
    opt.add_param_group({"params": model[4].parameters(), "weight_decay": 0.5})
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    calls: list[str] = []
    opt.register_step_pre_hook(lambda o, a, k: calls.append("pre"))
    opt.register_step_post_hook(lambda o, a, k: calls.append("post"))
    for _ in range(4):
        opt.zero_grad()
        opt.step(_closure(model, X, Y))
        sched.step()
    assert calls == ["pre", "post"] * 4
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.0125, 0.0025, 0.0025])
    assert opt.param_groups[2]["weight_decay"] == 0.5 and opt.param_groups[0]["mu"] == 1e-2
    assert all(p.grad is None for p in model.parameters())


def test_backward_flag_accumulation_accuracy_and_autocast() -> None:
    model, (X, Y) = _mlp(), _data()
    flags: list[bool] = []

    def closure(backward: bool = True) -> torch.Tensor:  # a first-order closure, made safe by the flag
        flags.append(backward)
        loss = ((model(X) - Y) ** 2).mean()
        if backward:
            loss.backward()
        return loss

    opt = ForwardZoAR(model, num_queries=2, seed=0)
    opt.step(closure)
    assert flags == [False, False]
    # micro-batches inside one closure see one perturbation: the loss of the halves averages
    # to the full-batch loss of the same perturbed model
    full, halves = ForwardZoAR(_mlp(), num_queries=2, seed=4), ForwardZoAR(_mlp(), num_queries=2, seed=4)
    m1, m2 = full.model, halves.model
    full.step(lambda: ((m1(X) - Y) ** 2).mean())
    halves.step(lambda: sum(((m2(x) - y) ** 2).mean() for x, y in zip(X.chunk(2), Y.chunk(2))) / 2)
    torch.testing.assert_close(torch.tensor(full.history[0][1]), torch.tensor(halves.history[0][1]),
                               rtol=1e-6, atol=0)
    # a non-differentiable objective and autocast in the closure
    clf = nn.Linear(6, 2)
    labels = (X[:, 0] > 0).long()
    opt = ForwardZoAR(clf, lr=0.05, mu=0.05, num_queries=8, num_histories=0, seed=0)
    for _ in range(30):
        def acc_loss() -> float:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return 1.0 - (clf(X).argmax(1) == labels).float().mean().item()
        err = opt.step(acc_loss)
    assert err < 0.5


def _quadratic(d: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    Q, _ = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=torch.float64))
    A = Q @ torch.diag(torch.linspace(1.0, 4.0, d, dtype=torch.float64)) @ Q.T
    return A, torch.randn(d, generator=g, dtype=torch.float64)


class _Vec(nn.Module):
    def __init__(self, x0: torch.Tensor) -> None:
        super().__init__()
        self.x = nn.Parameter(x0.clone())

    def forward(self, A: torch.Tensor) -> torch.Tensor:
        return 0.5 * self.x @ A @ self.x


@pytest.mark.parametrize("inverse", ["sherman-morrison", "woodbury"])
@pytest.mark.parametrize("lam", ["auto", 0.5])
def test_zovh_step_equals_the_core_formula_on_a_quadratic(inverse: str, lam) -> None:
    A, x0 = _quadratic(5)
    model = _Vec(x0)
    mu, lr = 1e-2, 0.1
    opt = ForwardZoVH(model, lr=lr, mu=mu, num_queries=6, num_histories=0, lam=lam, inverse=inverse, seed=2)
    opt.step(lambda: model(A))
    seeds, y = opt.history[0]
    U = torch.stack([opt.direction(s, model.x) for s in seeds])
    y_t = torch.tensor(y, dtype=torch.float64)
    # the core, with explicit directions (docs/zovh.md); the values are exactly 0.5 x'Ax there
    torch.testing.assert_close(y_t, torch.stack([0.5 * (x0 + mu * u) @ A @ (x0 + mu * u) for u in U]))
    w = (y_t - y_t.mean()) / mu
    H = LowRankHessian(U, w / (mu * 5))
    g = w @ U / 5
    lam_x = 10 * float((H.coef.abs() * U.pow(2).sum(1)).median()) if lam == "auto" else lam
    if inverse == "woodbury":
        d = woodbury_solve(H, g, lam_x)
    else:
        d = inverse_hessian_gradient(U, y_t, mu, lam_x)
    d = d * lam_x if lam == "auto" else d
    torch.testing.assert_close(x0 - model.x.detach(), lr * d, rtol=1e-9, atol=1e-12)


def test_zovh_woodbury_points_at_the_damped_newton_step() -> None:
    # many queries in d = 3: the estimated (lam I + H)^-1 g approaches the exact one. On a
    # quadratic the values are exact at any mu, and h_i = (y_i - ybar)/mu^2 carries the odd
    # term g'u_i/mu, whose noise in H shrinks with mu: mu = 1 and M = 1500 leave H a relative
    # error of about (|A| + |g|) d / sqrt(M) / |A| ~ 0.2.
    A, x0 = _quadratic(3)
    model = _Vec(x0)
    opt = ForwardZoVH(model, lr=1.0, mu=1.0, num_queries=1500, num_histories=0, lam=1.0, inverse="woodbury", seed=0)
    opt.step(lambda: model(A))
    step = x0 - model.x.detach()
    newton = torch.linalg.solve(torch.eye(3, dtype=torch.float64) + A, A @ x0)
    assert torch.nn.functional.cosine_similarity(step, newton, dim=0) > 0.95
    assert 0.75 < float(step.norm() / newton.norm()) < 1.33


def test_zovh_falls_back_below_three_queries_and_guards_lam() -> None:
    A, x0 = _quadratic(4)
    m1, m2 = _Vec(x0), _Vec(x0)
    ForwardZoVH(m1, lr=0.1, num_queries=2, num_histories=0, seed=1).step(lambda: m1(A))
    ForwardZoAR(m2, lr=0.1, num_queries=2, num_histories=0, seed=1).step(lambda: m2(A))
    assert torch.equal(m1.x, m2.x)
    model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 1))
    opt = ForwardZoVH([{"params": model[0].parameters(), "mu": 0.1}, {"params": model[1].parameters()}],
                      model=model, lam=1.0, num_queries=3, num_histories=0, seed=0)
    with pytest.raises(ValueError, match="'lam'"):
        opt.step(lambda: model(torch.ones(1, 2)).sum())


@pytest.mark.parametrize("kwargs,name", [({"lr": -1.0}, "'lr'"), ({"mu": 0.0}, "'mu'"),
                                         ({"weight_decay": -0.1}, "'weight_decay'"),
                                         ({"num_queries": 0}, "'num_queries'"), ({"update": "lbfgs"}, "'update'"),
                                         ({"num_queries": 1, "num_histories": 0}, "num_queries"),
                                         ({"seed": -3}, "'seed'"), ({"betas": (1.0, 0.5)}, "'betas'")])
def test_bad_arguments_name_the_argument(kwargs, name) -> None:
    with pytest.raises(ValueError, match=name):
        ForwardZoAR(nn.Linear(2, 1), **kwargs)


def test_bad_inputs_elsewhere_name_the_argument() -> None:
    lin = nn.Linear(2, 1)
    with pytest.raises(ValueError, match="'model'"):
        ForwardZoAR(lin.parameters())
    with pytest.raises(ValueError, match="'lam'"):
        ForwardZoVH(lin, lam=-1.0)
    with pytest.raises(ValueError, match="'inverse'"):
        ForwardZoVH(lin, inverse="cholesky")
    opt = ForwardZoAR(lin)
    with pytest.raises(ValueError, match="'closure'"):
        opt.step()
    with pytest.raises(ValueError, match="scalar"):
        opt.step(lambda: torch.ones(3))
    with pytest.raises(ValueError, match="'lr'"):
        opt.add_param_group({"params": [nn.Parameter(torch.ones(1))], "lr": "fast"})


def test_unused_parameter_warns_and_nonfinite_loss_skips() -> None:
    class Odd(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = nn.Linear(2, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x @ self.inner.weight.T  # the weight used outside its own module's forward

    model = Odd()
    opt = ForwardZoAR(model, seed=0)
    with pytest.warns(UserWarning, match="not perturbed"):
        opt.step(lambda: model(torch.ones(1, 2)).sum())
    before = [p.clone() for p in model.parameters()]
    assert opt.step(lambda: float("nan")) != opt.step(lambda: float("nan"))  # nan
    assert opt.n_nonfinite == 2 and all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_tied_weights_share_one_direction() -> None:
    emb = nn.Embedding(5, 3)
    head = nn.Linear(3, 5, bias=False)
    head.weight = emb.weight
    model = nn.Sequential(emb, head)
    opt = ForwardZoAR(model, num_queries=2, seed=0)
    idx = torch.arange(5)
    opt.step(lambda: model(idx).logsumexp(1).mean())
    assert len(opt.param_groups[0]["params"]) == 1  # one tensor, perturbed in both modules alike


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_cuda_exact_restore_and_memory(dtype: torch.dtype) -> None:
    model = nn.Sequential(nn.Linear(1024, 1024), nn.ReLU(), nn.Linear(1024, 1)).cuda().to(dtype)
    X = torch.randn(32, 1024, device="cuda", dtype=dtype)
    opt = ForwardZoAR(model, lr=0.0 + 1e-30, num_queries=4, seed=0)
    opt.param_groups[0]["lr"] = 0.0
    before = [p.clone() for p in model.parameters()]
    torch.cuda.synchronize()
    with torch.no_grad():
        model(X).pow(2).mean()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    with torch.no_grad():
        model(X).pow(2).mean()
    infer = torch.cuda.max_memory_allocated() - base
    torch.cuda.reset_peak_memory_stats()
    for _ in range(3):
        opt.step(lambda: model(X).pow(2).mean())
    extra = torch.cuda.max_memory_allocated() - base - infer
    largest = 1024 * 1024 * 4  # float32 work tensors of the largest parameter
    assert extra <= 3 * largest, (extra, largest)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_copied_or_pickled_model_carries_inert_hooks() -> None:
    import pickle

    X, Y = _data()
    for make in (copy.deepcopy, lambda m: pickle.loads(pickle.dumps(m))):
        model = _mlp()
        opt = ForwardZoAR(model, seed=0)
        twin = make(model)
        assert torch.equal(twin(X), model(X))  # the copy's hooks do nothing: no optimizer was copied
        opt2 = ForwardZoAR(twin, seed=0)
        opt.step(_closure(model, X, Y))
        opt2.step(_closure(twin, X, Y))
        assert all(torch.equal(a, b) for a, b in zip(model.parameters(), twin.parameters()))
