r"""Batch forms of the ranking metrics of :mod:`collabkit.metrics.ranking`: a ``(n_users, K)``
matrix of recommended item indices and the test rows as parallel arrays, one score per user,
vectorised numpy with no Python loop over users. The conventions and formulas are in
:mod:`collabkit.metrics.ranking`; the tests check both forms give the same numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from numbers import Integral
from typing import Any, TypeVar

import numpy as np

from collabkit.errors import ConfigError, DataError

__all__ = [
    "ndcg_batch",
    "precision_batch",
    "recall_batch",
    "hit_rate_batch",
    "average_precision_batch",
]


def _check_k(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, Integral) or k < 1:
        raise ConfigError(f"k={k!r} must be an integer >= 1 (the length of the top-N list)")
    return int(k)



def _discount(n: int) -> np.ndarray:
    """``1 / log2(rank + 1)`` for ranks 1..n."""
    return 1.0 / np.log2(np.arange(2, n + 2, dtype=np.float64))



@dataclass(frozen=True)
class _Matched:
    """Batch inputs matched against the recommendations."""

    hits: np.ndarray  # (n_users, k) bool: the slot holds a relevant item, first occurrence
    n_relevant: np.ndarray  # (n_users,) int64: test rows per user
    k: int


def _int_array(name: str, values: np.ndarray, ndim: int) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != ndim or (arr.size and arr.dtype.kind not in "iu"):
        raise DataError(
            f"{name} must be a {ndim}-D integer array, got shape {arr.shape} and dtype "
            f"{arr.dtype}; convert ids to indices first (e.g. with .astype(np.int64))"
        )
    return arr.astype(np.int64, copy=False)


def _check_test(
    rec_items: np.ndarray, test_users: np.ndarray, test_items: np.ndarray, k: int | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    rec = _int_array("rec_items", rec_items, 2)
    users = _int_array("test_users", test_users, 1)
    items = _int_array("test_items", test_items, 1)
    k = rec.shape[1] if k is None else _check_k(k)
    if k < 1 or k > rec.shape[1]:
        raise ConfigError(
            f"k={k} but rec_items has {rec.shape[1]} columns; pass k between 1 and "
            f"{rec.shape[1]}, or recommend more items"
        )
    if users.size != items.size:
        raise DataError(f"test_users has {users.size} rows but test_items has {items.size}")
    if rec.size and rec.min() < -1:
        raise DataError(f"rec_items holds {rec.min()}; use item indices >= 0 and -1 for padding")
    if users.size and (users.min() < 0 or users.max() >= rec.shape[0]):
        bad = users[(users < 0) | (users >= rec.shape[0])][0]
        raise DataError(
            f"test user {bad} has no row in rec_items, which has {rec.shape[0]} rows (row u "
            "holds user u's recommendations); recommend for every user index in test_users"
        )
    if items.size and items.min() < 0:
        raise DataError(f"test_items holds {items.min()}; item indices must be >= 0")
    return rec[:, :k], users, items, k


def _first_occurrence(rec: np.ndarray) -> np.ndarray:
    """Mask of slots that are not a repeat of an item earlier in the same row."""
    order = np.argsort(rec, axis=1, kind="stable")
    ranked = np.take_along_axis(rec, order, axis=1)
    repeat = np.zeros(rec.shape, dtype=bool)
    repeat[:, 1:] = ranked[:, 1:] == ranked[:, :-1]  # stable: the earliest slot is kept
    out = np.empty_like(repeat)
    np.put_along_axis(out, order, ~repeat, axis=1)
    return out


def _match(
    rec: np.ndarray, users: np.ndarray, items: np.ndarray, gain: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Hit mask and per-slot gain (gain 1 per hit when ``gain`` is None) of ``rec``."""
    n_users, k = rec.shape
    if users.size == 0:
        return np.zeros(rec.shape, dtype=bool), np.zeros(rec.shape, dtype=np.float64)
    slot_ok = (rec >= 0) & _first_occurrence(rec)
    width = max(int(items.max(initial=-1)), int(rec.max(initial=-1))) + 1
    if n_users * width >= 2**62:
        raise DataError(f"{n_users} users x {width} items is too many to encode as int64 pairs")
    # One int64 key per (user, item) pair; sorted test keys are then searched for each slot.
    test_keys = users * width + items
    order = np.argsort(test_keys, kind="stable")
    test_keys = test_keys[order]
    dup = np.flatnonzero(test_keys[1:] == test_keys[:-1])
    if dup.size:
        first = order[dup[0] + 1]
        raise DataError(
            f"test rows hold {dup.size} duplicate (user, item) pairs, e.g. user {users[first]} "
            f"item {items[first]} at row {first}; drop duplicates before scoring"
        )
    slot_keys = np.arange(n_users, dtype=np.int64)[:, None] * width + np.where(slot_ok, rec, 0)
    pos = np.minimum(np.searchsorted(test_keys, slot_keys), test_keys.size - 1)
    hits = slot_ok & (test_keys[pos] == slot_keys)
    if gain is None:
        return hits, hits.astype(np.float64)
    return hits, np.where(hits, gain[order][pos], 0.0)


def _batch(
    rec_items: np.ndarray, test_users: np.ndarray, test_items: np.ndarray, k: int | None
) -> _Matched:
    rec, users, items, k = _check_test(rec_items, test_users, test_items, k)
    hits, _ = _match(rec, users, items, None)
    return _Matched(hits, np.bincount(users, minlength=rec.shape[0]), k)


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    return np.divide(num, den, out=np.zeros(num.shape, dtype=np.float64), where=den > 0)


