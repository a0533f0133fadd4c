"""Recommendation answers as finished JSON bytes, computed once per cache key.

``GET /v1/users/{id}/recommendations`` is most of the service's traffic. Its answer depends
only on the model snapshot, the user, their stored ratings, ``k``, the exclusions,
``reasons``, ``min_personal`` and the policy: :func:`answer_key` holds all of them, so a
cached :class:`Answer` is never stale. The answer keeps the response body already serialised
(by the same pydantic model, :class:`~collabkit.serve.schemas.RecommendationsOut`, that
documents the endpoint), so a cache hit costs a dictionary look-up and no validation or
JSON encoding (issue 10: the read path's CPU under load).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

from collabkit.serve.engine import Snapshot
from collabkit.serve.schemas import RecItem, RecommendationsOut
from collabkit.serve.store import StoredRating

__all__ = ["Answer", "answer_key", "compute_answer"]


@dataclass(frozen=True)
class Answer:
    """A computed recommendation list: what the served-list log and the metrics need, and
    the response body."""

    tier: str
    policy: str
    item_ids: tuple[Any, ...]
    body: bytes


def answer_key(snap: Snapshot, user_id: str, stored: Sequence[StoredRating], k: int,
               exclude: Sequence[str], reasons: bool, min_personal: int,
               policy: str) -> Hashable:
    """Everything the answer depends on (the model by its fingerprint)."""
    return (snap.fingerprint, user_id, tuple((r.item_id, r.rating) for r in stored), k,
            tuple(sorted(set(exclude))), reasons, min_personal, policy)


def compute_answer(snap: Snapshot, user_id: str, stored: list[StoredRating], k: int,
                   exclude: Sequence[str], reasons: bool, min_personal: int,
                   policy: str) -> Answer:
    """The user's top-``k`` (:meth:`Snapshot.recommend`), with reasons when asked."""
    ex = [x for x in (snap.stored_item(e) for e in exclude) if x is not None]
    raw_user = snap.user_id(user_id)
    frame, tier, used = snap.recommend(raw_user, stored, k, ex, min_personal, policy)
    items = frame["item"].tolist()  # Python ints or strs, as the model's ids are
    why: list[str | None] = [None] * len(frame)
    if reasons:
        why = list(snap.reasons(snap.all_ratings(raw_user, stored), items, tier))
    rows = [RecItem(rank=int(rank), item_id=item,
                    title=title if isinstance(title, str) else None,
                    score=float(score), reason=w)
            for rank, item, title, score, w in zip(
                frame["rank"].tolist(), items, frame["title"].tolist(),
                frame["score"].tolist(), why, strict=True)]
    out = RecommendationsOut(user_id=user_id, tier=tier, policy=used,
                             model_fingerprint=snap.fingerprint, items=rows)
    return Answer(tier, used, tuple(items), out.model_dump_json().encode("utf-8"))
