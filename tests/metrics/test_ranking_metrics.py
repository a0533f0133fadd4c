"""Tests of collabkit.metrics.ranking: hand-computed cases, errors, batch == per-user."""

from __future__ import annotations

import doctest
import math
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collabkit.errors import ConfigError, DataError
from collabkit.metrics import (
    average_precision_at_k,
    average_precision_batch,
    hit_rate_at_k,
    hit_rate_batch,
    ndcg_at_k,
    ndcg_batch,
    precision_at_k,
    precision_batch,
    recall_at_k,
    recall_batch,
)
from collabkit.metrics import ranking as ranking_module

PER_USER = [ndcg_at_k, precision_at_k, recall_at_k, hit_rate_at_k, average_precision_at_k]
PAIRS: list[tuple[Callable, Callable]] = [
    (precision_at_k, precision_batch),
    (recall_at_k, recall_batch),
    (hit_rate_at_k, hit_rate_batch),
    (average_precision_at_k, average_precision_batch),
]


# ------------------------------------------------------------------------------ hand-computed


def test_ndcg_perfect_ranking_is_one() -> None:
    assert ndcg_at_k(["a", "b", "c"], {"a", "b", "c"}, k=3) == 1.0
    assert ndcg_at_k(["a", "b"], {"a": 5.0, "b": 2.0, "c": 1.0}, k=2) == pytest.approx(1.0)
    assert ndcg_at_k([7, 8, 9], {7}, k=3) == 1.0


def test_ndcg_three_items_by_hand() -> None:
    # Recommended [a, b, c], gains b=3, c=1, d=2 (d not recommended), k=3.
    #   DCG  = 0/log2(2) + 3/log2(3) + 1/log2(4) = 1.892789 + 0.5          = 2.392789
    #   IDCG = 3/log2(2) + 2/log2(3) + 1/log2(4) = 3 + 1.261860 + 0.5      = 4.761860
    #   nDCG = 2.392789 / 4.761860                                         = 0.502491
    gains = {"b": 3.0, "c": 1.0, "d": 2.0}
    assert ndcg_at_k(["a", "b", "c"], gains, k=3) == pytest.approx(0.5024905, abs=1e-7)
    # With binary relevance {b, c, d}: DCG = 1/log2(3) + 1/2, IDCG = 1 + 1/log2(3) + 1/2.
    binary = (1 / math.log2(3) + 0.5) / (1 + 1 / math.log2(3) + 0.5)
    assert ndcg_at_k(["a", "b", "c"], set(gains), k=3) == pytest.approx(binary)
    # k=1: the top slot misses, so nDCG is 0 even though relevant items follow.
    assert ndcg_at_k(["a", "b", "c"], gains, k=1) == 0.0


def test_set_metrics_by_hand() -> None:
    recommended, relevant = ["x", "a", "y", "b"], {"a", "b", "c"}
    # hits at ranks 2 and 4
    assert precision_at_k(recommended, relevant, k=4) == 0.5  # 2 / 4
    assert recall_at_k(recommended, relevant, k=4) == pytest.approx(2 / 3)
    assert hit_rate_at_k(recommended, relevant, k=4) == 1.0
    assert average_precision_at_k(recommended, relevant, k=4) == pytest.approx(1 / 3)  # (1/2+2/4)/3
    assert average_precision_at_k(recommended, relevant, k=2) == 0.25  # (1/2) / min(3, 2)
    assert hit_rate_at_k(recommended, relevant, k=1) == 0.0


def test_short_lists_and_repeats() -> None:
    assert precision_at_k(["a"], {"a", "b"}, k=5) == 0.2  # empty slots are misses
    assert precision_at_k(["a", "a", "a"], {"a"}, k=3) == pytest.approx(1 / 3)  # counted once
    assert ndcg_at_k(["a", "a"], {"a"}, k=2) == 1.0
    assert average_precision_at_k(np.array([3, 1]), {1: 2.0}, k=2) == 0.5  # numpy lists work


@pytest.mark.parametrize("metric", PER_USER)
@pytest.mark.parametrize("relevant", [set(), {}, {"a": 0.0}])
def test_nothing_relevant_scores_zero(metric: Callable, relevant: object) -> None:
    if relevant == {"a": 0.0} and metric is not ndcg_at_k:
        return  # a zero gain still counts as relevant for the set metrics
    assert metric(["a", "b"], relevant, 2) == 0.0


@pytest.mark.parametrize("metric", PER_USER)
def test_per_user_errors(metric: Callable) -> None:
    with pytest.raises(ConfigError, match=r"k=0 must be an integer >= 1"):
        metric(["a"], {"a"}, 0)
    with pytest.raises(DataError, match=r"item 'a' with gain -1.0"):
        metric(["a"], {"a": -1.0}, 1)
    with pytest.raises(DataError, match=r"not the string 'ab'"):
        metric(["a"], "ab", 1)


