"""Counter-based direction streams: one seed per (run seed, step, query, tensor).

A direction is never stored: it is drawn again from a fresh ``torch.Generator``
seeded with :func:`stream_seed`, so the same (seed, step, query, tensor) gives the
same bits wherever and whenever it is drawn, and the global RNG is never touched.
"""
from __future__ import annotations

import torch

_MASK = (1 << 64) - 1


def _splitmix64(x: int) -> int:
    """One round of SplitMix64 (Steele, Lea and Flood 2014): a bijective 64-bit mixer."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


def stream_seed(*keys: int) -> int:
    """A 63-bit seed from a tuple of non-negative integers (order matters).

    Parameters
    ----------
    *parts : int
        Non-negative integers, e.g. ``(run seed, step, query, tensor index)``.

    Returns
    -------
    int
        A seed in :math:`[0, 2^{63})`, the same on every machine and rank.

    See Also
    --------
    ForwardZoAR.query_seeds : the seeds of a step.

    Notes
    -----
    A hash of the parts, so that each tensor's direction of each query has its own
    reproducible stream: a direction is drawn again from its seed whenever it is needed,
    as MeZO does, instead of being stored.

    References
    ----------
    - Sadhika Malladi, Tianyu Gao, Eshaan Nichani, Alex Damian, Jason D. Lee, Danqi Chen, Sanjeev
      Arora, "Fine-Tuning Language Models with Just Forward Passes", NeurIPS 2023, arXiv:2305.17333
      (MeZO).

    Examples
    --------
    >>> from zo_scipy.torch import stream_seed
    >>> stream_seed(0, 1, 2) == stream_seed(0, 1, 2), stream_seed(0, 1, 2) == stream_seed(0, 2, 1)
    (True, False)
    >>> 0 <= stream_seed(7) < 2**63
    True
    """
    h = 0x243F6A8885A308D3
    for k in keys:
        h = _splitmix64(h ^ (int(k) & _MASK))
    return h >> 1


class Streams:
    """One generator per device, reseeded for every tensor draw."""

    def __init__(self) -> None:
        self._gens: dict[torch.device, torch.Generator] = {}

    def draw(self, seed: int, shape: torch.Size, *, dtype: torch.dtype, device: torch.device,
             out: torch.Tensor | None = None) -> torch.Tensor:
        """A standard normal tensor of ``shape`` from the stream ``seed`` (into ``out`` if given)."""
        gen = self._gens.get(device)
        if gen is None:
            gen = self._gens[device] = torch.Generator(device=device)
        gen.manual_seed(seed)
        if out is not None:
            return torch.randn(shape, generator=gen, dtype=dtype, device=device, out=out)
        return torch.randn(shape, generator=gen, dtype=dtype, device=device)
