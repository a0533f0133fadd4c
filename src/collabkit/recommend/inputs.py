"""Parsing the ratings given to fold-in and cold start: mappings, Series and long tables
into (key, dense id, rating) arrays, with errors that name the offending id."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
import pandas as pd

from collabkit.data.checks import refuse_outside_range
from collabkit.errors import ConfigError, DataError

__all__ = [
    "Ratings",
    "Reg",
    "Prior",
    "check_options",
    "ratings_pairs",
    "group_ratings",
    "group_arrays",
]

Ratings = Mapping[Any, float] | pd.Series | pd.DataFrame
Reg = float | Literal["matched", "population"]
Prior = Literal["mean", "zero"]


def check_options(reg: Reg, n_iter: int, prior: Prior) -> None:
    named = isinstance(reg, str) and reg in ("matched", "population")
    number = isinstance(reg, int | float) and not isinstance(reg, bool) and math.isfinite(reg) \
        and reg >= 0
    if not (named or number):
        raise ConfigError(f"reg must be 'population', 'matched' or a number >= 0, got {reg!r}")
    if prior not in ("mean", "zero"):
        raise ConfigError(f"prior must be 'mean' or 'zero', got {prior!r}")
    if not isinstance(n_iter, int | np.integer) or n_iter < 0:
        raise ConfigError(f"n_iter must be an integer >= 0, got {n_iter!r}")


def ratings_pairs(ratings: Ratings, *, key: Literal["item", "user"]) -> tuple[np.ndarray,
                                                                               np.ndarray]:
    """(raw ids, ratings) from a mapping, a Series or a two-column DataFrame."""
    if isinstance(ratings, pd.DataFrame):
        for col in (key, "rating"):
            if col not in ratings.columns:
                raise DataError(f"column {col!r} not found; columns are "
                                f"{list(ratings.columns)}. Pass a DataFrame with columns "
                                f"{key!r} and 'rating', or a {{{key}: rating}} mapping")
        return ratings[key].to_numpy(), ratings["rating"].to_numpy(dtype=np.float64)
    if isinstance(ratings, pd.Series):
        return ratings.index.to_numpy(), ratings.to_numpy(dtype=np.float64)
    if isinstance(ratings, Mapping):
        ids = list(ratings.keys())
        try:
            vals = np.asarray([float(v) for v in ratings.values()], dtype=np.float64)
        except (TypeError, ValueError):
            raise DataError(f"ratings must be numbers; got {list(ratings.values())[:5]!r}"
                            ) from None
        # pandas infers one dtype for uniform ids and keeps mixed ones as objects
        return pd.Index(ids).to_numpy(), vals
    raise DataError(f"ratings must be a {{{key}: rating}} mapping, a Series or a DataFrame, "
                    f"got {type(ratings).__name__}")


def group_ratings(vocab: Any, frame: pd.DataFrame, key_col: str, id_col: str, rating_col: str,
           *, what: str, rating_range: tuple[float, float] | None = None
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Split a long table by key: see :func:`group_arrays`."""
    for col in (key_col, id_col, rating_col):
        if col not in frame.columns:
            raise DataError(f"column {col!r} not found; columns are {list(frame.columns)}")
    codes, keys = pd.factorize(frame[key_col], sort=False)
    return group_arrays(vocab, np.asarray(keys), codes, frame[id_col].to_numpy(),
                         frame[rating_col].to_numpy(dtype=np.float64), what=what,
                         rating_range=rating_range)


def group_arrays(vocab: Any, keys: np.ndarray, codes: np.ndarray, ids: np.ndarray,
                  values: np.ndarray, *, what: str,
                  rating_range: tuple[float, float] | None = None
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(keys, row number per known rating, dense ids, ratings, unknown count per key).

    Ratings must be finite and, given the model's ``rating_range``, inside it (issue 8).
    """
    if not np.isfinite(values).all():
        bad = int(np.flatnonzero(~np.isfinite(values))[0])
        raise DataError(f"rating {float(values[bad])!r} for {what} {_plain(ids[bad])!r} is not "
                        "a finite number; drop or fix it before folding in")
    if rating_range is not None:
        refuse_outside_range(values, ids, what, rating_range)
    idx = vocab.index(ids)
    known = idx >= 0
    codes = np.asarray(codes, dtype=np.int64)
    pair = codes[known] * (len(vocab) + 1) + idx[known]
    uniq, first, cnt = np.unique(pair, return_index=True, return_counts=True)
    if uniq.size < pair.size:
        j = int(np.flatnonzero(known)[first[np.argmax(cnt > 1)]])
        by = _plain(keys[codes[j]])
        raise DataError(f"{what} {_plain(ids[j])!r} is rated twice (by {by!r}); keep one "
                        f"rating per {what}")
    n_unknown = np.bincount(codes[~known], minlength=len(keys))
    return keys, codes[known], idx[known], values[known], n_unknown


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python value it holds: messages show ``'b'``, not ``np.str_('b')``."""
    return value.item() if isinstance(value, np.generic) else value
