r"""Fold-in: a vector for a user (or item) the model never saw, from a few of their ratings.

For a factor model (one with the :class:`~collabkit.models.capabilities.FactorModel`
capability: BiasedMF, BiasedALS, SVDpp, BayesianMF, HybridMF) the other side's factors and
biases stay frozen and the new row ``x = [p_u; b_u]`` is a penalised least-squares fit, solved
in closed form for every user of a batch at once (padded, batched solves; about a millisecond
per user). For a network with a user embedding
(:class:`~collabkit.models.capabilities.EmbeddingModel`: MLPRecommender) a fresh embedding row
is fitted by a few hundred Adam steps with everything else frozen. Any other model raises
:class:`~collabkit.errors.NotSupportedError`.

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

Choosing the penalty (``reg``)
------------------------------
``"population"`` (the default) is the empirical-Bayes choice: a Gaussian prior
:math:`x \sim N(m, \Sigma)` fitted to the trained rows (their mean and covariance) and
Gaussian rating noise of variance :math:`\sigma^2` (the training MSE from ``history_``), so
:math:`\Lambda = \sigma^2 \Sigma^{-1}` (a full matrix), :math:`m` is the mean trained row and
the fold-in is the MAP estimate. It predicts new users best after a handful of ratings
(docs/coldstart.md). BiasedMF's final user pass (``refit_users=True``, the default) solves
exactly this problem for every trained user and stores the prior it used
(``user_prior_mean_``, ``user_prior_precision_``), which folding users then reads: a
trained user's training ratings fold back into their row.

The solver itself (blocks, batched Cholesky, float64 here) is
:func:`collabkit.train.rowsolve.solve_rows_gn`.

``"matched"`` solves the problem training solved, so for a model trained to convergence a
trained user's own ratings give back their trained row. Each model states that penalty
itself (:meth:`~collabkit.models.capabilities.FactorModel.foldin_penalty`): BiasedMF's
per-occurrence L2 or its AdamW decay, BiasedALS's count-scaled ridge, SVDpp's per-rating L2;
for BayesianMF, whose rows have a Gaussian prior, it is the population prior. The noise
variance of ``"population"`` is the model's own too
(:meth:`~collabkit.models.capabilities.FactorModel.noise_variance`).

Its centre is zero (``prior="zero"``, what the penalty of training pulls toward) or the mean
trained row (``prior="mean"``, better for users with few ratings). A number sets
:math:`\Lambda = \lambda I` around the same centre.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from collabkit.errors import DataError
from collabkit.models.capabilities import EmbeddingModel, FactorModel, FoldRows, require
from collabkit.recommend._results import FoldedItem, FoldedUser, FoldedUsers
from collabkit.recommend._solve import (
    _fold_in_gradient,
    _frozen_side,
    _make_penalty,
    _solve_rows,
)
from collabkit.recommend.inputs import (
    Prior,
    Ratings,
    Reg,
    check_options,
    group_arrays,
    group_ratings,
    ratings_pairs,
)
from collabkit.train.rowsolve import (
    GN_STEPS,
)

__all__ = [
    "FoldedUser",
    "FoldedItem",
    "FoldedUsers",
    "fold_in_user",
    "fold_in_users",
    "fold_in_item",
    "default_reg_scale",
]



# --------------------------------------------------------------------------- public API
def fold_in_user(model: Any, ratings: Ratings, *, reg: Reg = "population",
                 prior: Prior = "zero", n_iter: int = GN_STEPS) -> FoldedUser:
    """Fold a new user into a fitted model from their ratings.

    Parameters
    ----------
    model : BiasedMF or MLPRecommender
        A fitted model; it is not modified.
    ratings : mapping, Series or DataFrame
        ``{raw_item_id: rating}``, a Series indexed by raw item id, or a DataFrame with
        columns ``item`` and ``rating``. Items the model never saw are counted and ignored.
    reg : "population", "matched" or float
        The penalty (module docstring). ``"population"``: the MAP under a Gaussian prior
        fitted to the trained rows, best for new users. ``"matched"``: the model's own
        training penalty, so a trained user's ratings give back their trained row when the
        model was trained to convergence. A number: ridge :math:`\\lambda` on every
        coordinate. For kind ``"nn"`` only a number is used (the L2 penalty on the new row;
        default 1e-2).
    prior : "zero" or "mean"
        Centre of the ``"matched"`` and ridge penalties: zero, or the mean trained row.
    n_iter : int
        Gauss-Newton refinements after the logit-space start (BiasedMF).

    Returns
    -------
    FoldedUser
        With no usable ratings, the centre of the penalty (for ``"population"`` the mean
        trained row: the "average user").

    Raises
    ------
    NotFittedError
        The model is not fitted.
    DataError
        A rating is missing or not finite, or an item appears twice.
    ConfigError
        The model kind has no fold-in, or ``reg``, ``prior`` or ``n_iter`` is invalid.

    Examples
    --------
    >>> fu = fold_in_user(model, {50: 5.0, 181: 4.5, 1: 4.0})   # doctest: +SKIP
    >>> fu.predict([172, 174])                                  # doctest: +SKIP
    """
    model.check_fitted()
    check_options(reg, n_iter, prior)
    ids, values = ratings_pairs(ratings, key="item")
    grouped = group_arrays(model.item_vocab_, np.array([0]), np.zeros(len(ids), np.int64),
                            ids, values, what="item", rating_range=model.rating_range_)
    return _fold_grouped(model, grouped, reg, prior, n_iter)[0]


def fold_in_users(model: Any, ratings: pd.DataFrame, *, user_col: str = "user",
                  item_col: str = "item", rating_col: str = "rating",
                  reg: Reg = "population", prior: Prior = "zero",
                  n_iter: int = GN_STEPS) -> FoldedUsers:
    """Fold in many new users at once; one batched solve per block of users.

    Parameters
    ----------
    model : BiasedMF or MLPRecommender
    ratings : pandas.DataFrame
        Long table with a user key, a raw item id and a rating per row. The user keys are
        free labels: they need not (and usually do not) exist in the model.
    user_col, item_col, rating_col : str
        Column names.
    reg, prior, n_iter
        As in :func:`fold_in_user`.

    Returns
    -------
    FoldedUsers
        Rows in order of first appearance of each user key.
    """
    model.check_fitted()
    check_options(reg, n_iter, prior)
    for col in (user_col, item_col, rating_col):
        if col not in ratings.columns:
            raise DataError(f"column {col!r} not found; columns are {list(ratings.columns)}")
    grouped = group_ratings(model.item_vocab_, ratings, user_col, item_col, rating_col, what="item",
                     rating_range=model.rating_range_)
    return _fold_grouped(model, grouped, reg, prior, n_iter)


def _fold_grouped(model: Any, grouped: tuple[np.ndarray, ...], reg: Reg, prior: Prior,
                  n_iter: int) -> FoldedUsers:
    keys, rows, items, values, n_unknown = grouped
    order = np.argsort(rows, kind="stable")
    cuts = np.cumsum(np.bincount(rows, minlength=len(keys)))[:-1]
    rated = tuple(zip(np.split(model.item_vocab_.ids(items[order]), cuts),
                      np.split(values[order], cuts), strict=True)) if len(keys) else ()
    if isinstance(model, EmbeddingModel):
        lam = float(reg) if isinstance(reg, int | float) else None
        vecs, biases = _fold_in_gradient(model, rows, items, values, len(keys), reg=lam)
    else:
        side = _frozen_side(model, "items", "fold-in")
        x = _solve_rows(side, rows, items, values, len(keys),
                        _make_penalty(model, side, reg, prior, "users",
                                      FoldRows(rows, items, len(keys))), n_iter)
        vecs, biases = x[:, :-1], x[:, -1]
    n_used = np.bincount(rows, minlength=len(keys))
    return FoldedUsers(model, keys, vecs, biases, n_used, n_unknown, rated)


def fold_in_item(model: Any, ratings: Ratings, *, reg: Reg = "population",
                 prior: Prior = "zero", n_iter: int = GN_STEPS) -> FoldedItem:
    """Fold a new item into a fitted BiasedMF from the ratings some known users gave it.

    The mirror image of :func:`fold_in_user`: the user factors and biases are frozen and
    :math:`[q_i; b_i]` is solved for, with the same penalty rules (the ``"population"`` prior
    is then fitted to the trained item rows).

    Parameters
    ----------
    model : BiasedMF
    ratings : mapping, Series or DataFrame
        ``{raw_user_id: rating}``, a Series indexed by raw user id, or a DataFrame with
        columns ``user`` and ``rating``. Users the model never saw are counted and ignored.
    reg, prior, n_iter
        As in :func:`fold_in_user`.

    Returns
    -------
    FoldedItem
    """
    model.check_fitted()
    check_options(reg, n_iter, prior)
    require(model, FactorModel, "fold_in_item")
    users, values = ratings_pairs(ratings, key="user")
    _, rows, uidx, vals, n_unknown = group_arrays(
        model.user_vocab_, np.array([0]), np.zeros(len(users), np.int64), users, values,
        what="user", rating_range=model.rating_range_)
    side = _frozen_side(model, "users", "fold_in_item")
    penalty = _make_penalty(model, side, reg, prior, "items", FoldRows(rows, uidx, 1))
    x = _solve_rows(side, rows, uidx, vals, 1, penalty, n_iter)[0]
    return FoldedItem(model, x[:-1], float(x[-1]), int(len(vals)), int(n_unknown[0]))


def default_reg_scale(model: Any) -> float:
    r"""The factor :math:`c\,\mathrm{wd}\sqrt{S}\,\sigma` of an AdamW-trained model's matched
    penalty (:meth:`~collabkit.models._adamw.AdamWFoldIn.adamw_reg_scale`)."""
    return float(model.adamw_reg_scale())
