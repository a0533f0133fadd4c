"""Full-ranking evaluation of implicit-feedback models: every unseen item is a candidate.

The protocol of the NGCF/LightGCN benchmarks and of RecBole's ``full`` mode: for each test user,
score *every* item the user has no training interaction with, take the top ``k``, and compare
with the user's test items. No sampled negatives (those are in :mod:`collabkit.metrics.sampled`,
only on request and labelled so). Scores are computed in user blocks (a
``(block, n_items)`` float32 matrix at a time) and the top ``k`` by ``torch.topk``; the metrics
are the vectorised batch forms of :mod:`collabkit.metrics.ranking`.

Metrics (averaged over the test users the model knows):

- ``recall``, ``ndcg``, ``hit_rate``, ``map`` at ``k`` (see :mod:`collabkit.metrics.ranking`);
- ``mrr``: reciprocal rank of the first relevant item in the top ``k`` (0 when none; MRR@k);
- ``coverage``: share of the catalog that appears in at least one top-``k`` list;
- ``mean_popularity``: mean, over every recommended slot, of the share of training users who
  interacted with the item (lower = less popularity-biased).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch

from collabkit.errors import ConfigError, DataError
from collabkit.metrics.ranking_batch import (
    _batch,
    _check_k,
    average_precision_batch,
    hit_rate_batch,
    ndcg_batch,
    recall_batch,
)

if TYPE_CHECKING:
    from collabkit.data.interactions import Interactions
    from collabkit.models.base import Recommender

__all__ = ["RankingResult", "evaluate_ranking", "topk_unseen", "reciprocal_rank_batch",
           "ranking_metrics"]


def reciprocal_rank_batch(rec_items: np.ndarray, test_users: np.ndarray,
                          test_items: np.ndarray, k: int | None = None) -> np.ndarray:
    """Per user, ``1 / rank`` of the first relevant item in the first ``k`` slots, else 0.

    Same inputs and conventions as :func:`collabkit.metrics.ranking.recall_batch`.
    """
    m = _batch(rec_items, test_users, test_items, k)
    first = np.argmax(m.hits, axis=1)
    return np.where(m.hits.any(axis=1), 1.0 / (first + 1), 0.0)


def topk_unseen(model: Recommender, users: np.ndarray, k: int, *, block: int = 2048
                ) -> np.ndarray:
    """Top-``k`` item indices for model user indices ``users``, training items left out.

    Returns an ``(len(users), k)`` int64 matrix, best first; ``-1`` pads a row when a user has
    fewer than ``k`` unseen items.
    """
    k, block = _check_k(k), _check_block(block)
    n_items = len(model.item_vocab_)
    kk = min(k, n_items)
    indptr, indices = model.seen_indptr_, model.seen_indices_
    out = np.full((len(users), k), -1, dtype=np.int64)
    for s in range(0, len(users), block):
        ub = np.asarray(users[s : s + block], dtype=np.int64)
        scores = model._score_users(ub).float()
        counts = indptr[ub + 1] - indptr[ub]
        rows = np.repeat(np.arange(len(ub)), counts)
        cols = indices[np.repeat(indptr[ub], counts) + _ragged(counts)]
        scores[torch.as_tensor(rows, device=scores.device),
               torch.as_tensor(cols, device=scores.device)] = -torch.inf
        val, idx = torch.topk(scores, kk, dim=1)
        top = idx.cpu().numpy()
        top[~np.isfinite(val.cpu().numpy())] = -1
        out[s : s + len(ub), :kk] = top
    return out


def _ragged(counts: np.ndarray) -> np.ndarray:
    total = int(counts.sum())
    return np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)


def ranking_metrics(rec: np.ndarray, test_users: np.ndarray, test_items: np.ndarray, k: int,
                    *, n_items: int, popularity: np.ndarray | None = None) -> dict[str, float]:
    """All full-ranking metrics of a recommendation matrix, averaged over its rows.

    ``rec`` row ``r`` holds the top items of evaluated user ``r``; ``test_users`` are row
    positions. Every row must have at least one test item.
    """
    if np.bincount(test_users, minlength=len(rec)).min(initial=1) == 0:
        raise DataError("every row of rec must have a test item; evaluate only test users")
    top = rec[:, :k]
    out = {
        "recall": float(recall_batch(rec, test_users, test_items, k).mean()),
        "ndcg": float(ndcg_batch(rec, test_users, test_items, None, k).mean()),
        "hit_rate": float(hit_rate_batch(rec, test_users, test_items, k).mean()),
        "map": float(average_precision_batch(rec, test_users, test_items, k).mean()),
        "mrr": float(reciprocal_rank_batch(rec, test_users, test_items, k).mean()),
        "coverage": float(np.unique(top[top >= 0]).size / max(1, n_items)),
    }
    if popularity is not None:
        out["mean_popularity"] = float(popularity[top[top >= 0]].mean()) if top.size else 0.0
    return out


@dataclass
class RankingResult:
    """Metrics of one model under full ranking, and how they were measured."""

    model: str
    k: int
    metrics: dict[str, float]
    n_users: int
    n_test: int
    skipped_users: int
    seconds: float
    extra: dict[str, float] = field(default_factory=dict)

    def __str__(self) -> str:
        m = " ".join(f"{key}@{self.k}={v:.4f}" if key in ("recall", "ndcg", "hit_rate", "map",
                                                          "mrr") else f"{key}={v:.4f}"
                     for key, v in self.metrics.items())
        return f"{self.model}: {m} ({self.n_users} users, full ranking)"


def evaluate_ranking(model: Recommender, test: Interactions, k: int = 20, *,
                     block: int = 2048) -> RankingResult:
    """Full-ranking metrics of a fitted model on ``test`` interactions.

    Each test user who is known to the model gets a top-``k`` over every item they have no
    training interaction with; test items the model never saw count as relevant but can never
    be found (they lower recall, as they should). Users the model never saw are skipped and
    counted in ``skipped_users``.

    Raises
    ------
    ConfigError
        ``k`` is not an integer >= 1.
    DataError
        No test user is known to the model.
    """
    k = _check_k(k)
    model._check_fitted()
    start = time.perf_counter()
    u = model.user_vocab_.index(test.user_vocab.ids(test.users))
    i = model.item_vocab_.index(test.item_vocab.ids(test.items))
    n_items = len(model.item_vocab_)
    known = u >= 0
    if not known.any():
        raise DataError("none of the test users is known to the model; full-ranking "
                        "evaluation needs test users who have training interactions")
    u, i = u[known], np.where(i[known] >= 0, i[known], n_items)  # unseen item: never found
    pairs = np.unique(np.stack([u, i], 1), axis=0)  # a repeated (user, item) counts once
    users, rows = np.unique(pairs[:, 0], return_inverse=True)
    rec = topk_unseen(model, users, k, block=block)
    pop = getattr(model, "item_popularity_", None)
    share = None if pop is None else np.asarray(pop, dtype=np.float64) / max(
        1, len(model.user_vocab_))
    metrics = ranking_metrics(rec, rows.ravel(), pairs[:, 1], k, n_items=n_items,
                              popularity=share)
    skipped = int(np.unique(test.users[~known]).size)
    return RankingResult(model=getattr(model, "kind", type(model).__name__) or
                         type(model).__name__, k=k, metrics=metrics, n_users=len(users),
                         n_test=int(len(pairs)), skipped_users=skipped,
                         seconds=time.perf_counter() - start)


def _check_block(block: int) -> int:
    if block < 1:
        raise ConfigError(f"block must be >= 1, got {block}")
    return block
