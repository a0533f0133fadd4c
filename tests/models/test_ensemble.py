"""Ensemble: blend weights, persistence, scoring consistency, determinism, config errors."""

from __future__ import annotations

import numpy as np
import pytest

from collabkit.data.interactions import Interactions
from collabkit.errors import ConfigError
from collabkit.models.bpmf._estimator import BayesianMF
from collabkit.models.ensemble import Ensemble
from collabkit.models.persist import load_model
from collabkit.testing.synthetic import PlantedData, planted_low_rank

MEMBER_PARAMS = {"bpmf": {"n_factors": 3, "n_samples": 20, "burn_in": 10},
                 "svdpp": {"n_factors": 3, "reg": 1e-3, "lr": 0.05, "epochs": 20,
                           "batch_size": 2048}}


@pytest.fixture(scope="module")
def planted() -> tuple[PlantedData, Interactions, Interactions]:
    """Planted rank-3 data (noise 0.1) split 90/10 into train and held-out rows."""
    p = planted_low_rank(n_users=150, n_items=100, k=3, density=0.3, noise=0.1, seed=1)
    perm = np.random.default_rng(0).permutation(len(p.data))
    n_test = len(p.data) // 10
    return p, p.data.take(perm[n_test:]), p.data.take(perm[:n_test])


@pytest.fixture(scope="module")
def refitted(planted) -> Ensemble:
    return Ensemble(members=("bpmf", "svdpp"), member_params=MEMBER_PARAMS,
                    random_state=0).fit(planted[1])


@pytest.fixture(scope="module")
def kept(planted) -> Ensemble:
    """Members keep what they learned from the rows outside the carve (their own vocabs)."""
    return Ensemble(members=("bpmf", "svdpp"), member_params=MEMBER_PARAMS, refit=False,
                    random_state=0).fit(planted[1])


@pytest.fixture(params=["refitted", "kept"])
def fitted(request) -> Ensemble:
    return request.getfixturevalue(request.param)


def _raw(data: Interactions) -> tuple[np.ndarray, np.ndarray]:
    return data.user_vocab.ids(data.users), data.item_vocab.ids(data.items)


def _rmse(model: Ensemble | BayesianMF, data: Interactions) -> float:
    pred = model.predict_ratings(*_raw(data))[0]
    return float(np.sqrt(np.mean((pred - data.ratings) ** 2)))


def test_blend_is_near_the_noise_floor_and_weights_sum_to_about_one(fitted, planted) -> None:
    p, _, test = planted
    assert _rmse(fitted, test) < 1.25 * p.noise
    w = fitted.weights_
    assert w.shape == (3,) and abs(w[1:].sum() - 1.0) < 0.1
    h = fitted.history_[0]
    assert set(h["member_valid_rmse"]) == {"bpmf", "svdpp"} and h["n_valid"] > 0


def test_blend_is_no_worse_than_its_members_on_held_out_rows(refitted, planted) -> None:
    test = planted[2]
    best_member = min(_rmse(m, test) for m in refitted.members_)
    assert _rmse(refitted, test) < best_member * 1.03


def test_save_load_gives_identical_predictions(fitted, planted, tmp_path) -> None:
    users, items = _raw(planted[2])
    loaded = load_model(fitted.save(str(tmp_path / "ens")))
    assert isinstance(loaded, Ensemble)
    np.testing.assert_array_equal(loaded.predict_ratings(users, items)[0],
                                  fitted.predict_ratings(users, items)[0])
    u = np.arange(10)
    np.testing.assert_array_equal(loaded.score_users(u).numpy(), fitted.score_users(u).numpy())


def test_score_users_matches_predict_idx(fitted) -> None:
    u = np.array([0, 3, 50, len(fitted.user_vocab_) - 1])
    n_items = len(fitted.item_vocab_)
    scores = fitted.score_users(u).double().numpy()
    pairs = fitted._predict_idx(np.repeat(u, n_items), np.tile(np.arange(n_items), len(u)))
    np.testing.assert_allclose(scores, pairs.reshape(len(u), n_items), atol=1e-5)


def test_same_seed_same_model(planted) -> None:
    _, train, test = planted
    params = {"bpmf": {"n_factors": 2, "n_samples": 4, "burn_in": 2}}

    def run(seed: int) -> np.ndarray:
        ens = Ensemble(members=("bpmf", "dot"), member_params={**params, "dot": {"epochs": 1}},
                       random_state=seed)
        return ens.fit(train).predict_ratings(*_raw(test))[0]

    np.testing.assert_array_equal(run(5), run(5))
    assert not np.array_equal(run(5), run(6))


@pytest.mark.parametrize("bad", [{"members": ()}, {"members": ("nope",)},
                                 {"members": ("bpmf", "bpmf")}, {"members": ("ensemble",)},
                                 {"member_params": {"svdpp": {}}, "members": ("bpmf",)},
                                 {"valid_frac": 0.0}, {"valid_frac": 1.0}, {"ridge": -1.0}])
def test_bad_parameters_raise_config_error(planted, bad: dict) -> None:
    with pytest.raises(ConfigError):
        Ensemble(**bad).fit(planted[1])


# --------------------------------------------------------------------------- issue 9
def test_member_seeds_are_independent_streams(refitted: Ensemble) -> None:
    """issue 9: member m got seed + m, so member 0's shuffle stream (its seed + 1) was
    member 1's initialisation seed. Member seeds are now named SeedSequence children."""
    from collabkit.seeds import derive_seed

    seeds = [m.seed_ for m in refitted.members_]
    assert seeds == [derive_seed(refitted.seed_, f"member:{k}") for k in refitted.members]
    streams = seeds + [derive_seed(s, "shuffle") for s in seeds]
    assert len(set(streams)) == len(streams)
    assert not set(seeds) & {refitted.seed_ + j for j in range(1, 10)}


def test_fit_with_valid_reports_the_blend_rmse_on_it(planted) -> None:
    """issue 9: Ensemble.fit(data, valid) accepted valid and ignored it."""
    _, train, test = planted
    params = {"bpmf": MEMBER_PARAMS["bpmf"]}
    model = Ensemble(members=("bpmf",), member_params=params, refit=False,
                     random_state=0).fit(train, test)
    assert model.valid_rmse_ == pytest.approx(_rmse(model, test))
    assert model.history_[0]["valid_rmse"] == model.valid_rmse_
    assert Ensemble(members=("bpmf",), member_params=params, refit=False,
                    random_state=0).fit(train).valid_rmse_ is None
