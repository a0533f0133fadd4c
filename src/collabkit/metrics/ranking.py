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
from collections.abc import Collection, Hashable, Iterable, Mapping
from itertools import islice
from typing import TypeAlias

import numpy as np

from collabkit.errors import DataError
from collabkit.metrics.ranking_batch import (
    _check_k,
    _discount,
    average_precision_batch,
    hit_rate_batch,
    ndcg_batch,
    precision_batch,
    recall_batch,
)

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
