r"""Closed-form rows of a biased factor model against a frozen other side, many at once.

Fold-in (:mod:`collabkit.recommend.foldin`) and BiasedMF's final user pass
(``BiasedMF(refit_users=True)``) both solve, for every row ``u`` (a user, or an item when
folding items) with ratings :math:`r_i` of other-side rows :math:`i \in R_u`,

.. math::

    \min_x \; \tfrac12 \sum_{i \in R_u} (r_i - \hat r_i(x))^2
             + \tfrac12 (x - m)^\top \Lambda_u (x - m),
    \qquad \hat r_i(x) = y_{lo} + (y_{hi} - y_{lo})\,\sigma(a_i^\top x + b_i + g)

with :math:`x = [p_u; b_u]`, :math:`a_i = [q_i; 1]` and the other side's factors
:math:`q_i`, biases :math:`b_i` and global bias :math:`g` frozen (without a ``y_range`` the
model is linear, :math:`\hat r_i = a_i^\top x + b_i + g`).

1. *Logit-space start*: targets mapped through the inverse squashing,
   :math:`z_i = \operatorname{logit}(\operatorname{clip}(t_i, \epsilon, 1 - \epsilon)) - b_i - g`
   with :math:`t_i = (r_i - y_{lo}) / (y_{hi} - y_{lo})`, weighted by the squashing's slope
   :math:`d_i = (y_{hi} - y_{lo})\,t_i (1 - t_i)` (delta method):
   :math:`x_0 = (A^\top D^2 A + \Lambda)^{-1}(A^\top D^2 z + \Lambda m)`.
2. *Gauss-Newton* (``n_iter`` steps): :math:`x \leftarrow x + (J^\top J + \Lambda)^{-1}
   (J^\top (r - \hat r) - \Lambda (x - m))`, :math:`J_{ik} = \hat d_i a_{ik}`.

Rows are grouped by rating count into padded blocks of at most ``cells`` (rows x ratings)
cells, so one block is a handful of batched matrix products (``torch.bmm``) and one batched
Cholesky solve; nothing of size (rows x other side) is ever formed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

#: Gauss-Newton steps of fold-in and of BiasedMF's user pass (which must agree). Two leave the
#: predictions within 0.001 RMSE of the exact optimum on ml-100k (one: 0.009, three: 0.0001),
#: and each step costs one batched Gram and Cholesky solve.
GN_STEPS = 2

__all__ = ["GN_STEPS", "FrozenSide", "RowPenalty", "padded_blocks", "population_pass",
           "population_prior", "solve_rows_gn", "train_noise_variance"]

#: Clip of the scaled targets before the logit (step 1).
EPS = 1e-3
#: Added to the penalty's diagonal: keeps a row with no usable ratings solvable.
FLOOR = 1e-6
#: Padded (rows x ratings) cells per block.
BLOCK_CELLS = 1 << 15


@dataclass(frozen=True)
class FrozenSide:
    """The fixed side of the model: ``factors`` (n, k) and ``bias`` (n,) as tensors.

    ``y_range`` is the sigmoid range (None: linear); ``clip`` clips a linear model's
    predictions to the rating range.
    """

    factors: torch.Tensor
    bias: torch.Tensor
    global_bias: float
    y_range: tuple[float, float] | None
    clip: tuple[float, float] | None = None

    def squash(self, s: torch.Tensor) -> torch.Tensor:
        """Predicted ratings from raw scores :math:`a_i^\\top x + b_i + g`."""
        if self.y_range is None:
            return s if self.clip is None else s.clamp(*self.clip)
        lo, hi = self.y_range
        return torch.sigmoid(s) * (hi - lo) + lo


@dataclass(frozen=True)
class RowPenalty:
    r""":math:`\Lambda_u` and the centre :math:`m` of the penalty.

    ``kind``:

    * ``"ridge"``: :math:`\lambda I` (``value`` is :math:`\lambda`);
    * ``"count"``: :math:`\lambda n_u^{p} \operatorname{diag}(w)` (``power`` is :math:`p`,
      ``weights`` is :math:`w`, all ones when None; the per-occurrence L2 of BiasedMF's
      ``"adam"`` optimizer, of BiasedALS and of SVDpp);
    * ``"adamw"``: diagonal, :math:`\lambda_k = c \sqrt{\sum_i J_{ik}^2}` (``value`` is
      :math:`c`);
    * ``"population"``: the fixed matrix ``matrix`` (a Gaussian prior's precision scaled by
      the noise variance).
    """

    kind: Literal["ridge", "count", "adamw", "population"]
    value: float
    center: np.ndarray
    """``(K,)``, or ``(n_rows, K)`` for one centre per row."""
    matrix: np.ndarray | None = None
    power: float = 0.5
    weights: np.ndarray | None = None

    def at(self, J: torch.Tensor, n: torch.Tensor) -> _Lambda:
        r""":math:`\Lambda` of each row of a block (``n`` ratings each), :data:`FLOOR` included."""
        rows, K = J.shape[0], J.shape[-1]
        if self.kind == "population":
            assert self.matrix is not None
            eye = torch.eye(K, dtype=J.dtype, device=J.device)
            return _Lambda(matrix=torch.as_tensor(self.matrix, dtype=J.dtype, device=J.device)
                           + FLOOR * eye)
        if self.kind == "ridge":
            lam = J.new_full((rows, K), float(self.value))
        elif self.kind == "count":
            lam = (float(self.value) * n.to(J.dtype) ** float(self.power))[:, None].expand(rows, K)
            if self.weights is not None:
                lam = lam * torch.as_tensor(self.weights, dtype=J.dtype, device=J.device)
        else:
            lam = float(self.value) * J.square().sum(1).sqrt()
        return _Lambda(diag=lam + FLOOR)


@dataclass(frozen=True)
class _Lambda:
    """A block's penalty: one ``(K, K)`` matrix shared by its rows, or ``(rows, K)`` diagonals."""

    matrix: torch.Tensor | None = None
    diag: torch.Tensor | None = None

    def normal(self, J: torch.Tensor) -> torch.Tensor:
        r""":math:`J^\top J + \Lambda`, ``(rows, K, K)``."""
        Jt = J.transpose(1, 2)
        if self.matrix is not None:
            return torch.baddbmm(self.matrix.expand(J.shape[0], -1, -1), Jt, J)
        assert self.diag is not None, "_Lambda needs a matrix or a diag"
        H = torch.bmm(Jt, J)
        H.diagonal(dim1=1, dim2=2).add_(self.diag)
        return H

    def times(self, v: torch.Tensor) -> torch.Tensor:
        r""":math:`\Lambda v` for ``v`` of shape ``(rows, K, 1)`` (or broadcastable)."""
        if self.matrix is not None:
            return (v[..., 0] @ self.matrix.T)[..., None]
        assert self.diag is not None, "_Lambda needs a matrix or a diag"
        return self.diag[..., None] * v


