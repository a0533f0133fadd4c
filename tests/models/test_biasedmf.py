"""BiasedMF on known-answer data."""

import numpy as np

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
