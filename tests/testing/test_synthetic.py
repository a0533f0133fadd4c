"""The generated long-tail catalog (issue 14): the shape it promises, the same rows per seed."""

from __future__ import annotations

import numpy as np

from collabkit.testing.synthetic import long_tail


def test_issue14_long_tail_is_a_sparse_long_tail_of_1_to_5_stars() -> None:
    df = long_tail(300, 3000, 5000, seed=0)
    assert list(df.columns) == ["user", "item", "rating"]
    assert len(df) == 5000 and not df.duplicated(["user", "item"]).any()
    assert set(np.unique(df.rating)) <= {1.0, 2.0, 3.0, 4.0, 5.0}
    per_item = df.groupby("item").size()
    assert (per_item <= 3).mean() > 0.75  # most rated items have one to three ratings
    assert per_item.max() > 30  # and a few are popular
    assert df.equals(long_tail(300, 3000, 5000, seed=0))
    assert not df.equals(long_tail(300, 3000, 5000, seed=1))


def test_issue14_a_flatter_item_law_rates_more_of_the_catalog() -> None:
    steep = long_tail(300, 3000, 5000, seed=0).item.nunique()
    flat = long_tail(300, 3000, 5000, item_exponent=0.3, seed=0).item.nunique()
    assert flat > steep
