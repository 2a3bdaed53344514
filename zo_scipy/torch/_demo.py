"""The torch section of ``make demo``: a small MLP trained from loss values only.

A student MLP (8-32-1, tanh, 321 parameters) learns a fixed random teacher of the same shape
on 512 inputs, with :class:`~zo_scipy.torch.ForwardZoAR` at its defaults and with the
MeZO-style two-point SPSA of :mod:`zo_scipy.torch._reference` at the same ``lr`` and ``mu``,
at an equal number of forward passes; the loss curves go to ``torch-demo.png``.
"""
from __future__ import annotations

import os
import time

import torch
from torch import nn

from ._optim import ForwardZoAR
from ._reference import spsa_step


def _net(seed: int) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    net = nn.Sequential(nn.Linear(8, 32), nn.Tanh(), nn.Linear(32, 1))
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g) / p.shape[-1] ** 0.5)
    return net


def torch_section(seed: int, out: str, forwards: int) -> str:
    """Run both optimizers for ``forwards`` forward passes; returns a Markdown paragraph."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: a thread pool only adds contention
    try:
        return _section(seed, out, forwards)
    finally:
        torch.set_num_threads(threads)


def _section(seed: int, out: str, forwards: int) -> str:
    g = torch.Generator().manual_seed(seed + 1)
    X = torch.randn(512, 8, generator=g)
    with torch.no_grad():
        Y = _net(seed + 2)(X)
    curves: dict[str, list[tuple[int, float]]] = {}
    seconds: dict[str, float] = {}
    for name in ("ForwardZoAR (defaults)", "MeZO-style SPSA (same lr, mu)"):
        model = _net(seed)

        def loss() -> torch.Tensor:
            return (model(X) - Y).pow(2).mean()

        curve, n, t0 = [], 0, time.perf_counter()
        if name.startswith("ForwardZoAR"):
            opt = ForwardZoAR(model, seed=seed)
            lr, mu = opt.defaults["lr"], opt.defaults["mu"]
            while n < forwards:
                curve.append((n, opt.step(loss)))
                n += opt.options.num_queries
        else:
            step = 0
            while n < forwards:
                curve.append((n, spsa_step(list(model.parameters()), loss, lr, mu, seed * 7919 + step)))
                n, step = n + 2, step + 1
        seconds[name] = time.perf_counter() - t0
        with torch.no_grad():
            curve.append((n, float(loss())))
        curves[name] = curve
    png = os.path.join(out, "torch-demo.png")
    _plot(curves, png)
    first = curves[next(iter(curves))][0][1]
    rows = "\n".join(f"| {k} | {v[-1][1]:.4g} | {v[-1][0]} | {seconds[k]:.1f} |" for k, v in curves.items())
    return ("### PyTorch: an MLP trained from losses only (zo_scipy.torch)\n\n"
            f"Teacher-student MLP 8-32-1 (321 parameters), 512 inputs, mean squared error "
            f"{first:.4g} at the start; every optimizer gets {forwards} forward passes and no "
            f"gradient (curves: {png}).\n\n| optimizer | final loss | forward passes | seconds |\n"
            f"|---|---|---|---|\n{rows}")


def _plot(curves: dict[str, list[tuple[int, float]]], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for (name, curve), color in zip(curves.items(), ("C3", "C0")):
        ax.plot([n for n, _ in curve], [v for _, v in curve], color=color, lw=2 if color == "C3" else 1.4,
                label=f"{name}: {curve[-1][1]:.3g}")
    ax.set_yscale("log")
    ax.set_xlabel("forward passes")
    ax.set_ylabel("training loss (log scale)")
    ax.set_title("Forward-only training, equal forward passes", fontsize=11)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
