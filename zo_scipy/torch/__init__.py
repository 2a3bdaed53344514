"""Forward-only ZoAR and ZoVH optimizers for ``torch.nn.Module`` training (``docs/torch.md``).

``import zo_scipy`` does not import this subpackage; ``from zo_scipy.torch import ForwardZoAR``
does. Inside it, ``torch`` is always the PyTorch package (absolute imports).
"""
from __future__ import annotations

from ._optim import ForwardZoAR, ForwardZoVH
from ._streams import stream_seed

__all__ = ["ForwardZoAR", "ForwardZoVH", "stream_seed"]
