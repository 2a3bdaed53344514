import math
import pickle

import numpy as np
import pytest
import torch

from zo_scipy.core import SGD, Adam, StepControl, ZoAR, make_update_rule, problem_scale


def test_sgd_step():
    g = torch.tensor([1.0, -2.0], dtype=torch.float64)
    assert torch.equal(SGD().step(g, 0.5), torch.tensor([0.5, -1.0], dtype=torch.float64))


def test_adam_first_step_is_lr_sign_with_bias_correction():
    # m1 = (1-b1) g, v1 = (1-b2) g^2; corrected: m/(1-b1) = g, v/(1-b2) = g^2 -> lr * g/|g|.
    g = torch.tensor([3.0, -0.5], dtype=torch.float64)
    step = make_update_rule("adam").step(g, 0.1)
    assert torch.allclose(step, 0.1 * torch.sign(g), rtol=1e-6)


def test_radazo_without_bias_correction_reproduces_the_authors_tenfold_first_step():
    # radazo: v1 = (1-b2) m1^2 with m1 = (1-b1) g -> step = lr / sqrt(1-b2) sign g = 10 lr sign g.
    g = torch.tensor([3.0, -0.5], dtype=torch.float64)
    rule = make_update_rule("radazo", bias_correction=False)
    assert torch.allclose(rule.step(g, 0.1), 10 * 0.1 * torch.sign(g), rtol=1e-5)  # eps=1e-8 in the denominator
    assert isinstance(rule, Adam) and rule.second_moment == "m"


def test_adam_moments_follow_the_recursion_and_reset():
    rule = make_update_rule("adam", betas=(0.5, 0.75), bias_correction=False)
    g1 = torch.tensor([1.0], dtype=torch.float64)
    g2 = torch.tensor([3.0], dtype=torch.float64)
    rule.step(g1, 1.0)
    rule.step(g2, 1.0)
    assert float(rule.m) == pytest.approx(0.5 * 0.5 * 1 + 0.5 * 3)
    assert float(rule.v) == pytest.approx(0.75 * 0.25 * 1 + 0.25 * 9)
    rule.reset()
    assert rule.m is None and rule.t == 0
    with pytest.raises(ValueError, match="update must be one of"):
        make_update_rule("lbfgs")


def test_problem_scale():
    assert problem_scale(torch.zeros(3, dtype=torch.float64), None, None) == 1.0
    assert problem_scale(torch.full((4,), 2.0, dtype=torch.float64), None, None) == 2.0
    lo, hi = torch.zeros(3, dtype=torch.float64), torch.tensor([4.0, 8.0, 8.0], dtype=torch.float64)
    assert problem_scale(torch.ones(3, dtype=torch.float64), lo, hi) == 2.0


def _run(opt: ZoAR, f, iters: int) -> None:
    for _ in range(iters):
        X = opt.ask()
        opt.tell(torch.stack([f(x) for x in X]))


