"""PyTorch: training from forward passes only
==========================================

Train a PyTorch model from loss values only with ``zo_scipy.torch.ForwardZoAR``.

A small MLP classifies points of two interleaved spirals. The closure runs the forward pass
and returns the loss; no backward pass, no gradient memory. Then: the same model trained on
accuracy itself (non-differentiable), and a checkpoint that resumes bit for bit.

Data parallel: the same script under ``torchrun --nproc_per_node=2`` with
``torch.distributed.init_process_group("gloo")`` and each rank's shard in the closure trains
identically on every rank (the K losses are averaged; see docs/torch.md).

Run: ``python examples/torch_forward_only.py`` (``ZO_SCIPY_EXAMPLE_QUICK=1`` for a short run).
"""
import copy
import math
import os

import torch
from torch import nn

from zo_scipy.torch import ForwardZoAR

quick = os.environ.get("ZO_SCIPY_EXAMPLE_QUICK") == "1"
steps = 150 if quick else 3000
torch.set_num_threads(1)

g = torch.Generator().manual_seed(0)
t = torch.rand(600, generator=g) * 3 * math.pi
label = torch.arange(600) % 2
sign = 1 - 2 * label.float()
X = torch.stack([sign * t * torch.cos(t), sign * t * torch.sin(t)], 1) / 10
X = X + 0.05 * torch.randn(X.shape, generator=g)

torch.manual_seed(0)
model = nn.Sequential(nn.Linear(2, 32), nn.Tanh(), nn.Linear(32, 32), nn.Tanh(), nn.Linear(32, 2))
opt = ForwardZoAR(model, lr=0.05, mu=1e-3, num_queries=4, seed=0)


def cross_entropy() -> torch.Tensor:  # forward only: the optimizer calls it K times per step
    return nn.functional.cross_entropy(model(X), label)


def accuracy() -> float:
    with torch.no_grad():
        return float((model(X).argmax(1) == label).float().mean())


with torch.no_grad():
    print(f"start: loss {float(cross_entropy()):.4f}, accuracy {accuracy():.3f}")
losses = []
for step in range(steps):
    loss = opt.step(cross_entropy)
    losses.append(float(loss))
    if step == steps // 2:  # checkpoint half way
        saved = copy.deepcopy((model.state_dict(), opt.state_dict()))
print(f"after {steps} steps ({steps * opt.options.num_queries} forward passes): loss {loss:.4f}, "
      f"accuracy {accuracy():.3f}")

# %%
# The training loss (the mean of the step's K perturbed losses) against forward passes.
import matplotlib.pyplot as plt

fig, ax = plt.subplots(figsize=(5, 3.2))
ax.plot([opt.options.num_queries * (k + 1) for k in range(steps)], losses)
ax.set(xlabel="forward passes", ylabel="cross-entropy", title="ForwardZoAR on two spirals")
fig.tight_layout()

# %%
# Resume from the checkpoint in a fresh model and optimizer: the same bits at the end
model_state, opt_state = saved
fresh = copy.deepcopy(model)
fresh.load_state_dict(model_state)
opt2 = ForwardZoAR(fresh, lr=0.05, mu=1e-3, num_queries=4)
opt2.load_state_dict(opt_state)
for _ in range(steps - steps // 2 - 1):
    opt2.step(lambda: nn.functional.cross_entropy(fresh(X), label))
same = all(torch.equal(a, b) for a, b in zip(model.parameters(), fresh.parameters()))
print(f"resumed run equals the uninterrupted one bit for bit: {same}")
assert same

# a non-differentiable objective: the error rate itself, with a larger radius
opt3 = ForwardZoAR(model, lr=0.02, mu=0.02, num_queries=8, seed=1)
for _ in range(steps // 3):
    opt3.step(lambda: 1.0 - float((model(X).argmax(1) == label).float().mean()))
print(f"then {steps // 3} steps on the error rate itself: accuracy {accuracy():.3f}")
