"""Top-N frames beside the models: batched, masked top-N over score blocks for trained
users (:func:`recommend_topk`) and the same frame for one folded-in or cold-start user's
score vector (:func:`top_frame`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch

if TYPE_CHECKING:
    from collabkit.models.base import Recommender

__all__ = ["recommend_topk", "top_frame", "top_order"]

_BLOCK = 1024  # users scored at once: a (block, n_items) float32 matrix


def _item_mask(model: Recommender, exclude: Any, candidates: Any) -> torch.Tensor | None:
    """Boolean (n_items,) mask of items that may never be recommended, or None."""
    n_items = len(model.item_vocab_)
    mask = torch.zeros(n_items, dtype=torch.bool)
    touched = False
    if candidates is not None:
        idx = model.item_vocab_.index(candidates)
        mask[:] = True
        mask[torch.as_tensor(idx[idx >= 0])] = False
        touched = True
    if exclude is not None:
        idx = model.item_vocab_.index(exclude)
        mask[torch.as_tensor(idx[idx >= 0])] = True
        touched = True
    return mask if touched else None


def recommend_topk(model: Recommender, users: np.ndarray, n: int, *, exclude_seen: bool,
                   exclude: Any, candidates: Any, clip: bool = True) -> pd.DataFrame:
    """Top-``n`` per user; unknown users are ranked by the baseline (tier ``"baseline"``).

    Items are ranked by raw scores; ``clip`` reports them clipped to the rating range.
    """
    n_items = len(model.item_vocab_)
    k = min(n, n_items)
    u = model.user_vocab_.index(users)
    base_mask = _item_mask(model, exclude, candidates)
    indptr, indices = model.seen_indptr_, model.seen_indices_
    baseline_scores = torch.as_tensor(model.global_mean_ + model.item_bias_base_,
                                      dtype=torch.float32)
    frames = []
    for s in range(0, len(u), _BLOCK):
        ub = u[s : s + _BLOCK]
        known = ub >= 0
        if known.all():  # the common case: no copy of the baseline rows
            scores = model.score_users(ub).float().cpu()
        else:
            scores = baseline_scores.expand(len(ub), n_items).clone()
            if known.any():
                scores[torch.as_tensor(known)] = model.score_users(ub[known]).float().cpu()
        if base_mask is not None:
            scores[:, base_mask] = -torch.inf
        if exclude_seen and known.any():
            known_rows = np.flatnonzero(known)
            counts = indptr[ub[known] + 1] - indptr[ub[known]]
            starts = indptr[ub[known]]
            row_idx = np.repeat(known_rows, counts)
            col_idx = indices[np.repeat(starts, counts) + _ragged_arange(counts)]
            scores[torch.as_tensor(row_idx), torch.as_tensor(col_idx)] = -torch.inf
        top_t, top_it = torch.topk(scores, k, dim=1)
        top_s, top_i = top_t.numpy(), top_it.numpy()
        valid = np.isfinite(top_s)
        rows = np.repeat(np.arange(len(ub)), k).reshape(len(ub), k)
        frames.append(pd.DataFrame({
            "user": users[s : s + _BLOCK][rows[valid]],
            "rank": np.tile(np.arange(1, k + 1), len(ub)).reshape(len(ub), k)[valid],
            "item": model.item_vocab_.ids(top_i[valid]),
            "score": (model._clip_scores if clip else np.asarray)(top_s[valid].astype(np.float64)),
            "tier": np.where(known[rows[valid]], "model", "baseline"),
        }))
    out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["user", "rank", "item", "score", "tier"])
    out.insert(4, "title", model.titles(out["item"].to_numpy()))
    return out


def _ragged_arange(counts: np.ndarray) -> np.ndarray:
    """Concatenation of ``arange(c)`` for each ``c`` in ``counts``, without a Python loop."""
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    offsets = np.repeat(np.cumsum(counts) - counts, counts)
    return np.arange(total, dtype=np.int64) - offsets


def top_order(scores: np.ndarray, n: int) -> np.ndarray:
    """Indices of the ``n`` best finite ``scores``, best first, ties to the lower index.

    The same as sorting every score by ``(-score, index)`` and keeping the first ``n``
    finite ones, without sorting them all: the candidates are the scores at or above the
    ``n``-th largest (ties included), and only those are sorted (a served fold-in sorted
    the whole catalogue, ~1 ms on ml-latest-small, for 10 items; issue 10).
    """
    idx = np.flatnonzero(np.isfinite(scores))
    if n < len(idx):
        s = scores[idx]
        kth = np.partition(s, len(s) - n)[len(s) - n]  # the n-th largest
        idx = idx[s >= kth]
    return idx[np.lexsort((idx, -scores[idx]))][:n]


def top_frame(model: Recommender, scores: np.ndarray, n: int, user: Any, tier: str,
              shown: np.ndarray | None = None) -> pd.DataFrame:
    """The long recommendation frame of the ``n`` best finite ``scores`` (ties: lower index).

    The ``score`` column is a predicted rating clipped to the model's rating range: ``scores``
    themselves, or ``shown`` when the ranking key is something else (popularity).
    """
    order = top_order(scores, n)
    raw = model.item_vocab_.ids(order)
    values = (scores if shown is None else shown)[order].astype(np.float64)
    lo, hi = model.rating_range_
    return pd.DataFrame({
        "user": [user] * len(order), "rank": np.arange(1, len(order) + 1), "item": raw,
        "score": np.clip(values, lo, hi), "title": model.titles(raw),
        "tier": [tier] * len(order)})
