"""What the service computes, on top of collabkit's public API; no HTTP here.

A :class:`Snapshot` is one loaded model plus lookup tables built once (lower-cased titles,
genre sets, rating counts). Requests take ``holder.current`` once and use that snapshot to the
end, so a reload (:meth:`ModelHolder.reload`) swaps models atomically: requests in flight
finish on the old one, later requests see the new one.

Which answer a user gets
------------------------
=============================  ================================================  ============
user                           recommendations                                   tier
=============================  ================================================  ============
known to the model, no         ``model.recommend`` (rated items left out)        ``model``
stored feedback
with stored feedback           ``model.recommend_new_user`` on everything they   ``personal``
                               rated (training rows, then stored feedback,       (or ``bias``
                               the latest rating of an item winning): a          under 5
                               fold-in, immediately, no retraining               ratings)
unknown, no feedback           ``model.recommend_new_user`` with no ratings      ``popularity``
=============================  ================================================  ============

An implicit-feedback model (issue 13) answers the same three ways, with interactions in place
of ratings: feedback is an interaction (its ``rating`` is optional and ignored), a user with
stored feedback gets the fold-in of every interaction (``personal`` from the first one), the
lists are the model's own ranking (``policy`` stays ``top``), and answers in ratings
(predictions, explanations) are refused with a 422.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from collabkit.errors import ConfigError, ServiceError, UnknownIdError
from collabkit.models.persist import load_model
from collabkit.recommend.onboarding import item_counts, known_genres, onboarding_items
from collabkit.serve.store import StoredRating

__all__ = ["Snapshot", "ModelHolder", "load_snapshot", "year_of"]

def _file_digest(folder: Path) -> str:
    h = hashlib.sha256()
    for name in sorted(p.name for p in folder.iterdir() if p.is_file()):
        with open(folder / name, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()[:16]


@dataclass(frozen=True)
class Snapshot:
    """A loaded model and the tables built from it once."""

    model: Any
    path: Path
    fingerprint: str
    loaded_at: float
    saved_at: float
    counts: np.ndarray
    titles_lower: np.ndarray
    genre_sets: tuple[frozenset[str], ...]
    int_users: bool
    int_items: bool
    ranker: bool = False  # an implicit-feedback model: scores rank items, they are no ratings
    #: raw id -> dense index, built once per model: a request's id look-ups are dict hits
    #: (Vocabulary.index goes through pandas, ~50 us a call, several per request)
    user_pos: dict[Any, int] = field(default_factory=dict)
    item_pos: dict[Any, int] = field(default_factory=dict)

    # ------------------------------------------------------------------ ids
    def user_id(self, text: str) -> Any:
        """The model's raw id for a user id given as text (ints when the model's are)."""
        if self.int_users and _canonical_int(text):
            return int(text)
        return text

    def item_id(self, value: int | str) -> Any:
        """The model's raw id for ``value``; :class:`UnknownIdError` when it does not know it."""
        raw: Any = value
        if self.int_items and isinstance(value, str) and _canonical_int(value):
            raw = int(value)
        elif not self.int_items and isinstance(value, int):
            raw = str(value)
        if self.item_index(raw) < 0:
            raise UnknownIdError("unknown item")
        return raw

    def user_index(self, raw: Any) -> int:
        """The user's dense index, -1 when unknown (as ``user_vocab_.index``)."""
        return _position(self.user_pos, self.model.user_vocab_, raw)

    def item_index(self, raw: Any) -> int:
        """The item's dense index, -1 when unknown (as ``item_vocab_.index``)."""
        return _position(self.item_pos, self.model.item_vocab_, raw)

    def known_user(self, raw: Any) -> bool:
        return self.user_index(raw) >= 0

    def stored_item(self, text: str) -> Any:
        """A stored item id (text) as the model's raw id, or None when unknown to it."""
        try:
            return self.item_id(text)
        except UnknownIdError:
            return None

    # ------------------------------------------------------------------ ratings of a user
    def training_ratings(self, raw_user: Any) -> dict[Any, float]:
        """The user's training ratings stored in the model (empty for unknown users), oldest
        first when the model keeps their order (a ranker with ``recency``)."""
        m = self.model
        u = self.user_index(raw_user)
        if u < 0 or m.seen_ratings_ is None:
            return {}
        lo, hi = m.seen_indptr_[u], m.seen_indptr_[u + 1]
        order = np.arange(hi - lo)
        rank = getattr(m, "seen_recency_", None)
        if rank is not None:
            order = np.argsort(-rank[lo:hi], kind="stable")
        items = m.item_vocab_.ids(m.seen_indices_[lo:hi][order]).tolist()
        return dict(zip(items, m.seen_ratings_[lo:hi][order].astype(np.float64).tolist(),
                        strict=True))

    def all_ratings(self, raw_user: Any, stored: list[StoredRating]) -> dict[Any, float]:
        """Training ratings, then stored feedback as it came (newer wins and moves last, the
        newest for a ranker with ``recency``); items the model lacks dropped."""
        out = self.training_ratings(raw_user)
        for r in stored:
            raw = self.stored_item(r.item_id)
            if raw is not None:
                out.pop(raw, None)
                out[raw] = r.rating
        return out

    # ------------------------------------------------------------------ implicit models
    def refuse_ranker(self, answer: str, instead: str) -> None:
        """422 for an answer in ratings from a model that predicts none (issue 13)."""
        if self.ranker:
            raise ServiceError(422, "unsupported", f"a {self.model.kind!r} model ranks items "
                               f"from interactions and predicts no ratings, so it gives no "
                               f"{answer}; use {instead}")

    def feedback_value(self, j: int, rating: float | None) -> float:
        """The value stored for ``ratings[j]``: the rating (within the model's range) for a
        rating model; 1.0 for an implicit model, whose feedback is an interaction and whose
        ``rating`` is optional and ignored."""
        if self.ranker:
            return 1.0
        lo, hi = self.model.rating_range_
        if rating is None:
            raise ServiceError(422, "rating_required", f"ratings[{j}].rating is required: a "
                               f"{self.model.kind!r} model learns from ratings")
        if not lo <= rating <= hi:
            raise ServiceError(422, "rating_out_of_range", f"ratings[{j}].rating must be "
                               f"between {lo:g} and {hi:g}, the model's rating range")
        return float(rating)

    def _rank_top(self, raw_user: Any, stored: list[StoredRating], k: int, exclude: list[Any]
                  ) -> tuple[pd.DataFrame, str]:
        """An implicit model's list: its own for a known user without feedback; a fold-in of
        every interaction (training, then stored) once there is feedback; else popularity."""
        m = self.model
        if not stored and self.known_user(raw_user):
            return m.recommend(raw_user, n=k, exclude=exclude or None), "model"
        seen = self.all_ratings(raw_user, stored) if stored else {}
        frame = m.recommend_new_user(list(seen) or None, n=k + len(exclude),
                                     weights=list(seen.values()) or None)
        frame = frame[~frame["item"].isin(exclude)].head(k).reset_index(drop=True)
        frame["rank"] = np.arange(1, len(frame) + 1)
        frame["user"] = [raw_user] * len(frame)
        return frame, "personal" if seen else "popularity"

    # ------------------------------------------------------------------ answers
    def recommend(self, raw_user: Any, stored: list[StoredRating], k: int,
                  exclude: list[Any], min_personal: int = 5, policy: str = "top"
                  ) -> tuple[pd.DataFrame, str, str]:
        """Top-``k`` rows (``rank``, ``item``, ``score``, ``title``), the tier that answered
        (the module's table) and the re-ranking policy applied; ``min_personal`` ratings make
        the ``personal`` tier. A ``policy`` other than ``top`` (:mod:`collabkit.recommend.
        rerank`) re-orders the ``model`` and ``personal`` tiers' lists; the fallback tiers
        stay plain (policy ``top``)."""
        frame, tier = self._recommend_top(raw_user, stored, k, exclude, min_personal)
        if policy == "top" or tier not in ("model", "personal") or self.ranker:  # see table
            return frame, tier, "top"
        from collabkit.serve.lists import reranked

        return reranked(self, raw_user, stored, k, exclude, tier, policy), tier, policy

    def _recommend_top(self, raw_user: Any, stored: list[StoredRating], k: int,
                       exclude: list[Any], min_personal: int) -> tuple[pd.DataFrame, str]:
        if self.ranker:
            return self._rank_top(raw_user, stored, k, exclude)
        m = self.model
        ex = exclude or None
        known = self.known_user(raw_user)
        if not stored:
            if known:
                return m.recommend(raw_user, n=k, exclude=ex), "model"
            return m.recommend_new_user(None, n=k, exclude=ex, user=raw_user), "popularity"
        ratings = self.all_ratings(raw_user, stored)
        if known and m.seen_ratings_ is None:  # files from before 0.1.0 store no ratings
            u = self.user_index(raw_user)
            seen = m.item_vocab_.ids(m.seen_indices_[m.seen_indptr_[u]:m.seen_indptr_[u + 1]])
            ex = list(exclude) + seen.tolist()
        frame = m.recommend_new_user(ratings or None, n=k, exclude=ex or None, user=raw_user,
                                     min_personal=min_personal)
        tier = str(frame["tier"].iloc[0]) if len(frame) else "popularity"
        return frame, tier

    def folded(self, raw_user: Any, stored: list[StoredRating]) -> Any:
        """The user's fold-in from everything they rated, or None without stored feedback."""
        if not stored:
            return None
        ratings = self.all_ratings(raw_user, stored)
        if not ratings:
            return None
        try:
            return self.model.fold_in(ratings)
        except ConfigError:  # a model kind without fold-in: its own predictions answer
            return None

    def predict(self, raw_user: Any, stored: list[StoredRating], items: list[Any]
                ) -> pd.DataFrame:
        """``item``, ``prediction``, ``fallback``, ``title`` for one user's items."""
        folded = self.folded(raw_user, stored)
        if folded is not None:
            return folded.predict(items)
        return self.model.predict([raw_user] * len(items), items)

    def reasons(self, ratings: dict[Any, float], items: list[Any], tier: str) -> list[str]:
        """One line per item on why it is recommended (:func:`collabkit.serve.lists.reasons`)."""
        from collabkit.serve.lists import reasons

        return reasons(self, ratings, items, tier)

    def genre_recommend(self, genres: list[str], k: int, exclude: list[Any]
                        ) -> tuple[pd.DataFrame, list[str]]:
        """Top-``k`` from liked genres and a reason per item
        (:func:`collabkit.serve.lists.genre_recommend`)."""
        from collabkit.serve.lists import genre_recommend

        return genre_recommend(self, genres, k, exclude)

    def genres(self) -> list[str]:
        """The model's genres (empty without genre metadata)."""
        try:
            return known_genres(self.model)
        except Exception:
            return []

    def similar(self, raw_item: Any, k: int) -> pd.DataFrame:
        """Nearest items by factor cosine; ConfigError for a model without item factors."""
        return self.model.similar_items(raw_item, n=k)

    def onboarding(self, n: int, exclude: list[Any]) -> pd.DataFrame:
        """``n`` items to ask a new user about, leaving out ``exclude`` (shown or rated)."""
        want = min(n + len(exclude), len(self.counts))
        min_ratings = 20 if int((self.counts >= 20).sum()) >= want else 1
        frame = onboarding_items(self.model, n=want, min_ratings=min_ratings,
                                 pool=max(200, want))
        keep = ~frame["item"].isin(exclude)
        return frame[keep].head(n).reset_index(drop=True)

    def search(self, q: str | None, genre: str | None, limit: int) -> pd.DataFrame:
        """Items whose title contains ``q`` and whose genres include ``genre``, most rated
        first."""
        mask = np.ones(len(self.counts), dtype=bool)
        if q:
            needle = q.lower()
            mask &= np.fromiter((needle in t for t in self.titles_lower), bool,
                                len(self.titles_lower))
        if genre:
            g = genre.lower()
            mask &= np.fromiter((g in s for s in self.genre_sets), bool, len(self.genre_sets))
        idx = np.flatnonzero(mask)
        idx = idx[np.lexsort((idx, -self.counts[idx]))][:limit]
        raw = self.model.item_vocab_.ids(idx)
        return pd.DataFrame({"item": raw, "title": self._meta("title", idx),
                             "genres": self._meta("genres", idx), "n_ratings": self.counts[idx]})

    def describe(self, raw_items: list[Any]) -> list[tuple[str | None, int | None, str | None]]:
        """``(title, year, genres)`` of each item (None where unknown); the year is read off
        a MovieLens-style title ending in ``(1979)``."""
        idx = self.model.item_vocab_.index(np.asarray(raw_items)) if raw_items else \
            np.zeros(0, dtype=np.int64)
        ok = np.maximum(idx, 0)
        titles, genres = self._meta("title", ok), self._meta("genres", ok)
        return [(None, None, None) if i < 0 else (t, year_of(t), g)
                for i, t, g in zip(idx, titles, genres, strict=True)]

    def _meta(self, column: str, idx: np.ndarray) -> list[str | None]:
        meta = self.model.item_meta_
        if meta is None or column not in meta.columns:
            return [None] * len(idx)
        return [None if pd.isna(v) else str(v) for v in meta[column].iloc[idx].tolist()]


