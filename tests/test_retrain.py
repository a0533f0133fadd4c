"""Retrain from feedback (issue 11): planted data where the right decision is known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from collabkit import model_kinds
from collabkit.api import fit as fit_model
from collabkit.api import load_ratings
from collabkit.data.interactions import Interactions
from collabkit.errors import ConfigError, DataError
from collabkit.models.biased_mf import BiasedMF
from collabkit.models.persist import load_model
from collabkit.retrain import answer_ratings, retrain, split_feedback, training_ratings
from collabkit.testing.synthetic import PlantedData, planted_low_rank

N_USERS, N_ITEMS = 300, 200
NEW_ITEMS = np.arange(180, 200)  # the catalogue grows: the old model never saw these
NEW_USERS = np.arange(280, 300)  # nor these visitors


@pytest.fixture(scope="module")
def planted() -> PlantedData:
    return planted_low_rank(n_users=N_USERS, n_items=N_ITEMS, k=3, density=0.2, noise=0.1,
                            seed=3)


def fit(df: pd.DataFrame, rating_range: tuple[float, float]) -> BiasedMF:
    data = Interactions.from_dataframe(df, rating_range=rating_range)
    return BiasedMF(n_factors=3, epochs=20, device="cpu", random_state=0).fit(data)


@pytest.fixture(scope="module")
def old_model(planted: PlantedData, tmp_path_factory: pytest.TempPathFactory) -> str:
    df = planted.data.to_dataframe()
    old = df[~df["item"].isin(NEW_ITEMS) & ~df["user"].isin(NEW_USERS)]
    path = tmp_path_factory.mktemp("old") / "model"
    fit(old, planted.data.rating_range).save(str(path))
    return str(path)


def new_feedback(planted: PlantedData, n: int = 200, seed: int = 0) -> pd.DataFrame:
    """``n`` planted ratings the old model never saw: of new items or by new users."""
    df = planted.data.to_dataframe()
    fresh = df[df["item"].isin(NEW_ITEMS) | df["user"].isin(NEW_USERS)]
    out = fresh.sample(n=n, random_state=seed).reset_index(drop=True)
    return out.assign(time=np.arange(n) * 60.0)


def test_feedback_of_new_items_and_users_is_promoted(planted, old_model, tmp_path) -> None:
    fb = new_feedback(planted)
    report = retrain(old_model, fb, tmp_path / "new", holdout_frac=0.2)
    assert (report.n_feedback, report.n_feedback_train, report.n_holdout) == (200, 160, 40)
    assert report.n_replaced == 0 and report.kind == "dot"
    # the old model knows neither the new items nor the new users: a clear win for the new one
    assert report.new_rmse < 0.9 * report.old_rmse  # 0.300 vs 0.389 when written
    assert report.promote
    new = load_model(report.new_model)
    assert new.get_params() == {**load_model(old_model).get_params(), "callback": None}
    assert new.n_train_ == report.n_base + 160
    # the promoted model predicts the 40 held-out (newest) ratings better than the old one did
    held = fb.iloc[160:]
    old_pred = load_model(old_model).predict(held["user"], held["item"])["prediction"]
    err_old = np.sqrt(np.mean((old_pred.to_numpy() - held["rating"].to_numpy()) ** 2))
    assert report.new_rmse < err_old


def test_feedback_that_contradicts_training_is_not_promoted(planted, old_model,
                                                            tmp_path) -> None:
    base = training_ratings(load_model(old_model))
    lo, hi = planted.data.rating_range
    # 160 older rows re-rate items twenty known users rated, flipped; the 40 newest rows are
    # those users' honest ratings (planted truth + noise) of items they never rated
    users = base["user"].unique()[:20]
    mine = base[base["user"].isin(users)].groupby("user").head(8)
    flipped = mine.assign(rating=lo + hi - mine["rating"])
    rng = np.random.default_rng(0)
    rated = set(zip(base["user"], base["item"], strict=True))
    pairs: list[tuple[int, int]] = []
    for u in users:
        unrated = [i for i in rng.permutation(NEW_ITEMS[0]) if (u, i) not in rated]
        pairs += [(u, i) for i in unrated[:2]]
    hu, hi_ = (np.array(x) for x in zip(*pairs, strict=True))
    truth = planted.truth(planted.data.user_vocab.index(hu), planted.data.item_vocab.index(hi_))
    honest = pd.DataFrame({"user": hu, "item": hi_, "rating": np.clip(
        truth + rng.normal(0, planted.noise, len(hu)), lo, hi)})
    fb = pd.concat([flipped, honest], ignore_index=True)
    fb["time"] = np.arange(len(fb), dtype=np.float64)
    assert len(fb) == 200
    report = retrain(old_model, fb, tmp_path / "new")
    assert report.n_replaced == 160 and report.n_holdout == 40
    assert report.new_rmse > report.old_rmse
    assert not report.promote


def test_unknown_users_are_answered_like_the_service(planted, old_model) -> None:
    model = load_model(old_model)
    items = model.item_vocab_.all_ids
    ctx = pd.DataFrame({"user": ["five"] * 5 + ["two"] * 2,
                        "item": list(items[:5]) + list(items[5:7]),
                        "rating": [5.0, 4.0, 2.0, 3.5, 4.5, 2.0, 3.0]})
    held = pd.DataFrame({"user": ["five", "two", "none", 0], "item": [items[10]] * 4})
    got = answer_ratings(model, held, ctx)
    folded = model.fold_in(dict(zip(items[:5], ctx["rating"][:5], strict=True)))
    assert got[0] == pytest.approx(folded.predict([items[10]])["prediction"][0])
    g, bi = model.global_mean_, model.item_bias_base_
    bu = ((2.0 - g - bi[5]) + (3.0 - g - bi[6])) / (2 + 5.0)  # damped bias of 2 ratings
    assert got[1] == pytest.approx(np.clip(g + bu + bi[10], *model.rating_range_))
    assert got[2] == pytest.approx(model.predict(["none"], [items[10]])["prediction"][0])
    assert got[3] == pytest.approx(model.predict([0], [items[10]])["prediction"][0])


def test_newest_rating_of_a_pair_wins_and_the_newest_rows_are_held_out(planted,
                                                                        old_model) -> None:
    fb = pd.DataFrame({"user": [1, 1, 2, 3], "item": [7, 7, 8, 9],
                       "rating": [1.0, 3.0, 2.0, 2.5], "time": [30, 10, 20, 40]})
    from collabkit.retrain import _clean_feedback

    clean = _clean_feedback(fb, (0.0, 6.0))
    assert clean[["user", "item", "rating"]].values.tolist() == [[2, 8, 2.0], [1, 7, 1.0],
                                                                 [3, 9, 2.5]]
    train, held = split_feedback(clean, 0.5)
    assert held["item"].tolist() == [7, 9] and train["item"].tolist() == [8]
    # datetimes, ISO strings and no time column at all (row order is time order)
    when = pd.to_datetime(fb["time"], unit="s")
    for times in (when, when.dt.strftime("%Y-%m-%dT%H:%M:%S")):
        again = _clean_feedback(fb.assign(time=times), (0.0, 6.0))
        assert again[["user", "item", "rating"]].equals(clean[["user", "item", "rating"]])
    in_order = _clean_feedback(fb.drop(columns="time"), (0.0, 6.0))
    assert in_order[["item", "rating"]].values.tolist() == [[7, 3.0], [8, 2.0], [9, 2.5]]


def test_bad_input_is_refused_with_the_row(planted, old_model, tmp_path) -> None:
    fb = new_feedback(planted, n=10)
    (tmp_path / "taken").mkdir()
    with pytest.raises(ConfigError, match="already exists"):
        retrain(old_model, fb, tmp_path / "taken")
    assert not any((tmp_path / "taken").iterdir())  # nothing written into it
    with pytest.raises(DataError, match=r"feedback row 3 \(user .*rating 99.0 is not a number"):
        retrain(old_model, fb.assign(rating=[3.0] * 3 + [99.0] + [3.0] * 6), tmp_path / "a")
    with pytest.raises(DataError, match=r"lacks column\(s\) \['rating'\]"):
        retrain(old_model, fb.drop(columns="rating"), tmp_path / "b")
    with pytest.raises(DataError, match="feedback row 0 .*time 'later'"):
        retrain(old_model, fb.assign(time=["later"] + ["2026-01-01"] * 9), tmp_path / "c")
    with pytest.raises(DataError, match="feedback is empty"):
        retrain(old_model, fb.iloc[:0], tmp_path / "d")
    with pytest.raises(ConfigError, match="holdout_frac"):
        retrain(old_model, fb, tmp_path / "e", holdout_frac=1.0)
    assert not any((tmp_path / x).exists() for x in "abcde")


FAST = {"bpmf": {"n_samples": 20, "burn_in": 5}, "dot": {"epochs": 2}, "nn": {"epochs": 2},
        "hybrid": {"epochs": 2}, "svdpp": {"epochs": 2},
        "ensemble": {"members": ("dot", "als"), "member_params": {"dot": {"epochs": 2}}}}


@pytest.mark.parametrize("kind", model_kinds())
def test_every_kind_retrains_into_the_same_kind_and_parameters(kind: str, tmp_path) -> None:
    p = planted_low_rank(n_users=40, n_items=30, k=2, density=0.4, seed=2)
    df = p.data.to_dataframe()
    data = load_ratings(df[df["user"] < 34], rating_range=p.data.rating_range)
    fit_model(data, kind, **FAST.get(kind, {})).save(str(tmp_path / "old"))
    fb = df[df["user"] >= 34].assign(time=lambda d: np.arange(len(d)))
    report = retrain(tmp_path / "old", fb, tmp_path / "new")
    old, new = load_model(tmp_path / "old"), load_model(tmp_path / "new")
    assert report.kind == new.kind == kind
    assert new.get_params() == old.get_params()
    assert np.isfinite([report.old_rmse, report.new_rmse]).all()
    assert new.n_train_ == report.n_base + report.n_feedback_train
