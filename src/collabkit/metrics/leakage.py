"""Leakage between a train and a test set: test rows on users or items train never saw.

:func:`split_summary` counts, for a split made with :mod:`collabkit.data.split`, how many test
rows are cold start (their user or item has no training row), which a warm model cannot
predict.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from collabkit.errors import DataError

__all__ = ["ColdReport", "split_summary"]


@dataclass(frozen=True)
class ColdReport:
    """How much of a test set falls on users or items the training set never saw.

    Attributes
    ----------
    n_test : int
        Number of test rows.
    n_test_rows_unknown_user : int
        Test rows whose user has no training row.
    n_test_rows_unknown_item : int
        Test rows whose item has no training row.
    n_unknown_users : int
        Distinct users in test that are not in train.
    n_unknown_items : int
        Distinct items in test that are not in train.
    """

    n_test: int
    n_test_rows_unknown_user: int
    n_test_rows_unknown_item: int
    n_unknown_users: int
    n_unknown_items: int

    def __str__(self) -> str:
        def share(rows: int) -> str:
            return f"{rows / self.n_test:.1%}" if self.n_test else "0.0%"

        u, i = self.n_test_rows_unknown_user, self.n_test_rows_unknown_item
        return (
            f"{self.n_test:,} test rows: {u:,} ({share(u)}) from {self.n_unknown_users:,} users "
            f"not in train, {i:,} ({share(i)}) on {self.n_unknown_items:,} items not in train"
        )



def split_summary(
    train_users: np.ndarray,
    train_items: np.ndarray,
    test_users: np.ndarray,
    test_items: np.ndarray,
) -> ColdReport:
    """Count the test rows whose user or item never occurs in train.

    Parameters
    ----------
    train_users, train_items : numpy.ndarray
        User and item of each training row (1-D, same length).
    test_users, test_items : numpy.ndarray
        User and item of each test row (1-D, same length; may be empty).

    Returns
    -------
    ColdReport
        ``str(report)`` gives a one-line summary.

    Raises
    ------
    DataError
        If a pair of arrays differs in length or an array is not 1-D.

    Examples
    --------
    >>> print(split_summary(np.array([0, 1]), np.array([5, 6]), np.array([1, 2]), np.array([7, 7])))
    2 test rows: 1 (50.0%) from 1 users not in train, 2 (100.0%) on 1 items not in train
    """
    arrays = {}
    for name, values in [("train_users", train_users), ("train_items", train_items),
                         ("test_users", test_users), ("test_items", test_items)]:
        arrays[name] = np.asarray(values)
        if arrays[name].ndim != 1:
            raise DataError(f"{name} must be 1-D, got shape {arrays[name].shape}")
    for part in ("train", "test"):
        n_u, n_i = arrays[f"{part}_users"].size, arrays[f"{part}_items"].size
        if n_u != n_i:
            raise DataError(f"{part}_users has {n_u} rows but {part}_items has {n_i}")
    new_user = ~np.isin(arrays["test_users"], arrays["train_users"])
    new_item = ~np.isin(arrays["test_items"], arrays["train_items"])
    return ColdReport(
        n_test=int(arrays["test_users"].size),
        n_test_rows_unknown_user=int(new_user.sum()),
        n_test_rows_unknown_item=int(new_item.sum()),
        n_unknown_users=int(np.unique(arrays["test_users"][new_user]).size),
        n_unknown_items=int(np.unique(arrays["test_items"][new_item]).size),
    )
