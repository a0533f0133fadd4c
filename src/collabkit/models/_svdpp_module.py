"""The SVD++ scorer and its implicit-feedback sums (the estimator: :mod:`.svdpp`)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from collabkit.train.sparse_ops import csr_matrix

__all__ = ["SVDppModule", "implicit_csr", "rated_csr"]


class _SpMM(torch.autograd.Function):
    """``F @ Y`` for a constant CSR ``F``; the backward uses a precomputed CSR of ``F^T``.

    (torch's own backward through a CSR product transposes ``F`` on every call, which is 50x
    slower than the product itself.)
    """

    @staticmethod
    def forward(ctx: Any, Y: torch.Tensor, F: torch.Tensor, Ft: torch.Tensor) -> torch.Tensor:
        ctx.Ft = Ft
        return F @ Y

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        return ctx.Ft @ grad, None, None


class SVDppModule(nn.Module):
    r"""The SVD++ scorer: :math:`\mu + b_u + b_i + q_i^\top (p_u + z_u)`.

    Parameters ``p``, ``q``, ``y`` (the implicit factors), ``b_user``, ``b_item``; the mean
    :math:`\mu` is a buffer.

    :math:`z_u = |N(u)|^{-1/2} \sum_{j \in N(u)} y_j` is one sparse-dense product for all
    users at once, ``F @ Y`` with ``F`` the row-normalised CSR of the items each user rated.
    """

    mean: torch.Tensor  # a buffer (register_buffer)

    def __init__(self, n_users: int, n_items: int, n_factors: int, mean: float) -> None:
        super().__init__()
        self.p = nn.Parameter(torch.zeros(n_users, n_factors))
        self.q = nn.Parameter(torch.zeros(n_items, n_factors))
        self.y = nn.Parameter(torch.zeros(n_items, n_factors))
        self.b_user = nn.Parameter(torch.zeros(n_users))
        self.b_item = nn.Parameter(torch.zeros(n_items))
        self.register_buffer("mean", torch.tensor(float(mean)))

    def implicit(self, F: torch.Tensor, Ft: torch.Tensor) -> torch.Tensor:
        """:math:`z_u` of every user, shape ``(n_users, k)``; ``Ft`` is ``F`` transposed."""
        return _SpMM.apply(self.y, F, Ft)

    def forward(self, u: torch.Tensor, i: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Raw (unclipped) predictions for index pairs given all users' ``z``."""
        pu = self.p[u] + z[u]
        return (pu * self.q[i]).sum(-1) + self.b_user[u] + self.b_item[i] + self.mean


class _Bags:
    """The items each user rated (CSR), to sum :math:`|N(u)|^{-1/2} \\sum_j y_j` for some users."""

    def __init__(self, indptr: np.ndarray, indices: np.ndarray, F: torch.Tensor,
                 Ft: torch.Tensor) -> None:
        self.F, self.Ft = F, Ft
        self.indptr = torch.as_tensor(indptr, dtype=torch.int64)
        self.indices = torch.as_tensor(indices, dtype=torch.int64)
        self.counts = self.indptr[1:] - self.indptr[:-1]
        self.weight = self.counts.clamp_min(1).float().rsqrt()

    def implicit(self, m: SVDppModule, users: torch.Tensor) -> torch.Tensor:
        """:math:`z_u` of ``users``, shape ``(len(users), k)``; differentiable in ``m.y``.

        When those users rated more than half of all items rated, the product for every user
        (``F @ y``, one sparse kernel) is cheaper than gathering their bags."""
        c = self.counts[users]
        ends = torch.cumsum(c, 0)
        if 2 * int(ends[-1]) > len(self.indices):
            return m.implicit(self.F, self.Ft)[users]
        y = m.y
        pos = torch.repeat_interleave(self.indptr[users] - ends + c, c) + torch.arange(
            int(ends[-1]) if len(ends) else 0)
        w = torch.repeat_interleave(self.weight[users], c)
        return torch.nn.functional.embedding_bag(self.indices[pos], y, ends - c, mode="sum",
                                                 per_sample_weights=w)


def rated_csr(u: np.ndarray, i: np.ndarray, n_users: int) -> tuple[np.ndarray, np.ndarray]:
    """``(indptr, indices)``: the items each user rated in rows ``(u, i)``, by user."""
    order = np.lexsort((i, u))
    indptr = np.concatenate([[0], np.cumsum(np.bincount(u, minlength=n_users))])
    return indptr.astype(np.int64), np.asarray(i)[order].astype(np.int64)


def implicit_csr(indptr: np.ndarray, indices: np.ndarray, n_items: int
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """The row-normalised CSR ``F`` of rated items (:math:`|N(u)|^{-1/2}` per entry) and its
    transpose, from a users x items CSR ``(indptr, indices)``."""
    ptr = torch.as_tensor(indptr, dtype=torch.int64)
    cols = torch.as_tensor(indices, dtype=torch.int64)
    counts = ptr[1:] - ptr[:-1]
    rows = torch.repeat_interleave(torch.arange(len(counts)), counts)
    vals = counts.clamp_min(1).float().rsqrt()[rows]
    n_users = len(counts)
    return (csr_matrix(rows, cols, vals, n_users, n_items),
            csr_matrix(cols, rows, vals, n_items, n_users))
