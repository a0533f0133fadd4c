"""BayesianMF: known-answer recovery, persistence, scoring consistency, determinism."""

from __future__ import annotations

import numpy as np
import pytest

from collabkit.data.interactions import Interactions
from collabkit.errors import ConfigError
from collabkit.models.bpmf._estimator import BayesianMF
from collabkit.models.persist import load_model
from collabkit.testing.synthetic import PlantedData, planted_low_rank

FAST = {"n_factors": 3, "n_samples": 40, "burn_in": 20}


@pytest.fixture(scope="module")
def planted() -> tuple[PlantedData, Interactions, Interactions]:
    """Planted rank-3 data (noise 0.1) split 90/10 into train and held-out rows."""
    p = planted_low_rank(n_users=300, n_items=200, k=3, density=0.2, noise=0.1, seed=0)
    perm = np.random.default_rng(0).permutation(len(p.data))
    n_test = len(p.data) // 10
    return p, p.data.take(perm[n_test:]), p.data.take(perm[:n_test])


@pytest.fixture(scope="module")
def fitted(planted: tuple[PlantedData, Interactions, Interactions]) -> BayesianMF:
    return BayesianMF(**FAST, random_state=0).fit(planted[1])


def _raw(data: Interactions) -> tuple[np.ndarray, np.ndarray]:
    return data.user_vocab.ids(data.users), data.item_vocab.ids(data.items)


@pytest.mark.parametrize("implicit", [True, False])
def test_recovers_planted_factors_near_the_noise_floor(planted, implicit: bool) -> None:
    p, train, test = planted
    model = BayesianMF(**FAST, implicit=implicit, random_state=0).fit(train)
    pred, fallback = model.predict_ratings(*_raw(test))
    assert not fallback.any()
    rmse = float(np.sqrt(np.mean((pred - test.ratings) ** 2)))
    assert rmse < 1.2 * p.noise  # noise floor 0.1; the damped-bias baseline is near 0.45
    truth = p.truth(test.users, test.items)
    assert float(np.sqrt(np.mean((pred - truth) ** 2))) < 0.7 * p.noise


def test_robust_noise_model_also_recovers(planted) -> None:
    p, train, test = planted
    model = BayesianMF(**FAST, robust=10.0, random_state=0).fit(train)
    pred, _ = model.predict_ratings(*_raw(test))
    assert float(np.sqrt(np.mean((pred - test.ratings) ** 2))) < 1.2 * p.noise


def test_noise_precision_is_learned(fitted: BayesianMF) -> None:
    alpha = fitted.history_[-1]["noise_precision"]
    assert 0.6 / 0.1**2 < alpha < 1.4 / 0.1**2  # 1 / noise**2 = 100


def test_save_load_gives_identical_predictions(fitted: BayesianMF, planted, tmp_path) -> None:
    _, _, test = planted
    users, items = _raw(test)
    loaded = load_model(fitted.save(str(tmp_path / "bpmf")))
    assert isinstance(loaded, BayesianMF)
    np.testing.assert_array_equal(loaded.predict_ratings(users, items)[0],
                                  fitted.predict_ratings(users, items)[0])
    assert loaded.get_params() == fitted.get_params()


def test_score_users_matches_predict_idx(fitted: BayesianMF) -> None:
    u = np.array([0, 5, 17, 299])
    scores = fitted.score_users(u).double().numpy()
    n_items = len(fitted.item_vocab_)
    pairs = fitted._predict_idx(np.repeat(u, n_items), np.tile(np.arange(n_items), len(u)))
    np.testing.assert_allclose(scores, pairs.reshape(len(u), n_items), atol=1e-5)


def test_predictions_are_clipped_to_the_rating_range(fitted: BayesianMF) -> None:
    scores = fitted.score_users(np.arange(len(fitted.user_vocab_))).numpy()
    lo, hi = fitted.rating_range_
    assert scores.min() >= lo and scores.max() <= hi


def test_same_seed_same_model(planted) -> None:
    _, train, test = planted
    kw = {**FAST, "n_samples": 10, "burn_in": 5}
    a = BayesianMF(**kw, random_state=3).fit(train).predict_ratings(*_raw(test))[0]
    b = BayesianMF(**kw, random_state=3).fit(train).predict_ratings(*_raw(test))[0]
    c = BayesianMF(**kw, random_state=4).fit(train).predict_ratings(*_raw(test))[0]
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_thinning_sets_the_number_of_stored_samples(planted) -> None:
    model = BayesianMF(n_factors=2, n_samples=12, burn_in=2, thin=4, random_state=0)
    model.fit(planted[1])
    assert model.user_factors_.shape == (len(model.user_vocab_), 3 * 2)
    assert [h["epoch"] for h in model.history_] == [6, 10, 14]


def test_validation_history_is_recorded(planted) -> None:
    _, train, test = planted
    model = BayesianMF(n_factors=3, n_samples=4, burn_in=2, thin=1, random_state=0)
    model.fit(train, valid=test)
    assert len(model.history_) == 4 and all("valid_rmse" in h for h in model.history_)


def test_unknown_ids_fall_back_to_the_baseline(fitted: BayesianMF) -> None:
    user, item = fitted.user_vocab_.ids([0])[0], fitted.item_vocab_.ids([0])[0]
    out = fitted.predict([user, 10**9], [item, item])
    assert out["fallback"].tolist() == [False, True]


