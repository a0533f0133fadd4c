"""Principal components of the item factors (or embeddings)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from collabkit.errors import ConfigError
from collabkit.models.capabilities import item_vectors
from collabkit.recommend.onboarding import item_counts


@dataclass(frozen=True)
class PCAResult:
    """Principal components of the item factors (see :func:`pca`).

    Attributes
    ----------
    components : numpy.ndarray
        ``(n_components, k)`` unit directions in factor space.
    explained_variance_ratio : numpy.ndarray
        Share of the total variance of the (centred) factors along each component.
    coords : pandas.DataFrame
        One row per item used: ``item``, ``title``, ``n_ratings``, ``pc1`` … ``pcN``.
    extremes : pandas.DataFrame
        ``component`` (1-based), ``end`` (``"low"``/``"high"``), ``rank``, ``item``,
        ``title``, ``coord``: the items at both ends of each component.
    """

    components: np.ndarray = field(repr=False)
    explained_variance_ratio: np.ndarray
    coords: pd.DataFrame = field(repr=False)
    extremes: pd.DataFrame = field(repr=False)

    def titles_at(self, component: int, end: Literal["low", "high"]) -> list[str]:
        """Titles (or ids where there is no title) at one end of a 1-based component."""
        e = self.extremes
        rows = e[(e["component"] == component) & (e["end"] == end)]
        if rows.empty:
            raise ConfigError(f"component must be in 1..{len(self.components)}, got {component}")
        return [str(t) if t is not None else str(i) for t, i in zip(rows["title"], rows["item"],
                                                                     strict=True)]


def pca(model: Any, n_components: int = 3, *, min_ratings: int = 20, max_items: int = 1000,
        n_extreme: int = 10) -> PCAResult:
    r"""PCA of the item factors of the most-rated items, by numpy SVD (no scikit-learn).

    The factors :math:`Q` of the ``max_items`` most-rated items with at least
    ``min_ratings`` ratings are centred, :math:`Q - \bar Q = U S V^\top`, and the items are
    placed at :math:`U S` (their coordinates along the rows of :math:`V^\top`). The sign of
    each component is fixed so that the most popular item of the pool has a non-negative
    coordinate, so results are stable across runs of the same model.

    Parameters
    ----------
    model : BiasedMF or MLPRecommender
    n_components : int
        Components to keep (at most the factor dimension).
    min_ratings, max_items : int
        Which items enter: fastai's chapter uses the 1,000 most rated.
    n_extreme : int
        Items listed at each end of each component.

    Returns
    -------
    PCAResult

    Raises
    ------
    ConfigError
        If the model has no item factors, ``n_components`` is out of range, or fewer than
        two items qualify.
    """
    factors = item_vectors(model, "pca")
    counts = item_counts(model)
    cand = np.flatnonzero(counts >= min_ratings)
    cand = cand[np.lexsort((cand, -counts[cand]))][: int(max_items)]
    if cand.size < 2:
        raise ConfigError(f"only {cand.size} items have min_ratings={min_ratings} ratings; "
                          "PCA needs at least 2, lower min_ratings")
    limit = min(factors.shape[1], cand.size)
    if not 1 <= int(n_components) <= limit:
        raise ConfigError(f"n_components must be in 1..{limit}, got {n_components}")
    x = factors[cand] - factors[cand].mean(0)
    u, s, vt = np.linalg.svd(x, full_matrices=False)
    nc = int(n_components)
    coords = u[:, :nc] * s[:nc]
    signs = np.where(coords[0] < 0, -1.0, 1.0)  # cand[0] is the most rated item
    coords, vt = coords * signs, vt[:nc] * signs[:, None]
    ratio = s[:nc] ** 2 / max(float((s**2).sum()), 1e-300)
    raw = model.item_vocab_.ids(cand)
    titles = model.titles(raw)
    table = pd.DataFrame({"item": raw, "title": titles, "n_ratings": counts[cand]})
    for c in range(nc):
        table[f"pc{c + 1}"] = coords[:, c]
    rows = []
    k = min(int(n_extreme), cand.size)
    for c in range(nc):
        order = np.argsort(coords[:, c], kind="stable")
        for end, picks in (("low", order[:k]), ("high", order[::-1][:k])):
            for r, j in enumerate(picks, start=1):
                rows.append((c + 1, end, r, raw[j], titles[j], float(coords[j, c])))
    extremes = pd.DataFrame(rows, columns=["component", "end", "rank", "item", "title",
                                           "coord"])
    return PCAResult(vt, ratio, table, extremes)
