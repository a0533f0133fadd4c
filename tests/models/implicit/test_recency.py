"""Issue 13: ``recency`` weighs a user's past by how recent it is when an item-item model
scores (ease, itemknn, gfcf), with known answers on a two-cluster catalogue."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from collabkit.data.implicit import read_interactions
from collabkit.errors import ConfigError, DataError, DataWarning
from collabkit.models.implicit import EASE, GraphFilter, ItemKNN
from collabkit.models.persist import load_model

KINDS = [lambda **kw: EASE(reg=1.0, **kw), lambda **kw: ItemKNN(n_neighbors=9, **kw),
         lambda **kw: GraphFilter(n_factors=4, random_state=0, **kw)]


@pytest.fixture(scope="module")
def two_clusters():
    """Items 0-4 (cluster A) and 5-9 (B): users 0-19 use all of A or all of B but one item.
    User "new" met A's items 0, 1, 2 long ago, then B's item 5 last (times 1, 2, 3, 100)."""
    rows = []
    for u in range(20):
        block = range(0, 5) if u < 10 else range(5, 10)
        rows += [(str(u), i, 10 + i) for i in block if i != (u % 5) + (5 if u >= 10 else 0)]
    rows += [("new", 0, 1), ("new", 1, 2), ("new", 2, 3), ("new", 5, 100)]
    df = pd.DataFrame(rows, columns=["user", "item", "timestamp"])
    return read_interactions(df, timestamp_col="timestamp")


def _top1(model, user="new") -> int:
    return int(model.recommend([user], n=1)["item"].iloc[0])


@pytest.mark.parametrize("make", KINDS)
def test_recent_items_outweigh_older_ones(two_clusters, make) -> None:
    assert _top1(make().fit(two_clusters)) in {3, 4}  # three A items outvote one B item
    m = make(recency=0.5).fit(two_clusters)
    assert _top1(m) in {6, 7, 8, 9}  # the newest (B) counts 1, the A items 0.25 and less


def test_user_rows_carry_the_half_life_weights(two_clusters) -> None:
    m = ItemKNN(n_neighbors=9, recency=2.0).fit(two_clusters)
    u = int(m.user_vocab_.index(["new"])[0])
    row = m._user_rows(np.array([u])).toarray()[0]
    want = np.zeros(10)
    for k, item in enumerate([5, 2, 1, 0]):  # newest first
        want[m.item_vocab_.index([item])[0]] = 0.5 ** (k / 2.0)
    np.testing.assert_allclose(row, want, rtol=1e-6)
    sim = m.similarity_.toarray()
    np.testing.assert_allclose(m._score_users(np.array([u])).numpy()[0], want @ sim, rtol=1e-5)


def test_a_repeated_pair_counts_at_its_newest_time() -> None:
    df = pd.DataFrame({"user": ["a"] * 4 + ["b", "b"], "item": [1, 2, 1, 3, 1, 2],
                       "timestamp": [1, 2, 9, 5, 1, 2]})
    with pytest.warns(DataWarning, match="repeated"):
        data = read_interactions(df, timestamp_col="timestamp")
    m = ItemKNN(recency=1.0).fit(data)
    u = int(m.user_vocab_.index(["a"])[0])
    row = m._user_rows(np.array([u])).toarray()[0]
    idx = {it: int(m.item_vocab_.index([it])[0]) for it in (1, 2, 3)}
    # item 1 (summed weight 2) newest at t=9: rank 0; item 3 (t=5) rank 1; item 2 (t=2) rank 2
    assert row[idx[1]] == pytest.approx(2.0) and row[idx[3]] == pytest.approx(0.5)
    assert row[idx[2]] == pytest.approx(0.25)


@pytest.mark.parametrize("make", KINDS)
def test_fold_in_reads_the_items_oldest_first(two_clusters, make) -> None:
    m = make(recency=0.5).fit(two_clusters)
    last_b = m.recommend_new_user([0, 1, 2, 5], n=1)["item"].iloc[0]
    last_a = m.recommend_new_user([5, 0, 1, 2], n=1)["item"].iloc[0]
    assert last_b in {6, 7, 8, 9} and last_a in {3, 4}
    u = int(m.user_vocab_.index(["new"])[0])
    np.testing.assert_allclose(m.fold_in([0, 1, 2, 5]), m._score_users(np.array([u]))[0],
                               rtol=1e-5, atol=1e-6)


def test_fold_in_counts_a_repeated_item_at_its_last_mention(two_clusters) -> None:
    """As at fit time: an item named twice counts twice, at the rank of its newest mention."""
    m = ItemKNN(n_neighbors=9, recency=1.0).fit(two_clusters)
    x = m._item_vector([0, 5, 0]).toarray()[0]
    i0, i5 = (int(m.item_vocab_.index([it])[0]) for it in (0, 5))
    assert x[i0] == pytest.approx(2.0) and x[i5] == pytest.approx(0.5)
    assert x.sum() == pytest.approx(2.5)


@pytest.mark.parametrize("make", KINDS)
def test_saved_and_loaded_model_keeps_its_recency(two_clusters, make, tmp_path) -> None:
    m = make(recency=0.5).fit(two_clusters)
    back = load_model(m.save(str(tmp_path / "m")))
    assert back.recency_ == 0.5
    np.testing.assert_allclose(back._score_users(np.arange(21)).numpy(),
                               m._score_users(np.arange(21)).numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(back.fold_in([0, 5]), m.fold_in([0, 5]), rtol=1e-5, atol=1e-6)


def test_recency_acts_at_the_next_fit_like_every_parameter(two_clusters) -> None:
    m = EASE(reg=1.0).fit(two_clusters)
    m.set_params(recency=0.5)
    assert _top1(m) in {3, 4}
    assert _top1(m.fit(two_clusters)) in {6, 7, 8, 9}


def test_recency_needs_timestamps_and_a_positive_half_life(two_clusters) -> None:
    plain = read_interactions(pd.DataFrame({"user": [1, 1, 2], "item": [1, 2, 1]}))
    with pytest.raises(DataError, match="no timestamps.*recency=None"):
        EASE(recency=3.0).fit(plain)
    for bad in (0, -1.0, float("nan"), True, "3"):
        with pytest.raises(ConfigError, match="recency must be"):
            ItemKNN(recency=bad).fit(two_clusters)
