"""Tests of collabkit.data.split: hand-computed cases, error messages, hypothesis properties."""

from __future__ import annotations

import doctest
from unittest.mock import patch

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collabkit.data import split as split_module
from collabkit.data.split import (
    Split,
    kfold,
    leave_last_k_out,
    random_split,
    temporal_split,
    user_fraction_split,
)
from collabkit.errors import ConfigError, DataError

PROPERTY = settings(max_examples=60, deadline=None)

# Ten rows, four users. Per user, rows (timestamp):
#   user 0: row 0 (3), row 1 (1), row 2 (2)          -> latest row 0, then row 2
#   user 1: row 3 (5), row 4 (5)                     -> tie at 5: the later row 4 counts as latest
#   user 2: row 5 (1), row 6 (4), row 7 (4), row 8 (2) -> tie at 4: row 7, then row 6, then row 8
#   user 3: row 9 (7)                                -> one row: stays in train with min_train=1
USERS = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2, 3])
STAMPS = np.array([3, 1, 2, 5, 5, 1, 4, 4, 2, 7])


def assert_valid(split: Split, n_rows: int) -> None:
    """Train and test are sorted int64, disjoint, and together cover every row once."""
    for part in (split.train, split.test):
        assert part.dtype == np.int64
        assert np.all(np.diff(part) > 0)
    assert split.train.size > 0 and split.test.size > 0
    both = np.concatenate([split.train, split.test])
    assert np.array_equal(np.sort(both), np.arange(n_rows))


def same(a: Split, b: Split) -> bool:
    return np.array_equal(a.train, b.train) and np.array_equal(a.test, b.test)


def per_user_counts(users: np.ndarray, rows: np.ndarray) -> dict[int, int]:
    values, counts = np.unique(users[rows], return_counts=True)
    return dict(zip(values.tolist(), counts.tolist(), strict=True))


# ------------------------------------------------------------------------------ hand-computed


@pytest.mark.parametrize(("k", "min_train", "expected"), [
    (1, 1, [0, 4, 7]),
    (2, 1, [0, 2, 4, 6, 7]),  # user 1 keeps one row, user 3 keeps its only row
    (1, 0, [0, 4, 7, 9]),  # min_train=0 lets user 3's only row go to test
    (9, 1, [0, 2, 4, 6, 7, 8]),  # k above _MAX_PASSES: the sort path; each user keeps one row
    (2, 2, [0, 6, 7]),  # user 0 keeps 2 of 3, user 2 keeps 2 of 4, user 1 keeps both
])
def test_leave_last_k_out_hand_computed(k: int, min_train: int, expected: list[int]) -> None:
    split = leave_last_k_out(USERS, STAMPS, k=k, min_train=min_train)
    assert split.test.tolist() == expected
    assert_valid(split, 10)
    assert split.name == f"leave_last_k_out(k={k}, min_train={min_train})"


def test_leave_last_k_out_sort_path_matches_pass_path() -> None:
    with patch.object(split_module, "_MAX_PASSES", 0):
        by_sort = leave_last_k_out(USERS, STAMPS, k=2)
    assert by_sort.test.tolist() == [0, 2, 4, 6, 7]


def test_temporal_split_hand_computed() -> None:
    stamps = np.array([5, 1, 9, 3, 7, 2, 8, 4, 10, 6])
    # floor(0.3 * 10) = 3 test rows: the stamps 8, 9, 10 at rows 6, 2, 8.
    split = temporal_split(stamps, test_frac=0.3)
    assert split.test.tolist() == [2, 6, 8]
    assert split.name == "temporal(test_frac=0.3, cutoff=8)"
    # An explicit cutoff is inclusive: stamps 7, 8, 9, 10.
    assert temporal_split(stamps, cutoff=7).test.tolist() == [2, 4, 6, 8]


def test_temporal_split_ties_pick_the_closer_cutoff() -> None:
    # Target floor(0.4 * 5) = 2 rows. Cutoff 2 would give 4 test rows, cutoff 3 gives 1: closer.
    assert temporal_split(np.array([1, 2, 2, 2, 3]), test_frac=0.4).test.tolist() == [4]
    # Cutoff 2 would give 3 rows (off by 1), cutoff 3 gives 0: not allowed, so cutoff 2.
    assert temporal_split(np.array([1, 2, 2, 2, 1]), test_frac=0.4).test.tolist() == [1, 2, 3]
    # If the quantile is the first stamp, test would take every row: the next stamp is used.
    assert temporal_split(np.array([1, 1, 1, 2]), test_frac=0.5).test.tolist() == [3]


def test_random_split_sizes_round_down() -> None:
    assert random_split(10, test_frac=0.3, seed=1).test.size == 3
    assert random_split(9, test_frac=0.5).test.size == 4  # floor(4.5)
    assert random_split(100, test_frac=0.29).test.size == 29  # 0.29 * 100 == 28.999999999999996
    assert random_split(10, test_frac=0.3, seed=1).name == "random(test_frac=0.3, seed=1)"


