"""BiasedMF on known-answer data."""

import numpy as np
import pytest
import torch

import collabkit
from collabkit.metrics.evaluate import evaluate
from collabkit.testing import planted_low_rank


def test_recovers_planted_low_rank_near_noise_floor():
    planted = planted_low_rank(n_users=400, n_items=300, k=3, density=0.25, noise=0.1, seed=1)
    train, test = collabkit.split(planted.data, "random", test_frac=0.1, seed=0)
    model = collabkit.BiasedMF(n_factors=8, epochs=20, lr=3e-2, wd=0.01, batch_size=512,
                               y_range=None, random_state=0).fit(train)
    report = evaluate(model, test)
    noise_free = planted.truth(test.users, test.items)
    floor = float(np.sqrt(np.mean((noise_free - test.ratings) ** 2)))
    # far better than the baselines, and within 0.1 of the best possible RMSE (the noise)
    assert report.rmse < floor + 0.1
    assert report.rmse < 0.5 * report.table.loc["user+item bias", "rmse"]


def test_same_seed_same_result_on_cpu():
    planted = planted_low_rank(n_users=50, n_items=30, seed=2)
    a = collabkit.BiasedMF(epochs=2, random_state=7, device="cpu").fit(planted.data)
    b = collabkit.BiasedMF(epochs=2, random_state=7, device="cpu").fit(planted.data)
    assert a.history_[-1]["valid_rmse"] == b.history_[-1]["valid_rmse"]
    users = planted.data.user_vocab.ids(planted.data.users)
    items = planted.data.item_vocab.ids(planted.data.items)
    np.testing.assert_array_equal(a.predict_ratings(users, items)[0],
                                  b.predict_ratings(users, items)[0])


@pytest.mark.parametrize("device", [
    "cpu",
    pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(),
                                                  reason="no CUDA device on this machine")),
])
@pytest.mark.parametrize("kind", ["dot", "nn", "hybrid"])
def test_fit_predict_recommend_save_on_device(device, kind, tmp_path):
    planted = planted_low_rank(n_users=40, n_items=30, seed=8)
    model = collabkit.fit(planted.data, kind, epochs=2, device=device, random_state=0)
    assert model.device_.type == device
    users = planted.data.user_vocab.ids(planted.data.users[:20])
    items = planted.data.item_vocab.ids(planted.data.items[:20])
    pred = model.predict_ratings(users, items)[0]
    assert np.isfinite(pred).all()
    assert len(model.recommend(users[0], n=3)) == 3
    back = collabkit.load_model(model.save(tmp_path / "m"))
    np.testing.assert_allclose(back.predict_ratings(users, items)[0], pred, rtol=1e-5)


def test_user_pass_makes_trained_users_their_own_fold_in(tmp_path):
    """refit_users=True: a trained user's training ratings fold back into their exact row,
    before and after save/load; without the pass they do not."""
    from collabkit.recommend.foldin import fold_in_users

    planted = planted_low_rank(n_users=120, n_items=80, k=3, seed=4)
    df = planted.data.to_dataframe()

    def gap(model) -> float:
        folded = fold_in_users(model, df)
        trained = model.score_users(model.user_vocab_.index(folded.users)).double().numpy()
        return float(np.sqrt(np.mean((folded.scores() - trained) ** 2)))

    kw = dict(n_factors=4, epochs=3, valid_frac=0.0, random_state=0, device="cpu")
    with_pass = collabkit.BiasedMF(**kw).fit(planted.data)
    assert with_pass.user_prior_mean_.shape == (5,)
    assert gap(with_pass) < 1e-4
    back = collabkit.load_model(with_pass.save(tmp_path / "m"))
    np.testing.assert_array_equal(back.user_prior_precision_, with_pass.user_prior_precision_)
    assert gap(back) < 1e-4
    without = collabkit.BiasedMF(refit_users=False, **kw).fit(planted.data)
    assert without.user_prior_mean_ is None
    assert gap(without) > 0.01


def test_valid_rmse_is_of_the_final_model():
    planted = planted_low_rank(n_users=80, n_items=60, seed=5)
    train, valid = collabkit.split(planted.data, "random", test_frac=0.2, seed=1)
    model = collabkit.BiasedMF(n_factors=4, epochs=2, random_state=0).fit(train, valid)
    users = valid.user_vocab.ids(valid.users)
    items = valid.item_vocab.ids(valid.items)
    pred, fb = model.predict_ratings(users, items)
    expect = np.sqrt(np.mean((pred[~fb] - valid.ratings[~fb]) ** 2))
    assert model.valid_rmse_ == pytest.approx(expect, rel=1e-5)


def test_refit_users_must_be_a_bool():
    planted = planted_low_rank(n_users=20, n_items=20, seed=6)
    with pytest.raises(collabkit.errors.ConfigError, match="refit_users"):
        collabkit.BiasedMF(refit_users="yes").fit(planted.data)
