"""data/checks.py: far ratings, ratings outside a model's range, exact integer ids (issue 8)."""

import numpy as np
import pandas as pd
import pytest

from collabkit.data.checks import exact_int_ids, far_ratings, refuse_outside_range
from collabkit.errors import DataError


def test_issue8_far_ratings_known_answer():
    values = np.array([1, 2, 3, 4, 5, 3, 4, 1e9, 2, 3, -100], dtype=np.float64)
    found = far_ratings(values)
    # quartiles 2 and 4, so the fences are 2 - 10 * 2 = -18 and 4 + 10 * 2 = 24
    assert (found.count, found.first, found.value) == (2, 7, 1e9)
    assert (found.q1, found.q3, found.low, found.high) == (2.0, 4.0, -18.0, 24.0)
    assert far_ratings(np.array([0.5, 5.0, 3.5, 4.0, 1.0])) is None
    assert far_ratings(np.array([1.0, 1.0, 1.0, 1.0, 9.0])) is None  # IQR 0: spread 1, fence 11
    assert far_ratings(np.array([1.0, 1.0, 1.0, 1.0, 12.0])).value == 12.0


def test_issue8_refuse_outside_range_names_the_item_and_range():
    with pytest.raises(DataError, match=r"rating -40 for item 172 is outside the model's rating "
                       r"range 0.5 to 5 \(1 more like it\)"):
        refuse_outside_range(np.array([4.0, -40.0, 100.0]), np.array([50, 172, 1]), "item",
                             (0.5, 5.0))
    refuse_outside_range(np.array([0.5, 5.0]), np.array([1, 2]), "item", (0.5, 5.0))


def test_issue8_exact_int_ids():
    assert exact_int_ids(pd.Series([3, 4], dtype=np.uint32)).dtype == np.int64
    big = exact_int_ids(pd.Series(np.array([2**63, 1], dtype=np.uint64)))
    assert big.tolist() == ["9223372036854775808", "1"]
    assert exact_int_ids(pd.Series([-(2**63) - 1, 5], dtype=object)).tolist() == \
        [str(-(2**63) - 1), "5"]
