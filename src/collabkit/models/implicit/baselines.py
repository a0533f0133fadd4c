"""The two baselines printed beside every implicit-feedback score: popularity and item-kNN."""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from collabkit.data.interactions import Interactions
from collabkit.errors import ConfigError
from collabkit.models.implicit._base import ImplicitRecommender

__all__ = ["Popularity", "ItemKNN"]


class Popularity(ImplicitRecommender):
    """Every user gets the items most users interacted with (kind ``"popularity"``)."""

    kind = "popularity"

    def __init__(self) -> None:
        pass

    def _fit(self, data: Interactions, u: np.ndarray, i: np.ndarray,
             valid: Interactions | None) -> None:
        self.fit_seconds_ = 0.0

    @torch.no_grad()
    def _score_rows(self, x: sp.csr_matrix) -> torch.Tensor:
        pop = torch.as_tensor(self.item_popularity_, dtype=torch.float32)
        return pop.expand(x.shape[0], -1).clone()

    def _item_similarity(self, item: Any) -> np.ndarray:
        return self.item_popularity_.copy()

    def _state_tensors(self) -> dict[str, torch.Tensor]:
        return {}

    def _load_state(self, tensors: dict[str, torch.Tensor], extra: dict[str, Any]) -> None:
        self._load_common(extra)


class ItemKNN(ImplicitRecommender):
    r"""Item-based k-nearest neighbours on cosine similarity (kind ``"itemknn"``).

    :math:`s_{ij} = \frac{c_{ij}}{\sqrt{n_i n_j} + \text{shrink}}` with :math:`c_{ij}` the
    number of users who interacted with both items. A user's score for item :math:`j` is
    :math:`\sum_{i \in u \cap N(j)} s_{ij}`, with :math:`N(j)` the ``n_neighbors`` items most
    similar to the *candidate* :math:`j` (the pruning of Dacrema et al.'s ItemKNNCF, the
    baseline behind the published gowalla figure). Issue 13: pruning each *seen* item's list
    instead scored Recall@20 0.1582 / NDCG@20 0.1051 against 0.1685 / 0.1123 on a validation
    carve of gowalla's train.txt (200 neighbours; 50: 0.1494 / 0.1009 against 0.1662 /
    0.1125).

    The defaults were chosen by ``benchmarks/implicit_defaults.py`` (``collabkit tune`` on
    training rows of ml-100k, ml-latest-small and gowalla; results in
    ``benchmarks/results/implicit-defaults.md``).

    Parameters
    ----------
    n_neighbors : int, default 150
    shrink : float, default 18.0
    recency : float or None, default None
        Half-life, in interactions, of a past interaction's weight when scoring (needs
        timestamps); ``None`` weighs all alike. See :class:`ImplicitRecommender`.
    """

    kind = "itemknn"

    def __init__(self, *, n_neighbors: int = 150, shrink: float = 18.0,
                 recency: float | None = None) -> None:
        self.n_neighbors = n_neighbors
        self.shrink = shrink
        self.recency = recency

    def _fit(self, data: Interactions, u: np.ndarray, i: np.ndarray,
             valid: Interactions | None) -> None:
        if not isinstance(self.n_neighbors, int | np.integer) or self.n_neighbors < 1:
            raise ConfigError(f"n_neighbors must be a positive integer, got {self.n_neighbors!r}")
        if not (isinstance(self.shrink, int | float) and math.isfinite(self.shrink)
                and self.shrink >= 0):
            raise ConfigError(f"shrink must be a number >= 0, got {self.shrink!r}")
        start = time.perf_counter()
        x = self._train_matrix(values=False)
        x.data[:] = 1.0
        co = (x.T @ x).tocsr()
        co.setdiag(0)
        co.eliminate_zeros()
        n = np.sqrt(np.asarray(x.sum(axis=0)).ravel())
        rows = np.repeat(np.arange(co.shape[0]), np.diff(co.indptr))
        co.data = (co.data / (n[rows] * n[co.indices] + float(self.shrink))).astype(np.float32)
        # co is symmetric: each row's largest entries, transposed, are each column's
        self.similarity_ = _top_per_row(co, int(self.n_neighbors)).T.tocsr()
        self.fit_seconds_ = time.perf_counter() - start

    @torch.no_grad()
    def _score_rows(self, x: sp.csr_matrix) -> torch.Tensor:
        return torch.as_tensor((x @ self.similarity_).toarray(), dtype=torch.float32)

    def _item_similarity(self, item: Any) -> np.ndarray:
        j = int(self.item_vocab_.index_strict([item], what="item")[0])
        return self.similarity_[j].toarray().ravel()

    def _state_tensors(self) -> dict[str, torch.Tensor]:
        return {**self._csr_tensors("itemknn.similarity", self.similarity_),
                **self._recency_tensors()}

    def _load_state(self, tensors: dict[str, torch.Tensor], extra: dict[str, Any]) -> None:
        n = len(self.item_vocab_)
        self.similarity_ = self._csr_from_tensors("itemknn.similarity", tensors, (n, n))
        self._load_common(extra)
        self._load_recency(tensors, extra)


def _top_per_row(m: sp.csr_matrix, k: int) -> sp.csr_matrix:
    """Keep the ``k`` largest entries of each row of a CSR matrix (ties: lower column first)."""
    counts = np.diff(m.indptr)
    if counts.max(initial=0) <= k:
        return m
    rows = np.repeat(np.arange(m.shape[0]), counts)
    # sort each row by value descending: one global lexsort on (-value, row)
    order = np.lexsort((m.indices, -m.data, rows))
    rank = np.arange(len(order)) - np.repeat(m.indptr[:-1], counts)
    keep = order[rank < k]
    return sp.csr_matrix((m.data[keep], (rows[keep], m.indices[keep])), shape=m.shape,
                         dtype=np.float32)