_YEAR = re.compile(r"\((\d{4})\)\s*$")


def year_of(title: str | None) -> int | None:
    """1979 for ``"Alien (1979)"``; None when the title ends in no year."""
    found = _YEAR.search(title) if title else None
    return int(found.group(1)) if found else None


_INT_TEXT = re.compile(r"[+-]?(?:0|[1-9]\d*)")  # what Vocabulary's loose match reads as an int


def _position(pos: dict[Any, int], vocab: Any, raw: Any) -> int:
    """``vocab.index([raw])[0]``, answered from ``pos`` for an exact int or str id, and -1
    at once for one the vocabulary's loose match cannot find either (an int vocabulary: an
    int, or text that is no int; a str vocabulary: text without surrounding spaces). Anything
    else (floats, ids spelled loosely) goes to the vocabulary."""
    kind = type(raw)
    if kind is int or kind is str:
        found = pos.get(raw)
        if found is not None:
            return found
        if vocab.all_ids.dtype.kind in "iu":
            if kind is int or not _INT_TEXT.fullmatch(raw.strip()):
                return -1
        elif kind is str and raw == raw.strip():
            return -1
    return int(vocab.index([raw])[0])


def _positions(ids: np.ndarray) -> dict[Any, int]:
    """Raw id -> dense index for ids that are plain ints or strs."""
    return {x: i for i, x in enumerate(ids.tolist()) if type(x) in (int, str)}


