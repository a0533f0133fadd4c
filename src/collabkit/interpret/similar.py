"""Nearest items: by co-rating (adjusted cosine of the training ratings) or by factors.

Issue 12. The factors of a trained model make poor neighbours on their own: raw factors share
a common direction (every item's vector leans toward what the average user likes), and the
default BiasedMF (``wd="auto"``) regularises its item factors down to about five useful
directions, so even centred cosines crowd together (the five nearest films to Silence of the
Lambs on ml-100k lay within 0.015 of each other, 0.979-0.993). The default similarity is
therefore read from the ratings the model was trained on, which every model stores: the
adjusted cosine shrunk by the number of users who rated both
(:func:`collabkit.interpret.corating.adjusted_cosine`). ``similarity="factors"`` keeps the
cosine of the centred factors. ``min_ratings="auto"`` leaves out items with too few ratings
for either to mean much. Users are compared by their centred factors.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd

from collabkit.errors import ConfigError, NotSupportedError
from collabkit.interpret.corating import (
    DEFAULT_SHRINK,
    adjusted_cosine,
    co_raters,
    has_rating_signal,
)
from collabkit.interpret.lookup import find_item
from collabkit.models.capabilities import EmbeddingModel, FactorModel, item_vectors
from collabkit.recommend.onboarding import item_counts

__all__ = ["similar_items", "similar_users", "auto_min_ratings", "centred_cosine"]


def auto_min_ratings(counts: np.ndarray) -> int:
    """50 ratings, or the 75th percentile of the counts when that is lower (small data).

    >>> auto_min_ratings(np.array([1, 2, 3, 4, 100, 200, 300, 400]))
    50
    >>> auto_min_ratings(np.array([1, 2, 3, 4, 5, 6, 7, 8]))
    6
    """
    if not len(counts):
        return 0
    return int(min(50, max(1, int(np.quantile(counts, 0.75)))))


def _min_ratings(value: Any, counts: np.ndarray) -> int:
    if isinstance(value, str):
        if value != "auto":
            raise ConfigError(f"min_ratings must be 'auto' or a number, got {value!r}")
        return auto_min_ratings(counts)
    return int(value)


def centred_cosine(table: np.ndarray, j: int, centre: bool = True) -> np.ndarray:
    """Cosine of every row of ``table`` with row ``j``, after subtracting the mean row."""
    x = table - table.mean(axis=0) if centre else table
    norms = np.linalg.norm(x, axis=1)
    return x @ x[j] / np.maximum(norms * norms[j], 1e-12)


def _rank(sim: np.ndarray, j: int, keep: np.ndarray, n: int) -> np.ndarray:
    sim = sim.copy()
    sim[j] = -np.inf
    sim[~keep] = -np.inf
    order = np.lexsort((np.arange(len(sim)), -sim))
    return order[np.isfinite(sim[order])][: int(n)]


Similarity = Literal["auto", "ratings", "factors"]


def _similarity(model: Any, factors: np.ndarray, j: int, similarity: str, shrink: float,
                centre: bool) -> tuple[np.ndarray, np.ndarray]:
    """(similarity to item ``j``, co-raters) by the chosen measure."""
    if similarity not in ("auto", "ratings", "factors"):
        raise ConfigError(f"similarity must be 'auto', 'ratings' or 'factors', got "
                          f"{similarity!r}")
    if not shrink >= 0:
        raise ConfigError(f"shrink must be a number of co-raters >= 0, got {shrink!r}")
    if similarity == "ratings" or (similarity == "auto" and has_rating_signal(model)):
        if model.seen_ratings_ is None:
            raise NotSupportedError("similarity='ratings' needs the training ratings, which "
                                    "this model file predates; use similarity='factors' or "
                                    "retrain and save the model again")
        return adjusted_cosine(model, j, shrink)
    return centred_cosine(factors, j, centre), co_raters(model, j)


def similar_items(model: Any, item: Any, n: int = 10, *, min_ratings: int | str = "auto",
                  similarity: Similarity = "auto", shrink: float = DEFAULT_SHRINK,
                  centre: bool = True) -> pd.DataFrame:
    r"""The ``n`` items most similar to ``item``.

    By default (``similarity="auto"`` on a model trained on varied ratings) the similarity is
    ``"ratings"``: the *adjusted cosine* of the training ratings, shrunk by co-support.
    With :math:`e_{ui} = r_{ui} - \bar r_u` (a rating minus its user's mean) and
    :math:`U_{ij}` the :math:`n_{ij}` users who rated both items,

    .. math::

        s_{ij} = \frac{n_{ij}}{n_{ij} + \lambda}
                 \frac{\sum_{U_{ij}} e_{ui} e_{uj}}
                      {\sqrt{\sum_{U_{ij}} e_{ui}^2 \sum_{U_{ij}} e_{uj}^2}}.

    The fraction is the correlation, over the users who rated both, of how far each film
    sits above or below those users' own averages; the factor :math:`n/(n+\lambda)` pulls
    pairs few users rated together toward 0. So 0.6 means strong agreement backed by
    hundreds of shared users; 0, no shared users or no tendency either way; negative,
    the films tend to be rated on opposite sides of the user's average. It reads
    the ratings the model stores (``seen_ratings_``); nothing extra is trained or saved.

    ``similarity="factors"`` gives the cosine of the item factors (embeddings for kind
    ``"nn"`` and ``"module"``) after subtracting the mean item row :math:`\bar q`:
    :math:`\cos(q_i - \bar q,\; q_j - \bar q)`. It bunches near 1 when the factors have
    few effective directions, as the default BiasedMF's (``wd="auto"``) do: on ml-100k the
    top five for Silence of the Lambs span 0.014 by factors and 0.100 by ratings.

    Parameters
    ----------
    model : a model with item factors or embeddings
    item : raw item id, or a title (``"silence of the lambs"``: case, punctuation, a
        trailing article and the year do not matter; see
        :func:`collabkit.interpret.lookup.find_item`)
    n : int
    min_ratings : int or "auto"
        Only list items with at least this many training ratings; ``"auto"``: 50, or the
        75th percentile of the items' counts when lower (:func:`auto_min_ratings`).
    similarity : "auto", "ratings" or "factors"
        ``"auto"``: ``"ratings"`` when the model stores training ratings that vary within
        users' histories, else ``"factors"`` (implicit feedback, files before 0.1.0).
    shrink : float
        :math:`\lambda`, in co-raters (default 100, Koren 2010); 0 gives the plain
        adjusted cosine. Only used by ``"ratings"``.
    centre : bool
        ``"factors"`` only: False gives the plain cosine of the raw factors (collabkit
        before issue 12).

    Returns
    -------
    pandas.DataFrame
        ``rank``, ``item``, ``title``, ``similarity``, ``n_ratings``, ``shared`` (training
        users who rated both items).

    Raises
    ------
    UnknownIdError
        ``item`` is neither an item of the model nor a title that names one.
    NotSupportedError
        The model has no item factors, or ``similarity="ratings"`` on a model file that
        stores no training ratings.
    ConfigError
        ``similarity``, ``shrink`` or ``min_ratings`` is not one of the allowed values.

    """
    factors = item_vectors(model, "similar_items")
    raw_item = find_item(model, item)
    j = int(model.item_vocab_.index_strict([raw_item], what="item")[0])
    counts = item_counts(model)
    sim, shared = _similarity(model, factors, j, similarity, shrink, centre)
    order = _rank(sim, j, counts >= _min_ratings(min_ratings, counts), n)
    raw = model.item_vocab_.ids(order)
    return pd.DataFrame({"rank": np.arange(1, len(order) + 1), "item": raw,
                         "title": model.titles(raw), "similarity": sim[order],
                         "n_ratings": counts[order], "shared": shared[order]})


def _user_table(model: Any) -> np.ndarray:
    n_users = len(model.user_vocab_)
    if isinstance(model, FactorModel):
        return model.factor_tables().user_factors.detach().cpu().double().numpy()
    if isinstance(model, EmbeddingModel):
        emb = model.user_embedding()
        return emb.weight.detach().cpu().double().numpy()[:n_users]
    raise NotSupportedError(f"similar_users needs user factors or embeddings; "
                            f"{type(model).__name__} (kind {model.kind!r}) has none. Use a "
                            "BiasedMF or MLPRecommender")


def similar_users(model: Any, user: Any, n: int = 10, *, min_ratings: int = 0,
                  centre: bool = True) -> pd.DataFrame:
    """The ``n`` users nearest to ``user`` by centred cosine of the user factors.

    Returns
    -------
    pandas.DataFrame
        ``rank``, ``user``, ``similarity``, ``n_ratings``, ``shared`` (items both rated).

    Raises
    ------
    UnknownIdError
        ``user`` is not in the model.
    NotSupportedError
        The model has no user factors.
    """
    table = _user_table(model)
    j = int(model.user_vocab_.index_strict([user], what="user")[0])
    counts = np.diff(model.seen_indptr_)
    sim = centred_cosine(table, j, centre)
    order = _rank(sim, j, counts >= int(min_ratings), n)
    mine = set(model.seen_indices_[model.seen_indptr_[j]:model.seen_indptr_[j + 1]].tolist())
    shared = [len(mine.intersection(
        model.seen_indices_[model.seen_indptr_[k]:model.seen_indptr_[k + 1]].tolist()))
        for k in order]
    return pd.DataFrame({"rank": np.arange(1, len(order) + 1),
                         "user": model.user_vocab_.ids(order), "similarity": sim[order],
                         "n_ratings": counts[order], "shared": shared})
