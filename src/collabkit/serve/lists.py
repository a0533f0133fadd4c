"""What the service adds to a recommendation list: re-ranking policies, a reason per item, and
the genre start. Functions of a :class:`~collabkit.serve.engine.Snapshot`; no HTTP here."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from collabkit.recommend.onboarding import genre_start, item_factor_table
from collabkit.recommend.rerank import recommend_reranked, rerank

if TYPE_CHECKING:
    from collabkit.serve.engine import Snapshot
    from collabkit.serve.store import StoredRating

__all__ = ["POLICY_OPTIONS", "reranked", "reasons", "genre_recommend"]

#: the service's settings of the re-ranking policies: the library defaults, and for
#: ``explore`` the setting docs/feedback-loop.md chose (half the list explored, pool 200)
POLICY_OPTIONS: dict[str, dict[str, Any]] = {"mmr": {}, "debias": {}, "explore": {"pool": 200}}


def reranked(snap: Snapshot, raw_user: Any, stored: list[StoredRating], k: int,
             exclude: list[Any], tier: str, policy: str) -> pd.DataFrame:
    """The ``model`` or ``personal`` tier's list re-ranked by ``policy``: rated and excluded
    items never shown; ``explore`` draws with a seed fixed by the user and their ratings, so
    the list changes only when they rate (and a cached list is the list they would get)."""
    m = snap.model
    ratings = snap.all_ratings(raw_user, stored)
    seed = int(hashlib.sha256(repr((raw_user, sorted(ratings.items(), key=repr)))
                              .encode()).hexdigest()[:12], 16)
    options: dict[str, Any] = POLICY_OPTIONS.get(policy, {}).copy()
    if policy == "explore":
        options.update(n_explore=max(1, k // 2), seed=seed)
    if tier == "model":
        return recommend_reranked(m, [raw_user], n=k, policy=policy,  # type: ignore[arg-type]
                                  exclude=exclude or None, **options)
    scores = np.asarray(m.fold_in(ratings).scores(), dtype=np.float64).copy()
    banned = list(ratings.keys()) + list(exclude)
    if snap.known_user(raw_user):  # old files store no training ratings: seen items too
        u = snap.user_index(raw_user)
        banned += m.item_vocab_.ids(m.seen_indices_[m.seen_indptr_[u]:
                                                    m.seen_indptr_[u + 1]]).tolist()
    idx = m.item_vocab_.index(np.asarray(banned))
    scores[idx[idx >= 0]] = -np.inf
    picked = rerank(scores[None, :], k, policy, factors=item_factor_table(m),  # type: ignore[arg-type]
                    popularity=snap.counts, **options)[0]
    picked = picked[picked >= 0]
    items = m.item_vocab_.ids(picked)
    return pd.DataFrame({"rank": np.arange(1, len(picked) + 1), "item": items,
                         "score": scores[picked], "title": snap._meta("title", picked)})


def reasons(snap: Snapshot, ratings: dict[Any, float], items: list[Any], tier: str) -> list[str]:
    """One line per item saying why it is recommended: the rated item that supports it
    most (factor cosine times how much more the user liked it than expected, as in
    :func:`collabkit.interpret.explain`), e.g. "because you rated Alien (1979) 5 stars";
    without such support, what the tier ranks by."""
    m = snap.model
    fallback = {"popularity": "popular: among the most rated",
                "bias": "rated above average, adjusted to your ratings so far",
                "model": "predicted from your ratings"}.get(tier, "predicted for you")
    out = [fallback] * len(items)
    factors = item_factor_table(m) if ratings and tier in ("personal", "model") else None
    if factors is None or not items:
        return out
    rated = m.item_vocab_.index(np.asarray(list(ratings.keys())))
    keep = rated >= 0
    rated = rated[keep]
    values = np.asarray(list(ratings.values()), dtype=np.float64)[keep]
    if not len(rated):
        return out
    bi = m.item_bias_base_
    ub = float(np.sum(values - m.global_mean_ - bi[rated])) / (len(rated) + 5.0)
    dev = values - (m.global_mean_ + ub + bi[rated])
    target = m.item_vocab_.index(np.asarray(items))
    fr, ft = factors[rated], factors[np.maximum(target, 0)]
    norms = np.linalg.norm(fr, axis=1)[:, None] * np.linalg.norm(ft, axis=1)[None, :]
    weight = (fr @ ft.T) / np.maximum(norms, 1e-12) * dev[:, None]
    best = weight.argmax(axis=0)
    titles = snap._meta("title", rated)
    for j, b in enumerate(best):
        if target[j] >= 0 and weight[b, j] > 0:
            name = titles[b] or f"item {m.item_vocab_.ids(rated[b:b + 1])[0]}"
            stars = "star" if values[b] == 1 else "stars"
            out[j] = f"because you rated {name} {values[b]:g} {stars}"
    return out


def genre_recommend(snap: Snapshot, genres: list[str], k: int, exclude: list[Any]
                    ) -> tuple[pd.DataFrame, list[str]]:
    """Top-``k`` for someone who only said which genres they like
    (:func:`collabkit.recommend.onboarding.genre_start`), and a reason per item."""
    m = snap.model
    min_ratings = 20 if int((snap.counts >= 20).sum()) >= 50 else 1
    user = genre_start(m, genres, min_ratings=min_ratings)
    scores = np.asarray(user.scores(), dtype=np.float64).copy()
    if exclude:
        ex = m.item_vocab_.index(np.asarray(exclude))
        scores[ex[ex >= 0]] = -np.inf
    scores[snap.counts < min_ratings] = -np.inf
    order = np.argsort(-scores, kind="stable")[:k]
    order = order[np.isfinite(scores[order])]
    frame = pd.DataFrame({"rank": np.arange(1, len(order) + 1), "item":
                          m.item_vocab_.ids(order), "score": scores[order],
                          "title": snap._meta("title", order)})
    wanted = {g.lower(): g for g in genres}
    reasons = []
    for j in order:
        hits = [wanted[g] for g in wanted if g in snap.genre_sets[j]]
        reasons.append("because you like " + " and ".join(hits or list(wanted.values())))
    return frame, reasons
