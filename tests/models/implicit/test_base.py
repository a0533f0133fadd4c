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


def test_issue13_lean_fit_common_matches_the_base_class() -> None:
    """Issue 13 (25M interactions in 4 GB): the implicit models' lean bookkeeping gives the
    vocabularies, seen lists, popularity and fingerprint of the base class's, with string ids
    and weights, at any chunk size of the fingerprint."""
    import pandas as pd

    from collabkit.data.implicit import read_interactions
    from collabkit.models.base import Recommender
    from collabkit.models.implicit._base import fingerprint

    rng = np.random.default_rng(3)
    pairs = np.unique(rng.integers(0, 30, (200, 2)), axis=0)
    df = pd.DataFrame({"user": [f"u{a}" for a in pairs[:, 0]],
                       "item": [f"i{b}" for b in pairs[:, 1]],
                       "count": rng.integers(1, 5, len(pairs)).astype(float)})
    data = read_interactions(df.sample(frac=1.0, random_state=0), weight_col="count")
    lean = EASE(reg=1.0)
    lean._fit_common(data)
    base = EASE(reg=1.0)
    Recommender._fit_common(base, data)
    assert lean.user_vocab_ == base.user_vocab_ and lean.item_vocab_ == base.item_vocab_
    for name in ("seen_indptr_", "seen_indices_", "seen_ratings_"):
        np.testing.assert_array_equal(getattr(lean, name), getattr(base, name))
    assert lean.data_fingerprint_ == base.data_fingerprint_ == data.fingerprint()
    assert fingerprint(data, chunk=7) == data.fingerprint()
    users_per_item = np.bincount(base.seen_indices_, minlength=len(base.item_vocab_))
    np.testing.assert_array_equal(lean.item_popularity_, users_per_item)
