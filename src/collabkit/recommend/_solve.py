r"""How fold-in solves for new rows: in closed form for factor models, by gradient steps
(:mod:`._gradient`) for embedding models.

The math (BiasedMF)
-------------------
With item factors :math:`q_i`, item biases :math:`b_i`, global bias :math:`g` and the
sigmoid range :math:`(y_{lo}, y_{hi})`, write :math:`x = [p_u; b_u]`, :math:`a_i = [q_i; 1]`,
:math:`s_i = a_i^\top x + b_i + g`, :math:`\hat r_i = y_{lo} + (y_{hi} - y_{lo})\,\sigma(s_i)`.
The fold-in minimises the model's own loss plus a quadratic penalty around a centre
:math:`m`:

.. math::

    \min_x \; \tfrac12 \sum_{i \in R_u} (r_i - \hat r_i(x))^2
             + \tfrac12 (x - m)^\top \Lambda (x - m) .

1. *Logit-space start.* The targets are mapped through the inverse of the squashing function,
   :math:`z_i = \operatorname{logit}\big(\operatorname{clip}(\tfrac{r_i - y_{lo}}{y_{hi}-y_{lo}},
   \epsilon, 1-\epsilon)\big) - b_i - g` (:math:`\epsilon = 10^{-3}`), which makes the problem
   linear: :math:`x_0 = (A^\top D^2 A + \Lambda)^{-1} (A^\top D^2 z + \Lambda m)` with
   :math:`D = \operatorname{diag}(d_i)`, :math:`d_i = (y_{hi}-y_{lo})\,t_i(1-t_i)` the slope of
   the squashing at the target :math:`t_i` (the delta method: an error of :math:`\delta` in
   logit space costs :math:`d_i\delta` in rating space).
2. *Gauss-Newton refinement* (``n_iter`` steps, 2 by default, each again one batched solve):
   :math:`x \leftarrow x + (J^\top J + \Lambda)^{-1}\big(J^\top (r - \hat r)
   - \Lambda (x - m)\big)` with :math:`J_{ik} = \hat d_i a_{ik}` and
   :math:`\hat d_i = (y_{hi}-y_{lo})\,\sigma(s_i)(1-\sigma(s_i))`.

Without ``y_range`` the model is linear, :math:`z_i = r_i - b_i - g` and step 1 is exact.

The solver itself (blocks, batched Cholesky, float64 here) is
:func:`collabkit.train.rowsolve.solve_rows_gn`.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

from collabkit.models.capabilities import EmbeddingModel, FactorModel, FoldRows, require
from collabkit.recommend._gradient import fold_in_gradient, score_gradient_rows
from collabkit.recommend.inputs import Prior, Reg
from collabkit.train.rowsolve import FrozenSide, population_prior, solve_rows_gn
from collabkit.train.rowsolve import RowPenalty as _Penalty


@dataclass(frozen=True)
class FoldSide:
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


def frozen_side(model: Any, side: Literal["items", "users"], what: str = "fold-in") -> FoldSide:
    """The frozen ``side`` of a factor model and the statistics of the side being folded."""
    fm: FactorModel = require(model, FactorModel, what)
    t = fm.factor_tables()
    fac, bias = (t.item_factors, t.item_bias) if side == "items" else (t.user_factors,
                                                                        t.user_bias)
    own = (t.user_factors, t.user_bias) if side == "items" else (t.item_factors, t.item_bias)
    mean_row, precision = _row_stats(fm, side, own)
    return FoldSide(fac.detach().cpu().numpy(), bias.detach().cpu().numpy(), t.global_bias,
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


def make_penalty(model: FactorModel, side: FoldSide, reg: Reg, prior: Prior,
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


def squash(side: FoldSide, s: np.ndarray) -> np.ndarray:
    if side.y_range is None:
        return s if side.clip is None else np.clip(s, *side.clip)
    lo, hi = side.y_range
    return lo + (hi - lo) / (1.0 + np.exp(-s))


def solve_rows(side: FoldSide, rows: np.ndarray, idx: np.ndarray, values: np.ndarray,
                n_rows: int, penalty: _Penalty, n_iter: int) -> np.ndarray:
    """``[vector, bias]`` for each of ``n_rows`` rows from (row, other-side index, rating)."""
    order = np.argsort(rows, kind="stable")
    indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=n_rows))])
    frozen = FrozenSide(torch.from_numpy(side.factors), torch.from_numpy(side.bias),
                        side.global_bias, side.y_range, side.clip)
    return solve_rows_gn(frozen, indptr, idx[order], values[order], penalty, n_iter,
                         dtype=torch.float64).numpy()


def fold_rows(model: Any, rows: np.ndarray, items: np.ndarray, values: np.ndarray, n_rows: int,
              reg: Reg, prior: Prior, n_iter: int) -> tuple[np.ndarray, np.ndarray]:
    """(vectors, biases) of ``n_rows`` new users from (row, item index, rating) triples."""
    if isinstance(model, EmbeddingModel):
        lam = float(reg) if isinstance(reg, int | float) else None
        return fold_in_gradient(model, rows, items, values, n_rows, reg=lam)
    side = frozen_side(model, "items", "fold-in")
    penalty = make_penalty(model, side, reg, prior, "users", FoldRows(rows, items, n_rows))
    x = solve_rows(side, rows, items, values, n_rows, penalty, n_iter)
    return x[:, :-1], x[:, -1]


def score_rows(model: Any, vectors: np.ndarray, biases: np.ndarray) -> np.ndarray:
    """Predicted ratings of every item for folded rows, shape ``(rows, n_items)``."""
    if isinstance(model, EmbeddingModel):
        return score_gradient_rows(model, vectors)
    side = frozen_side(model, "items", "fold-in")
    s = vectors @ side.factors.T.astype(np.float64) + biases[:, None] + side.bias[None, :] \
        + side.global_bias
    return squash(side, s)


def fold_item_row(model: Any, rows: np.ndarray, users: np.ndarray, values: np.ndarray,
                  reg: Reg, prior: Prior, n_iter: int) -> np.ndarray:
    """``[vector, bias]`` of one new item from (0, user index, rating) triples."""
    side = frozen_side(model, "users", "fold_in_item")
    penalty = make_penalty(model, side, reg, prior, "items", FoldRows(rows, users, 1))
    return solve_rows(side, rows, users, values, 1, penalty, n_iter)[0]