def test_user_fraction_split_per_user_counts() -> None:
    users = np.repeat([7, 3, 5, 9], [10, 5, 3, 1])  # raw ids, not dense: the np.unique path
    split = user_fraction_split(users, test_frac=0.4, seed=3)
    assert per_user_counts(users, split.test) == {7: 4, 3: 2, 5: 1}  # floor(0.4 * c)
    strict = user_fraction_split(users, test_frac=0.4, seed=3, min_train=3)
    assert per_user_counts(users, strict.test) == {7: 4, 3: 2}  # user 5 has only 3 rows


def test_kfold_sizes_and_names() -> None:
    folds = kfold(11, k=3, seed=2)
    assert [f.test.size for f in folds] == [4, 4, 3]
    assert [f.name for f in folds] == [f"kfold(k=3, fold={i}, seed=2)" for i in range(3)]


def test_split_is_read_only_and_printable() -> None:
    split = random_split(10)
    with pytest.raises(ValueError, match="read-only"):
        split.test[0] = 3
    assert str(split) == "random(test_frac=0.2, seed=0): 8 train rows, 2 test rows"


def test_no_global_random_state_is_touched() -> None:
    before = np.random.get_state()[1].copy()
    random_split(50, seed=None)
    user_fraction_split(USERS, test_frac=0.5, seed=None)
    leave_last_k_out(USERS, None, seed=None)
    kfold(10, seed=None)
    assert np.array_equal(np.random.get_state()[1], before)


def test_docstring_examples_run() -> None:
    assert doctest.testmod(split_module).failed == 0


