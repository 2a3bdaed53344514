"""Query-reuse history: a FIFO ring buffer of (direction, value) pairs on the device."""
from __future__ import annotations

import torch


class QueryHistory:
    r"""The newest ``capacity`` pairs :math:`(u_j, y_j)`, oldest overwritten first.

    Pairs are stored exactly as evaluated (the ZoAR paper's off-policy reuse: no
    re-evaluation, no importance weight). The estimators only use sums over the
    buffer, so row order is irrelevant and the ring never has to be rotated.

    Parameters
    ----------
    capacity : int
        ``(N + 1) K`` for ``N`` past iterations of ``K`` queries.
    d : int
        Dimension.
    dtype, device
        Of the stored directions and values.

    Raises
    ------
    ValueError
        ``capacity < 1``.

    See Also
    --------
    zoar_gradient : the estimator that reads the buffer.
    zo_scipy.ZoAR : keeps one of these as its reuse buffer.

    Notes
    -----
    Reusing the queries of the last :math:`N` iterations is the ZoAR paper's analogue of
    experience replay in reinforcement learning (an agent learning again from stored
    past experience, not only from its newest): with :math:`M = (N+1)K` pairs the
    estimate uses every stored :math:`(u_j, y_j)` as if it had been drawn at the current
    iterate. Rows are allocated as they are first written.

    References
    ----------
    - Junbin Qiu, Zhengpeng Xie, Xiangda Yan, Yongjie Yang, Yao Shu, "Zeroth-Order Optimization
      is Secretly Single-Step Policy Optimization", arXiv:2506.14460, 2025 (the ZoAR paper).
    - Long-Ji Lin, "Self-improving reactive agents based on reinforcement learning,
      planning and teaching", Machine Learning 8, 293-321, 1992 (experience replay).

    Examples
    --------
    >>> import torch
    >>> from zo_scipy.core import QueryHistory
    >>> h = QueryHistory(3, 2, dtype=torch.float64, device="cpu")
    >>> h.append(torch.ones(2, 2, dtype=torch.float64), torch.tensor([1.0, 2.0]))
    >>> h.append(torch.zeros(2, 2, dtype=torch.float64), torch.tensor([3.0, 4.0]))
    >>> len(h), sorted(h.values().tolist())  # the oldest pair was overwritten
    (3, [2.0, 3.0, 4.0])
    >>> tuple(h.directions().shape)
    (3, 2)
    >>> h.clear(); len(h)
    0
    """

    def __init__(self, capacity: int, d: int, *, dtype: torch.dtype, device: torch.device | str):
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.capacity = int(capacity)
        # Rows are allocated as they are first written, so a short run (a small budget)
        # never holds the full (N+1) K x d buffer.
        self.U = torch.empty((0, d), dtype=dtype, device=device)
        self.y = torch.empty((0,), dtype=dtype, device=device)
        self.size = 0
        self._pos = 0

    def _reserve(self, rows: int) -> None:
        """Grow the allocation to ``rows`` (<= capacity), keeping every row written so far."""
        if rows <= self.U.shape[0]:
            return
        rows = min(self.capacity, max(rows, 2 * self.U.shape[0]))
        U = torch.empty((rows, self.U.shape[1]), dtype=self.U.dtype, device=self.U.device)
        y = torch.empty((rows,), dtype=self.y.dtype, device=self.y.device)
        # Every allocated row, not just the first `size`: a replayed buffer (a loaded state)
        # may start writing at a later position.
        n = self.U.shape[0]
        U[:n].copy_(self.U)
        y[:n].copy_(self.y)
        self.U, self.y = U, y

    def __len__(self) -> int:
        return self.size

    def append(self, U: torch.Tensor, y: torch.Tensor) -> None:
        """Add ``k`` pairs (copied, so the caller's tensors may be reused)."""
        k = U.shape[0]
        if k > self.capacity:  # only the newest fit
            U, y, k = U[-self.capacity :], y[-self.capacity :], self.capacity
        self._reserve(min(self.capacity, self._pos + k) if self.size < self.capacity else self.capacity)
        idx = (self._pos + torch.arange(k, device=self.y.device)) % self.capacity
        if self._pos + k <= self.capacity:  # contiguous: a plain copy, no index gather
            self.U[self._pos : self._pos + k].copy_(U)
        else:
            self.U[idx] = U
        self.y[idx] = y.to(self.y.dtype)
        self._pos = (self._pos + k) % self.capacity
        self.size = min(self.size + k, self.capacity)

    def directions(self) -> torch.Tensor:
        """The stored directions, shape ``(len(self), d)`` (a view, in ring order)."""
        return self.U[: self.size]

    def values(self) -> torch.Tensor:
        """The stored values, shape ``(len(self),)``, in the same order as :meth:`directions`."""
        return self.y[: self.size]

    def clear(self) -> None:
        """Forget every pair (the allocation is kept)."""
        self.size = 0
        self._pos = 0
