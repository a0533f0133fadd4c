"""Tests of collabkit.metrics.leakage (moved from data.split, issue 9): known answers, errors,
a hypothesis property against Python sets, and the doctest."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collabkit.errors import DataError
from collabkit.metrics import leakage
from collabkit.metrics.leakage import ColdReport, split_summary

PROPERTY = settings(max_examples=60, deadline=None)


def test_split_summary_hand_computed() -> None:
    report = split_summary(
        train_users=np.array([0, 0, 1]), train_items=np.array([10, 11, 10]),
        test_users=np.array([1, 2, 2, 3]), test_items=np.array([12, 10, 12, 13]),
    )
    assert report == ColdReport(n_test=4, n_test_rows_unknown_user=3, n_test_rows_unknown_item=3,
                                n_unknown_users=2, n_unknown_items=2)
    assert str(report) == ("4 test rows: 3 (75.0%) from 2 users not in train, "
                           "3 (75.0%) on 2 items not in train")
    empty = split_summary(np.array([1]), np.array([1]), np.array([], int), np.array([], int))
    assert empty.n_test == 0 and "0.0%" in str(empty)


def test_split_summary_errors_name_the_argument() -> None:
    with pytest.raises(DataError, match=r"train_users has 2 rows but train_items"):
        split_summary(np.array([1, 2]), np.array([1]), np.array([1]), np.array([1]))
    with pytest.raises(DataError, match=r"test_users must be 1-D, got shape \(1, 1\)"):
        split_summary(np.array([1]), np.array([1]), np.array([[1]]), np.array([1]))


def test_doctest() -> None:
    result = doctest.testmod(leakage, extraglobs={"np": np})
    assert result.attempted > 0 and result.failed == 0


pairs = st.lists(st.tuples(st.integers(0, 8), st.integers(0, 8)), max_size=30)


@PROPERTY
@given(train=pairs, test=pairs)
def test_split_summary_matches_sets(
    train: list[tuple[int, int]], test: list[tuple[int, int]]
) -> None:
    def cols(rows: list[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
        return np.array([u for u, _ in rows], int), np.array([i for _, i in rows], int)

    report = split_summary(*cols(train), *cols(test))
    train_users, train_items = {u for u, _ in train}, {i for _, i in train}
    assert report.n_test == len(test)
    assert report.n_test_rows_unknown_user == sum(u not in train_users for u, _ in test)
    assert report.n_test_rows_unknown_item == sum(i not in train_items for _, i in test)
    assert report.n_unknown_users == len({u for u, _ in test} - train_users)
    assert report.n_unknown_items == len({i for _, i in test} - train_items)