@pytest.mark.parametrize("bad", [{"n_factors": 0}, {"n_samples": 0}, {"burn_in": -1},
                                 {"thin": 0}, {"n_samples": 2, "thin": 3}, {"beta0": 0.0},
                                 {"noise_precision": -1.0}, {"robust": 0.0},
                                 {"n_threads": 0}])
def test_bad_parameters_raise_config_error(planted, bad: dict) -> None:
    with pytest.raises(ConfigError):
        BayesianMF(**bad).fit(planted[1])


def test_side_information_is_used_when_the_data_has_metadata(planted) -> None:
    import dataclasses

    import pandas as pd

    p, train, test = planted
    # the planted item factor's sign as a genre: side information that predicts the ratings
    ids = train.item_vocab.all_ids
    genre = np.where(p.item_factors[:, 0] > 0, "up", "down")
    meta = pd.DataFrame({"genres": genre}, index=pd.Index(ids, name="item"))
    with_meta = dataclasses.replace(train, item_meta=meta)
    kw = {**FAST, "n_samples": 10, "burn_in": 5}
    a = BayesianMF(**kw, random_state=0).fit(with_meta).predict_ratings(*_raw(test))[0]
    b = BayesianMF(**kw, side_info=False, random_state=0).fit(with_meta)
    assert not np.array_equal(a, b.predict_ratings(*_raw(test))[0])


def test_fold_in_of_a_trained_user_predicts_like_the_trained_user(fitted: BayesianMF) -> None:
    """fold_in treats the stored samples as one linear model of S k factors."""
    user = fitted.user_vocab_.ids([0])[0]
    rows = slice(fitted.seen_indptr_[0], fitted.seen_indptr_[1])
    rated = dict(zip(fitted.item_vocab_.ids(fitted.seen_indices_[rows]).tolist(),
                     fitted.seen_ratings_[rows].tolist(), strict=True))
    items = fitted.item_vocab_.all_ids
    folded = fitted.fold_in(rated).predict(items)["prediction"].to_numpy()
    trained = fitted.predict_ratings(np.full(len(items), user), items)[0]
    assert np.corrcoef(folded, trained)[0, 1] > 0.9


def test_similar_items_uses_the_sampled_factors(fitted: BayesianMF) -> None:
    item = fitted.item_vocab_.ids([0])[0]
    out = fitted.similar_items(item, n=5)
    assert len(out) == 5 and item not in out["item"].tolist()


# --------------------------------------------------------------------------- issue 9
def test_noise_variance_is_the_training_noise(fitted: BayesianMF) -> None:
    """issue 9: the default fold-in read ``train_loss`` from a history that says
    ``train_rmse`` and used noise variance 1.0 (about 100x the planted noise 0.1**2).
    Now every row is an EpochStats: ``train_loss`` is the MSE."""
    assert fitted.noise_variance() == fitted.history_[-1]["train_loss"]
    assert fitted.noise_variance() < 0.05


def test_population_fold_in_uses_the_training_noise(fitted: BayesianMF) -> None:
    """The default fold-in is the MAP under the Gaussian prior of the trained rows with the
    model's noise: x = (A'A + s2 P)^-1 (A'(r - b_i - mu) + s2 P m), a linear known answer."""
    from collabkit.recommend.foldin import fold_in_user
    from collabkit.train.rowsolve import population_prior

    s, e = fitted.seen_indptr_[5], fitted.seen_indptr_[6]
    idx, r = fitted.seen_indices_[s:e], fitted.seen_ratings_[s:e].astype(np.float64)
    rows = np.column_stack([fitted.user_factors_.double().numpy(),
                            fitted.user_bias_.double().numpy()])
    mean, prec = population_prior(rows)
    A = np.column_stack([fitted.item_factors_.double().numpy()[idx], np.ones(len(idx))])
    s2 = fitted.history_[-1]["train_loss"]
    rhs = A.T @ (r - fitted.item_bias_.double().numpy()[idx] - fitted.global_mean_)
    x = np.linalg.solve(A.T @ A + s2 * prec, rhs + s2 * prec @ mean)
    fu = fold_in_user(fitted, dict(zip(fitted.item_vocab_.ids(idx).tolist(), r.tolist(),
                                       strict=True)))
    np.testing.assert_allclose(fu.vector, x[:-1], atol=1e-4)
    assert fu.bias == pytest.approx(x[-1], abs=1e-4)


def test_history_rows_are_epochstats_like_every_models(fitted: BayesianMF) -> None:
    """issue 9: one history row type; BayesianMF used to write sweep/alpha/train_rmse."""
    from dataclasses import fields

    from collabkit.train.runner import EpochStats

    names = {f.name for f in fields(EpochStats)}
    assert all(set(h) == names for h in fitted.history_)
    assert all(h["train_loss"] > 0 and h["noise_precision"] > 0 for h in fitted.history_)


def test_a_model_saved_with_the_old_history_keeps_its_noise_variance(fitted: BayesianMF
                                                                     ) -> None:
    """Files saved before issue 9 hold ``train_rmse`` rows: fold-in still finds the noise."""
    import copy

    old = copy.copy(fitted)
    old.history_ = [{"sweep": 10, "alpha": 90.0, "train_rmse": 0.2}]
    assert old.noise_variance() == pytest.approx(0.04)
