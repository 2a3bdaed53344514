"""Seeded sampling of perturbation directions.

Every estimator in zo_scipy draws its directions here, from one local
:class:`torch.Generator` (never the global seed), so a run is reproducible from
its ``seed`` alone.
"""
from __future__ import annotations

from typing import Literal

import torch

DirectionKind = Literal["gaussian", "sphere", "orthogonal"]
DIRECTION_KINDS: tuple[str, ...] = ("gaussian", "sphere", "orthogonal")


def make_generator(seed: int | None, device: torch.device | str = "cpu") -> torch.Generator:
    """A local generator on ``device``, seeded with ``seed`` (fresh entropy when None).

    The core never touches torch's global random state: every draw goes through a
    generator made here, so runs with the same seed repeat exactly.

    Parameters
    ----------
    seed : int or None
        The seed; ``None`` draws fresh entropy.
    device : torch.device or str
        Where the generator lives (it must match the device of the tensors it fills).

    Returns
    -------
    torch.Generator

    See Also
    --------
    sample_directions : draws directions from such a generator.

    References
    ----------
    - Junbin Qiu, Zhengpeng Xie, Xiangda Yan, Yongjie Yang, Yao Shu, "Zeroth-Order Optimization
      is Secretly Single-Step Policy Optimization", arXiv:2506.14460, 2025 (the ZoAR paper).

    Examples
    --------
    >>> import torch
    >>> from zo_scipy.core import make_generator
    >>> a = torch.randn(3, generator=make_generator(7))
    >>> b = torch.randn(3, generator=make_generator(7))
    >>> bool(torch.equal(a, b))
    True
    """
    gen = torch.Generator(device=device)
    if seed is None:
        gen.seed()
    else:
        gen.manual_seed(int(seed))
    return gen


def sample_directions(
    m: int,
    d: int,
    *,
    generator: torch.Generator,
    kind: DirectionKind = "gaussian",
    dtype: torch.dtype = torch.float64,
    device: torch.device | str = "cpu",
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    r"""Draw ``m`` directions in :math:`\mathbb{R}^d` with :math:`E[u u^T] = I`.

    Parameters
    ----------
    m, d : int
        Number of directions and dimension.
    generator : torch.Generator
        Local source of randomness (must live on ``device``).
    kind : {"gaussian", "sphere", "orthogonal"}
        ``gaussian``: :math:`u \sim N(0, I_d)`. ``sphere``: uniform on the sphere of
        radius :math:`\sqrt d`. ``orthogonal``: blocks of at most ``d`` mutually
        orthogonal directions of norm :math:`\sqrt d` (a Haar-random orthonormal
        frame scaled by :math:`\sqrt d`); ``m > d`` gives several independent blocks
        instead of looping forever.
    out : torch.Tensor, optional
        A contiguous ``(m, d)`` tensor to write into (avoids a copy into a buffer).

    dtype, device
        Of the result (ignored when ``out`` is given).

    Returns
    -------
    torch.Tensor
        ``(m, d)`` tensor, one direction per row.

    Raises
    ------
    ValueError
        ``m < 0``, ``d < 1`` or an unknown ``kind``.

    See Also
    --------
    make_generator : the generator to pass.
    zoar_gradient : uses the directions.

    Notes
    -----
    All three kinds satisfy :math:`E[u u^T] = I`, which makes the estimators unbiased
    for the gradient of the Gaussian (or spherical) smoothing of :math:`f`. The
    orthogonal frames are Haar-distributed: QR of a Gaussian matrix with the columns'
    signs fixed by the diagonal of :math:`R`.

    References
    ----------
    - Yurii Nesterov, Vladimir Spokoiny, "Random gradient-free minimization of convex
      functions", Foundations of Computational Mathematics 17, 527-566, 2017.
    - Francesco Mezzadri, "How to generate random matrices from the classical compact
      groups", Notices of the AMS 54(5), 592-604, 2007 (Haar-random orthogonal frames).

    Examples
    --------
    >>> import torch
    >>> from zo_scipy.core import make_generator, sample_directions
    >>> U = sample_directions(3, 4, generator=make_generator(0), kind="orthogonal")
    >>> bool(torch.allclose(U @ U.T, 4 * torch.eye(3, dtype=torch.float64)))
    True
    >>> sample_directions(2, 4, generator=make_generator(0), kind="sphere").norm(dim=1).round(decimals=12).tolist()
    [2.0, 2.0]
    """
    if m < 0 or d < 1:
        raise ValueError(f"need m >= 0 and d >= 1 directions, got m={m}, d={d}")
    if out is None:
        out = torch.empty((m, d), dtype=dtype, device=device)
    torch.randn(out.shape, generator=generator, dtype=out.dtype, device=out.device, out=out)
    if kind == "gaussian" or m == 0:
        return out
    if kind == "sphere":
        out.mul_(d**0.5 / out.norm(dim=1, keepdim=True).clamp_min(torch.finfo(out.dtype).tiny))
        return out
    if kind == "orthogonal":
        full = (m // d) * d
        if full:  # all complete blocks in one batched QR
            blocks = out[:full].view(m // d, d, d)
            blocks.copy_(haar_frames(blocks.transpose(1, 2)).transpose(1, 2) * d**0.5)
        if full < m:
            rest = out[full:]
            rest.copy_(haar_frames(rest.T).T * d**0.5)
        return out
    raise ValueError(f"directions must be one of {DIRECTION_KINDS}, got {kind!r}")


def haar_frames(G: torch.Tensor) -> torch.Tensor:
    """Orthonormal columns from Gaussian ``(..., d, k)`` matrices by QR. QR alone is not
    Haar-distributed (its sign convention biases the frame); flipping each column by the
    sign of ``diag(R)`` makes it so (a zero diagonal counts as +)."""
    q, r = torch.linalg.qr(G)
    signs = torch.sign(torch.diagonal(r, dim1=-2, dim2=-1))
    return q * torch.where(signs == 0, torch.ones_like(signs), signs).unsqueeze(-2)
