r"""Top-N ranking metrics: nDCG, precision, recall, hit rate and average precision at k.

Every metric comes in two forms that give the same numbers (the tests check it):

- **per user**, e.g. ``ndcg_at_k(recommended, relevant, k)``: one ranked list (best first) and
  the user's relevant items, as a set or as a mapping ``item -> gain``;
- **batch**, e.g. ``ndcg_batch(rec_items, test_users, test_items, test_gain, k)``: a
  ``(n_users, K)`` int matrix whose row ``u`` holds user ``u``'s recommended item indices (``-1``
  marks an empty slot), plus the test rows as parallel arrays. It returns one score per user and
  runs in vectorised numpy (one sort of the test rows and a ``searchsorted``), with no Python
  loop over users.

Conventions shared by both forms:

- Only the first ``k`` recommendations count. Missing or empty slots are misses, and precision
  still divides by ``k``.
- An item recommended twice counts only at its first position.
- An item is *relevant* when it is in ``relevant`` (it has a test row for that user), whatever
  its gain; gains only weight nDCG. Gains must be finite and >= 0; without gains every relevant
  item has gain 1.
- A user with no relevant items (or only zero gains, for nDCG) scores **0.0**. So when
  averaging, average over the users that have test rows, e.g.
  ``ndcg_batch(...)[np.unique(test_users)].mean()``.

With :math:`R` the relevant items, :math:`h_i = 1` when the item at rank :math:`i` (from 1) is
relevant, and :math:`g_i` its gain (0 on a miss):

.. math::

    P@k = \frac{1}{k}\sum_{i\le k} h_i \qquad
    R@k = \frac{1}{|R|}\sum_{i\le k} h_i \qquad
    HR@k = \max_{i\le k} h_i \qquad
    AP@k = \frac{1}{\min(|R|, k)} \sum_{i\le k} h_i \, P@i

    nDCG@k = \frac{\sum_{i\le k} g_i / \log_2(i + 1)}{\sum_{i\le k} g^*_i / \log_2(i + 1)}

where :math:`g^*_1 \ge g^*_2 \ge \dots` are the user's largest relevant gains (the ideal list).
Recall divides by all of :math:`|R|`, so it stays below 1 when :math:`|R| > k`; AP divides by
:math:`\min(|R|, k)` (the ``ml_metrics`` ``apk`` convention), so a perfect list scores 1.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Hashable, Iterable, Mapping
from dataclasses import dataclass
from itertools import islice
from numbers import Integral
from typing import Any, TypeAlias, TypeVar

import numpy as np

from collabkit.errors import ConfigError, DataError

__all__ = [
    "ndcg_at_k",
    "precision_at_k",
    "recall_at_k",
    "hit_rate_at_k",
    "average_precision_at_k",
    "ndcg_batch",
    "precision_batch",
    "recall_batch",
    "hit_rate_batch",
    "average_precision_batch",
]

Relevant: TypeAlias = "Mapping[Hashable, float] | Collection[Hashable]"


def _check_k(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, Integral) or k < 1:
        raise ConfigError(f"k={k!r} must be an integer >= 1 (the length of the top-N list)")
    return int(k)


# ------------------------------------------------------------------------------------ per user


def _gains(relevant: Relevant) -> dict[Hashable, float]:
    if isinstance(relevant, Mapping):
        gains = {item: float(gain) for item, gain in relevant.items()}
        bad = [item for item, gain in gains.items() if not (math.isfinite(gain) and gain >= 0)]
        if bad:
            raise DataError(
                f"{len(bad)} relevance gains are negative or not finite, e.g. item {bad[0]!r} "
                f"with gain {gains[bad[0]]}; gains must be finite and >= 0"
            )
        return gains
    if isinstance(relevant, str | bytes):
        raise DataError(
            f"relevant must be a set of items or a mapping item -> gain, not the string "
            f"{relevant!r}; wrap a single item as {{{relevant!r}}}"
        )
    return dict.fromkeys(relevant, 1.0)


def _ranked_gains(
    recommended: Iterable[Hashable], relevant: Relevant, k: int
) -> tuple[list[float | None], dict[Hashable, float]]:
    """Gain at each of the first ``k`` ranks (``None`` for a miss or a repeat) and all gains."""
    gains = _gains(relevant)
    seen: set[Hashable] = set()
    ranked: list[float | None] = []
    for item in islice(recommended, _check_k(k)):
        ranked.append(gains.get(item) if item not in seen else None)
        seen.add(item)
    return ranked, gains


def _discount(n: int) -> np.ndarray:
    """``1 / log2(rank + 1)`` for ranks 1..n."""
    return 1.0 / np.log2(np.arange(2, n + 2, dtype=np.float64))


def ndcg_at_k(recommended: Iterable[Hashable], relevant: Relevant, k: int) -> float:
    """Normalised discounted cumulative gain of one user's top-``k`` list.

    DCG sums ``gain / log2(rank + 1)`` over the first ``k`` ranks (rank 1 is the best); the
    ideal DCG does the same for the user's ``k`` largest gains, and nDCG = DCG / ideal DCG.

    Parameters
    ----------
    recommended : iterable of items
        Recommended items, best first. Only the first ``k`` count; repeats count once.
    relevant : set of items, or mapping item -> gain
        The user's relevant (test) items. A set gives every item gain 1; a mapping gives graded
        gains (for example the rating), which must be finite and >= 0.
    k : int
        Length of the list to score, at least 1.

    Returns
    -------
    float
        nDCG in [0, 1]; 0.0 when nothing is relevant (no items, or all gains 0).

    Raises
    ------
    ConfigError
        If ``k`` is not an integer >= 1.
    DataError
        If a gain is negative or not finite.

    Examples
    --------
    >>> ndcg_at_k(["a", "b", "c"], {"a", "b"}, k=3)
    1.0
    """
    ranked, gains = _ranked_gains(recommended, relevant, k)
    dcg = sum(g * d for g, d in zip(ranked, _discount(len(ranked)), strict=True) if g)
    ideal = sorted(gains.values(), reverse=True)[:k]
    idcg = float(np.dot(ideal, _discount(len(ideal))))
    return float(dcg / idcg) if idcg > 0 else 0.0


def precision_at_k(recommended: Iterable[Hashable], relevant: Relevant, k: int) -> float:
    """Share of the ``k`` slots that hold a relevant item.

    Parameters
    ----------
    recommended : iterable of items
        Recommended items, best first. A list shorter than ``k`` still divides by ``k``.
    relevant : set of items, or mapping item -> gain
        The user's relevant items (gains are ignored).
    k : int
        Length of the list to score, at least 1.

    Returns
    -------
    float
        Hits in the first ``k`` divided by ``k``; 0.0 when nothing is relevant.

    Raises
    ------
    ConfigError
        If ``k`` is not an integer >= 1.
    """
    ranked, _ = _ranked_gains(recommended, relevant, k)
    return sum(g is not None for g in ranked) / k


def recall_at_k(recommended: Iterable[Hashable], relevant: Relevant, k: int) -> float:
    """Share of the relevant items found in the first ``k``.

    Parameters
    ----------
    recommended : iterable of items
        Recommended items, best first.
    relevant : set of items, or mapping item -> gain
        The user's relevant items (gains are ignored).
    k : int
        Length of the list to score, at least 1.

    Returns
    -------
    float
        Hits divided by the number of relevant items (so below 1 whenever more than ``k`` are
        relevant); 0.0 when nothing is relevant.

    Raises
    ------
    ConfigError
        If ``k`` is not an integer >= 1.
    """
    ranked, gains = _ranked_gains(recommended, relevant, k)
    return sum(g is not None for g in ranked) / len(gains) if gains else 0.0


def hit_rate_at_k(recommended: Iterable[Hashable], relevant: Relevant, k: int) -> float:
    """1.0 if any of the first ``k`` items is relevant, else 0.0.

    Parameters
    ----------
    recommended : iterable of items
        Recommended items, best first.
    relevant : set of items, or mapping item -> gain
        The user's relevant items (gains are ignored).
    k : int
        Length of the list to score, at least 1.

    Returns
    -------
    float
        1.0 or 0.0 (0.0 when nothing is relevant).

    Raises
    ------
    ConfigError
        If ``k`` is not an integer >= 1.
    """
    ranked, _ = _ranked_gains(recommended, relevant, k)
    return 1.0 if any(g is not None for g in ranked) else 0.0


def average_precision_at_k(recommended: Iterable[Hashable], relevant: Relevant, k: int) -> float:
    """Average of precision@i over the ranks ``i <= k`` that hold a relevant item.

    The sum is divided by ``min(len(relevant), k)``, so a list whose first ``k`` slots are all
    relevant (or which holds every relevant item at the top) scores 1.0.

    Parameters
    ----------
    recommended : iterable of items
        Recommended items, best first.
    relevant : set of items, or mapping item -> gain
        The user's relevant items (gains are ignored).
    k : int
        Length of the list to score, at least 1.

    Returns
    -------
    float
        AP@k in [0, 1]; 0.0 when nothing is relevant.

    Raises
    ------
    ConfigError
        If ``k`` is not an integer >= 1.

    Examples
    --------
    >>> average_precision_at_k(["x", "a", "b"], {"a", "b"}, k=3)  # (1/2 + 2/3) / 2
    0.5833333333333333
    """
    ranked, gains = _ranked_gains(recommended, relevant, k)
    hits, total = 0, 0.0
    for rank, gain in enumerate(ranked, start=1):
        if gain is not None:
            hits += 1
            total += hits / rank
    return total / min(len(gains), k) if gains else 0.0


# --------------------------------------------------------------------------------------- batch


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
    return m.hits.any(axis=1).astype(np.float64)


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
