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
        return self.U[: self.size]

    def values(self) -> torch.Tensor:
        return self.y[: self.size]

    def clear(self) -> None:
        self.size = 0
        self._pos = 0
