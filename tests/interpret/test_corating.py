"""The shrunk adjusted cosine of stored training ratings, on hand-computed cases (issue 12)."""

from types import SimpleNamespace

import numpy as np
import pytest

from collabkit.interpret.corating import adjusted_cosine, co_raters, has_rating_signal


def _stored(rows: list[list[tuple[int, float]]], n_items: int) -> SimpleNamespace:
    """What a fitted model stores: its training ratings, user by user, items sorted."""
    lengths = [len(r) for r in rows]
    return SimpleNamespace(
        item_vocab_=range(n_items),
        seen_indptr_=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        seen_indices_=np.array([i for r in rows for i, _ in r], dtype=np.int64),
        seen_ratings_=np.array([v for r in rows for _, v in r], dtype=np.float32))


# user means are all 3: centred ratings u0 (2, -2, 0), u1 (1, -1, .), u2 (., 1, -1)
HAND = _stored([[(0, 5.0), (1, 1.0), (2, 3.0)], [(0, 4.0), (1, 2.0)], [(1, 4.0), (2, 2.0)]], 4)


def test_hand_computed_adjusted_cosine():  # issue 12
    s, n = adjusted_cosine(HAND, 1, shrink=0.0)
    # item 1 with 0 over u0, u1: (2*-2 + 1*-1) / sqrt(5 * 5) = -1
    # item 1 with 2 over u0, u2: (-2*0 + 1*-1) / sqrt(5 * 1) = -1/sqrt(5)
    # item 3: nobody rated it, so no evidence: 0
    np.testing.assert_allclose(s, [-1.0, 1.0, -1 / np.sqrt(5), 0.0], atol=1e-12)
    assert n.tolist() == [2, 3, 2, 0]
    assert co_raters(HAND, 1).tolist() == [2, 3, 2, 0]


@pytest.mark.parametrize("shrink", [1.0, 2.0, 100.0])
def test_shrinking_by_co_raters(shrink):  # issue 12
    s, _ = adjusted_cosine(HAND, 1, shrink=shrink)
    np.testing.assert_allclose(s, [-2 / (2 + shrink), 3 / (3 + shrink),
                                   -1 / np.sqrt(5) * 2 / (2 + shrink), 0.0], atol=1e-12)


def test_a_shared_user_with_no_spread_gives_zero_not_nan():  # issue 12
    # item 0 with 2 share only u0, whose item-2 rating equals u0's mean: 0/0 -> 0
    s, n = adjusted_cosine(HAND, 0, shrink=0.0)
    assert s[2] == 0.0 and n[2] == 1 and np.isfinite(s).all()


def test_rating_signal():  # issue 12
    assert has_rating_signal(HAND)
    flat = _stored([[(0, 1.0), (1, 1.0)], [(1, 1.0), (2, 1.0)]], 3)  # implicit feedback
    assert not has_rating_signal(flat)
    assert not has_rating_signal(SimpleNamespace(seen_ratings_=None))
