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

    See Also
    --------
    zo_scipy.torch.ForwardZoAR, zo_scipy.torch.ForwardZoVH : the optimizers it steps.

    References
    ----------
    - Junbin Qiu, Zhengpeng Xie, Xiangda Yan, Yongjie Yang, Yao Shu, "Zeroth-Order Optimization
      is Secretly Single-Step Policy Optimization", arXiv:2506.14460, 2025 (the ZoAR paper).
    - Sadhika Malladi, Tianyu Gao, Eshaan Nichani, Alex Damian, Jason D. Lee, Danqi Chen, Sanjeev
      Arora, "Fine-Tuning Language Models with Just Forward Passes", NeurIPS 2023, arXiv:2305.17333
      (MeZO).

    Examples
    --------
    >>> import torch, lightning as L
    >>> from torch import nn
    >>> from zo_scipy.integrations.lightning import ForwardOnlyModule
    >>> from zo_scipy.torch import ForwardZoAR
    >>> class Regression(ForwardOnlyModule):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.net = nn.Linear(2, 1)
    ...     def loss(self, batch):
    ...         X, y = batch
    ...         return nn.functional.mse_loss(self.net(X).squeeze(1), y)
    ...     def configure_optimizers(self):
    ...         return ForwardZoAR(self, lr=0.05, mu=1e-3, num_queries=4, seed=0)
    >>> g = torch.Generator().manual_seed(0)
    >>> X = torch.randn(256, 2, generator=g); y = X @ torch.tensor([1.0, -1.0])
    >>> data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, y), batch_size=64)
    >>> model = Regression()
    >>> trainer = L.Trainer(max_epochs=30, logger=False, enable_checkpointing=False,
    ...                     enable_progress_bar=False, enable_model_summary=False)
    >>> before = float(model.loss((X, y)).detach())
    >>> trainer.fit(model, data)
    >>> bool(float(model.loss((X, y)).detach()) < 0.1 * before)
    True
    """

    def __init__(self) -> None:
        super().__init__()
        self.automatic_optimization = False

    def loss(self, batch: Any) -> torch.Tensor | float:
        """The loss of one batch (a forward pass; no backward)."""
        raise NotImplementedError("subclasses of ForwardOnlyModule define loss(batch)")

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        """One optimizer step on ``batch`` (``K`` forward passes of :meth:`loss`); logs and returns
        ``train_loss``, the mean of the step's query losses."""
        opt = self.optimizers()
        assert not isinstance(opt, list), "ForwardOnlyModule drives one optimizer"
        value = opt.step(closure=lambda: self.loss(batch))
        sched = self.lr_schedulers()
        if sched is not None and not isinstance(sched, list):
            sched.step()
        self.log("train_loss", float(value), prog_bar=True)
        return torch.tensor(float(value))
