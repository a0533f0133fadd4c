"""Side features for hybrid models: item genres and year, user demographics, rating time.

A :class:`FeatureEncoder` is fitted on the training :class:`~collabkit.data.interactions.
Interactions` and then turns metadata tables into dense arrays:

* **item numbers** ``(n, F)`` float32: the genres multi-hot (one column per genre seen in
  training), then the standardised release year and a ``year missing`` flag (the year itself
  is 0, the mean, when missing);
* **user categories** ``(n, C)`` int64: age bucket, gender and occupation as indices into
  per-column vocabularies, where ``0`` means missing or never seen in training;
* **time numbers** ``(n, 2)`` float32 per rating: the (fractional) year the rating was made
  and the years since the item's release at that moment, both standardised. Rows without a
  timestamp get the training mean time; a missing release year gives 0 (the mean) for the
  second column.

Everything the encoder learned (vocabularies, means, standard deviations) round-trips through
:meth:`FeatureEncoder.to_json`, so a saved model encodes features of ids it never saw without
the training data.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from collabkit.data.interactions import Interactions
from collabkit.errors import ConfigError, DataError, FieldError

__all__ = ["FEATURE_GROUPS", "AGE_EDGES", "FeatureEncoder", "age_bucket", "resolve_groups",
           "side_matrix"]

FeatureGroup = Literal["genres", "year", "demographics", "time"]
#: the feature groups, in the order they are listed in reports
FEATURE_GROUPS: tuple[str, ...] = ("genres", "year", "demographics", "time")
#: lower edges of the MovieLens-1M age buckets: under 18, 18-24, 25-34, 35-44, 45-49, 50-55, 56+
AGE_EDGES: tuple[int, ...] = (18, 25, 35, 45, 50, 56)
_USER_COLUMNS: tuple[str, ...] = ("age", "gender", "occupation")
_SECONDS_PER_YEAR = 365.2425 * 86400.0


def age_bucket(age: Any, edges: Sequence[int] = AGE_EDGES) -> np.ndarray:
    """Bucket labels of ages: ``"<18"``, ``"18-24"``, …, ``"56+"``; ``None`` where missing.

    Examples
    --------
    >>> age_bucket([7, 18, 33, 70, None]).tolist()
    ['<18', '18-24', '25-34', '56+', None]
    """
    a = pd.to_numeric(pd.Series(np.atleast_1d(np.asarray(age, dtype=object))),
                      errors="coerce").to_numpy(dtype=np.float64)
    labels = [f"<{edges[0]}"] + [f"{lo}-{hi - 1}" for lo, hi in zip(edges[:-1], edges[1:],
                                                                    strict=True)]
    labels.append(f"{edges[-1]}+")
    pos = np.searchsorted(np.asarray(edges, dtype=np.float64), a, side="right")
    out = np.array([labels[p] for p in np.minimum(pos, len(labels) - 1)], dtype=object)
    out[np.isnan(a)] = None
    return out


def resolve_groups(features: str | Iterable[str] | None, data: Interactions
                   ) -> tuple[str, ...]:
    """The feature groups to use: ``"auto"`` takes every group ``data`` can supply.

    Raises
    ------
    ConfigError
        For a name that is not a feature group.
    FieldError
        When a group is asked for by name but ``data`` lacks the metadata it needs.
    """
    if features is None:
        return ()
    available = _available_groups(data)
    if isinstance(features, str):
        if features == "auto":
            return available
        features = (features,)
    wanted = tuple(dict.fromkeys(features))
    for g in wanted:
        if g not in FEATURE_GROUPS:
            raise ConfigError(f"unknown feature group {g!r}; choose from {list(FEATURE_GROUPS)} "
                              "or 'auto'")
        if g not in available:
            raise FieldError(f"feature group {g!r} needs {_NEEDS[g]}, which this data lacks; "
                             f"groups available here: {list(available) or 'none'}. Load the "
                             "metadata (e.g. collabkit.data.movielens) or drop the group.")
    return tuple(g for g in FEATURE_GROUPS if g in wanted)


_NEEDS = {"genres": "item_meta['genres']", "year": "item_meta['year']",
          "demographics": "user_meta with age, gender or occupation",
          "time": "timestamps and item_meta['year']"}


def _available_groups(data: Interactions) -> tuple[str, ...]:
    im, um = data.item_meta, data.user_meta
    out = []
    if im is not None and "genres" in im.columns:
        out.append("genres")
    if im is not None and "year" in im.columns:
        out.append("year")
    if um is not None and any(c in um.columns for c in _USER_COLUMNS):
        out.append("demographics")
    if data.timestamps is not None and im is not None and "year" in im.columns:
        out.append("time")
    return tuple(out)


def _split_genres(values: Iterable[Any]) -> list[list[str]]:
    return [[] if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA
            else [g for g in str(v).split("|") if g] for v in values]


def _years(meta: pd.DataFrame | None, raw_ids: np.ndarray) -> np.ndarray:
    if meta is None or "year" not in meta.columns:
        return np.full(len(raw_ids), np.nan)
    s = pd.to_numeric(meta["year"].reindex(raw_ids), errors="coerce")
    return s.to_numpy(dtype=np.float64, na_value=np.nan)


def _std(x: np.ndarray) -> float:
    s = float(np.std(x)) if x.size else 0.0
    return s if s > 1e-12 else 1.0


@dataclass
class FeatureEncoder:
    """Encoders of side features, learned from training data and saved as JSON.

    Build one with :meth:`fit`; do not fill the fields by hand.

    Attributes
    ----------
    groups : tuple of str
        The feature groups in use, a subset of :data:`FEATURE_GROUPS` in that order.
    genres : list of str
        Genre vocabulary (columns of the multi-hot), sorted.
    year_mean, year_std : float
        Standardisation of the release year.
    user_vocabs : dict of str to list of str
        Per categorical user column (``age_bucket``, ``gender``, ``occupation``), its
        categories; index ``k + 1`` encodes ``user_vocabs[col][k]`` and ``0`` missing.
    time_mean, time_std : float
        Standardisation of the rating time in fractional years.
    age_mean, age_std : float
        Standardisation of the years since release at rating time.
    """

    groups: tuple[str, ...] = ()
    genres: list[str] = field(default_factory=list)
    year_mean: float = 0.0
    year_std: float = 1.0
    user_vocabs: dict[str, list[str]] = field(default_factory=dict)
    time_mean: float = 0.0
    time_std: float = 1.0
    age_mean: float = 0.0
    age_std: float = 1.0

    # ------------------------------------------------------------------ fitting
    @classmethod
    def fit(cls, data: Interactions, features: str | Iterable[str] | None = "auto"
            ) -> FeatureEncoder:
        """Learn vocabularies and standardisations from the users, items and rows of ``data``.

        Only ids that have rows in ``data`` count, so nothing leaks from held-out metadata.

        Parameters
        ----------
        data : Interactions
            Training rows with ``item_meta`` / ``user_meta`` / ``timestamps``.
        features : "auto", sequence of group names or None
            See :func:`resolve_groups`.
        """
        groups = resolve_groups(features, data)
        enc = cls(groups=groups)
        items = data.item_vocab.ids(np.unique(data.items))
        if "genres" in groups:
            assert data.item_meta is not None
            lists = _split_genres(data.item_meta["genres"].reindex(items).tolist())
            enc.genres = sorted({g for gl in lists for g in gl})
        if "year" in groups:
            y = _years(data.item_meta, items)
            y = y[~np.isnan(y)]
            enc.year_mean = float(y.mean()) if y.size else 0.0
            enc.year_std = _std(y)
        if "demographics" in groups:
            enc.user_vocabs = _user_vocabs(data.user_meta,
                                           data.user_vocab.ids(np.unique(data.users)))
        if "time" in groups:
            assert data.timestamps is not None
            t = _ts_years(data.timestamps)
            enc.time_mean, enc.time_std = float(t.mean()), _std(t)
            age = t - (_years(data.item_meta, data.item_vocab.ids(data.items)) + 0.5)
            age = age[~np.isnan(age)]
            enc.age_mean = float(age.mean()) if age.size else 0.0
            enc.age_std = _std(age)
        return enc

    # ------------------------------------------------------------------ shapes
    @property
    def n_item_numbers(self) -> int:
        """Width of :meth:`item_numbers`."""
        return len(self.genres) + (2 if "year" in self.groups else 0)

    @property
    def user_cardinalities(self) -> list[int]:
        """Rows of each user category's table (categories + 1 for missing)."""
        return [len(v) + 1 for v in self.user_vocabs.values()]

    @property
    def n_time(self) -> int:
        """Width of :meth:`time_numbers`."""
        return 2 if "time" in self.groups else 0

    # ------------------------------------------------------------------ encoding
    def item_numbers(self, item_meta: pd.DataFrame | None, raw_ids: Any) -> np.ndarray:
        """Genres multi-hot and standardised year of raw item ids, ``(n, n_item_numbers)``.

        Ids missing from ``item_meta`` get no genres and the missing-year flag.
        """
        ids = np.atleast_1d(np.asarray(raw_ids))
        out = np.zeros((len(ids), self.n_item_numbers), dtype=np.float32)
        if self.genres:
            col = {g: k for k, g in enumerate(self.genres)}
            src = (item_meta["genres"].reindex(ids).tolist()
                   if item_meta is not None and "genres" in item_meta.columns
                   else [None] * len(ids))
            rows, cols = [], []
            for r, gl in enumerate(_split_genres(src)):
                for g in gl:
                    if g in col:  # a genre unseen in training carries no information
                        rows.append(r)
                        cols.append(col[g])
            out[rows, cols] = 1.0
        if "year" in self.groups:
            y = _years(item_meta, ids)
            miss = np.isnan(y)
            out[:, -2] = np.where(miss, 0.0, (y - self.year_mean) / self.year_std)
            out[:, -1] = miss
        return out

    def user_categories(self, user_meta: pd.DataFrame | None, raw_ids: Any) -> np.ndarray:
        """Category indices of raw user ids, ``(n, len(user_vocabs))``; 0 is missing."""
        ids = np.atleast_1d(np.asarray(raw_ids))
        out = np.zeros((len(ids), len(self.user_vocabs)), dtype=np.int64)
        if user_meta is None:
            return out
        for c, (name, vocab) in enumerate(self.user_vocabs.items()):
            values = _user_column(user_meta, name, ids)
            codes = pd.Index(vocab).get_indexer(pd.Index(values, dtype=object))
            out[:, c] = codes + 1  # unknown (-1) becomes 0
        return out

    def time_numbers(self, timestamps: np.ndarray | None, release_years: np.ndarray
                     ) -> np.ndarray:
        """Standardised rating time and years since release, ``(n, n_time)``.

        Parameters
        ----------
        timestamps : array of seconds since the epoch, or None
            ``None`` (or a missing value) means the training mean time.
        release_years : array of float
            Release year of each row's item, NaN where unknown.
        """
        n = len(release_years)
        out = np.zeros((n, self.n_time), dtype=np.float32)
        if not self.n_time:
            return out
        t = (np.full(n, self.time_mean) if timestamps is None
             else _ts_years(np.asarray(timestamps)))
        out[:, 0] = (t - self.time_mean) / self.time_std
        age = t - (np.asarray(release_years, dtype=np.float64) + 0.5)
        out[:, 1] = np.where(np.isnan(age), 0.0, (age - self.age_mean) / self.age_std)
        return out

    @staticmethod
    def release_years(item_meta: pd.DataFrame | None, raw_ids: Any) -> np.ndarray:
        """Raw release years of raw item ids (float, NaN where unknown)."""
        return _years(item_meta, np.atleast_1d(np.asarray(raw_ids)))

    # ------------------------------------------------------------------ persistence
    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict; :meth:`from_json` rebuilds the encoder."""
        return {"groups": list(self.groups), "genres": list(self.genres),
                "year_mean": self.year_mean, "year_std": self.year_std,
                "user_vocabs": {k: list(v) for k, v in self.user_vocabs.items()},
                "time_mean": self.time_mean, "time_std": self.time_std,
                "age_mean": self.age_mean, "age_std": self.age_std}

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> FeatureEncoder:
        """Inverse of :meth:`to_json`."""
        try:
            return cls(groups=tuple(obj["groups"]), genres=list(obj["genres"]),
                       year_mean=float(obj["year_mean"]), year_std=float(obj["year_std"]),
                       user_vocabs={str(k): list(v) for k, v in obj["user_vocabs"].items()},
                       time_mean=float(obj["time_mean"]), time_std=float(obj["time_std"]),
                       age_mean=float(obj["age_mean"]), age_std=float(obj["age_std"]))
        except (KeyError, TypeError, AttributeError) as e:
            raise DataError(f"bad feature encoder record ({e!r}); save the model again") from None


def _ts_years(ts: np.ndarray) -> np.ndarray:
    """Seconds since the epoch → fractional calendar years (1997.5 is mid-1997)."""
    return 1970.0 + np.asarray(ts, dtype=np.float64) / _SECONDS_PER_YEAR


def _user_column(user_meta: pd.DataFrame, name: str, ids: np.ndarray) -> np.ndarray:
    """The raw values of categorical user column ``name`` as strings (None where missing)."""
    src = "age" if name == "age_bucket" else name
    if src not in user_meta.columns:
        return np.full(len(ids), None, dtype=object)
    s = user_meta[src].reindex(ids)
    if name == "age_bucket":
        return age_bucket(s.to_numpy(dtype=object))
    return np.array([None if pd.isna(v) else str(v) for v in s.tolist()], dtype=object)


def _user_vocabs(user_meta: pd.DataFrame | None, ids: np.ndarray) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    if user_meta is None:
        return out
    for name in ("age_bucket", "gender", "occupation"):
        src = "age" if name == "age_bucket" else name
        if src in user_meta.columns:
            values = _user_column(user_meta, name, ids)
            out[name] = sorted({v for v in values.tolist() if v is not None})
    return out


def side_matrix(meta: pd.DataFrame | None, raw_ids: np.ndarray, *, max_levels: int = 50,
                n_bins: int = 8) -> np.ndarray | None:
    """One-hot side features of ``raw_ids`` from a metadata table, rows scaled to norm 1.

    Numeric columns (year, age) become ``n_bins`` quantile bins plus a missing bin; text
    columns with 2 to ``max_levels`` values (gender, occupation) one column per value;
    ``|``-joined text (genres) one column per token when there are at most ``max_levels``.
    Other columns (titles, zip codes) are left out. Ids without a row get all zeros. ``None``
    when nothing is usable.
    """
    if meta is None:
        return None
    table = meta.reindex(raw_ids)
    blocks = [b for col in table.columns if (b := _encode_column(table[col], max_levels, n_bins))
              is not None]
    if not blocks:
        return None
    S = np.hstack(blocks)
    S[~np.isin(raw_ids, meta.index)] = 0.0  # no row at all: no features (not "missing")
    S = S[:, S.any(axis=0)]
    return S / np.maximum(np.sqrt((S**2).sum(axis=1, keepdims=True)), 1e-12)


def _encode_column(s: pd.Series, max_levels: int, n_bins: int) -> np.ndarray | None:
    """One column of metadata as a 0/1 matrix, or ``None`` when it is not categorical."""
    if pd.api.types.is_numeric_dtype(s):
        x = s.astype("float64").to_numpy()
        if np.isnan(x).all():
            return None
        edges = np.unique(np.nanquantile(x, np.linspace(0, 1, n_bins + 1)[1:-1]))
        codes = np.where(np.isnan(x), len(edges) + 1, np.searchsorted(edges, x, side="right"))
        return np.eye(len(edges) + 2)[codes]
    text = s.astype("string").fillna("")
    if text.str.contains("|", regex=False).any():
        multi = text.str.get_dummies(sep="|")
        return multi.to_numpy(np.float64) if 0 < multi.shape[1] <= max_levels else None
    codes, levels = pd.factorize(text.where(text != ""))  # "" -> <NA>
    if not 2 <= len(levels) <= max_levels:
        return None
    out = np.zeros((len(codes), len(levels)))
    out[np.flatnonzero(codes >= 0), codes[codes >= 0]] = 1.0
    return out
