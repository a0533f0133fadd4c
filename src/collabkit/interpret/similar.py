"""Nearest items (and users) by cosine similarity of centred factors (or embeddings).

Raw factors of a trained model share a common direction (every item's vector leans toward
what the average user likes), so plain cosines crowd together: on ml-100k with the default
BiasedMF the five nearest films to Silence of the Lambs all lay between 0.972 and 0.983, and
films with 22 and 27 ratings made the list. Subtracting the mean row before the cosine
compares what is particular to each item; the default ``min_ratings="auto"`` leaves out
items with too few ratings for their factors to mean much (issue 12).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from collabkit.errors import ConfigError, NotSupportedError
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


def similar_items(model: Any, item: Any, n: int = 10, *, min_ratings: int | str = "auto",
                  centre: bool = True) -> pd.DataFrame:
    r"""The ``n`` items whose factors point most nearly the same way as ``item``'s.

    Similarity is the cosine of the item factors (embeddings for kind ``"nn"`` and
    ``"module"``) after subtracting the mean item row, :math:`\bar q`:
    :math:`\cos(q_i - \bar q,\; q_j - \bar q)`; the item itself is left out.

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
    centre : bool
        False gives the plain cosine of the raw factors (collabkit before issue 12).

    Returns
    -------
    pandas.DataFrame
        ``rank``, ``item``, ``title``, ``similarity``, ``n_ratings``.

    Raises
    ------
    UnknownIdError
        ``item`` is neither an item of the model nor a title that names one.
    NotSupportedError
        The model has no item factors.
    """
    factors = item_vectors(model, "similar_items")
    raw_item = find_item(model, item)
    j = int(model.item_vocab_.index_strict([raw_item], what="item")[0])
    counts = item_counts(model)
    sim = centred_cosine(factors, j, centre)
    order = _rank(sim, j, counts >= _min_ratings(min_ratings, counts), n)
    raw = model.item_vocab_.ids(order)
    return pd.DataFrame({"rank": np.arange(1, len(order) + 1), "item": raw,
                         "title": model.titles(raw), "similarity": sim[order],
                         "n_ratings": counts[order]})


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
