"""Re-ranking policies (issue 11): known answers on hand-made score matrices."""

from __future__ import annotations

import numpy as np
import pytest

from collabkit.errors import ConfigError
from collabkit.models.biased_mf import BiasedMF
from collabkit.recommend.rerank import (
    debias,
    explore,
    item_factors,
    mmr,
    recommend_reranked,
    rerank,
    top_n,
)
from collabkit.testing.synthetic import planted_low_rank

NEG = -np.inf


def test_top_n_orders_by_score_breaks_ties_by_index_and_pads() -> None:
    s = np.array([[1.0, 3.0, 3.0, 2.0],
                  [NEG, 5.0, NEG, NEG]])
    assert top_n(s, 3).tolist() == [[1, 2, 3], [1, -1, -1]]
    assert top_n(s, 6).tolist() == [[1, 2, 3, 0, -1, -1], [1, -1, -1, -1, -1, -1]]


def test_mmr_known_answer() -> None:
    # items 0-2 point the same way, item 3 is orthogonal to them
    f = np.array([[1.0, 0.0], [2.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    s = np.array([[5.0, 4.9, 4.8, 4.0]])
    # relevance scaled in the pool: 1, .9, .8, 0. After item 0 the gains are
    # .5*.9 - .5*1 = -.05 (item 1), -.1 (item 2) and .5*0 - .5*0 = 0 (item 3): item 3 is next
    assert mmr(s, f, 3, lam=0.5).tolist() == [[0, 3, 1]]
    assert mmr(s, f, 3, lam=1.0).tolist() == top_n(s, 3).tolist()
    # with more weight on relevance, item 1 (gain .8*.9 - .2 = .52) beats item 3 (0)
    assert mmr(s, f, 3, lam=0.8).tolist() == [[0, 1, 2]]


def test_mmr_respects_pool_and_bans() -> None:
    f = np.eye(5)
    s = np.array([[5.0, NEG, 4.0, 3.0, 2.0]])
    assert mmr(s, f, 3, lam=0.3, pool=3).tolist() == [[0, 2, 3]]  # item 4 is outside the pool
    assert mmr(s, f, 5, lam=0.3, pool=5).tolist() == [[0, 2, 3, 4, -1]]


def test_debias_known_answer() -> None:
    s = np.array([[4.0, 3.9, 3.5]])
    pop = np.array([100, 1, 50])  # percentiles 1, 1/3, 2/3
    # keys 4 - .5, 3.9 - .5/3, 3.5 - 1/3 = 3.5, 3.733, 3.167
    assert debias(s, pop, 3, beta=0.5).tolist() == [[1, 0, 2]]
    assert debias(s, pop, 3, beta=0.0).tolist() == [[0, 1, 2]]


def test_explore_keeps_the_head_and_samples_the_rest_of_the_pool() -> None:
    s = np.tile(np.linspace(5.0, 3.0, 20), (4000, 1))
    s[:, 5] = NEG  # a rated item is never shown
    out = explore(s, 5, n_explore=2, pool=10, temperature=1e6, seed=0)
    assert (out[:, :3] == [0, 1, 2]).all()
    tail = out[:, 3:]
    assert (tail[:, 0] != tail[:, 1]).all()
    # the pool is the 10 best showable items (0-4, 6-10); the head takes 0-2
    assert set(np.unique(tail).tolist()) == {3, 4, 6, 7, 8, 9, 10}
    share = np.bincount(tail.ravel(), minlength=11)[[3, 4, 6, 7, 8, 9, 10]] / len(tail)
    assert share == pytest.approx(np.full(7, 2 / 7), abs=0.03)  # uniform: 2 of 7 each
    cold = explore(s[:3], 5, n_explore=2, pool=10, temperature=1e-6, seed=0)
    assert cold.tolist() == [[0, 1, 2, 3, 4]] * 3
    again = explore(s, 5, n_explore=2, pool=10, temperature=1e6, seed=0)
    assert (again == out).all()


def test_explore_defaults_are_half_the_list_from_a_pool_of_200() -> None:
    s = np.tile(-np.arange(300, dtype=np.float64), (500, 1))  # item j is the j-th best
    out = explore(s, 10, temperature=1e6, seed=1)
    assert (out[:, :5] == np.arange(5)).all()
    assert out[:, 5:].min() >= 5 and out[:, 5:].max() <= 199
    assert out[:, 5:].max() > 150  # uniform over the pool reaches its far end
    assert explore(s[:2], 3, seed=1)[:, :2].tolist() == [[0, 1], [0, 1]]  # 1 of 3 explored
    assert explore(s[:1, :4], 3, seed=1)[0, :2].tolist() == [0, 1]  # pool clipped to 4 items


def test_rerank_dispatch_and_errors() -> None:
    s = np.array([[1.0, 2.0, 3.0]])
    assert rerank(s, 2).tolist() == [[2, 1]]
    assert rerank(s, 2, "debias", popularity=np.array([1, 2, 3]), beta=0.0, pool=3
                  ).tolist() == [[2, 1]]
    with pytest.raises(ConfigError, match="unknown re-ranking policy 'best'"):
        rerank(s, 2, "best")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="'mmr' needs the item factors"):
        rerank(s, 2, "mmr")
    with pytest.raises(ConfigError, match="pool must be an integer >= n=3"):
        mmr(s, np.eye(3), 3, pool=2)
    with pytest.raises(ConfigError, match="NaN"):
        top_n(np.array([[np.nan, 1.0]]), 1)
    with pytest.raises(ConfigError, match=r"factors must be \(n_items=3, k\)"):
        mmr(s, np.eye(2), 2)


@pytest.fixture(scope="module")
def fitted() -> BiasedMF:
    data = planted_low_rank(n_users=60, n_items=40, k=2, density=0.3, seed=1).data
    return BiasedMF(n_factors=4, epochs=3, device="cpu", random_state=0).fit(data)


def test_recommend_reranked_top_matches_recommend(fitted: BiasedMF) -> None:
    users = fitted.user_vocab_.all_ids[:5]
    ours = recommend_reranked(fitted, users, n=7)
    theirs = fitted.recommend(users, n=7)
    assert ours["item"].tolist() == theirs["item"].tolist()
    assert ours["score"].to_numpy() == pytest.approx(theirs["score"].to_numpy(), rel=1e-5)


def test_recommend_reranked_mmr_lists_unseen_distinct_items(fitted: BiasedMF) -> None:
    assert item_factors(fitted).shape == (40, 4)
    out = recommend_reranked(fitted, [0, 1], n=5, policy="mmr", lam=0.3, pool=20)
    for user, part in out.groupby("user"):
        u = int(fitted.user_vocab_.index([user])[0])
        seen = fitted.item_vocab_.ids(
            fitted.seen_indices_[fitted.seen_indptr_[u]:fitted.seen_indptr_[u + 1]])
        assert len(part) == 5 and part["item"].is_unique
        assert not set(part["item"]) & set(seen)



def test_recommend_reranked_handles_unknown_users_and_filters_like_recommend(
        fitted: BiasedMF) -> None:
    users = [0, 999]  # 999: never seen
    items = fitted.item_vocab_.all_ids
    kw = {"exclude": items[:3], "candidates": items[:20]}
    ours = recommend_reranked(fitted, users, n=6, **kw)
    theirs = fitted.recommend(users, n=6, **kw)
    assert ours["item"].tolist() == theirs["item"].tolist()
    assert ours["tier"].tolist() == theirs["tier"].tolist() == ["model"] * 6 + ["baseline"] * 6
    out = recommend_reranked(fitted, users, n=6, policy="debias", beta=5.0, pool=20, **kw)
    assert set(out["item"]) <= set(items[3:20])
    with pytest.raises(ConfigError, match="lam must be in"):
        recommend_reranked(fitted, users, policy="mmr", lam=2.0)
