"""Sampled ranking metrics (the NCF protocol): each test item against ``n_neg`` sampled negatives.

He et al. 2017 (NCF) rank each held-out item among 99 items the user never interacted with and
report HR@K and NDCG@K over those 100 candidates. This is cheap, but Krichene and Rendle 2020
("On sampled metrics for item recommendation") show it can order models differently from full
ranking, so collabkit computes it **only when asked** and every key it returns starts with
``sampled_``. Full ranking (:mod:`collabkit.metrics.fullrank`) stays the default.

Ties count against the test item: its rank is the number of negatives scoring *at least* as
high as it, plus one (a model that scores everything equal gets rank ``n_neg + 1``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from collabkit.errors import ConfigError, DataError

if TYPE_CHECKING:
    from collabkit.data.interactions import Interactions
    from collabkit.models.base import Recommender

__all__ = ["sample_negatives", "sampled_metrics", "evaluate_sampled"]


def sample_negatives(seen_indptr: np.ndarray, seen_indices: np.ndarray, users: np.ndarray,
                     n_items: int, n_neg: int = 99, *, seed: int | None = 0) -> np.ndarray:
    """``n_neg`` distinct items per row of ``users`` that the user has not interacted with.

    ``seen_indptr``/``seen_indices`` are a CSR of every item each user must not get as a
    negative (training *and* test items). Returns an ``(len(users), n_neg)`` int64 matrix.

    Raises
    ------
    ConfigError
        ``n_neg`` < 1.
    DataError
        A user has fewer than ``n_neg`` items left to sample from.
    """
    if not isinstance(n_neg, int | np.integer) or n_neg < 1:
        raise ConfigError(f"n_neg must be an integer >= 1, got {n_neg!r}")
    rng = np.random.default_rng(seed)
    out = np.empty((len(users), n_neg), dtype=np.int64)
    for r, u in enumerate(np.asarray(users, dtype=np.int64)):
        seen = seen_indices[seen_indptr[u] : seen_indptr[u + 1]]
        free = n_items - np.unique(seen).size
        if free < n_neg:
            raise DataError(f"user index {u} has only {free} items it never interacted with; "
                            f"sampled metrics need n_neg={n_neg}: lower n_neg")
        # rejection sampling: draw a few more than needed until n_neg distinct unseen items
        picked: np.ndarray = np.empty(0, dtype=np.int64)
        while picked.size < n_neg:
            draw = rng.integers(0, n_items, 2 * n_neg)
            draw = draw[~np.isin(draw, seen)]
            picked = np.unique(np.concatenate([picked, draw]))
        out[r] = rng.permutation(picked)[:n_neg]
    return out


def sampled_metrics(scores: np.ndarray, k: int = 10) -> dict[str, float]:
    """HR@k and NDCG@k when column 0 of each row scores the test item and the rest negatives.

    Returns ``{"sampled_hr@k": ..., "sampled_ndcg@k": ..., "sampled_n_neg": ...}``: the
    averages over rows (one row per test interaction).
    """
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 2 or s.shape[1] < 2 or s.shape[0] == 0:
        raise DataError(f"scores must be (n_test, 1 + n_neg) with n_neg >= 1, got {s.shape}")
    if not isinstance(k, int | np.integer) or k < 1:
        raise ConfigError(f"k must be an integer >= 1, got {k!r}")
    pos = np.nan_to_num(s[:, :1], nan=-np.inf)
    neg = np.nan_to_num(s[:, 1:], nan=-np.inf)
    rank = (neg >= pos).sum(axis=1) + 1  # ties count against the test item
    hit = rank <= k
    return {f"sampled_hr@{k}": float(hit.mean()),
            f"sampled_ndcg@{k}": float(np.where(hit, 1.0 / np.log2(rank + 1), 0.0).mean()),
            "sampled_n_neg": float(s.shape[1] - 1)}


def evaluate_sampled(model: Recommender, test: Interactions, k: int = 10, n_neg: int = 99,
                     *, seed: int | None = 0) -> dict[str, float]:
    """Sampled HR@k / NDCG@k of a fitted model: each test interaction vs ``n_neg`` negatives.

    Negatives are drawn from the items the model knows that the user has in neither its
    training rows nor ``test``. Test users or items the model never saw are left out.
    """
    model._check_fitted()
    u = model.user_vocab_.index(test.user_vocab.ids(test.users))
    i = model.item_vocab_.index(test.item_vocab.ids(test.items))
    keep = (u >= 0) & (i >= 0)
    if not keep.any():
        raise DataError("no test interaction has a user and an item the model knows")
    pairs = np.unique(np.stack([u[keep], i[keep]], 1), axis=0)
    n_items = len(model.item_vocab_)
    seen_u = np.concatenate([np.repeat(np.arange(len(model.user_vocab_)),
                                       np.diff(model.seen_indptr_)), pairs[:, 0]])
    seen_i = np.concatenate([model.seen_indices_, pairs[:, 1]])
    order = np.argsort(seen_u, kind="stable")
    indptr = np.concatenate([[0], np.cumsum(np.bincount(seen_u, minlength=len(
        model.user_vocab_)))])
    neg = sample_negatives(indptr, seen_i[order], pairs[:, 0], n_items, n_neg, seed=seed)
    cand = np.concatenate([pairs[:, 1:], neg], axis=1)
    scores = np.empty(cand.shape, dtype=np.float64)
    users, rows = np.unique(pairs[:, 0], return_inverse=True)
    for s in range(0, len(users), 1024):
        block = model._score_users(users[s : s + 1024]).float().cpu().numpy()
        at = np.flatnonzero((rows >= s) & (rows < s + 1024))
        scores[at] = np.take_along_axis(block[rows[at] - s], cand[at], axis=1)
    return sampled_metrics(scores, k)
