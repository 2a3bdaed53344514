"""Lightning (``lightning``, PyPI) with the forward-only optimizers of :mod:`zo_scipy.torch`.

Lightning's *manual optimization* hands the training step its optimizer; a forward-only
step is then one call, ``self.optimizers().step(closure)``, with a closure that runs the
forward pass and returns the loss (``docs/torch.md``)::

    class Net(ForwardOnlyModule):
        def __init__(self):
            super().__init__()
            self.body = torch.nn.Linear(8, 1)

        def loss(self, batch):
            x, y = batch
            return torch.nn.functional.mse_loss(self.body(x), y)

        def configure_optimizers(self):
            return ForwardZoAR(self, lr=1e-2)

    lightning.Trainer(max_steps=100).fit(Net(), loader)

Imports ``lightning`` when this module is imported, never from ``import zo_scipy``.
"""
from __future__ import annotations

from typing import Any

import lightning as L
import torch

__all__ = ["ForwardOnlyModule"]


class ForwardOnlyModule(L.LightningModule):
    """A ``LightningModule`` trained from loss values only (manual optimization).

    Subclasses define :meth:`loss` (the forward pass on one batch, returning a scalar; it may
    be non-differentiable) and ``configure_optimizers`` returning a
    :class:`~zo_scipy.torch.ForwardZoAR` / :class:`~zo_scipy.torch.ForwardZoVH` built on
    ``self`` (optionally with a learning-rate scheduler, stepped once per training step).
    ``training_step`` then runs one optimizer step per batch and logs ``train_loss``, the
    mean of the step's query losses.
    """

    def __init__(self) -> None:
        super().__init__()
        self.automatic_optimization = False

    def loss(self, batch: Any) -> torch.Tensor | float:
        """The loss of one batch (a forward pass; no backward)."""
        raise NotImplementedError("subclasses of ForwardOnlyModule define loss(batch)")

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        opt = self.optimizers()
        assert not isinstance(opt, list), "ForwardOnlyModule drives one optimizer"
        value = opt.step(closure=lambda: self.loss(batch))
        sched = self.lr_schedulers()
        if sched is not None and not isinstance(sched, list):
            sched.step()
        self.log("train_loss", float(value), prog_bar=True)
        return torch.tensor(float(value))
