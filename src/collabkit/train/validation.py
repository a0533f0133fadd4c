"""One validation carve for every model: ``fit(data, valid)`` or ``valid_frac`` of the rows.

Models used to carry five copies of this; they differed only in how they wrote the same
selection (a boolean mask in row order, or sorted index arrays), so the rows are the same.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from collabkit.data.interactions import Interactions
from collabkit.data.vocab import Vocabulary

__all__ = ["Carve", "carve_validation", "valid_pairs"]


@dataclass(frozen=True)
class Carve:
    """Which rows train and which validate.

    Attributes
    ----------
    train_rows : numpy.ndarray of int64
        Sorted positions of the training rows that the model trains on.
    valid : (users, items, ratings) or None
        Dense indices and float32 ratings of the validation rows; None when there are none.
    valid_rows : numpy.ndarray or None
        Sorted positions of the held-out training rows (``valid_frac``), else None.
    valid_known : numpy.ndarray of bool or None
        For a ``valid`` set given to ``fit``: which of its rows have a known user and item
        (the only ones monitored), else None.
    """

    train_rows: np.ndarray
    valid: tuple[np.ndarray, np.ndarray, np.ndarray] | None
    valid_rows: np.ndarray | None = None
    valid_known: np.ndarray | None = None

    @property
    def n_valid(self) -> int:
        return 0 if self.valid is None else len(self.valid[2])


def valid_pairs(user_vocab: Vocabulary, item_vocab: Vocabulary, valid: Interactions
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Dense ``(users, items, ratings)`` of the ``valid`` rows whose user and item are known
    to the two vocabularies (ratings in their stored dtype), and the boolean mask of those
    rows."""
    vu = user_vocab.index(valid.user_vocab.ids(valid.users))
    vi = item_vocab.index(valid.item_vocab.ids(valid.items))
    ok = (vu >= 0) & (vi >= 0)
    return vu[ok], vi[ok], valid.ratings[ok], ok


def carve_validation(u: np.ndarray, i: np.ndarray, r: np.ndarray, *,
                     user_vocab: Vocabulary, item_vocab: Vocabulary,
                     valid: Interactions | None, valid_frac: float,
                     rng: np.random.Generator) -> Carve:
    """The validation rows of one fit.

    ``valid`` (rows of another table) wins: its rows with known ids are monitored and every
    training row trains. Otherwise ``valid_frac`` of the training rows, drawn with one
    ``rng.permutation``, are held out; both parts keep the rows' order. ``rng`` is not
    touched when nothing is drawn.
    """
    n = len(r)
    if valid is not None:
        vu, vi, vr, ok = valid_pairs(user_vocab, item_vocab, valid)
        return Carve(np.arange(n), (vu, vi, vr.astype(np.float32)), None, ok)
    if valid_frac > 0:
        perm = rng.permutation(n)
        n_valid = int(round(valid_frac * n))
        rows, vrows = np.sort(perm[n_valid:]), np.sort(perm[:n_valid])
        return Carve(rows, (u[vrows], i[vrows], r[vrows]), vrows, None)
    return Carve(np.arange(n), None)
