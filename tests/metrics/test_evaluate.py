import warnings

import numpy as np
import pandas as pd
import pytest

import collabkit
import collabkit.testing
from collabkit.data.interactions import Interactions
from collabkit.errors import DataWarning
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
    with pytest.warns(DataWarning, match="4 of 4 test rows"):  # its own training rows
        report = evaluate(model, tiny)
    assert report.table.index[0] == "GlobalMean"
    assert report.rmse == pytest.approx(np.sqrt(np.mean((np.array([5, 3, 4, 2]) - 3.5) ** 2)))


def test_issue12_training_pairs_among_test_rows_counted_and_warned(tiny):
    model = collabkit.BiasBaseline().fit(tiny)
    # (a, x) and (b, z) were trained on; (a, z) was not; user c is unknown
    test = pd.DataFrame({"user": ["a", "a", "b", "c"], "item": ["x", "z", "z", "x"],
                         "rating": [5.0, 1.0, 2.0, 5.0]})
    with pytest.warns(DataWarning, match=r"2 of 4 test rows \(50.0%\) are \(user, item\) pairs"):
        report = evaluate(model, test)
    assert report.overlap_with_training == 2
    d = report.to_dict()
    assert d["overlap_with_training"] == 2 and "not held-out" in d["warnings"][0]


def test_issue12_held_out_rows_give_no_warning(tiny):
    model = collabkit.BiasBaseline().fit(tiny)
    test = pd.DataFrame({"user": ["a", "b"], "item": ["z", "y"], "rating": [1.0, 2.0]})
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)
        report = evaluate(model, test)
    assert report.overlap_with_training == 0 and report.warnings == ()


def test_issue8_most_test_users_unknown_is_warned(tiny):
    model = collabkit.BiasBaseline().fit(tiny)
    test = pd.DataFrame({"user": ["a", "p", "q"], "item": ["z", "x", "y"],
                         "rating": [1.0, 2.0, 3.0]})
    with pytest.warns(DataWarning, match="2 of 3 test users are unknown to the model"):
        report = evaluate(model, test)
    assert report.n_unknown_users == 2 and len(report.warnings) == 1


def test_issue8_one_foreign_id_falls_back_alone():
    planted = collabkit.testing.planted_low_rank(n_users=30, n_items=20, density=0.5, seed=2)
    train_rows, test_rows = collabkit.split(planted.data, "random", test_frac=0.2, seed=0)
    model = collabkit.BiasBaseline().fit(train_rows)
    test = test_rows.to_dataframe()
    base = evaluate(model, test)
    with_alice = pd.concat([test, pd.DataFrame({"user": ["alice"], "item": [test["item"][0]],
                                                "rating": [3.0]})], ignore_index=True)
    report = evaluate(model, with_alice)
    assert report.n_fallback == base.n_fallback + 1 and report.n_unknown_users == 1
    pred_known = model.predict(test["user"], test["item"])["prediction"].to_numpy()
    pred_mixed = model.predict(with_alice["user"], with_alice["item"])["prediction"].to_numpy()
    np.testing.assert_allclose(pred_mixed[:-1], pred_known)


def test_issue8_other_films_behind_the_same_ids_are_warned():
    def table(titles: list[str]) -> Interactions:
        df = pd.DataFrame({"user": [1, 1, 2, 2, 3, 3], "item": [1, 2, 3, 4, 1, 4],
                           "rating": [4.0, 3.0, 5.0, 2.0, 4.0, 1.0]})
        meta = pd.DataFrame({"title": titles}, index=pd.Index([1, 2, 3, 4], name="item"))
        return Interactions.from_dataframe(df, item_meta=meta, rating_range=(1, 5))

    model = collabkit.BiasBaseline().fit(table(["Toy Story", "Jumanji", "Heat", "Sabrina"]))
    same = table(["Toy Story", "Jumanji", "Heat", "Sabrina"])
    other = table(["Toy Story", "GoldenEye", "Four Rooms", "Get Shorty"])
    with pytest.warns(DataWarning, match="6 of 6 test rows"):
        assert not any("titles" in w for w in evaluate(model, same).warnings)
    with pytest.warns(DataWarning, match="3 of 4 test items known to the model have other "
                      "titles than in training \\(item 2: 'GoldenEye' in the test data, "
                      "'Jumanji' in the model\\)"), pytest.warns(DataWarning, match="6 of 6"):
        evaluate(model, other)


def test_issue12_random_split_model_scored_on_u1_is_flagged(data_dir):
    if not (data_dir / "ml-100k").is_dir():
        pytest.skip(f"ml-100k is not in {data_dir} (set COLLABKIT_DATA)")
    full = collabkit.load_dataset("ml-100k", progress=False)
    _, u1_test = collabkit.load_split("ml-100k", "u1", progress=False)
    train, held_out = collabkit.split(full, "random", test_frac=0.2, seed=1)
    model = collabkit.BiasBaseline().fit(train)
    with pytest.warns(DataWarning, match="of 20000 test rows .* are \\(user, item\\) pairs"):
        report = evaluate(model, u1_test)
    # a random 80% of ml-100k holds about 80% of u1.test's rows
    assert 15000 < report.overlap_with_training < 17000
    honest = evaluate(model, held_out)
    assert honest.overlap_with_training == 0 and honest.warnings == ()
    assert honest.rmse > report.rmse  # the overlap flattered the score
