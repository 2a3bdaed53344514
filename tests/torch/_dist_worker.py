"""One rank of the 2-process data-parallel test (``test_distributed.py``).

``python _dist_worker.py RANK WORLD PORT OUT``: each rank trains the same linear model on its
own shard (rows RANK::WORLD) of a fixed regression problem with shared seeds and writes its
parameters and losses to OUT. WORLD = 1 runs the single-process reference on all rows.
"""
from __future__ import annotations

import sys

import torch
import torch.distributed as dist
from torch import nn

from zo_scipy.torch import ForwardZoAR

STEPS, LR, MU, K = 200, 0.02, 1e-3, 4


def data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    X = torch.randn(128, 8, generator=g, dtype=torch.float64)
    return X, X @ torch.randn(8, 1, generator=g, dtype=torch.float64) + 0.1


def main(rank: int, world: int, port: int, out: str) -> None:
    torch.set_num_threads(1)
    if world > 1:
        dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    X, Y = data()
    X, Y = X[rank::world], Y[rank::world]
    model = nn.Linear(8, 1).double()
    with torch.no_grad():
        model.weight.zero_()
        model.bias.zero_()
    opt = ForwardZoAR(model, lr=LR, mu=MU, num_queries=K, num_histories=0, seed=None if world > 1 else 7)
    losses = []
    for _ in range(STEPS):
        losses.append(opt.step(lambda: ((model(X) - Y) ** 2).mean()))
    torch.save({"params": [p.detach() for p in model.parameters()], "losses": losses, "seed": opt.seed}, out)
    if world > 1:
        dist.destroy_process_group()


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
