"""The new-user fallback chain (issue 3): every row says which tier answered."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from collabkit.data.interactions import Interactions
from collabkit.errors import ConfigError, DataError
from collabkit.models.baseline import BiasBaseline
from collabkit.models.biased_mf._estimator import BiasedMF
from collabkit.models.biased_mf._module import DotProductBias
from collabkit.recommend.coldstart import recommend_new_user
from collabkit.recommend.foldin import fold_in_user
from collabkit.recommend.onboarding import item_counts

COLUMNS = ["user", "rank", "item", "score", "title", "tier"]


@pytest.fixture(scope="module")
def model() -> BiasedMF:
    rng = np.random.default_rng(1)
    n_users, n_items, k = 80, 30, 2
    P, Q = rng.normal(0, 0.7, (n_users, k)), rng.normal(0, 0.7, (n_items, k))
    bu, bi = rng.normal(0, 0.2, n_users), rng.normal(0, 0.4, n_items)
    u, i = np.nonzero(rng.random((n_users, n_items)) < np.linspace(0.9, 0.05, n_items))
    r = 3.0 + bu[u] + bi[i] + np.einsum("ij,ij->i", P[u], Q[i])
    meta = pd.DataFrame({"title": [f"item {j}" for j in range(n_items)]},
                        index=pd.Index(np.arange(n_items), name="item"))
    data = Interactions.from_dataframe(pd.DataFrame({"user": u, "item": i, "rating": r}),
                                       item_meta=meta, rating_range=(1.0, 5.0))
    m = BiasedMF(n_factors=k, y_range=(0.0, 5.5), device="cpu")
    m._fit_common(data)
    ui = data.user_vocab.index(m.user_vocab_.all_ids)
    ii = data.item_vocab.index(m.item_vocab_.all_ids)
    mod = DotProductBias(len(ui), len(ii), k, (0.0, 5.5))
    with torch.no_grad():
        mod.user_factors.weight.copy_(torch.as_tensor(P[ui]))
        mod.item_factors.weight.copy_(torch.as_tensor(Q[ii]))
        mod.item_bias.weight.copy_(torch.as_tensor(bi[ii])[:, None])
    m.module_, m.device_, m.history_, m.seed_, m.n_valid_ = mod.eval(), torch.device("cpu"), \
        [], 0, 0
    return m


def test_no_ratings_is_popularity(model: BiasedMF):
    out = recommend_new_user(model, None, 5)
    assert list(out.columns) == COLUMNS
    assert (out["tier"] == "popularity").all() and out["rank"].tolist() == [1, 2, 3, 4, 5]
    counts = item_counts(model)
    assert out["item"].tolist() == np.argsort(-counts, kind="stable")[:5].tolist()
    # issue 8: the score is a predicted rating (the average user's), never a rating count
    expected = model.global_mean_ + model.item_bias_base_[model.item_vocab_.index(out["item"])]
    np.testing.assert_allclose(out["score"], np.clip(expected, 1.0, 5.0))
    assert out["title"].iloc[0] == f"item {out['item'].iloc[0]}"
    assert (recommend_new_user(model, {}, 5)["tier"] == "popularity").all()


def test_few_ratings_is_bias_popularity_without_rated_items(model: BiasedMF):
    rated = {0: 5.0, 1: 4.0}
    out = recommend_new_user(model, rated, 5, min_personal=3, min_count=3)
    assert (out["tier"] == "bias").all()
    assert not set(rated) & set(out["item"])
    idx = model.item_vocab_.index(out["item"])
    assert (item_counts(model)[idx] >= 3).all()
    assert out["score"].is_monotonic_decreasing
    # the damped user offset shifts every score by one constant
    shift = out["score"].to_numpy() - (model.global_mean_ + model.item_bias_base_[idx])
    np.testing.assert_allclose(shift, shift[0])


def test_enough_ratings_is_personal_fold_in(model: BiasedMF):
    rated = {0: 5.0, 1: 1.0, 2: 4.0, 5: 2.0}
    assert (recommend_new_user(model, rated, 4)["tier"] == "bias").all()  # default needs 5
    out = recommend_new_user(model, rated, 4, min_personal=3)
    assert (out["tier"] == "personal").all()
    scores = fold_in_user(model, rated, reg="population").scores()
    scores[model.item_vocab_.index(list(rated))] = -np.inf
    best = model.item_vocab_.ids(np.argsort(-scores, kind="stable")[:4])
    assert out["item"].tolist() == best.tolist()
    np.testing.assert_allclose(out["score"], np.sort(scores)[::-1][:4])


def test_unknown_items_do_not_count_toward_the_tier(model: BiasedMF):
    out = recommend_new_user(model, {0: 5.0, "x": 4.0, "y": 3.0}, 3, min_personal=2)
    assert (out["tier"] == "bias").all()
    assert out.attrs["n_unknown_items_ignored"] == 2


def test_exclude_and_user_label(model: BiasedMF):
    top = recommend_new_user(model, None, 1)["item"].iloc[0]
    out = recommend_new_user(model, None, 3, exclude=[top], user="alice")
    assert top not in set(out["item"]) and (out["user"] == "alice").all()


def test_models_without_fold_in_stop_at_the_bias_tier(model: BiasedMF):
    rows = []
    for u in model.user_vocab_.all_ids[:10]:
        rows += [(u, int(j), 3.0 + 0.1 * j) for j in range(5)]
    data = Interactions.from_dataframe(pd.DataFrame(rows, columns=["user", "item", "rating"]),
                                       rating_range=(1.0, 5.0))
    base = BiasBaseline().fit(data)
    out = recommend_new_user(base, {0: 5.0, 1: 4.0, 2: 3.0, 3: 2.0}, 1, min_count=1)
    assert out["tier"].tolist() == ["bias"] and out["item"].tolist() == [4]


def test_errors(model: BiasedMF):
    with pytest.raises(ConfigError):
        recommend_new_user(model, None, 0)
    with pytest.raises(ConfigError):
        recommend_new_user(model, None, 3, min_personal=0)
    with pytest.raises(DataError):
        recommend_new_user(model, {0: float("inf")}, 3)


def test_issue8_ratings_outside_the_models_range_are_refused(model: BiasedMF):
    with pytest.raises(DataError, match="rating 100 for item 3 is outside the model's rating "
                       "range 1 to 5 \\(1 more like it\\)"):
        recommend_new_user(model, {0: 4.0, 3: 100.0, 4: -40.0}, 3)
    with pytest.raises(DataError, match="rating -40 for item 4"):
        fold_in_user(model, {4: -40.0})
    assert len(recommend_new_user(model, {0: 1.0, 3: 5.0}, 3)) == 3  # the bounds are allowed
