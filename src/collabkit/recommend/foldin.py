r"""Fold-in: a vector for a user (or item) the model never saw, from a few of their ratings.

For a factor model (one with the :class:`~collabkit.models.capabilities.FactorModel`
capability: BiasedMF, BiasedALS, SVDpp, BayesianMF, HybridMF) the other side's factors and
biases stay frozen and the new row ``x = [p_u; b_u]`` is a penalised least-squares fit, solved
in closed form for every user of a batch at once (padded, batched solves; about a millisecond
per user). For a network with a user embedding
(:class:`~collabkit.models.capabilities.EmbeddingModel`: MLPRecommender) a fresh embedding row
is fitted by a few hundred Adam steps with everything else frozen. Any other model raises
:class:`~collabkit.errors.NotSupportedError`.

The closed-form solve (a logit-space start, then Gauss-Newton steps) is derived in
:mod:`collabkit.recommend._solve`.

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

from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from collabkit.data.vocab import as_id_array
from collabkit.errors import ConfigError, UnknownIdError
from collabkit.models.capabilities import FactorModel, require
from collabkit.recommend._solve import fold_item_row, fold_rows, frozen_side, score_rows, squash
from collabkit.recommend.inputs import (
    Prior,
    Ratings,
    Reg,
    check_options,
    group_arrays,
    group_ratings,
    ratings_pairs,
)
from collabkit.train.rowsolve import GN_STEPS

__all__ = [
    "FoldedUser",
    "FoldedItem",
    "FoldedUsers",
    "fold_in_user",
    "fold_in_users",
    "fold_in_item",
    "default_reg_scale",
]


@dataclass(frozen=True)
class FoldedUser:
    """A user vector folded into a fitted model.

    Attributes
    ----------
    model : Recommender
        The model it was folded into (its item side is used for scoring).
    vector : numpy.ndarray
        The user's factor vector :math:`p_u` (BiasedMF) or embedding row (EmbeddingNN).
    bias : float
        :math:`b_u` (0.0 for models without a user bias).
    n_used : int
        Ratings that went into the fit.
    n_unknown_items_ignored : int
        Ratings of items the model never saw (they cannot inform the vector).
    rated_items : numpy.ndarray
        Raw ids of the items used, in the order of ``rated_values``.
    rated_values : numpy.ndarray
        Their ratings.
    """

    model: Any = field(repr=False)
    vector: np.ndarray = field(repr=False)
    bias: float
    n_used: int
    n_unknown_items_ignored: int
    rated_items: np.ndarray = field(repr=False)
    rated_values: np.ndarray = field(repr=False)

    def scores(self) -> np.ndarray:
        """Predicted rating of every item, in the model's item-vocabulary order, float64."""
        return score_rows(self.model, self.vector[None, :], np.array([self.bias]))[0]

    def predict(self, items: Any) -> pd.DataFrame:
        """Predicted ratings for raw item ids.

        Items the model never saw get the damped-bias baseline of this user
        (``global_mean_`` plus the damped mean of their rating offsets), flagged in
        ``fallback``, as :meth:`Recommender.predict` does. Predictions are clipped to the
        model's rating range, as there; :meth:`scores` gives the raw values.

        Returns
        -------
        pandas.DataFrame
            Columns ``item``, ``prediction``, ``fallback``, ``title``.
        """
        items_a = as_id_array(items)
        idx = self.model.item_vocab_.index(items_a)
        known = idx >= 0
        out = np.full(len(items_a), self.baseline_rating())
        if known.any():
            out[known] = self.scores()[idx[known]]
        lo, hi = self.model.rating_range_
        return pd.DataFrame({"item": items_a, "prediction": np.clip(out, lo, hi),
                             "fallback": ~known,
                             "title": self.model.titles(items_a)})

    def recommend(self, n: int = 10, *, exclude_rated: bool = True, exclude: Any = None,
                  min_count: int = 0, user: Any = "new", tier: str = "personal") -> pd.DataFrame:
        """Top-``n`` items by this user's predicted rating.

        Parameters
        ----------
        n : int
        exclude_rated : bool
            Leave out the items this user rated (or was given pseudo-ratings for).
        exclude : sequence of item ids, optional
            Items never to recommend.
        min_count : int
            Only items with at least this many training ratings.
        user, tier : str
            Labels for the ``user`` and ``tier`` columns.

        Returns
        -------
        pandas.DataFrame
            ``user``, ``rank``, ``item``, ``score``, ``title``, ``tier``, as
            :meth:`Recommender.recommend`.
        """
        if int(n) < 1:
            raise ConfigError(f"n must be at least 1, got {n}")
        m = self.model
        scores = self.scores()
        banned = np.bincount(m.seen_indices_, minlength=len(scores)) < min_count
        for ids, on in ((self.rated_items, exclude_rated), (exclude, exclude is not None)):
            if on:
                idx = m.item_vocab_.index(ids)
                banned[idx[idx >= 0]] = True
        return top_frame(m, np.where(banned, -np.inf, scores), int(n), user, tier)

    def baseline_rating(self) -> float:
        """``global_mean_`` + this user's damped bias (damping 5, as the model's baseline)."""
        m = self.model
        idx = m.item_vocab_.index(self.rated_items)
        bi = np.where(idx >= 0, m.item_bias_base_[np.maximum(idx, 0)], 0.0)
        bu = float(np.sum(self.rated_values - m.global_mean_ - bi)) / (len(idx) + 5.0)
        lo, hi = m.rating_range_
        return float(np.clip(m.global_mean_ + bu, lo, hi))