def test_batch_by_hand() -> None:
    # user 0 recommends [3, 1, pad], relevant {1, 4}: hit at rank 2
    # user 1 recommends [2, 2, 5],   relevant {2, 5, 7}: hits at ranks 1 and 3 (the repeat misses)
    # user 2 recommends [0, 1, 2],   nothing relevant: 0.0 everywhere
    rec = np.array([[3, 1, -1], [2, 2, 5], [0, 1, 2]])
    users, items = np.array([0, 0, 1, 1, 1]), np.array([1, 4, 2, 5, 7])
    np.testing.assert_allclose(precision_batch(rec, users, items), [1 / 3, 2 / 3, 0])
    np.testing.assert_allclose(recall_batch(rec, users, items), [1 / 2, 2 / 3, 0])
    np.testing.assert_allclose(hit_rate_batch(rec, users, items, k=1), [0, 1, 0])
    np.testing.assert_allclose(average_precision_batch(rec, users, items), [1 / 4, 5 / 9, 0])
    ideal0, ideal1 = 1 + 1 / math.log2(3), 1 + 1 / math.log2(3) + 0.5
    np.testing.assert_allclose(
        ndcg_batch(rec, users, items), [(1 / math.log2(3)) / ideal0, 1.5 / ideal1, 0]
    )


def test_batch_with_no_test_rows_is_zero() -> None:
    empty = np.array([], dtype=np.int64)
    assert ndcg_batch(np.array([[1, 2]]), empty, empty, empty.astype(float)).tolist() == [0.0]
    assert recall_batch(np.array([[1, 2]]), empty, empty).tolist() == [0.0]


@pytest.mark.parametrize(("kwargs", "error", "message"), [
    ({"k": 3}, ConfigError, r"k=3 but rec_items has 2 columns"),
    ({"k": 0}, ConfigError, r"k=0 must be an integer >= 1"),
    ({"test_users": np.array([0, 5])}, DataError, r"test user 5 has no row in rec_items"),
    ({"test_items": np.array([1, 1]), "test_users": np.array([0, 0])}, DataError,
     r"1 duplicate \(user, item\) pairs, e.g. user 0 item 1 at row 1"),
    ({"test_items": np.array([1])}, DataError, r"test_users has 2 rows but test_items has 1"),
    ({"rec_items": np.array([[1.0, 2.0], [0.0, 1.0]])}, DataError, r"2-D integer array"),
    ({"rec_items": np.array([[1, -2], [0, 1]])}, DataError, r"holds -2; use item indices >= 0"),
    ({"test_gain": np.array([1.0, -1.0])}, DataError, r"1 negative or non-finite.* row 1"),
    ({"test_gain": np.array([1.0])}, DataError, r"test_gain has shape \(1,\)"),
])
def test_batch_errors(kwargs: dict, error: type[Exception], message: str) -> None:
    args = {"rec_items": np.array([[1, 2], [0, 1]]), "test_users": np.array([0, 1]),
            "test_items": np.array([1, 2]), "test_gain": None, "k": None} | kwargs
    with pytest.raises(error, match=message):
        ndcg_batch(**args)


def test_docstring_examples_run() -> None:
    assert doctest.testmod(ranking_module).failed == 0


# ----------------------------------------------------------------------- batch == per user


@st.composite
def batch_cases(draw: st.DrawFn) -> tuple:
    n_users, width = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    rec = np.array(draw(st.lists(st.lists(st.integers(-1, 8), min_size=width, max_size=width),
                                 min_size=n_users, max_size=n_users)), dtype=np.int64)
    pairs = sorted(draw(st.sets(st.tuples(st.integers(0, n_users - 1), st.integers(0, 8)),
                                max_size=20)))
    order = draw(st.permutations(range(len(pairs))))  # test rows in any order
    pairs = [pairs[i] for i in order]
    gains = draw(st.none() | st.lists(st.sampled_from([0.0, 0.5, 1.0, 3.0, 4.5]),
                                      min_size=len(pairs), max_size=len(pairs)))
    k = draw(st.integers(1, width))
    users = np.array([u for u, _ in pairs], dtype=np.int64)
    items = np.array([i for _, i in pairs], dtype=np.int64)
    return rec, users, items, None if gains is None else np.array(gains), k


@settings(max_examples=150, deadline=None)
@given(case=batch_cases())
def test_batch_equals_per_user(case: tuple) -> None:
    rec, users, items, gains, k = case
    relevant: list[dict[int, float]] = [{} for _ in range(rec.shape[0])]
    for row, (user, item) in enumerate(zip(users.tolist(), items.tolist(), strict=True)):
        relevant[user][item] = 1.0 if gains is None else float(gains[row])
    lists = [row.tolist() for row in rec]  # -1 is never relevant, so it misses like padding
    expected = [ndcg_at_k(lists[u], relevant[u], k) for u in range(rec.shape[0])]
    np.testing.assert_allclose(ndcg_batch(rec, users, items, gains, k), expected, atol=1e-12)
    for per_user, batch in PAIRS:
        expected = [per_user(lists[u], set(relevant[u]), k) for u in range(rec.shape[0])]
        np.testing.assert_allclose(batch(rec, users, items, k), expected, atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(case=batch_cases())
def test_batch_scores_are_in_unit_interval(case: tuple) -> None:
    rec, users, items, gains, k = case
    for scores in [ndcg_batch(rec, users, items, gains, k)] + [
        batch(rec, users, items, k) for _, batch in PAIRS
    ]:
        assert scores.shape == (rec.shape[0],)
        assert np.all((scores >= 0) & (scores <= 1 + 1e-12))
