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

import math
import weakref
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch

from collabkit.data.checks import refuse_outside_range
from collabkit.data.vocab import as_id_array
from collabkit.errors import ConfigError, DataError, UnknownIdError
from collabkit.models.capabilities import EmbeddingModel, FactorModel, FoldRows, require
from collabkit.runtime import threads
from collabkit.train.rowsolve import (
    GN_STEPS,
    FrozenSide,
    population_prior,
    solve_rows_gn,
)
from collabkit.train.rowsolve import RowPenalty as _Penalty

__all__ = [
    "FoldedUser",
    "FoldedItem",
    "FoldedUsers",
    "fold_in_user",
    "fold_in_users",
    "fold_in_item",
    "default_reg_scale",
]

Ratings = Mapping[Any, float] | pd.Series | pd.DataFrame
Reg = float | Literal["matched", "population"]
Prior = Literal["mean", "zero"]


# --------------------------------------------------------------------------- results
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
        return _score_user_rows(self.model, self.vector[None, :], np.array([self.bias]))[0]

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
        side = _frozen_side(self.model, "users")
        return _squash(side, side.factors.astype(np.float64) @ self.vector + side.bias
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
        return _score_user_rows(self.model, self.vectors, self.biases)

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
    _check_options(reg, n_iter, prior)
    ids, values = _ratings_pairs(ratings, key="item")
    grouped = _group_arrays(model.item_vocab_, np.array([0]), np.zeros(len(ids), np.int64),
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
    _check_options(reg, n_iter, prior)
    for col in (user_col, item_col, rating_col):
        if col not in ratings.columns:
            raise DataError(f"column {col!r} not found; columns are {list(ratings.columns)}")
    grouped = _group(model.item_vocab_, ratings, user_col, item_col, rating_col, what="item",
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
    _check_options(reg, n_iter, prior)
    require(model, FactorModel, "fold_in_item")
    users, values = _ratings_pairs(ratings, key="user")
    _, rows, uidx, vals, n_unknown = _group_arrays(
        model.user_vocab_, np.array([0]), np.zeros(len(users), np.int64), users, values,
        what="user", rating_range=model.rating_range_)
    side = _frozen_side(model, "users", "fold_in_item")
    penalty = _make_penalty(model, side, reg, prior, "items", FoldRows(rows, uidx, 1))
    x = _solve_rows(side, rows, uidx, vals, 1, penalty, n_iter)[0]
    return FoldedItem(model, x[:-1], float(x[-1]), int(len(vals)), int(n_unknown[0]))


def default_reg_scale(model: Any) -> float:
    r"""The factor :math:`c\,\mathrm{wd}\sqrt{S}\,\sigma` of an AdamW-trained model's matched
    penalty (:meth:`~collabkit.models.mf.TorchRecommender.adamw_reg_scale`)."""
    return float(model.adamw_reg_scale())


# --------------------------------------------------------------------------- input handling
def _check_options(reg: Reg, n_iter: int, prior: Prior) -> None:
    named = isinstance(reg, str) and reg in ("matched", "population")
    number = isinstance(reg, int | float) and not isinstance(reg, bool) and math.isfinite(reg) \
        and reg >= 0
    if not (named or number):
        raise ConfigError(f"reg must be 'population', 'matched' or a number >= 0, got {reg!r}")
    if prior not in ("mean", "zero"):
        raise ConfigError(f"prior must be 'mean' or 'zero', got {prior!r}")
    if not isinstance(n_iter, int | np.integer) or n_iter < 0:
        raise ConfigError(f"n_iter must be an integer >= 0, got {n_iter!r}")


def _ratings_pairs(ratings: Ratings, *, key: Literal["item", "user"]) -> tuple[np.ndarray,
                                                                               np.ndarray]:
    """(raw ids, ratings) from a mapping, a Series or a two-column DataFrame."""
    if isinstance(ratings, pd.DataFrame):
        for col in (key, "rating"):
            if col not in ratings.columns:
                raise DataError(f"column {col!r} not found; columns are "
                                f"{list(ratings.columns)}. Pass a DataFrame with columns "
                                f"{key!r} and 'rating', or a {{{key}: rating}} mapping")
        return ratings[key].to_numpy(), ratings["rating"].to_numpy(dtype=np.float64)
    if isinstance(ratings, pd.Series):
        return ratings.index.to_numpy(), ratings.to_numpy(dtype=np.float64)
    if isinstance(ratings, Mapping):
        ids = list(ratings.keys())
        try:
            vals = np.asarray([float(v) for v in ratings.values()], dtype=np.float64)
        except (TypeError, ValueError):
            raise DataError(f"ratings must be numbers; got {list(ratings.values())[:5]!r}"
                            ) from None
        # pandas infers one dtype for uniform ids and keeps mixed ones as objects
        return pd.Index(ids).to_numpy(), vals
    raise DataError(f"ratings must be a {{{key}: rating}} mapping, a Series or a DataFrame, "
                    f"got {type(ratings).__name__}")


def _group(vocab: Any, frame: pd.DataFrame, key_col: str, id_col: str, rating_col: str,
           *, what: str, rating_range: tuple[float, float] | None = None
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Split a long table by key: see :func:`_group_arrays`."""
    codes, keys = pd.factorize(frame[key_col], sort=False)
    return _group_arrays(vocab, np.asarray(keys), codes, frame[id_col].to_numpy(),
                         frame[rating_col].to_numpy(dtype=np.float64), what=what,
                         rating_range=rating_range)


def _group_arrays(vocab: Any, keys: np.ndarray, codes: np.ndarray, ids: np.ndarray,
                  values: np.ndarray, *, what: str,
                  rating_range: tuple[float, float] | None = None
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(keys, row number per known rating, dense ids, ratings, unknown count per key).

    Ratings must be finite and, given the model's ``rating_range``, inside it (issue 8).
    """
    if not np.isfinite(values).all():
        bad = int(np.flatnonzero(~np.isfinite(values))[0])
        raise DataError(f"rating {values[bad]!r} for {what} {ids[bad]!r} is not a finite "
                        "number; drop or fix it before folding in")
    if rating_range is not None:
        refuse_outside_range(values, ids, what, rating_range)
    idx = vocab.index(ids)
    known = idx >= 0
    codes = np.asarray(codes, dtype=np.int64)
    pair = codes[known] * (len(vocab) + 1) + idx[known]
    uniq, first, cnt = np.unique(pair, return_index=True, return_counts=True)
    if uniq.size < pair.size:
        j = int(np.flatnonzero(known)[first[np.argmax(cnt > 1)]])
        raise DataError(f"{what} {ids[j]!r} is rated twice (by {keys[codes[j]]!r}); keep one "
                        f"rating per {what}")
    n_unknown = np.bincount(codes[~known], minlength=len(keys))
    return keys, codes[known], idx[known], values[known], n_unknown


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