# -------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize("bad", [0, 1, -0.1, 1.5, float("nan"), True, "0.2"])
def test_bad_test_frac_names_value_and_range(bad: object) -> None:
    with pytest.raises(ConfigError, match=r"test_frac=.*\(0, 1\)"):
        random_split(10, test_frac=bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"\(0, 1\)"):
        user_fraction_split(USERS, test_frac=bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"\(0, 1\)"):
        temporal_split(STAMPS, test_frac=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(("call", "message"), [
    (lambda: kfold(10, k=1), r"k=1 must be an integer >= 2"),
    (lambda: kfold(3, k=4), r"k=4 folds need at least 4 rows but n_rows=3"),
    (lambda: random_split(1), r"n_rows=1 must be an integer >= 2"),
    (lambda: random_split(4, test_frac=0.2), r"rounds down to 0 test rows; use test_frac >= 0.25"),
    (lambda: user_fraction_split(np.array([], int)), r"users is empty"),
    (lambda: user_fraction_split(np.array([1, 2, 3])), r"no user has enough rows"),
    (lambda: user_fraction_split(USERS, min_train=-1), r"min_train=-1 must be an integer >= 0"),
    (lambda: leave_last_k_out(USERS, STAMPS, k=0), r"k=0 must be an integer >= 1"),
    (lambda: leave_last_k_out(USERS, STAMPS, min_train=5), r"no user has more than min_train=5"),
    (lambda: temporal_split(None), r"needs timestamps, got None"),  # type: ignore[arg-type]
    (lambda: temporal_split(STAMPS, cutoff=100), r"cutoff=100 leaves test empty.* 1 to 7"),
    (lambda: temporal_split(STAMPS, cutoff=1), r"cutoff=1 leaves train empty"),
    (lambda: temporal_split(np.array([4, 4, 4]), test_frac=0.5), r"all 3 timestamps equal 4"),
    (lambda: leave_last_k_out([1, 2], None, min_train=0), r"every row to test.* min_train >= 1"),
])
def test_config_errors_are_actionable(call: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        call()  # type: ignore[operator]


@pytest.mark.parametrize(("call", "message"), [
    (lambda: user_fraction_split(np.zeros((2, 2))), r"users must be 1-D.*shape \(2, 2\)"),
    (lambda: leave_last_k_out(USERS, STAMPS[:5]), r"users has 10 rows but timestamps has 5"),
    (lambda: temporal_split(np.array([1.0, np.nan, 3.0, np.nan])), r"2 NaN values.* row 1"),
    (lambda: leave_last_k_out(USERS, np.where(USERS == 2, np.nan, 1.0)), r"4 NaN .* row 5"),
    (lambda: temporal_split(np.array(["a", "b"])), r"must be integers or floats"),
])
def test_data_errors_are_actionable(call: object, message: str) -> None:
    with pytest.raises(DataError, match=message):
        call()  # type: ignore[operator]


# ---------------------------------------------------------------------------------- properties

seeds = st.integers(0, 2**32) | st.none()
percent = st.integers(1, 99)  # test_frac = percent / 100, so floor(test_frac * n) is exact
users_st = st.lists(st.integers(0, 6), min_size=1, max_size=80).map(np.array)


@PROPERTY
@given(n=st.integers(2, 300), p=percent, seed=seeds)
def test_random_split_properties(n: int, p: int, seed: int | None) -> None:
    expected = p * n // 100
    if expected == 0:
        with pytest.raises(ConfigError):
            random_split(n, test_frac=p / 100, seed=seed)
        return
    split = random_split(n, test_frac=p / 100, seed=seed)
    assert_valid(split, n)
    assert split.test.size == expected
    if seed is not None:
        assert same(split, random_split(n, test_frac=p / 100, seed=seed))


@PROPERTY
@given(users=users_st, p=percent, seed=seeds, min_train=st.integers(0, 3),
       offset=st.sampled_from([0, 10**9]))
def test_user_fraction_split_properties(
    users: np.ndarray, p: int, seed: int | None, min_train: int, offset: int
) -> None:
    users = users + offset  # 10**9: sparse ids, which take the np.unique path
    ids, counts = np.unique(users, return_counts=True)
    want = {u: max(0, min(p * c // 100, c - min_train)) for u, c in zip(ids, counts, strict=True)}
    if not any(want.values()):
        with pytest.raises(ConfigError):
            user_fraction_split(users, test_frac=p / 100, seed=seed, min_train=min_train)
        return
    split = user_fraction_split(users, test_frac=p / 100, seed=seed, min_train=min_train)
    assert_valid(split, users.size)
    assert per_user_counts(users, split.test) == {u: n for u, n in want.items() if n}
    train = per_user_counts(users, split.train)
    assert all(train.get(u, 0) >= min(min_train, c) for u, c in zip(ids, counts, strict=True))
    if seed is not None:
        assert same(split, user_fraction_split(users, test_frac=p / 100, seed=seed,
                                                min_train=min_train))


@PROPERTY
@given(data=st.data(), k=st.integers(1, 10), min_train=st.integers(0, 3),
       stamps_are_none=st.booleans(), seed=seeds)
def test_leave_last_k_out_properties(
    data: st.DataObject, k: int, min_train: int, stamps_are_none: bool, seed: int | None
) -> None:
    users = data.draw(users_st)
    stamps = None if stamps_are_none else np.array(
        data.draw(st.lists(st.integers(0, 4), min_size=users.size, max_size=users.size)))
    ids, counts = np.unique(users, return_counts=True)
    want = {u: max(0, min(k, c - min_train)) for u, c in zip(ids, counts, strict=True)}
    if not any(want.values()) or sum(want.values()) == users.size:
        with pytest.raises(ConfigError):
            leave_last_k_out(users, stamps, k=k, seed=seed, min_train=min_train)
        return
    split = leave_last_k_out(users, stamps, k=k, seed=seed, min_train=min_train)
    assert_valid(split, users.size)
    assert per_user_counts(users, split.test) == {u: n for u, n in want.items() if n}
    if stamps is None:
        if seed is not None:
            assert same(split, leave_last_k_out(users, None, k=k, seed=seed, min_train=min_train))
        return
    # Per user, every test row is later than every train row in (timestamp, row) order, so
    # in particular no test timestamp is earlier than a train timestamp.
    for user in ids:
        test_keys = [(stamps[r], r) for r in split.test if users[r] == user]
        train_keys = [(stamps[r], r) for r in split.train if users[r] == user]
        if test_keys and train_keys:
            assert min(test_keys) > max(train_keys)
    with patch.object(split_module, "_MAX_PASSES", 0):  # the sort path gives the same split
        assert same(split, leave_last_k_out(users, stamps, k=k, min_train=min_train))


@PROPERTY
@given(stamps=st.lists(st.integers(0, 20), min_size=2, max_size=60).map(np.array), p=percent)
def test_temporal_split_properties(stamps: np.ndarray, p: int) -> None:
    target = p * stamps.size // 100
    # Feasible cutoffs: distinct stamps above the first. The chosen one gets closest to target.
    sizes = [int((stamps >= c).sum()) for c in np.unique(stamps)[1:]]
    if target == 0 or not sizes:
        with pytest.raises(ConfigError):
            temporal_split(stamps, test_frac=p / 100)
        return
    split = temporal_split(stamps, test_frac=p / 100)
    assert_valid(split, stamps.size)
    assert stamps[split.train].max() < stamps[split.test].min()
    assert abs(split.test.size - target) == min(abs(s - target) for s in sizes)


@PROPERTY
@given(n=st.integers(2, 200), k=st.integers(2, 12), seed=seeds)
def test_kfold_properties(n: int, k: int, seed: int | None) -> None:
    if k > n:
        with pytest.raises(ConfigError):
            kfold(n, k=k, seed=seed)
        return
    folds = kfold(n, k=k, seed=seed)
    assert len(folds) == k
    for fold in folds:
        assert_valid(fold, n)
    all_test = np.concatenate([f.test for f in folds])
    assert np.array_equal(np.sort(all_test), np.arange(n))  # the test parts partition the rows
    sizes = [f.test.size for f in folds]
    assert max(sizes) - min(sizes) <= 1
    if seed is not None:
        again = kfold(n, k=k, seed=seed)
        assert all(same(a, b) for a, b in zip(folds, again, strict=True))


def test_issue13_user_fraction_with_timestamps_takes_each_users_latest_rows():
    s = user_fraction_split(np.array([0, 0, 0, 1, 1, 1, 1]), test_frac=0.5,
                            timestamps=np.array([3, 1, 2, 5, 4, 7, 7]))
    assert s.test.tolist() == [0, 5, 6]  # user 0: floor(1.5) = 1 (t=3); user 1: the two t=7
    assert s.name.endswith("latest)")
