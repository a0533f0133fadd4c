"""Train/test splits of a ratings table, returned as row positions.

collabkit holds ratings as parallel arrays (user index, item index, rating, optional timestamp).
Each function here reads only the arrays it needs and returns a :class:`Split` of sorted int64
row positions, so ``users[split.train]``, ``items[split.train]`` … select the training rows.
Everything is vectorised numpy (one sort or bincount per call, no Python loop over users), so a
25M-row table splits in seconds.

Randomness comes only from ``np.random.default_rng(seed)``: the same seed gives the same split,
``seed=None`` draws fresh entropy, and numpy's global random state is never read or changed.

Which split answers which question:

- :func:`random_split` (fastai's ``valid_pct``): how well are held-out ratings predicted?
- :func:`user_fraction_split`: the same, but every user is represented in train and test.
- :func:`temporal_split`: one global cutoff in time, no training on the future.
- :func:`leave_last_k_out`: each user's latest ``k`` interactions, the usual top-N protocol.
- :func:`kfold`: ``k`` random folds whose test parts partition the rows.
- :func:`collabkit.metrics.leakage.split_summary`: test rows whose user or item is cold.

Validation sets
---------------
To hold out a validation set, apply the same function to the *training rows only* (that is the
caller's job) and map the positions back through ``outer.train``::

    outer = user_fraction_split(users, test_frac=0.2, seed=0)
    inner = user_fraction_split(users[outer.train], test_frac=0.1, seed=1)
    fit_rows, valid_rows = outer.train[inner.train], outer.train[inner.test]

Splitting the full table a second time instead would let validation rows overlap test rows.

Every split refuses an empty train or test part (a ConfigError names the parameter to change).
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Real

import numpy as np

from collabkit.data._split_checks import (
    _as_1d,
    _check_frac,
    _check_int,
    _check_n_rows,
    _check_timestamps,
    _floor_frac,
    _group,
    _last_per_group,
    _random_order,
)
from collabkit.errors import ConfigError, DataError

__all__ = [
    "Split",
    "random_split",
    "user_fraction_split",
    "temporal_split",
    "leave_last_k_out",
    "kfold",
]


@dataclass(frozen=True, eq=False)
class Split:
    """Row positions of one train/test split.

    Both arrays are read-only. ``eq=False``: two splits compare by identity, because ``==`` on
    arrays is element-wise; compare ``np.array_equal(a.test, b.test)`` instead.

    Attributes
    ----------
    train : numpy.ndarray
        Sorted int64 row positions of the training rows.
    test : numpy.ndarray
        Sorted int64 row positions of the test rows, disjoint from ``train``.
    name : str
        How the split was made, e.g. ``"random(test_frac=0.2, seed=42)"``.
    """

    train: np.ndarray
    test: np.ndarray
    name: str

    def __str__(self) -> str:
        return f"{self.name}: {self.train.size:,} train rows, {self.test.size:,} test rows"


def _to_split(test_mask: np.ndarray, name: str) -> Split:
    train = np.flatnonzero(~test_mask).astype(np.int64, copy=False)
    test = np.flatnonzero(test_mask).astype(np.int64, copy=False)
    train.setflags(write=False)
    test.setflags(write=False)
    return Split(train=train, test=test, name=name)


_MAX_PASSES = 8  # leave_last_k_out: up to this k, k O(n) passes beat one O(n log n) sort


def _latest_per_group(codes: np.ndarray, counts: np.ndarray, keys: np.ndarray,
                      n_take: np.ndarray) -> np.ndarray:
    """Boolean row mask: per group ``g`` the ``n_take[g]`` rows with the largest ``keys``.

    Ties go to the later row. For small ``n_take`` this runs one O(n) pass per taken row
    (``np.maximum.at`` per group), shrinking the live rows each pass; otherwise one sort.
    """
    if n_take.max() > _MAX_PASSES:
        return _last_per_group(np.lexsort((keys, codes)), codes, counts, n_take)
    mask = np.zeros(codes.size, dtype=bool)
    need = n_take.copy()
    live = np.flatnonzero(need[codes] > 0)
    floor = keys.min()
    while live.size:
        live_codes, live_keys = codes[live], keys[live]
        best = np.full(counts.size, floor, dtype=keys.dtype)
        np.maximum.at(best, live_codes, live_keys)
        tied = live[live_keys == best[live_codes]]
        last = np.full(counts.size, -1, dtype=np.int64)
        np.maximum.at(last, codes[tied], tied)  # the later row wins a tie
        chosen = last[last >= 0]
        mask[chosen] = True
        need[codes[chosen]] -= 1
        live = live[~mask[live] & (need[codes[live]] > 0)]
    return mask


# --------------------------------------------------------------------------------------- splits


def random_split(n_rows: int, *, test_frac: float = 0.2, seed: int | None = 0) -> Split:
    """Send a random ``test_frac`` of all rows to test (fastai's ``valid_pct``).

    Parameters
    ----------
    n_rows : int
        Number of rating rows, at least 2.
    test_frac : float, default 0.2
        Share of rows in test, in the open interval (0, 1). The test part has exactly
        ``floor(test_frac * n_rows)`` rows, rounded down like fastai's ``RandomSplitter``.
    seed : int or None, default 0
        Seed for ``np.random.default_rng``; ``None`` gives a different split on every call.

    Returns
    -------
    Split
        Named ``"random(test_frac=..., seed=...)"``.

    Raises
    ------
    ConfigError
        If ``test_frac`` is outside (0, 1), ``n_rows < 2``, or the test part would be empty.

    Examples
    --------
    >>> s = random_split(10, test_frac=0.3, seed=1)
    >>> len(s.train), len(s.test)
    (7, 3)
    """
    n = _check_n_rows(n_rows)
    frac = _check_frac(test_frac)
    n_test = int(_floor_frac(frac, n))
    if n_test == 0:
        raise ConfigError(
            f"test_frac={frac} of n_rows={n} rounds down to 0 test rows; "
            f"use test_frac >= {1 / n:.3g} or more rows"
        )
    perm = np.random.default_rng(seed).permutation(n)
    mask = np.zeros(n, dtype=bool)
    mask[perm[:n_test]] = True
    return _to_split(mask, f"random(test_frac={frac}, seed={seed})")


def user_fraction_split(
    users: np.ndarray, *, test_frac: float = 0.2, seed: int | None = 0, min_train: int = 1,
    timestamps: np.ndarray | None = None,
) -> Split:
    """Send a random ``test_frac`` of *each user's* rows to test (the latest, with ``timestamps``).

    Parameters
    ----------
    users : numpy.ndarray
        User of each row (1-D, any sortable dtype; dense int64 indices are fastest).
    test_frac : float, default 0.2
        Share of each user's rows in test, in (0, 1). A user with ``c`` rows sends
        ``min(floor(test_frac * c), c - min_train)`` rows to test (never fewer than 0), so users
        with fewer than ``1 / test_frac`` rows stay entirely in train.
    seed : int or None, default 0
        Seed for ``np.random.default_rng``.
    min_train : int, default 1
        Rows each user keeps in train at least (a user with fewer rows keeps all of them).
    timestamps : numpy.ndarray, optional
        Timestamp of each row: test gets each user's latest rows (ties: the later row).

    Returns
    -------
    Split
        Named ``"user_fraction(test_frac=..., min_train=..., seed=...)"`` (or ``latest``).

    Raises
    ------
    ConfigError
        If ``test_frac`` is outside (0, 1), ``min_train < 0``, ``users`` is empty, or no user has
        enough rows to send one to test.
    DataError
        If ``users`` is not 1-D.
    """
    frac = _check_frac(test_frac)
    min_train = _check_int("min_train", min_train, 0)
    users = _as_1d("users", users)
    codes, counts = _group(users)
    n_test = np.clip(np.minimum(_floor_frac(frac, counts), counts - min_train), 0, None)
    if not n_test.any():
        raise ConfigError(
            f"no user has enough rows for test_frac={frac} with min_train={min_train} (the "
            f"largest user has {counts.max()} rows); raise test_frac or lower min_train"
        )
    if timestamps is not None:
        mask = _latest_per_group(codes, counts, _check_timestamps(timestamps), n_test)
        return _to_split(mask, f"user_fraction(test_frac={frac}, min_train={min_train}, latest)")
    mask = _last_per_group(_random_order(codes, np.random.default_rng(seed)), codes, counts,
                           n_test)
    return _to_split(mask, f"user_fraction(test_frac={frac}, min_train={min_train}, seed={seed})")


def temporal_split(
    timestamps: np.ndarray, *, cutoff: int | float | None = None, test_frac: float = 0.2
) -> Split:
    """Split at one global time: rows with ``timestamp >= cutoff`` are test.

    Parameters
    ----------
    timestamps : numpy.ndarray
        Timestamp of each row (1-D integers or floats, e.g. Unix seconds).
    cutoff : int, float or None, default None
        First test timestamp. ``None`` picks the timestamp that puts closest to
        ``floor(test_frac * n)`` rows in test: the smallest of the latest ``floor(test_frac * n)``
        timestamps, or the next larger timestamp if ties at that value overshoot by more.
    test_frac : float, default 0.2
        Target share of test rows when ``cutoff`` is None, in (0, 1); ignored otherwise.

    Returns
    -------
    Split
        Named ``"temporal(cutoff=...)"`` or ``"temporal(test_frac=..., cutoff=...)"``; the
        chosen cutoff is in the name.

    Raises
    ------
    ConfigError
        If ``timestamps`` is None or empty, ``test_frac`` is outside (0, 1), or the cutoff leaves
        train or test empty (the message gives the range of the timestamps).
    DataError
        If ``timestamps`` is not 1-D numbers or contains NaN.
    """
    if timestamps is None:
        raise ConfigError(
            "temporal_split needs timestamps, got None; without timestamps use random_split "
            "or user_fraction_split"
        )
    frac = _check_frac(test_frac)
    ts = _check_timestamps(timestamps)
    if cutoff is None:
        cut = _quantile_cutoff(ts, frac)
        name = f"temporal(test_frac={frac}, cutoff={cut})"
    else:
        if isinstance(cutoff, bool) or not isinstance(cutoff, Real):
            raise ConfigError(f"cutoff={cutoff!r} must be a number (a timestamp) or None")
        cut = cutoff
        name = f"temporal(cutoff={cut})"
    mask = ts >= cut
    n_test = int(np.count_nonzero(mask))
    if n_test in (0, ts.size):
        empty = "test" if n_test == 0 else "train"
        raise ConfigError(
            f"cutoff={cut} leaves {empty} empty; timestamps run from {ts.min()} to {ts.max()}, "
            "so pick a cutoff above the first and at most the last"
        )
    return _to_split(mask, name)


def _quantile_cutoff(ts: np.ndarray, frac: float) -> int | float:
    n = ts.size
    target = int(_floor_frac(frac, n))
    if target == 0:
        raise ConfigError(
            f"test_frac={frac} of {n} rows rounds down to 0 test rows; "
            f"use test_frac >= {1 / n:.3g} or pass cutoff="
        )
    cut = np.partition(ts, n - target)[n - target]  # smallest of the `target` latest stamps
    n_at = int(np.count_nonzero(ts >= cut))
    later = ts[ts > cut]
    # Ties at `cut` can overshoot the target; the next distinct timestamp may land closer.
    if later.size and (n_at == n or abs(later.size - target) < abs(n_at - target)):
        cut = later.min()
    elif n_at == n:
        raise ConfigError(f"all {n} timestamps equal {cut}; a temporal split is impossible")
    return cut.item()


def leave_last_k_out(
    users: np.ndarray,
    timestamps: np.ndarray | None,
    *,
    k: int = 1,
    seed: int | None = 0,
    min_train: int = 1,
) -> Split:
    """Send each user's ``k`` latest rows to test.

    Parameters
    ----------
    users : numpy.ndarray
        User of each row (1-D).
    timestamps : numpy.ndarray or None
        Timestamp of each row. Ties are broken by row order: of two rows with the same
        timestamp, the later row counts as later. ``None`` sends ``k`` random rows per user to
        test instead (leave-k-random-out), drawn with ``seed``.
    k : int, default 1
        Test rows per user, at least 1. A user with ``c`` rows sends
        ``min(k, c - min_train)`` rows (never fewer than 0).
    seed : int or None, default 0
        Seed for ``np.random.default_rng``; only used when ``timestamps`` is None.
    min_train : int, default 1
        Rows each user keeps in train at least (a user with fewer rows keeps all of them).

    Returns
    -------
    Split
        Named ``"leave_last_k_out(k=..., min_train=...)"`` (``leave_random_k_out`` with the
        seed when ``timestamps`` is None).

    Raises
    ------
    ConfigError
        If ``k < 1``, ``min_train < 0``, ``users`` is empty, or train or test would be empty
        (no user has more than ``min_train`` rows, or ``min_train=0`` takes every row).
    DataError
        If the arrays are not 1-D, differ in length, or timestamps contain NaN.
    """
    k = _check_int("k", k, 1)
    min_train = _check_int("min_train", min_train, 0)
    users = _as_1d("users", users)
    codes, counts = _group(users)
    n_test = np.clip(np.minimum(k, counts - min_train), 0, None)
    if not n_test.any():
        raise ConfigError(
            f"no user has more than min_train={min_train} rows (the largest has {counts.max()}),"
            " so the test part would be empty; lower min_train"
        )
    if n_test.sum() == users.size:
        raise ConfigError(
            f"k={k} with min_train={min_train} sends every row to test, leaving train empty; "
            "use min_train >= 1"
        )
    if timestamps is None:
        keys = np.random.default_rng(seed).random(users.size)  # random rows: latest by a coin
        name = f"leave_random_k_out(k={k}, min_train={min_train}, seed={seed})"
    else:
        keys = _check_timestamps(timestamps)
        if keys.size != users.size:
            raise DataError(
                f"users has {users.size} rows but timestamps has {keys.size}; pass the parallel "
                "columns of one ratings table"
            )
        name = f"leave_last_k_out(k={k}, min_train={min_train})"
    return _to_split(_latest_per_group(codes, counts, keys, n_test), name)


def kfold(n_rows: int, *, k: int = 5, seed: int | None = 0) -> list[Split]:
    """Split rows into ``k`` random folds; fold ``i`` is the test part of split ``i``.

    Parameters
    ----------
    n_rows : int
        Number of rating rows.
    k : int, default 5
        Number of folds, from 2 to ``n_rows``. Fold sizes differ by at most one row (the first
        ``n_rows % k`` folds get the extra rows).
    seed : int or None, default 0
        Seed for ``np.random.default_rng``.

    Returns
    -------
    list of Split
        ``k`` splits named ``"kfold(k=..., fold=i, seed=...)"``; their test parts partition
        ``range(n_rows)``.

    Raises
    ------
    ConfigError
        If ``k < 2`` or ``k > n_rows``.
    """
    n = _check_n_rows(n_rows)
    k = _check_int("k", k, 2, " (k=1 would put every row in test)")
    if k > n:
        raise ConfigError(f"k={k} folds need at least {k} rows but n_rows={n}; use k <= {n}")
    fold = np.empty(n, dtype=np.int64)
    fold[np.random.default_rng(seed).permutation(n)] = np.arange(n) % k
    return [_to_split(fold == i, f"kfold(k={k}, fold={i}, seed={seed})") for i in range(k)]
