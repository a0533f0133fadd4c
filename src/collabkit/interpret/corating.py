r"""Item-item similarity from the training ratings a model stores (issue 12).

The *adjusted cosine* of Sarwar et al. (2001), shrunk by co-support as in Koren (2010):

.. math::

    s_{ij} = \frac{n_{ij}}{n_{ij} + \lambda}\,
             \frac{\sum_{u \in U_{ij}} e_{ui}\, e_{uj}}
                  {\sqrt{\sum_{u \in U_{ij}} e_{ui}^2}\,\sqrt{\sum_{u \in U_{ij}} e_{uj}^2}},
    \qquad e_{ui} = r_{ui} - \bar r_u,

where :math:`U_{ij}` are the :math:`n_{ij}` users who rated both items in training and
:math:`\bar r_u` is user :math:`u`'s mean training rating. The fraction is a correlation in
[-1, 1]: do the users who rated both films rate them above (or below) their own average
together? The shrink factor pulls pairs that few users rated together toward 0, so a high
value needs both agreement and evidence. It reads the ratings every model stores
(``seen_indptr_``, ``seen_indices_``, ``seen_ratings_``); nothing extra is trained or saved.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["adjusted_cosine", "has_rating_signal", "co_raters"]

#: Koren's (2010) shrinkage of co-rating correlations toward 0, in co-raters
DEFAULT_SHRINK = 100.0


def has_rating_signal(model: Any) -> bool:
    """Whether ``model`` stores training ratings that vary within some user's history (files
    from before 0.1.0 store none; implicit feedback has one value per user)."""
    if model.seen_ratings_ is None:
        return False
    indptr = np.asarray(model.seen_indptr_, dtype=np.int64)
    r = np.asarray(model.seen_ratings_)
    starts = indptr[:-1][np.diff(indptr) > 0]
    if not len(starts):
        return False
    return bool(np.any(np.maximum.reduceat(r, starts) > np.minimum.reduceat(r, starts)))


def _co_rated(model: Any, j: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The stored ratings of the users who rated item ``j``: for each, its position in the
    stored arrays and its owner (0..k-1, in user order), and each such user's own position
    of item ``j``. Cost: one pass over the item column, then only those users' ratings."""
    indptr = np.asarray(model.seen_indptr_, dtype=np.int64)
    at_j = np.flatnonzero(np.asarray(model.seen_indices_) == j)
    users = np.searchsorted(indptr, at_j, side="right") - 1
    lengths = indptr[users + 1] - indptr[users]
    owner = np.repeat(np.arange(len(users)), lengths)
    first = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    take = indptr[users][owner] + np.arange(int(lengths.sum())) - first[owner]
    return take, owner, at_j


def co_raters(model: Any, j: int) -> np.ndarray:
    """For every item, how many training users rated both it and item ``j`` (dense index)."""
    take, _, _ = _co_rated(model, j)
    return np.bincount(np.asarray(model.seen_indices_)[take],
                       minlength=len(model.item_vocab_)).astype(np.int64)


def adjusted_cosine(model: Any, j: int,
                    shrink: float = DEFAULT_SHRINK) -> tuple[np.ndarray, np.ndarray]:
    r"""Shrunk adjusted cosine :math:`s_{ij}` of every item with item ``j`` (dense index),
    and the co-rater counts :math:`n_{ij}`; 0 where no user rated both (or where either
    item's centred ratings are all 0 on the shared users).

    >>> class M:  # users 0 and 1 rated items 0 and 1 the other way round; user 2 did not
    ...     item_vocab_ = range(3)
    ...     seen_indptr_ = np.array([0, 2, 4, 6])
    ...     seen_indices_ = np.array([0, 1, 0, 1, 1, 2])
    ...     seen_ratings_ = np.array([5.0, 1.0, 4.0, 2.0, 3.0, 3.0])
    >>> s, n = adjusted_cosine(M(), 0, shrink=0.0)
    >>> s.round(3).tolist(), n.tolist()
    ([1.0, -1.0, 0.0], [2, 2, 0])
    """
    take, owner, at_j = _co_rated(model, j)
    ratings = np.asarray(model.seen_ratings_, dtype=np.float64)
    items = np.asarray(model.seen_indices_)[take]
    r = ratings[take]
    k, n_items = len(at_j), len(model.item_vocab_)
    means = np.bincount(owner, weights=r, minlength=k) / np.maximum(
        np.bincount(owner, minlength=k), 1)
    e = r - means[owner]  # e_ui for every item i these users rated
    w = (ratings[at_j] - means)[owner]  # e_uj beside each of them
    num = np.bincount(items, weights=e * w, minlength=n_items)
    den = np.sqrt(np.bincount(items, weights=e * e, minlength=n_items)
                  * np.bincount(items, weights=w * w, minlength=n_items))
    n = np.bincount(items, minlength=n_items)
    corr = np.divide(num, den, out=np.zeros(n_items), where=den > 1e-12)
    return (corr * n / (n + float(shrink)) if shrink > 0 else corr), n.astype(np.int64)
