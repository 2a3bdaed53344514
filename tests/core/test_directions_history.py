import math

import pytest
import torch

from zo_scipy.core import QueryHistory, make_generator, sample_directions


@pytest.mark.parametrize("kind", ["gaussian", "sphere", "orthogonal"])
def test_second_moment_is_identity(kind):
    # E[u u^T] = I for all three kinds; with n samples each entry of the sample second
    # moment has sd <= sqrt(3/n) (4th moment of a Gaussian is 3), so 6 sd is a safe bound.
    n, d = 20000, 4
    U = sample_directions(n, d, generator=make_generator(0), kind=kind)
    S = U.T @ U / n
    assert torch.allclose(S, torch.eye(d, dtype=S.dtype), atol=6 * math.sqrt(3 / n))


def test_sphere_and_orthogonal_norms():
    d = 7
    U = sample_directions(5, d, generator=make_generator(1), kind="sphere")
    assert torch.allclose(U.norm(dim=1), torch.full((5,), d**0.5, dtype=U.dtype))
    V = sample_directions(5, d, generator=make_generator(1), kind="orthogonal")
    G = V @ V.T
    assert torch.allclose(G, d * torch.eye(5, dtype=G.dtype), atol=1e-10)


def test_orthogonal_more_directions_than_dimensions_terminates():
    # The authors' QR loop never ends when M > d; ours draws independent orthogonal blocks.
    d, m = 3, 8
    V = sample_directions(m, d, generator=make_generator(2), kind="orthogonal")
    assert V.shape == (m, d)
    for start in range(0, m, d):
        blk = V[start : start + d]
        assert torch.allclose(blk @ blk.T, d * torch.eye(blk.shape[0], dtype=V.dtype), atol=1e-10)


def test_same_seed_same_directions_and_bad_kind():
    a = sample_directions(3, 4, generator=make_generator(9))
    b = sample_directions(3, 4, generator=make_generator(9))
    c = sample_directions(3, 4, generator=make_generator(10))
    assert torch.equal(a, b) and not torch.equal(a, c)
    with pytest.raises(ValueError, match="directions must be one of"):
        sample_directions(2, 2, generator=make_generator(0), kind="cube")  # type: ignore[arg-type]


def test_history_is_fifo_and_keeps_newest():
    h = QueryHistory(capacity=4, d=2, dtype=torch.float64, device="cpu")
    for t in range(5):  # batches of 2 -> after 5 batches only batches 3 and 4 remain
        U = torch.full((2, 2), float(t), dtype=torch.float64)
        h.append(U, torch.tensor([10.0 * t, 10.0 * t + 1], dtype=torch.float64))
    assert len(h) == 4
    assert sorted(h.values().tolist()) == [30.0, 31.0, 40.0, 41.0]
    assert sorted(h.directions()[:, 0].tolist()) == [3.0, 3.0, 4.0, 4.0]
    # an odd batch size wraps around the end of the ring
    h.append(torch.full((3, 2), 5.0, dtype=torch.float64), torch.tensor([50.0, 51.0, 52.0], dtype=torch.float64))
    assert sorted(h.values().tolist()) == [41.0, 50.0, 51.0, 52.0]
    h.clear()
    assert len(h) == 0