def population_prior(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and inverse covariance of trained rows ``(n, K)`` (float64, jittered)."""
    rows = np.asarray(rows, dtype=np.float64)
    mean = rows.mean(0)
    cov = np.cov(rows.T) if len(rows) > 1 else np.eye(rows.shape[1])
    cov = np.atleast_2d(cov) + 1e-6 * np.eye(rows.shape[1]) * max(float(np.trace(cov)), 1e-6)
    return mean, np.linalg.inv(cov)


def train_noise_variance(history: list[dict[str, Any]] | None) -> float:
    """Rating noise variance of the population prior: the last epoch's training MSE.

    1.0 when there is no history or the loss is not a positive finite number.
    """
    loss = history[-1].get("train_loss") if history else None
    return float(loss) if loss is not None and math.isfinite(loss) and loss > 0 else 1.0


def padded_blocks(counts: np.ndarray, cells: int = BLOCK_CELLS) -> list[np.ndarray]:
    """Rows with ratings, sorted by count, cut so each padded block has at most ``cells``.

    A row with more than ``cells`` ratings gets a block of its own.
    """
    order = np.argsort(counts, kind="stable")
    order = order[counts[order] > 0]
    c = counts[order]
    out, start = [], 0
    while start < len(order):
        # largest stop with (stop - start) * c[stop - 1] <= cells (c ascends): bisect
        lo, hi = start + 1, min(len(order), start + max(1, cells // int(c[start])))
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if (mid - start) * int(c[mid - 1]) <= cells:
                lo = mid
            else:
                hi = mid - 1
        out.append(order[start:lo])
        start = lo
    return out


def _spd_solve(M: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    chol, info = torch.linalg.cholesky_ex(M)
    if bool((info == 0).all()):
        return torch.cholesky_solve(b, chol)
    return torch.linalg.solve(M, b)  # e.g. no penalty and fewer ratings than factors


@torch.no_grad()
def solve_rows_gn(side: FrozenSide, indptr: np.ndarray, other: np.ndarray, values: np.ndarray,
                  penalty: RowPenalty, n_iter: int = GN_STEPS, *,
                  dtype: torch.dtype = torch.float64, cells: int = BLOCK_CELLS) -> torch.Tensor:
    """``[vector, bias]`` of every row from its ratings (CSR), see the module docstring.

    Parameters
    ----------
    side : FrozenSide
    indptr : ndarray (n_rows + 1,)
        Row ``u`` owns entries ``indptr[u]:indptr[u + 1]`` of ``other`` and ``values``.
    other : ndarray (nnz,)
        Dense indices into ``side``.
    values : ndarray (nnz,)
        Ratings.
    penalty : RowPenalty
    n_iter : int
        Gauss-Newton steps after the start (ignored for a linear model: the start is exact).
    dtype : torch dtype
        Of the computation (float32 is about twice as fast; float64 for exact answers).
    cells : int
        Padded cells per block.

    Returns
    -------
    Tensor (n_rows, k + 1)
        On ``side.factors``' device; rows without ratings are the penalty's centre.
    """
    dev = side.factors.device
    indptr = np.asarray(indptr, dtype=np.int64)
    counts = np.diff(indptr)
    center = torch.as_tensor(penalty.center, dtype=dtype, device=dev)
    per_row = center.ndim == 2  # one centre per row (n_rows, K), else one for all
    out = center.clone() if per_row else center.repeat(len(counts), 1)
    if counts.sum() == 0:
        return out
    # a few rows (a fold-in) gather their rated rows and convert those; converting the whole
    # table first (9.7k x k on ml-latest-small) was most of a served fold-in's time. Either
    # way the values are the same: the conversion is exact and elementwise.
    few = int(counts.sum()) < len(side.factors)
    F = side.factors if few else torch.cat(
        [side.factors.to(dtype), side.factors.new_ones(len(side.factors), 1).to(dtype)], 1)
    off_all = side.bias if few else side.bias.to(dtype) + float(side.global_bias)
    # no copies of the (possibly huge) rating arrays: padded slots read entry 0, masked by w
    other_t = torch.as_tensor(np.asarray(other), device=dev)
    r_all = torch.as_tensor(np.asarray(values), device=dev)
    ptr_t = torch.as_tensor(indptr[:-1], device=dev)
    counts_t = torch.as_tensor(counts, device=dev)
    c = center[None, :, None]
    for block_np in padded_blocks(counts, cells):
        block = torch.as_tensor(block_np, device=dev)
        if per_row:
            c = center[block][:, :, None]
        n = counts_t[block]
        L = int(n.max())
        pos = torch.arange(L, device=dev)
        valid = pos[None, :] < n[:, None]
        take = torch.where(valid, ptr_t[block][:, None] + pos[None, :], 0)
        idx = other_t[take].long()
        w = valid.to(dtype)
        # padded slots read real entries: they are zeroed through w in d, z and the residual
        if few:
            A = F[idx].to(dtype)
            A = torch.cat([A, A.new_ones(*A.shape[:-1], 1)], -1)   # (rows, L, K)
            off = off_all[idx].to(dtype) + float(side.global_bias)
        else:
            A = F[idx]                                   # (rows, L, K)
            off = off_all[idx]
        r = r_all[take].to(dtype)
        if side.y_range is None:
            d, z = w, (r - off) * w
        else:
            lo, hi = side.y_range
            t = ((r - lo) / (hi - lo)).clamp(EPS, 1 - EPS)
            z = (torch.log(t / (1 - t)) - off) * w
            d = (hi - lo) * t * (1 - t) * w
        J = A * d[..., None]
        Lam = penalty.at(J, n)
        x = _spd_solve(Lam.normal(J), J.transpose(1, 2) @ (d * z)[..., None] + Lam.times(c))
        if side.y_range is not None:
            lo, hi = side.y_range
            for _ in range(n_iter):
                p = torch.sigmoid((A @ x)[..., 0] + off)
                resid = (r - lo - (hi - lo) * p) * w
                J = A * ((hi - lo) * p * (1 - p) * w)[..., None]
                Lam = penalty.at(J, n)
                x = x + _spd_solve(Lam.normal(J),
                                   J.transpose(1, 2) @ resid[..., None] - Lam.times(x - c))
        out[block] = x[..., 0]
    return out


@torch.no_grad()
def population_pass(rows: tuple[torch.Tensor, torch.Tensor],
                    other: tuple[torch.Tensor, torch.Tensor], row_idx: np.ndarray,
                    other_idx: np.ndarray, r: np.ndarray, global_bias: float,
                    y_range: tuple[float, float] | None, noise: float,
                    n_iter: int = GN_STEPS) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """Every row's MAP estimate from its ratings, the other side frozen (float32).

    Parameters
    ----------
    rows, other : (factors (n, k), bias (n, 1) or (n,))
        The side being solved (its current rows give the prior) and the frozen side.
    row_idx, other_idx, r : ndarray (N,)
        The ratings: dense row and other-side indices, values.
    global_bias : float
    y_range : (low, high) or None
    noise : float
        Rating noise variance; the penalty is ``noise`` times the prior's precision.
    n_iter : int

    Returns
    -------
    (Tensor (n, k + 1), mean, precision)
        The new ``[vector, bias]`` rows and the prior used (fitted to ``rows`` as given).
    """
    factors, bias = rows
    bias = bias.reshape(-1, 1)
    mean, precision = population_prior(torch.cat([factors, bias], 1).double().cpu().numpy())
    order = np.argsort(row_idx, kind="stable")
    indptr = np.concatenate([[0], np.cumsum(np.bincount(row_idx, minlength=len(factors)))])
    n_other = len(other[0])
    cols = other_idx[order].astype(np.int32 if n_other < 2**31 else np.int64)
    values = r[order]
    del order  # 25M ratings: the order is 200 MB
    side = FrozenSide(other[0], other[1].reshape(-1), global_bias, y_range)
    X = solve_rows_gn(side, indptr, cols, values,
                      RowPenalty("population", 0.0, mean, noise * precision), n_iter,
                      dtype=torch.float32)
    return X, mean, precision