def _canonical_int(text: str) -> bool:
    """``"42"`` or ``"-3"``, not ``"042"``, ``"+4"`` or ``"4.0"``: the text an int prints as."""
    try:
        return str(int(text)) == text
    except ValueError:
        return False


def load_snapshot(path: str | Path) -> Snapshot:
    """Load the model folder ``path`` (no pickle: :func:`collabkit.load_model`)."""
    folder = Path(path)
    model = load_model(folder)
    counts = item_counts(model)
    meta = model.item_meta_
    n = len(model.item_vocab_)
    if meta is not None and "title" in meta.columns:
        titles = np.array([("" if pd.isna(t) else str(t)).lower() for t in meta["title"]],
                          dtype=object)
    else:
        titles = np.array([""] * n, dtype=object)
    if meta is not None and "genres" in meta.columns:
        genre_sets = tuple(frozenset(x.lower() for x in str(g).split("|") if x)
                           if not pd.isna(g) else frozenset() for g in meta["genres"])
    else:
        genre_sets = tuple(frozenset() for _ in range(n))
    saved = max((p.stat().st_mtime for p in folder.iterdir() if p.is_file()), default=0.0)
    return Snapshot(model=model, path=folder, fingerprint=_file_digest(folder),
                    loaded_at=time.time(), saved_at=saved, counts=counts,
                    titles_lower=titles, genre_sets=genre_sets,
                    int_users=model.user_vocab_.all_ids.dtype.kind in "iu",
                    int_items=model.item_vocab_.all_ids.dtype.kind in "iu",
                    ranker=_is_ranker(model),
                    user_pos=_positions(model.user_vocab_.all_ids),
                    item_pos=_positions(model.item_vocab_.all_ids))


def _is_ranker(model: Any) -> bool:
    from collabkit.metrics.ranking_report import is_ranker

    return is_ranker(model)


class ModelHolder:
    """The current snapshot, swapped whole by :meth:`reload` (one reload at a time)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self.current: Snapshot = load_snapshot(self.path)
        self.reloads = 0

    def reload(self, path: str | os.PathLike[str] | None = None) -> Snapshot:
        """Load the model folder again (or ``path``, served from on) and swap it in; the old
        one keeps serving on error."""
        with self._lock:
            snap = load_snapshot(self.path if path is None else Path(path))
            self.path = snap.path
            self.current = snap  # one reference assignment: atomic for readers
            self.reloads += 1
            return snap
