"""Recommender.predict / recommend: per-row id matching and clipping (issue 8)."""

import numpy as np
import pytest
import torch

import collabkit
from collabkit.errors import ModelFitWarning
from collabkit.testing import planted_low_rank


@pytest.fixture(scope="module")
def model():
    planted = planted_low_rank(n_users=40, n_items=30, k=2, density=0.4, seed=8)
    with pytest.warns(ModelFitWarning):  # two epochs on 480 ratings do not beat the biases
        # fallback=False: these tests are about the model's own (clipped) output (issue 14)
        return collabkit.BiasedMF(n_factors=4, epochs=2, random_state=0,
                                  fallback=False).fit(planted.data)


def test_issue8_one_string_id_does_not_send_the_batch_to_the_baseline(model):
    users = [1, 2, 3, "alice"]
    items = [5, 6, 7, 5]
    mixed = model.predict(users, items)
    alone = model.predict([1, 2, 3], [5, 6, 7])
    assert mixed["fallback"].tolist() == [False, False, False, True]
    np.testing.assert_allclose(mixed["prediction"].to_numpy()[:3], alone["prediction"])
    assert mixed["user"].tolist() == users  # ids echoed with their own types


def test_issue8_numbers_and_strings_name_the_same_user(model):
    as_int = model.predict([1, 2], [5, 6])["prediction"].to_numpy()
    as_str = model.predict(["1", " 2 "], ["5", "6"])
    assert not as_str["fallback"].any()
    np.testing.assert_allclose(as_str["prediction"], as_int)


def test_issue8_recommend_gives_known_user_their_own_list(model):
    recs = model.recommend([1, "alice"], n=3)
    own = model.recommend(1, n=3)
    mine = recs[recs["user"] == 1]
    assert mine["item"].tolist() == own["item"].tolist() and set(mine["tier"]) == {"model"}
    assert set(recs.loc[recs["user"] == "alice", "tier"]) == {"baseline"}


@pytest.fixture()
def overshooting(model):
    """The fitted model with item 5's bias pushed up: its sigmoid output nears y_range's top."""
    idx = int(model.item_vocab_.index(5)[0])
    saved = model.module_.item_bias.weight[idx].clone()
    with torch.no_grad():
        model.module_.item_bias.weight[idx] = 50.0
    yield model
    with torch.no_grad():
        model.module_.item_bias.weight[idx] = saved


def test_issue8_predictions_clipped_to_rating_range_raw_on_request(overshooting):
    lo, hi = overshooting.rating_range_
    clipped = overshooting.predict([1], [5])["prediction"].iloc[0]
    raw = overshooting.predict([1], [5], clip=False)["prediction"].iloc[0]
    assert clipped == hi
    assert raw == pytest.approx(overshooting.module_.y_range[1], abs=1e-3)  # y_range's top


def test_issue8_recommend_scores_clipped_and_ranked_like_predict(overshooting):
    lo, hi = overshooting.rating_range_
    recs = overshooting.recommend(1, n=5, exclude_seen=False)
    raw = overshooting.recommend(1, n=5, exclude_seen=False, clip=False)
    assert recs["item"].tolist() == raw["item"].tolist() and recs["item"].iloc[0] == 5
    assert recs["score"].max() <= hi and raw["score"].iloc[0] > hi
    pred = overshooting.predict([1] * 5, recs["item"].tolist())["prediction"]
    np.testing.assert_allclose(recs["score"], pred, rtol=1e-6)


def test_issue8_constant_ratings_warn():
    import pandas as pd

    from collabkit.data.interactions import Interactions
    from collabkit.errors import DataWarning

    df = pd.DataFrame({"user": [1, 1, 2, 3], "item": [1, 2, 2, 3], "rating": [4.0] * 4})
    with pytest.warns(DataWarning, match="every training rating is 4: the model can learn "
                      "nothing beyond predicting 4"):
        collabkit.BiasBaseline().fit(Interactions.from_dataframe(df))


def test_issue13_implicit_data_with_unit_weights_does_not_warn():
    import warnings

    import pandas as pd

    from collabkit.data.implicit import to_implicit
    from collabkit.data.interactions import Interactions
    from collabkit.errors import DataWarning
    from collabkit.models.implicit import Popularity

    df = pd.DataFrame({"user": [1, 1, 2, 3], "item": [1, 2, 2, 3], "rating": [4.0] * 4})
    data = to_implicit(Interactions.from_dataframe(df))
    assert set(data.ratings.tolist()) == {1.0}
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)  # every weight is 1: that is not a mistake
        model = Popularity().fit(data)
    assert model.recommend(1, n=1)["item"].tolist() == [3]  # the only item 1 has not seen


def test_issue8_learning_rate_too_high_warns_worse_than_baseline():
    from collabkit.errors import ModelFitWarning

    planted = planted_low_rank(n_users=100, n_items=60, k=2, density=0.3, seed=1)
    with pytest.warns(ModelFitWarning, match=r"scores worse than the damped-bias baseline on "
                      r"its 179 validation rows \(RMSE .* vs .*\).*Lower the learning rate "
                      r"\(lr=50\)"):
        collabkit.fit(planted.data, "hybrid", epochs=3, lr=50.0, random_state=0)


def test_issue8_learning_rate_too_high_default_model_stops_or_learns():
    """The default model at lr=50 diverges outright: an error naming lr, not a silent finish;
    at its default rate it learns the planted factors without a warning."""
    import warnings

    from collabkit.errors import ModelFitError, ModelFitWarning

    planted = planted_low_rank(n_users=100, n_items=60, k=2, density=0.3, seed=1)
    with pytest.raises(ModelFitError, match=r"Lower the learning rate \(lr=50\)"):
        collabkit.fit(planted.data, "dot", epochs=3, lr=50.0, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ModelFitWarning)
        model = collabkit.fit(planted.data, "dot", epochs=3, random_state=0)
    assert model.valid_rmse_ < 0.5
