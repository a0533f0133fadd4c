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
import scipy.sparse as sp

__all__ = ["adjusted_cosine", "has_rating_signal", "co_raters"]

#: Koren's (2010) shrinkage of co-rating correlations toward 0, in co-raters
DEFAULT_SHRINK = 100.0


def _user_centred(model: Any) -> np.ndarray:
    """Each stored training rating minus its user's mean rating (CSR order)."""
    indptr = np.asarray(model.seen_indptr_, dtype=np.int64)
    r = np.asarray(model.seen_ratings_, dtype=np.float64)
    counts = np.diff(indptr)
    rows = np.repeat(np.arange(len(counts)), counts)
    means = np.bincount(rows, weights=r, minlength=len(counts)) / np.maximum(counts, 1)
    return r - means[rows]


def has_rating_signal(model: Any) -> bool:
    """Whether ``model`` stores training ratings that vary within some user's history (files
    from before 0.1.0 store none; implicit feedback has one value per user)."""
    if model.seen_ratings_ is None:
        return False
    return bool(np.any(_user_centred(model) != 0))


def _matrix(model: Any, values: np.ndarray) -> sp.csr_matrix:
    shape = (len(model.seen_indptr_) - 1, len(model.item_vocab_))
    return sp.csr_matrix((values, np.asarray(model.seen_indices_, dtype=np.int64),
                          np.asarray(model.seen_indptr_, dtype=np.int64)), shape=shape)


def co_raters(model: Any, j: int) -> np.ndarray:
    """For every item, how many training users rated both it and item ``j`` (dense index)."""
    pattern = _matrix(model, np.ones(len(model.seen_indices_)))
    return np.rint(pattern.T @ np.asarray(pattern[:, [j]].todense()).ravel()).astype(np.int64)


def adjusted_cosine(model: Any, j: int,
                    shrink: float = DEFAULT_SHRINK) -> tuple[np.ndarray, np.ndarray]:
    r"""Shrunk adjusted cosine :math:`s_{ij}` of every item with item ``j`` (dense index),
    and the co-rater counts :math:`n_{ij}`; 0 where no user rated both (or where either
    item's centred ratings are all 0 on the shared users).

    >>> class M:  # users 0 and 1 rated items 0 and 1 the same way round; user 2 did not
    ...     item_vocab_ = range(3)
    ...     seen_indptr_ = np.array([0, 2, 4, 6])
    ...     seen_indices_ = np.array([0, 1, 0, 1, 1, 2])
    ...     seen_ratings_ = np.array([5.0, 1.0, 4.0, 2.0, 3.0, 3.0])
    >>> s, n = adjusted_cosine(M(), 0, shrink=0.0)
    >>> s.round(3).tolist(), n.tolist()
    ([1.0, -1.0, 0.0], [2, 2, 0])
    """
    e = _user_centred(model)
    centred = _matrix(model, e)
    pattern = _matrix(model, np.ones_like(e))
    squared = _matrix(model, e * e)
    ej = np.asarray(centred[:, [j]].todense()).ravel()
    bj = np.asarray(pattern[:, [j]].todense()).ravel()
    num = centred.T @ ej
    n = pattern.T @ bj
    den = np.sqrt((squared.T @ bj) * (pattern.T @ (ej * ej)))
    corr = np.divide(num, den, out=np.zeros_like(num), where=den > 1e-12)
    n_int = np.rint(n).astype(np.int64)
    return corr * n / (n + float(shrink)) if shrink > 0 else corr, n_int