@dataclass(frozen=True)
class FoldedItem:
    """An item vector folded into a fitted BiasedMF; the mirror image of :class:`FoldedUser`.

    Attributes
    ----------
    model : Recommender
    vector : numpy.ndarray
        :math:`q_i`.
    bias : float
        :math:`b_i`.
    n_used : int
    n_unknown_users_ignored : int
    """

    model: Any = field(repr=False)
    vector: np.ndarray = field(repr=False)
    bias: float
    n_used: int
    n_unknown_users_ignored: int

    def scores(self) -> np.ndarray:
        """Predicted rating of this item by every user, in user-vocabulary order."""
        side = frozen_side(self.model, "users")
        return squash(side, side.factors.astype(np.float64) @ self.vector + side.bias
                       + self.bias + side.global_bias)

    def predict(self, users: Any) -> np.ndarray:
        """Predicted ratings by raw user ids; NaN for users the model never saw."""
        idx = self.model.user_vocab_.index(users)
        s = self.scores()
        return np.where(idx >= 0, s[np.maximum(idx, 0)], np.nan)


@dataclass(frozen=True)
class FoldedUsers:
    """Many folded users at once (from :func:`fold_in_users`).

    Attributes
    ----------
    model : Recommender
    users : numpy.ndarray
        The raw user keys, in row order.
    vectors : numpy.ndarray
        ``(n_users, k)``.
    biases, n_used, n_unknown_items_ignored : numpy.ndarray
        One entry per user.
    """

    model: Any = field(repr=False)
    users: np.ndarray
    vectors: np.ndarray = field(repr=False)
    biases: np.ndarray = field(repr=False)
    n_used: np.ndarray = field(repr=False)
    n_unknown_items_ignored: np.ndarray = field(repr=False)
    _rated: tuple[tuple[np.ndarray, np.ndarray], ...] = field(repr=False, default=())
    """(raw items, ratings) used for each user, in row order."""

    def __len__(self) -> int:
        return len(self.users)

    def scores(self) -> np.ndarray:
        """Predicted ratings, shape ``(n_users, n_items)`` (item-vocabulary order)."""
        return score_rows(self.model, self.vectors, self.biases)

    def __getitem__(self, user: Hashable) -> FoldedUser:
        hits = np.flatnonzero(self.users == user)
        if hits.size == 0:
            raise UnknownIdError(f"user {user!r} is not among the {len(self)} folded users, "
                                 f"such as {self.users[0]!r}" if len(self) else
                                 f"user {user!r}: no users were folded in")
        j = int(hits[0])
        items, values = self._rated[j] if self._rated else (np.array([]), np.array([]))
        return FoldedUser(self.model, self.vectors[j], float(self.biases[j]),
                          int(self.n_used[j]), int(self.n_unknown_items_ignored[j]),
                          items, values)


def top_frame(model: Any, scores: np.ndarray, n: int, user: Any, tier: str,
              shown: np.ndarray | None = None) -> pd.DataFrame:
    """The long recommendation frame of the ``n`` best finite ``scores`` (ties: lower index).

    The ``score`` column is a predicted rating clipped to the model's rating range: ``scores``
    themselves, or ``shown`` when the ranking key is something else (popularity).
    """
    order = np.lexsort((np.arange(len(scores)), -scores))
    order = order[np.isfinite(scores[order])][:n]
    raw = model.item_vocab_.ids(order)
    values = (scores if shown is None else shown)[order].astype(np.float64)
    lo, hi = model.rating_range_
    return pd.DataFrame({
        "user": [user] * len(order), "rank": np.arange(1, len(order) + 1), "item": raw,
        "score": np.clip(values, lo, hi), "title": model.titles(raw),
        "tier": [tier] * len(order)})


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
    grouped = group_ratings(model.item_vocab_, ratings, user_col, item_col, rating_col,
                            what="item", rating_range=model.rating_range_)
    return _fold_grouped(model, grouped, reg, prior, n_iter)


def _fold_grouped(model: Any, grouped: tuple[np.ndarray, ...], reg: Reg, prior: Prior,
                  n_iter: int) -> FoldedUsers:
    keys, rows, items, values, n_unknown = grouped
    order = np.argsort(rows, kind="stable")
    cuts = np.cumsum(np.bincount(rows, minlength=len(keys)))[:-1]
    rated = tuple(zip(np.split(model.item_vocab_.ids(items[order]), cuts),
                      np.split(values[order], cuts), strict=True)) if len(keys) else ()
    vecs, biases = fold_rows(model, rows, items, values, len(keys), reg, prior, n_iter)
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
    x = fold_item_row(model, rows, uidx, vals, reg, prior, n_iter)
    return FoldedItem(model, x[:-1], float(x[-1]), int(len(vals)), int(n_unknown[0]))


def default_reg_scale(model: Any) -> float:
    r"""The factor :math:`c\,\mathrm{wd}\sqrt{S}\,\sigma` of an AdamW-trained model's matched
    penalty (:meth:`~collabkit.models.mf.TorchRecommender.adamw_reg_scale`)."""
    return float(model.adamw_reg_scale())
