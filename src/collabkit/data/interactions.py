"""The :class:`Interactions` table: ratings as dense index arrays plus their vocabularies."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from collabkit.data.vocab import Vocabulary
from collabkit.errors import DataError

__all__ = ["Interactions"]


@dataclass(frozen=True, eq=False)
class Interactions:
    """(user, item, rating[, timestamp]) rows held as parallel numpy arrays.

    ``users[j]`` and ``items[j]`` are dense indices into :attr:`user_vocab` and
    :attr:`item_vocab`. Subsets made with :meth:`take` share the vocabularies of their parent,
    so a train and a test part index the same ids the same way.

    Attributes
    ----------
    users, items : numpy.ndarray of int64
    ratings : numpy.ndarray of float32
    user_vocab, item_vocab : Vocabulary
    timestamps : numpy.ndarray of int64 or None
        Seconds since the epoch, when the data has them.
    item_meta : pandas.DataFrame or None
        Indexed by raw item id; ``title``, ``genres`` (``|``-joined), ``year`` where known.
    user_meta : pandas.DataFrame or None
        Indexed by raw user id; for example ``age``, ``gender``, ``occupation``.
    rating_range : tuple of float
        The smallest and largest possible rating (from the dataset, or observed).
    name : str
        A short label for reports, such as ``"ml-100k"``.
    implicit : bool
        True for implicit feedback (clicks, plays, check-ins): ``ratings`` then holds a weight
        per interaction (1.0, or a count), not a star rating. See :mod:`collabkit.data.implicit`.
    """

    users: np.ndarray
    items: np.ndarray
    ratings: np.ndarray
    user_vocab: Vocabulary
    item_vocab: Vocabulary
    timestamps: np.ndarray | None = None
    item_meta: pd.DataFrame | None = field(default=None, repr=False)
    user_meta: pd.DataFrame | None = field(default=None, repr=False)
    rating_range: tuple[float, float] = (0.0, 0.0)
    name: str = ""
    implicit: bool = False

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_dataframe(
        cls,
        df: pd.DataFrame,
        *,
        user_col: str = "user",
        item_col: str = "item",
        rating_col: str = "rating",
        timestamp_col: str | None = "timestamp",
        item_meta: pd.DataFrame | None = None,
        user_meta: pd.DataFrame | None = None,
        rating_range: tuple[float, float] | None = None,
        name: str = "",
    ) -> Interactions:
        """Build from a DataFrame whose rows are already validated.

        Use :func:`collabkit.read_ratings` first for files or untrusted frames: it checks
        types, missing values and duplicates and names the offending line.
        """
        for col in (user_col, item_col, rating_col):
            if col not in df.columns:
                raise DataError(
                    f"column {col!r} not found; columns are {list(df.columns)}. "
                    "Name the columns with user_col=, item_col=, rating_col=."
                )
        if len(df) == 0:
            raise DataError("the ratings table is empty; there is nothing to learn from")
        uvocab = Vocabulary.from_values(df[user_col].to_numpy())
        ivocab = Vocabulary.from_values(df[item_col].to_numpy())
        ratings = df[rating_col].to_numpy(dtype=np.float32)
        ts = None
        if timestamp_col is not None and timestamp_col in df.columns:
            ts = df[timestamp_col].to_numpy(dtype=np.int64)
        if rating_range is None:
            rating_range = (float(ratings.min()), float(ratings.max()))
        return cls(
            users=uvocab.index(df[user_col].to_numpy()),
            items=ivocab.index(df[item_col].to_numpy()),
            ratings=ratings,
            user_vocab=uvocab,
            item_vocab=ivocab,
            timestamps=ts,
            item_meta=item_meta,
            user_meta=user_meta,
            rating_range=(float(rating_range[0]), float(rating_range[1])),
            name=name,
        )

    # ------------------------------------------------------------------ views
    def __len__(self) -> int:
        return int(self.ratings.shape[0])

    @property
    def n_users(self) -> int:
        """Size of the user vocabulary (users may have no rows in a subset)."""
        return len(self.user_vocab)

    @property
    def n_items(self) -> int:
        """Size of the item vocabulary."""
        return len(self.item_vocab)

    def __repr__(self) -> str:
        label = f"{self.name}: " if self.name else ""
        nu = np.unique(self.users).size
        ni = np.unique(self.items).size
        if self.implicit:
            return f"Interactions({label}{nu} users x {ni} items, {len(self)} implicit)"
        return (
            f"Interactions({label}{nu} users x {ni} items, {len(self)} ratings in "
            f"[{self.rating_range[0]:g}, {self.rating_range[1]:g}])"
        )

    def take(self, rows: np.ndarray) -> Interactions:
        """The rows at positions ``rows``, sharing vocabularies and metadata."""
        rows = np.asarray(rows, dtype=np.int64)
        return replace(
            self,
            users=self.users[rows],
            items=self.items[rows],
            ratings=self.ratings[rows],
            timestamps=None if self.timestamps is None else self.timestamps[rows],
        )

    def to_dataframe(self) -> pd.DataFrame:
        """Rows with raw ids: columns ``user``, ``item``, ``rating`` [, ``timestamp``]."""
        out = {
            "user": self.user_vocab.ids(self.users),
            "item": self.item_vocab.ids(self.items),
            "rating": self.ratings,
        }
        if self.timestamps is not None:
            out["timestamp"] = self.timestamps
        return pd.DataFrame(out)

    def titles(self, raw_items: Any) -> list[str | None]:
        """Titles of raw item ids, ``None`` where unknown."""
        if self.item_meta is None or "title" not in self.item_meta.columns:
            return [None] * len(np.atleast_1d(raw_items))
        s = self.item_meta["title"].reindex(np.atleast_1d(raw_items))
        return [None if pd.isna(t) else str(t) for t in s.tolist()]

    def fingerprint(self) -> str:
        """A short SHA-256 of the rows (raw ids, ratings), to tell datasets apart."""
        h = hashlib.sha256()
        for arr in (self.user_vocab.ids(self.users), self.item_vocab.ids(self.items)):
            h.update(pd.util.hash_array(np.asarray(arr, dtype=object)).tobytes())
        h.update(np.ascontiguousarray(self.ratings).tobytes())
        return h.hexdigest()[:16]
