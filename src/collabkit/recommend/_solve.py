"""The row solvers behind fold-in: the closed-form (Gauss-Newton) path of factor models and
the gradient path of embedding models, plus scoring of folded rows."""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

from collabkit.models.capabilities import EmbeddingModel, FactorModel, FoldRows, require
from collabkit.recommend.inputs import Prior, Reg
from collabkit.runtime import threads
from collabkit.train.rowsolve import (
    FrozenSide,
    population_prior,
    solve_rows_gn,
)
from collabkit.train.rowsolve import RowPenalty as _Penalty


# --------------------------------------------------------------------------- closed form
@dataclass(frozen=True)
class _Side:
    """The frozen side of a factor model and statistics of the side being folded.

    ``factors``/``bias`` are the other side's tables; ``mean_row`` and ``precision`` (the
    inverse covariance, for the population prior) describe the trained rows of the side
    being folded. ``clip`` is the rating range predictions are clipped to (linear models).
    """

    factors: np.ndarray
    bias: np.ndarray
    global_bias: float
    y_range: tuple[float, float] | None
    mean_row: np.ndarray
    precision: np.ndarray
    clip: tuple[float, float] | None = None


_STATS: weakref.WeakKeyDictionary[Any, dict[str, Any]] = weakref.WeakKeyDictionary()


def _frozen_side(model: Any, side: Literal["items", "users"], what: str = "fold-in") -> _Side:
    """The frozen ``side`` of a factor model and the statistics of the side being folded."""
    fm: FactorModel = require(model, FactorModel, what)
    t = fm.factor_tables()
    fac, bias = (t.item_factors, t.item_bias) if side == "items" else (t.user_factors,
                                                                        t.user_bias)
    own = (t.user_factors, t.user_bias) if side == "items" else (t.item_factors, t.item_bias)
    mean_row, precision = _row_stats(fm, side, own)
    return _Side(fac.detach().cpu().numpy(), bias.detach().cpu().numpy(), t.global_bias,
                 t.y_range, mean_row, precision, t.clip)


def _row_stats(model: FactorModel, side: str, own: tuple[torch.Tensor, torch.Tensor]
               ) -> tuple[np.ndarray, np.ndarray]:
    """Mean and inverse covariance of the folded side's trained rows (cached per model).

    A model that used a prior for those rows in training (BiasedMF's final user pass) gives
    it (:meth:`~collabkit.models.capabilities.FactorModel.stored_row_prior`), so a trained
    user's training ratings fold back into exactly their row.
    """
    stored = model.stored_row_prior("users" if side == "items" else "items")
    if stored is not None:
        return stored
    version = tuple(x._version for x in own) + tuple(x.data_ptr() for x in own)
    cache = _STATS.setdefault(model, {})
    hit = cache.get(side)
    if hit is not None and hit[0] == version:
        return hit[1], hit[2]
    mean, precision = population_prior(
        torch.cat([own[0].detach(), own[1].detach()[:, None]], 1).double().cpu().numpy())
    cache[side] = (version, mean, precision)
    return mean, precision


def _make_penalty(model: FactorModel, side: _Side, reg: Reg, prior: Prior,
                  folded: Literal["users", "items"], rated: FoldRows) -> _Penalty:
    center = side.mean_row if prior == "mean" else np.zeros_like(side.mean_row)
    population = _Penalty("population", 0.0, side.mean_row,
                          model.noise_variance() * side.precision)
    if reg == "population":
        return population
    if reg != "matched":
        return _Penalty("ridge", float(reg), center)
    own = model.foldin_penalty(folded, center, rated)  # the model's own training penalty
    return population if own is None else own


def _squash(side: _Side, s: np.ndarray) -> np.ndarray:
    if side.y_range is None:
        return s if side.clip is None else np.clip(s, *side.clip)
    lo, hi = side.y_range
    return lo + (hi - lo) / (1.0 + np.exp(-s))


def _solve_rows(side: _Side, rows: np.ndarray, idx: np.ndarray, values: np.ndarray,
                n_rows: int, penalty: _Penalty, n_iter: int) -> np.ndarray:
    """``[vector, bias]`` for each of ``n_rows`` rows from (row, other-side index, rating)."""
    order = np.argsort(rows, kind="stable")
    indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=n_rows))])
    frozen = FrozenSide(torch.from_numpy(side.factors), torch.from_numpy(side.bias),
                        side.global_bias, side.y_range, side.clip)
    return solve_rows_gn(frozen, indptr, idx[order], values[order], penalty, n_iter,
                         dtype=torch.float64).numpy()


def _score_user_rows(model: Any, vectors: np.ndarray, biases: np.ndarray) -> np.ndarray:
    """Predicted ratings of every item for folded rows, shape ``(rows, n_items)``."""
    if isinstance(model, EmbeddingModel):
        return _score_gradient_rows(model, vectors)
    side = _frozen_side(model, "items", "fold-in")
    s = vectors @ side.factors.T.astype(np.float64) + biases[:, None] + side.bias[None, :] \
        + side.global_bias
    return _squash(side, s)


# --------------------------------------------------------------------------- gradient fold-in
def _fold_in_gradient(model: EmbeddingModel, rows: np.ndarray, items: np.ndarray,
                      values: np.ndarray, n_rows: int, *, reg: float | None, steps: int = 200,
                      lr: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Fresh embedding rows fitted by Adam with every weight of the network frozen.

    The new rows start at the mean of the trained rows and minimise
    ``sum_i (r_i - f(x_u, i))^2 / n_u + reg * ||x_u - mean||^2`` per user, all users of the
    batch at once (their losses do not interact).
    """
    emb = model.user_embedding()
    dev = emb.weight.device
    center = emb.weight.detach().mean(0)
    x = center.repeat(n_rows, 1).clone().requires_grad_(True)
    lam = model.foldin_ridge() if reg is None else float(reg)
    rows_t = torch.as_tensor(rows, device=dev)
    items_t = torch.as_tensor(items, device=dev)
    r_t = torch.as_tensor(values, dtype=torch.float32, device=dev)
    counts = torch.bincount(rows_t, minlength=n_rows).clamp_min(1).float()
    opt = torch.optim.Adam([x], lr=lr)
    # tiny kernels: a second thread only adds waiting
    with threads(1 if dev.type == "cpu" else None), torch.enable_grad():
        for _ in range(steps if len(values) else 0):
            pred = model.forward_with_user_rows(x, rows_t, items_t)
            data = (((pred - r_t) ** 2) / counts[rows_t]).sum()
            loss = data + lam * ((x - center) ** 2).sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return x.detach().cpu().double().numpy(), np.zeros(n_rows)


@torch.no_grad()
def _score_gradient_rows(model: EmbeddingModel, vectors: np.ndarray) -> np.ndarray:
    emb = model.user_embedding()
    dev = emb.weight.device
    n_items = len(model.item_vocab_)  # type: ignore[attr-defined]
    x = torch.as_tensor(vectors, dtype=emb.weight.dtype, device=dev)
    out = np.empty((len(vectors), n_items))
    items = torch.arange(n_items, device=dev)
    for j in range(len(vectors)):
        rows = torch.full((n_items,), j, device=dev, dtype=torch.long)
        out[j] = model.forward_with_user_rows(x, rows, items).double().cpu().numpy()
    return out
