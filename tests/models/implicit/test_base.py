"""The implicit adapter: popularity fallback, fold-in inputs, similar items, save/load."""

from __future__ import annotations

import numpy as np
import pytest

from collabkit.errors import ConfigError, DataError, UnknownIdError
from collabkit.models.implicit import EASE, GraphFilter
from collabkit.models.persist import load_model


def test_unknown_pairs_fall_back_to_popularity(checkerboard) -> None:
    m = EASE(reg=1.0).fit(checkerboard)
    pred, fallback = m.predict_ratings([999, 999], [0, 5])
    assert fallback.all()
    # every item has 8 of the 20 users: share 0.4
    np.testing.assert_allclose(pred, [0.4, 0.4])
    assert m.recommend_new_user(None, n=2)["tier"].tolist() == ["popularity"] * 2


def test_fold_in_takes_a_dict_like_the_rating_models(checkerboard) -> None:
    m = GraphFilter(n_factors=4, random_state=0).fit(checkerboard)
    np.testing.assert_allclose(m.fold_in({1: 2.0, 2: 1.0}), m.fold_in([1, 2], [2.0, 1.0]))
    with pytest.raises(ConfigError, match="not both"):
        m.fold_in({1: 1.0}, weights=[1.0])
    with pytest.raises(UnknownIdError, match="unknown item 77"):
        m.fold_in([1, 77])
    with pytest.raises(DataError, match="finite numbers >= 0"):
        m.fold_in([1, 2], [1.0, -1.0])
    with pytest.raises(DataError, match="at least one item"):
        m.fold_in([])


def test_similar_items_columns(checkerboard) -> None:
    sim = EASE(reg=1.0).fit(checkerboard).similar_items(5, n=2)
    assert list(sim.columns) == ["rank", "item", "title", "similarity", "n_ratings"]
    assert sim["rank"].tolist() == [1, 2] and sim["item"].isin([6, 7, 8, 9]).all()
    assert (sim["n_ratings"] == 8).all()


def test_save_load_keeps_popularity(checkerboard, tmp_path) -> None:
    m = GraphFilter(n_factors=4, sharpen=1.0, random_state=0).fit(checkerboard)
    back = load_model(m.save(str(tmp_path / "gf")))
    np.testing.assert_array_equal(back.item_popularity_, m.item_popularity_)
    np.testing.assert_array_equal(back.fold_in([0, 1]), m.fold_in([0, 1]))
    assert back.recommend(999, n=3)["item"].tolist() == m.recommend(999, n=3)["item"].tolist()
