"""Nearest items by cosine similarity of the item factors (or embeddings)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from collabkit.models.capabilities import item_vectors
from collabkit.recommend.onboarding import item_counts


def similar_items(model: Any, item: Any, n: int = 10, *, min_ratings: int = 0) -> pd.DataFrame:
    r"""The ``n`` items whose factors point most nearly the same way as ``item``'s.

    Similarity is the cosine :math:`q_i^\top q_j / (\lVert q_i\rVert \lVert q_j\rVert)` of the
    item factors (embeddings for kind ``"nn"``); the item itself is left out.

    Parameters
    ----------
    model : BiasedMF or MLPRecommender
    item : raw item id
    n : int
    min_ratings : int
        Only list items with at least this many training ratings.

    Returns
    -------
    pandas.DataFrame
        ``rank``, ``item``, ``title``, ``similarity``, ``n_ratings``.

    Raises
    ------
    UnknownIdError
        If ``item`` is not in the model (the message names it and the id type expected).
    ConfigError
        If the model has no item factors.
    """
    factors = item_vectors(model, "similar_items")
    j = int(model.item_vocab_.index_strict([item], what="item")[0])
    counts = item_counts(model)
    norms = np.linalg.norm(factors, axis=1)
    sim = factors @ factors[j] / np.maximum(norms * norms[j], 1e-12)
    sim[j] = -np.inf
    sim[counts < min_ratings] = -np.inf
    order = np.lexsort((np.arange(len(sim)), -sim))
    order = order[np.isfinite(sim[order])][: int(n)]
    raw = model.item_vocab_.ids(order)
    return pd.DataFrame({"rank": np.arange(1, len(order) + 1), "item": raw,
                         "title": model.titles(raw), "similarity": sim[order],
                         "n_ratings": counts[order]})
