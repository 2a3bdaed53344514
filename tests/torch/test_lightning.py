"""Lightning manual optimization with ForwardZoAR: a tiny model built in code, no downloads."""
from __future__ import annotations

import pytest
import torch

L = pytest.importorskip("lightning")

from zo_scipy.integrations.lightning import ForwardOnlyModule  # noqa: E402
from zo_scipy.torch import ForwardZoAR  # noqa: E402


class _Net(ForwardOnlyModule):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.body = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))

    def loss(self, batch):
        x, y = batch
        return torch.nn.functional.mse_loss(self.body(x), y)

    def configure_optimizers(self):
        opt = ForwardZoAR(self, lr=0.05, num_queries=4, seed=0)
        return {"optimizer": opt, "lr_scheduler": torch.optim.lr_scheduler.StepLR(opt, 50, 0.5)}


def test_lightning_manual_optimization_trains_from_losses(tmp_path) -> None:
    g = torch.Generator().manual_seed(1)
    X = torch.randn(256, 4, generator=g)
    Y = X[:, :1] - 0.5 * X[:, 1:2]
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, Y), batch_size=256)
    net = _Net()
    before = net.loss((X, Y)).item()
    trainer = L.Trainer(max_steps=150, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path)
    trainer.fit(net, loader)
    opt = trainer.optimizers[0]
    assert isinstance(opt, ForwardZoAR) and opt.step_count == 150 and trainer.global_step == 150
    assert opt.param_groups[0]["lr"] == pytest.approx(0.05 * 0.5**3)
    assert all(p.grad is None for p in net.parameters())
    assert net.loss((X, Y)).item() < 0.5 * before
