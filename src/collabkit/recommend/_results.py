"""What fold-in returns: one folded user or item, or a block of folded users."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from collabkit.data.vocab import as_id_array
from collabkit.errors import ConfigError, UnknownIdError
from collabkit.models._topk import top_frame
from collabkit.recommend._solve import _frozen_side, _score_user_rows, _squash

__all__ = ["FoldedUser", "FoldedItem", "FoldedUsers"]


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