def _sphere(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * (x**2).sum()


def test_ask_tell_protocol_errors():
    opt = ZoAR(torch.ones(3, dtype=torch.float64), seed=0)
    with pytest.raises(RuntimeError, match="without a pending ask"):
        opt.tell([1.0] * 10)
    opt.ask()
    with pytest.raises(RuntimeError, match="ask\\(\\) called twice"):
        opt.ask()
    with pytest.raises(ValueError, match="expected 10 values"):
        opt.tell([1.0] * 3)
    opt.cancel()
    assert opt.ask(4).shape == (4, 3)


def test_constructor_validation():
    with pytest.raises(ValueError, match="x0 must be 1-D"):
        ZoAR(torch.ones(2, 2))
    with pytest.raises(ValueError, match="num_queries"):
        ZoAR(torch.ones(2), num_queries=0)
    with pytest.raises(ValueError, match="two values"):
        ZoAR(torch.ones(2), num_queries=1, num_histories=0)
    with pytest.raises(ValueError, match="option 'mu' must be"):
        ZoAR(torch.ones(2), mu=-1.0)
    with pytest.raises(ValueError, match="schedule"):
        ZoAR(torch.ones(2), schedule="cosine")


def test_same_seed_same_trajectory_and_pickle_resume_is_exact():
    x0 = torch.linspace(-1, 1, 6, dtype=torch.float64)
    a, b = ZoAR(x0, seed=7), ZoAR(x0, seed=7)
    _run(a, _sphere, 12)
    _run(b, _sphere, 5)
    b = pickle.loads(pickle.dumps(b))
    _run(b, _sphere, 7)
    assert torch.equal(a.x, b.x) and a.lr == b.lr and a.best_f == b.best_f
    c = ZoAR(x0, seed=8)
    _run(c, _sphere, 12)
    assert not torch.equal(a.x, c.x)


def test_bounds_every_query_inside_and_directions_are_the_ones_queried():
    lo = torch.zeros(4, dtype=torch.float64)
    hi = torch.full((4,), 0.05, dtype=torch.float64)
    opt = ZoAR(torch.full((4,), 0.04, dtype=torch.float64), lower=lo, upper=hi, mu=0.1, seed=0)
    for _ in range(20):
        X = opt.ask()
        assert bool(((X >= lo) & (X <= hi)).all())
        U = opt._pending[0]  # the directions the estimator will see
        assert torch.allclose(opt.x + opt.mu * U, X)
        opt.tell(torch.stack([_sphere(x) for x in X]))
        assert bool(((opt.x >= lo) & (opt.x <= hi)).all())


def test_nonfinite_values_never_become_best_and_are_penalized():
    opt = ZoAR(torch.ones(3, dtype=torch.float64), seed=0, num_queries=4)
    X = opt.ask()
    vals = torch.tensor([1.0, math.nan, math.inf, 0.5], dtype=torch.float64)
    opt.tell(vals)
    assert opt.best_f == 0.5 and torch.equal(opt.best_x, X[3])
    assert opt.n_nonfinite == 2
    # the penalty is the largest finite value known: 1.0
    assert sorted(opt.history.values().tolist()) == [0.5, 1.0, 1.0, 1.0]


def test_all_nonfinite_batch_is_divergence_and_restores_the_anchor():
    x0 = torch.ones(3, dtype=torch.float64)
    opt = ZoAR(x0, seed=0, num_queries=4)
    lr0 = opt.lr
    opt.ask()
    opt.tell([math.nan] * 4)
    assert opt.lr == lr0 / 2 and torch.equal(opt.x, x0) and len(opt.history) == 0
    assert opt.best_x is None


def test_step_control_restores_a_diverging_run_and_stays_below_start():
    # lr = 50 on 0.5|x|^2 from |x| ~ 1 makes every Adam step overshoot by ~50 per coordinate:
    # without control f grows to ~1e3-1e4; with control the anchor/decay keep the best at the start.
    x0 = torch.ones(5, dtype=torch.float64)
    opt = ZoAR(x0, seed=0, lr=50.0, mu=0.1)
    _run(opt, _sphere, 200)
    assert opt.control.n_restores >= 1 and opt.lr < 50.0
    assert float(_sphere(opt.x)) <= 5 * float(_sphere(x0))
    const = ZoAR(x0, seed=0, lr=50.0, mu=0.1, schedule="constant")
    _run(const, _sphere, 50)
    assert float(_sphere(const.x)) > 100 * float(_sphere(x0))


def test_control_converges_on_a_quadratic():
    opt = ZoAR(torch.linspace(-2, 2, 10, dtype=torch.float64), seed=1)
    for _ in range(3000):
        if opt.converged:
            break
        _run(opt, _sphere, 1)
    assert opt.converged
    assert opt.best_f < 1e-10


def test_step_control_unit():
    c = StepControl(lr=1.0, window=2)
    x = torch.zeros(1)
    assert c.observe(10.0, x) == "" and c.observe(10.0, x) == ""  # first window sets the reference
    assert c.observe(9.0, x) == "" and c.observe(9.0, x) == ""  # improved
    assert c.observe(9.2, x) == "" and c.observe(9.4, x) == "decay"  # worse, but within 4 spreads
    assert c.lr == 0.5
    assert c.observe(1e6, x) == "" and c.observe(1e6 + 1, x) == "restore"  # far worse than its spread
    assert c.lr == 0.25 and c.n_restores == 1
    assert c.observe(math.nan, x) == "restore"


def test_noise_free_runs_never_freeze_mu():
    # Without noise the batch spread falls at least in proportion to mu (the linear term
    # mu g.u; the quadratic term falls like mu^2), so the 1/sqrt(2) test never fires.
    opt = ZoAR(torch.linspace(-2, 2, 10, dtype=torch.float64), seed=1)
    _run(opt, _sphere, 1500)
    assert opt.control.n_decays > 5 and opt.mu_floor == 0.0 and opt.control.patience == 1


def test_noise_freezes_mu_and_raises_patience():
    # f = 0.5|x|^2 + N(0, 1): near the optimum the batch spread is ~1 whatever mu is, so the
    # first halving of mu leaves it unchanged (ratio ~1 > 1/sqrt 2) and mu is frozen there.
    gen = torch.Generator().manual_seed(0)

    def noisy(x):
        return _sphere(x) + torch.randn((), generator=gen, dtype=torch.float64)

    opt = ZoAR(torch.full((10,), 0.1, dtype=torch.float64), seed=1)
    _run(opt, noisy, 1500)
    assert opt.mu_floor > 0.0 and opt.mu >= opt.mu_floor and opt.control.patience == 3


def test_mu_freezes_only_after_two_flat_halvings_in_a_row():
    # The spread rule is fed level by level (mu, mean batch spread). A halving whose spread
    # ratio exceeds 1/sqrt(2) is "flat"; one flat halving can be a noise-free run whose
    # gradient grew, so only two in a row freeze mu, at the first flat level's mu.
    opt = ZoAR(torch.zeros(3, dtype=torch.float64), seed=0)
    levels = [(1.0, 1.0), (0.5, 0.9), (0.25, 0.3), (0.125, 0.3), (0.0625, 0.29)]
    frozen = []
    for mu, spread in levels:
        opt.noise.record(spread)
        frozen.append(opt.noise.close_level(mu))
    # 0.5: flat once (no freeze); 0.25: shrank by 3 (resets); 0.125: flat once; 0.0625: flat again
    assert frozen == [None, None, None, None, 0.125]


def test_patience_needs_consecutive_stalls():
    c = StepControl(lr=1.0, window=1, patience=2, growth=1.0)
    x = torch.zeros(1)
    c.observe(10.0, x)
    assert c.observe(10.0, x) == "" and c.lr == 1.0  # first stall: waits
    assert c.observe(9.0, x) == ""  # an improvement resets the count
    assert c.observe(9.0, x) == "" and c.observe(9.0, x) == "decay" and c.lr == 0.5
