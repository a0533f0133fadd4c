"""Recommendations for a new user, with a fallback chain that says which tier answered.

=============  =====================================  ==========================================
tier           when                                   score
=============  =====================================  ==========================================
popularity     no ratings of known items              damped-bias prediction for an average
                                                      user ``global_mean_ + item_bias_base_``;
                                                      ranked by number of training ratings
bias           fewer than ``min_personal`` ratings    damped-bias prediction
                                                      ``global_mean_ + b_u + item_bias_base_``
personal       ``min_personal`` or more ratings       fold-in prediction (:mod:`.foldin`,
                                                      ``reg="population"``)
=============  =====================================  ==========================================

Only ratings of items the model knows count toward the tier. Items the user rated are never
recommended. In every tier ``score`` is a predicted rating on the model's scale, clipped to its
rating range (issue 8: it never holds rating counts).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
import pandas as pd

from collabkit.errors import ConfigError
from collabkit.models._topk import top_frame
from collabkit.models.capabilities import can_fold_in
from collabkit.recommend.foldin import (
    Reg,
    fold_in_user,
)
from collabkit.recommend.inputs import group_arrays, ratings_pairs
from collabkit.recommend.onboarding import item_counts

__all__ = ["recommend_new_user", "Tier", "DEFAULT_MIN_PERSONAL"]

Tier = Literal["popularity", "bias", "personal"]

#: ratings needed before the fold-in answers. On ml-100k (docs/coldstart.md) the fold-in
#: matches the bias tier at 1-5 ratings and beats it on both RMSE and NDCG@10 from 10; below 5
#: the damped means are as good and far cheaper to explain.
DEFAULT_MIN_PERSONAL = 5


def recommend_new_user(model: Any, ratings: Mapping[Any, float] | pd.Series | pd.DataFrame |
                       None = None, n: int = 10, *, min_personal: int = DEFAULT_MIN_PERSONAL,
                       min_count: int = 5, exclude: Any = None, user: Any = "new",
                       reg: Reg = "population") -> pd.DataFrame:
    """Top-``n`` items for a user the model never saw, from whatever ratings they gave.

    Parameters
    ----------
    model : Recommender
        A fitted model. The ``personal`` tier needs a model with fold-in (BiasedMF,
        MLPRecommender); other models stop at the ``bias`` tier.
    ratings : mapping, Series, DataFrame or None
        ``{raw_item_id: rating}`` (or a Series / a DataFrame with ``item`` and ``rating``).
    n : int
        Number of items.
    min_personal : int
        Ratings of known items needed for the ``personal`` tier.
    min_count : int
        Fewest training ratings an item needs in the ``bias`` tier (damped means of items
        with a handful of ratings are still noisy).
    exclude : sequence of item ids, optional
        Items never to recommend (rated items are always excluded).
    user : hashable
        Label for the ``user`` column.
    reg : "population", "matched" or float
        Fold-in penalty (:func:`~collabkit.recommend.foldin.fold_in_user`); the population
        prior predicts new users best.

    Returns
    -------
    pandas.DataFrame
        ``user``, ``rank``, ``item``, ``score``, ``title``, ``tier`` (the shape of
        :meth:`Recommender.recommend`); ``attrs["n_unknown_items_ignored"]`` counts the
        rated items the model does not know.

    Raises
    ------
    ConfigError
        If ``n`` or ``min_personal`` is below 1.
    DataError
        If a rating is not a finite number, lies outside the model's ``rating_range_`` or an
        item is rated twice.
    """
    model.check_fitted()
    if int(n) < 1:
        raise ConfigError(f"n must be at least 1, got {n}")
    if int(min_personal) < 1:
        raise ConfigError(f"min_personal must be at least 1, got {min_personal}")
    ids, values = (np.array([]), np.array([])) if ratings is None else ratings_pairs(
        ratings, key="item")
    _, _, idx, vals, n_unknown = group_arrays(model.item_vocab_, np.array([user]),
                                               np.zeros(len(ids), np.int64), ids, values,
                                               what="item", rating_range=model.rating_range_)
    counts = item_counts(model).astype(np.float64)
    banned = np.zeros(len(counts), dtype=bool)
    banned[idx] = True
    if exclude is not None:
        ex = model.item_vocab_.index(np.atleast_1d(np.asarray(exclude)))
        banned[ex[ex >= 0]] = True
    tier: Tier
    shown = None
    if len(idx) == 0:
        tier, scores = "popularity", counts.copy()
        shown = model.global_mean_ + model.item_bias_base_
    elif len(idx) < min_personal or not can_fold_in(model):
        tier = "bias"
        bi = model.item_bias_base_
        bu = float(np.sum(vals - model.global_mean_ - bi[idx])) / (len(idx) + 5.0)
        lo, hi = model.rating_range_
        scores = np.clip(model.global_mean_ + bu + bi, lo, hi)
        banned |= counts < min_count
    else:
        tier = "personal"
        raw = model.item_vocab_.ids(idx)
        scores = fold_in_user(model, dict(zip(raw.tolist(), vals.tolist(), strict=True)),
                              reg=reg).scores()
    out = top_frame(model, np.where(banned, -np.inf, scores), int(n), user, tier, shown)
    out.attrs["n_unknown_items_ignored"] = int(n_unknown[0])
    return out

