"""Item biases: which items the model rates above or below what their factors explain."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from collabkit.errors import ConfigError
from collabkit.models.capabilities import FactorModel
from collabkit.recommend.onboarding import item_counts


def _learned(model: Any) -> dict[str, Any] | None:
    """The four tables of a factor model as float64 numpy, or None for other models."""
    if not isinstance(model, FactorModel):
        return None
    t = model.factor_tables()

    def np64(x: Any) -> np.ndarray:
        return x.detach().cpu().double().numpy()

    return {"P": np64(t.user_factors), "Q": np64(t.item_factors), "bu": np64(t.user_bias),
            "bi": np64(t.item_bias), "g": t.global_bias, "y_range": t.y_range}



def item_biases(model: Any, n: int = 10, *, min_ratings: int = 20) -> pd.DataFrame:
    """The items with the lowest and the highest learned bias.

    A high bias means an item is rated higher than its latent factors alone explain: people
    like it *more than its kind of movie* (the fast.ai chapter's reading); a low bias, less.
    Only items with at least ``min_ratings`` training ratings are listed, because the bias of
    a rarely rated item is mostly noise and weight decay.

    Factor models use their learned item bias (``source="learned"``; BiasedMF's is in logit
    units when it has a ``y_range``, BiasedALS's in rating units); other models fall back to
    the damped baseline bias ``item_bias_base_`` (``source="baseline"``, in rating units).

    Parameters
    ----------
    model : Recommender
        A fitted model.
    n : int
        Items at each end.
    min_ratings : int
        Fewest training ratings an item needs to be listed.

    Returns
    -------
    pandas.DataFrame
        ``end`` (``"lowest"`` / ``"highest"``), ``rank`` (1 = most extreme), ``item``,
        ``title``, ``bias``, ``n_ratings``, ``damped_mean``, ``source``; lowest first.

    Raises
    ------
    ConfigError
        If no item has ``min_ratings`` ratings.
    """
    counts = item_counts(model)
    learned = _learned(model)
    bias, source = ((learned["bi"], "learned") if learned is not None
                    else (np.asarray(model.item_bias_base_, dtype=np.float64), "baseline"))
    cand = np.flatnonzero(counts >= min_ratings)
    if cand.size == 0:
        raise ConfigError(f"no item has min_ratings={min_ratings} training ratings (the most "
                          f"rated has {int(counts.max())}); lower min_ratings")
    order = cand[np.lexsort((cand, bias[cand]))]
    k = min(int(n), len(order))
    frames = []
    for end, picks in (("lowest", order[:k]), ("highest", order[::-1][:k])):
        raw = model.item_vocab_.ids(picks)
        frames.append(pd.DataFrame({
            "end": end, "rank": np.arange(1, len(picks) + 1), "item": raw,
            "title": model.titles(raw), "bias": bias[picks], "n_ratings": counts[picks],
            "damped_mean": model.global_mean_ + model.item_bias_base_[picks],
            "source": source}))
    return pd.concat(frames, ignore_index=True)
