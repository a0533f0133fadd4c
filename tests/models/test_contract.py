"""The registry-parametrised contract (collabkit.testing.contracts) over every model kind,
plus a few checks of the base-class rules."""

import numpy as np
import pytest

import collabkit
from collabkit.errors import ConfigError, NotFittedError
from collabkit.testing import planted_low_rank
from collabkit.testing.contracts import *  # noqa: F403  (the contract tests and fixtures)


def test_fit_returns_self_and_sets_underscored(planted):  # noqa: F405
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
def test_bad_params_rejected_at_fit(planted, bad):  # noqa: F811
    with pytest.raises(ConfigError):
        collabkit.BiasedMF(**bad).fit(planted.data)


def test_cold_start_methods_on_the_model():
    planted = planted_low_rank(n_users=80, n_items=40, k=2, density=0.4, seed=6)
    m = collabkit.BiasedMF(epochs=5, random_state=0).fit(planted.data)
    items = m.item_vocab_.ids([0, 1, 2, 3, 4, 5]).tolist()
    recs = m.recommend_new_user(dict.fromkeys(items, m.rating_range_[1]), n=4)
    assert recs["tier"].unique().tolist() == ["personal"] and not set(items) & set(recs["item"])
    assert m.recommend_new_user(None, n=3)["tier"].unique().tolist() == ["popularity"]
    assert np.isfinite(m.fold_in({items[0]: 4.0}).bias)
    assert len(m.similar_items(items[0], n=3)) == 3
