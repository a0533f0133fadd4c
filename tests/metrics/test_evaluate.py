import numpy as np
import pandas as pd
import pytest

import collabkit
from collabkit.data.interactions import Interactions
from collabkit.metrics.evaluate import evaluate


@pytest.fixture(scope="module")
def tiny():
    # users a, b; items x, y, z. Hand-computable baselines (damping 5).
    df = pd.DataFrame({"user": ["a", "a", "b", "b"], "item": ["x", "y", "x", "z"],
                       "rating": [5.0, 3.0, 4.0, 2.0]})
    return Interactions.from_dataframe(df, rating_range=(1, 5))


def test_baselines_hand_computed(tiny):
    model = collabkit.BiasBaseline().fit(tiny)
    mu = 3.5
    assert model.global_mean_ == mu
    # b_x = (1.5 + 0.5) / (2 + 5) ; b_y = -0.5 / 6 ; b_z = -1.5 / 6
    np.testing.assert_allclose(model.item_bias_base_, [2 / 7, -0.5 / 6, -1.5 / 6])
    test = pd.DataFrame({"user": ["a", "c"], "item": ["z", "x"], "rating": [1.0, 5.0]})
    report = evaluate(model, test)
    bu_a = ((5 - mu - 2 / 7) + (3 - mu + 0.5 / 6)) / (2 + 5)
    pred = np.array([mu + bu_a - 1.5 / 6, mu + 2 / 7])
    expected_rmse = np.sqrt(np.mean((pred - [1.0, 5.0]) ** 2))
    assert report.table.loc["user+item bias", "rmse"] == pytest.approx(expected_rmse)
    assert report.table.loc["global mean", "rmse"] == pytest.approx(np.sqrt((2.5**2 + 1.5**2) / 2))
    assert report.table.loc["global mean", "mae"] == pytest.approx(2.0)
    assert report.n == 2 and report.n_fallback == 1 and report.n_unknown_users == 1
    d = report.to_dict()
    assert set(d["baselines"]) == {"global mean", "user+item bias"}


def test_model_row_first(tiny):
    model = collabkit.GlobalMean().fit(tiny)
    report = evaluate(model, tiny)
    assert report.table.index[0] == "GlobalMean"
    assert report.rmse == pytest.approx(np.sqrt(np.mean((np.array([5, 3, 4, 2]) - 3.5) ** 2)))