F = TypeVar("F", bound=Callable[..., Any])

_BATCH_DOC = """Batch form of :func:`{name}_at_k`: one score per user, no loop over users.

Parameters
----------
rec_items : numpy.ndarray
    ``(n_users, K)`` integer item indices, best first; row ``u`` belongs to user ``u`` and
    ``-1`` marks an empty slot.
test_users, test_items : numpy.ndarray
    The test rows: user index (in ``[0, n_users)``) and item index of each relevant pair.
    A (user, item) pair may occur only once.
k : int or None, default None
    Number of columns to score, from 1 to ``K``; None scores all ``K``.

Returns
-------
numpy.ndarray
    ``(n_users,)`` float64 scores, equal to the per-user function on each row. Users with
    no test rows score 0.0: average over ``np.unique(test_users)``.

Raises
------
ConfigError
    If ``k`` is outside ``[1, K]``.
DataError
    If an array has the wrong shape or dtype, lengths differ, a test user has no row in
    ``rec_items``, an index is negative, or a (user, item) pair repeats.
"""


def _batch_doc(name: str) -> Callable[[F], F]:
    """Give a batch metric the shared docstring (numpydoc, written once)."""

    def deco(fn: F) -> F:
        fn.__doc__ = _BATCH_DOC.format(name=name)
        return fn

    return deco


@_batch_doc("precision")
def precision_batch(
    rec_items: np.ndarray, test_users: np.ndarray, test_items: np.ndarray, k: int | None = None
) -> np.ndarray:
    m = _batch(rec_items, test_users, test_items, k)
    return m.hits.sum(axis=1) / m.k


@_batch_doc("recall")
def recall_batch(
    rec_items: np.ndarray, test_users: np.ndarray, test_items: np.ndarray, k: int | None = None
) -> np.ndarray:
    m = _batch(rec_items, test_users, test_items, k)
    return _safe_div(m.hits.sum(axis=1).astype(np.float64), m.n_relevant)


@_batch_doc("hit_rate")
def hit_rate_batch(
    rec_items: np.ndarray, test_users: np.ndarray, test_items: np.ndarray, k: int | None = None
) -> np.ndarray:
    m = _batch(rec_items, test_users, test_items, k)
    return np.asarray(m.hits.any(axis=1), dtype=np.float64)


@_batch_doc("average_precision")
def average_precision_batch(
    rec_items: np.ndarray, test_users: np.ndarray, test_items: np.ndarray, k: int | None = None
) -> np.ndarray:
    m = _batch(rec_items, test_users, test_items, k)
    precision_at_rank = np.cumsum(m.hits, axis=1) / np.arange(1, m.k + 1)
    total = np.where(m.hits, precision_at_rank, 0.0).sum(axis=1)
    return _safe_div(total, np.minimum(m.n_relevant, m.k))


def ndcg_batch(
    rec_items: np.ndarray,
    test_users: np.ndarray,
    test_items: np.ndarray,
    test_gain: np.ndarray | None = None,
    k: int | None = None,
) -> np.ndarray:
    """Batch form of :func:`ndcg_at_k`: one nDCG per user, no Python loop over users.

    Parameters
    ----------
    rec_items : numpy.ndarray
        ``(n_users, K)`` integer item indices, best first; row ``u`` belongs to user ``u`` and
        ``-1`` marks an empty slot.
    test_users, test_items : numpy.ndarray
        The test rows: user index (in ``[0, n_users)``) and item index of each relevant pair.
        A (user, item) pair may occur only once.
    test_gain : numpy.ndarray or None, default None
        Gain of each test row (finite, >= 0), e.g. its rating; None gives every row gain 1.
    k : int or None, default None
        Number of columns to score, from 1 to ``K``; None scores all ``K``.

    Returns
    -------
    numpy.ndarray
        ``(n_users,)`` float64 scores, equal to the per-user function on each row. Users with
        no test rows score 0.0: average over ``np.unique(test_users)``.

    Raises
    ------
    ConfigError
        If ``k`` is outside ``[1, K]``.
    DataError
        If an array has the wrong shape or dtype, lengths differ, a test user has no row in
        ``rec_items``, an index or gain is negative, or a (user, item) pair repeats.
    """
    rec, users, items, k = _check_test(rec_items, test_users, test_items, k)
    gain = None
    if test_gain is not None:
        gain = np.asarray(test_gain, dtype=np.float64)
        if gain.shape != users.shape:
            raise DataError(f"test_gain has shape {gain.shape} but test_users has {users.shape}")
        bad = np.flatnonzero(~(np.isfinite(gain) & (gain >= 0)))
        if bad.size:
            raise DataError(
                f"test_gain has {bad.size} negative or non-finite values, the first "
                f"{gain[bad[0]]} at row {bad[0]}; gains must be finite and >= 0"
            )
    _, slot_gain = _match(rec, users, items, gain)
    discount = _discount(k)
    dcg = slot_gain @ discount
    if gain is None:  # ideal list: min(|R|, k) hits of gain 1 at the top
        cum = np.concatenate([[0.0], np.cumsum(discount)])
        idcg = cum[np.minimum(np.bincount(users, minlength=rec.shape[0]), k)]
    else:  # ideal list: each user's k largest gains, by one sort on (user, -gain)
        order = np.lexsort((-gain, users))
        by_user, by_gain = users[order], gain[order]
        rank = np.arange(by_user.size) - np.searchsorted(by_user, by_user)
        top = rank < k
        idcg = np.bincount(by_user[top], weights=by_gain[top] * discount[rank[top]],
                           minlength=rec.shape[0])
    return _safe_div(dcg, idcg)
