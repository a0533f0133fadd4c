"""One contract, run over every model kind (implicit's and LensKit's habit)."""

import numpy as np
import pytest

import collabkit
from collabkit.errors import ConfigError, NotFittedError
from collabkit.io import load_model
from collabkit.models.base import Recommender
from collabkit.testing import planted_low_rank

FAST = {"dot": {"epochs": 3}, "nn": {"epochs": 2}, "hybrid": {"epochs": 2},
        "bpmf": {"n_samples": 10, "burn_in": 5}, "svdpp": {"epochs": 3},
        "ensemble": {"members": ("dot", "als"), "member_params": {"dot": {"epochs": 2}}}}


def _kinds() -> list[str]:
    import collabkit.models  # noqa: F401  (registers every bundled kind)

    return sorted(Recommender._registry)


@pytest.fixture(scope="module")
def planted():
    return planted_low_rank(n_users=60, n_items=40, k=2, density=0.3, seed=3)


@pytest.fixture(scope="module", params=_kinds())
def fitted(request, planted):
    cls = Recommender._registry[request.param]
    names = cls._param_names()
    params = {k: v for k, v in FAST.get(request.param, {}).items() if k in names}
    if "random_state" in names:
        params["random_state"] = 0
    return cls(**params).fit(planted.data)


def test_fit_returns_self_and_sets_underscored(planted):
    m = collabkit.BiasedMF(epochs=1, random_state=0)
    assert m.fit(planted.data) is m
    assert len(m.user_vocab_) == 60 and len(m.item_vocab_) == 40


def test_get_set_params_follow_signature():
    m = collabkit.BiasedMF(n_factors=8)
    assert m.get_params()["n_factors"] == 8
    assert m.set_params(n_factors=3).n_factors == 3
    with pytest.raises(ConfigError, match="no parameter 'factors'"):
        m.set_params(factors=3)


def test_unfitted_raises():
    with pytest.raises(NotFittedError, match="not fitted"):
        collabkit.BiasedMF().predict([1], [1])


@pytest.mark.parametrize("bad", [{"n_factors": 0}, {"epochs": 0}, {"lr": -1.0},
                                 {"valid_frac": 1.0}, {"y_range": (5, 1)}])
def test_bad_params_rejected_at_fit(planted, bad):
    with pytest.raises(ConfigError):
        collabkit.BiasedMF(**bad).fit(planted.data)


def test_predictions_finite_and_consistent(fitted, planted):
    data = planted.data
    users = data.user_vocab.ids(data.users[:50])
    items = data.item_vocab.ids(data.items[:50])
    df = fitted.predict(users, items)
    assert list(df.columns) == ["user", "item", "prediction", "fallback", "title"]
    assert np.isfinite(df["prediction"]).all() and not df["fallback"].any()
    # the batched all-items scores agree with pairwise predictions
    u = fitted.user_vocab_.index(users[:5])
    scores = fitted._score_users(u).double().cpu().numpy()
    i = fitted.item_vocab_.index(items[:5])
    np.testing.assert_allclose(scores[np.arange(5), i], df["prediction"][:5], rtol=1e-4,
                               atol=1e-4)


def test_unknown_ids_fall_back_and_are_flagged(fitted):
    df = fitted.predict([999_999, 0], [0, 999_999])
    assert df["fallback"].tolist() == [True, True]
    assert np.isfinite(df["prediction"]).all()
    rec = fitted.recommend(999_999, n=3)
    assert rec["tier"].unique().tolist() == ["baseline"] and len(rec) == 3


def test_recommend_shape_and_exclusions(fitted, planted):
    user = fitted.user_vocab_.ids([0])[0]
    rec = fitted.recommend([user], n=5)
    assert rec["rank"].tolist() == [1, 2, 3, 4, 5]
    assert rec["score"].is_monotonic_decreasing
    start, end = fitted.seen_indptr_[0], fitted.seen_indptr_[1]
    seen = set(fitted.item_vocab_.ids(fitted.seen_indices_[start:end]).tolist())
    assert not seen & set(rec["item"].tolist())
    cands = fitted.item_vocab_.ids([0, 1, 2]).tolist()
    rec2 = fitted.recommend(user, n=10, exclude_seen=False, candidates=cands,
                            exclude=[cands[0]])
    assert set(rec2["item"]) <= set(cands[1:])
    both = fitted.recommend([user, user], n=2)
    assert len(both) == 4  # same long shape for one user or many


def test_save_load_identical(fitted, planted, tmp_path):
    path = fitted.save(str(tmp_path / "m"))
    back = load_model(path)
    assert type(back) is type(fitted)
    data = planted.data
    users, items = data.user_vocab.ids(data.users), data.item_vocab.ids(data.items)
    np.testing.assert_array_equal(back.predict_ratings(users, items)[0],
                                  fitted.predict_ratings(users, items)[0])
    user = users[0]
    assert back.recommend(user, n=5).equals(fitted.recommend(user, n=5))


def test_cold_start_methods_on_the_model():
    planted = planted_low_rank(n_users=80, n_items=40, k=2, density=0.4, seed=6)
    m = collabkit.BiasedMF(epochs=5, random_state=0).fit(planted.data)
    items = m.item_vocab_.ids([0, 1, 2, 3, 4, 5]).tolist()
    recs = m.recommend_new_user(dict.fromkeys(items, m.rating_range_[1]), n=4)
    assert recs["tier"].unique().tolist() == ["personal"] and not set(items) & set(recs["item"])
    assert m.recommend_new_user(None, n=3)["tier"].unique().tolist() == ["popularity"]
    assert np.isfinite(m.fold_in({items[0]: 4.0}).bias)
    assert len(m.similar_items(items[0], n=3)) == 3
