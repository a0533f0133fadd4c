"""Popularity and item-kNN: the baselines printed beside every implicit score."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from collabkit.data.implicit import read_interactions
from collabkit.errors import ConfigError
from collabkit.models.implicit import ItemKNN, Popularity
from collabkit.models.implicit.baselines import _top_per_row

from .conftest import assert_top1_is_missing_item


def test_popularity_ranks_by_count_and_skips_seen() -> None:
    df = pd.DataFrame({"user": [1, 2, 3, 3, 2, 1], "item": ["a", "a", "a", "b", "b", "c"]})
    m = Popularity().fit(read_interactions(df))
    assert m.recommend(3, n=1)["item"].tolist() == ["c"]
    assert m.recommend(1, n=1)["item"].tolist() == ["b"]
    # an unknown user gets popularity too (the implicit models' fallback)
    assert m.recommend(99, n=2)["item"].tolist() == ["a", "b"]


def test_itemknn_cosine_known_answer() -> None:
    # a: users 1,2; b: users 1,2,3; c: user 3 -> cos(a,b) = 2/sqrt(2*3), cos(b,c) = 1/sqrt(3)
    df = pd.DataFrame({"user": [1, 2, 1, 2, 3, 3], "item": ["a", "a", "b", "b", "b", "c"]})
    m = ItemKNN(n_neighbors=5, shrink=0.0).fit(read_interactions(df))  # plain cosine
    s = m.similarity_.toarray()
    ia, ib, ic = m.item_vocab_.index(["a", "b", "c"])
    assert s[ia, ib] == pytest.approx(2 / np.sqrt(6)) and s[ib, ic] == pytest.approx(1 / np.sqrt(3))
    assert s[ia, ic] == 0 and s[ia, ia] == 0


def test_issue13_itemknn_default_shrink_known_answer() -> None:
    # the same table with the default shrink (18, issue 13): c_ij / (sqrt(n_i n_j) + 18)
    df = pd.DataFrame({"user": [1, 2, 1, 2, 3, 3], "item": ["a", "a", "b", "b", "b", "c"]})
    m = ItemKNN(n_neighbors=5).fit(read_interactions(df))
    s = m.similarity_.toarray()
    ia, ib, ic = m.item_vocab_.index(["a", "b", "c"])
    assert s[ia, ib] == pytest.approx(2 / (np.sqrt(6) + 18), rel=1e-6)
    assert s[ib, ic] == pytest.approx(1 / (np.sqrt(3) + 18), rel=1e-6)


def test_itemknn_checkerboard_top1(checkerboard) -> None:
    assert_top1_is_missing_item(ItemKNN(n_neighbors=9).fit(checkerboard))


def test_top_per_row_keeps_the_largest() -> None:
    m = sp.csr_matrix(np.array([[0.1, 0.5, 0.3, 0.0], [0.2, 0.0, 0.0, 0.0]], dtype=np.float32))
    out = _top_per_row(m, 2).toarray()
    np.testing.assert_allclose(out, [[0, 0.5, 0.3, 0], [0.2, 0, 0, 0]])


def test_itemknn_bad_params(checkerboard) -> None:
    with pytest.raises(ConfigError, match="n_neighbors"):
        ItemKNN(n_neighbors=0).fit(checkerboard)


def test_issue13_itemknn_prunes_each_candidates_neighbours() -> None:
    """Issue 13: with one neighbour, candidate c keeps only its most similar item (b), so a
    user who has a alone gets no score for c, and the user with b does; pruning the seen
    items' lists instead would let a vote for its own best match only."""
    # a: users 1,2; b: users 1,2,3; c: users 3,4 -> c's nearest is b (1/sqrt(6)), not a (0)
    df = pd.DataFrame({"user": [1, 2, 1, 2, 3, 3, 4], "item": ["a", "a", "b", "b", "b", "c",
                                                                "c"]})
    m = ItemKNN(n_neighbors=1, shrink=0.0).fit(read_interactions(df))
    s = m.similarity_.toarray()
    ia, ib, ic = m.item_vocab_.index(["a", "b", "c"])
    # column j holds the one item most similar to candidate j
    assert (s != 0).sum(axis=0).tolist() == [1, 1, 1]
    assert s[ib, ia] > 0 and s[ia, ib] > 0 and s[ib, ic] == pytest.approx(1 / np.sqrt(6))
    assert s[ic, ib] == 0  # b's nearest is a: c is not among b's neighbours
