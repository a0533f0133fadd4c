"""issue 13: collabkit.tune, a seeded Optuna search on validation rows carved from training."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import collabkit
from collabkit.data.implicit import read_interactions
from collabkit.data.interactions import Interactions
from collabkit.errors import ConfigError
from collabkit.models import registry
from collabkit.models.search import Choice, Int
from collabkit.testing import planted_low_rank
from collabkit.tuning import carve_validation, parse_metric, tune


def clusters(n_users: int = 120, n_clusters: int = 4, per_cluster: int = 20, per_user: int = 10,
             seed: int = 0) -> Interactions:
    """Users of cluster c interact only with items of cluster c: rank 4 explains everything."""
    rng = np.random.default_rng(seed)
    rows = [(u, int(i)) for u in range(n_users)
            for i in rng.choice(np.arange(per_cluster) + per_cluster * (u % n_clusters),
                                per_user, replace=False)]
    return read_interactions(pd.DataFrame(rows, columns=["user", "item"]), name="clusters")


@pytest.fixture(scope="module")
def blocks() -> Interactions:
    return clusters()


def _pairs(d: Interactions) -> set[tuple[int, int]]:
    return set(zip(d.user_vocab.ids(d.users).tolist(), d.item_vocab.ids(d.items).tolist(),
                   strict=True))


def test_known_answer_implicit_four_clusters_need_four_factors(blocks):
    """Four disjoint clusters: iALS with 1 factor cannot tell them apart, with 4 it can; the
    search tries both within 4 trials and keeps 4."""
    res = tune(blocks, "ials", trials=4, seed=0, space={"n_factors": Choice(1, 4)},
               params={"epochs": 6})
    assert res.best_params == {"n_factors": 4}
    by = res.trials.groupby("n_factors")["score"].max()
    assert by[4] > by[1] + 0.2  # clearly best, not a tie broken by order
    assert res.metric == "ndcg@20" and res.direction == "maximize"
    assert res.model.n_factors == 4 and res.model.n_train_ == len(blocks)  # refit on all rows


def test_known_answer_explicit_rank_three_data_and_small_reg():
    """Noise-free rank-3 ratings: 3 factors with a small penalty beat 1 factor or a huge one."""
    data = planted_low_rank(n_users=120, n_items=80, k=3, density=0.4, noise=0.02, seed=1).data
    res = tune(data, "als", trials=8, seed=0, params={"epochs": 8},
               space={"n_factors": Choice(1, 3), "reg": Choice(0.05, 50.0)})
    assert res.best_params == {"n_factors": 3, "reg": 0.05}
    assert res.metric == "rmse" and res.direction == "minimize"
    assert res.best_value < 0.5 * res.trials["score"].max()


def test_validation_never_touches_test_rows(blocks, monkeypatch):
    """By construction: every table a trial fits or scores is carved from train alone."""
    import collabkit.tuning as tuning

    train, test = collabkit.split(blocks, "user", test_frac=0.2, seed=1)
    fitted: list[Interactions] = []
    scored: list[Interactions] = []
    base = registry.get("itemknn")

    class Recording(base):  # type: ignore[misc, valid-type]
        def fit(self, data, valid=None):
            fitted.append(data)
            return super().fit(data, valid)

    real_score = tuning.score
    monkeypatch.setattr(tuning.registry, "get", lambda kind: Recording)
    monkeypatch.setattr(tuning, "score", lambda m, rows, *a: scored.append(rows) or
                        real_score(m, rows, *a))
    res = tune(train, "itemknn", test=test, trials=3, seed=0)
    train_pairs, test_pairs = _pairs(train), _pairs(test)
    assert len(fitted) == 4 and len(scored) == 3  # 3 trials, then the refit on all of train
    for part in fitted[:3] + scored:
        assert _pairs(part) <= train_pairs and not _pairs(part) & test_pairs
    assert _pairs(fitted[3]) == train_pairs  # the refit: every training row, no test row
    assert res.n_fit + res.n_valid == res.n_train == len(train)
    assert res.test is not None and set(res.test) >= {"ndcg@20", "recall@20"}


def test_carve_is_per_user_for_rankers_and_disjoint(blocks):
    fit_rows, valid, how = carve_validation(blocks, True, 0.2, seed=3)
    assert not _pairs(fit_rows) & _pairs(valid)
    assert _pairs(fit_rows) | _pairs(valid) == _pairs(blocks)
    assert np.bincount(valid.users, minlength=120).tolist() == [2] * 120  # 20 % of 10 each
    assert "per-user" in how


def test_same_seed_same_trials_other_seed_other_trials(blocks):
    a = tune(blocks, "itemknn", trials=4, seed=5)
    b = tune(blocks, "itemknn", trials=4, seed=5)
    c = tune(blocks, "itemknn", trials=4, seed=6)
    cols = ["n_neighbors", "shrink", "score"]
    pd.testing.assert_frame_equal(a.trials[cols], b.trials[cols])
    assert not a.trials[cols].equals(c.trials[cols])


def test_kind_without_parameters_runs_one_trial(blocks):
    res = tune(blocks, "popularity", trials=10, seed=0)
    assert len(res.trials) == 1 and res.best_params == {}


def test_failed_trials_are_recorded_and_all_failed_is_an_error(blocks):
    with pytest.raises(ConfigError, match="every trial of 'itemknn' failed.*n_neighbors"):
        tune(blocks, "itemknn", trials=2, seed=0, space={"n_neighbors": Choice(0)})


@pytest.mark.parametrize("kw, match", [
    ({"model": "module"}, "declares no search space"),
    ({"model": "nope"}, "unknown model kind 'nope'"),
    ({"model": "itemknn", "metric": "rmse"}, "does not score a ranker"),
    ({"model": "itemknn", "metric": "ndcg@0"}, "whole number >= 1"),
    ({"model": "itemknn", "trials": 0}, "trials must be"),
    ({"model": "itemknn", "params": {"factors": 3}}, "does not take 'factors'"),
    ({"model": "itemknn", "space": {"n_neighbors": Int(10, 5)}}, "low <= high"),
    ({"model": "itemknn", "valid_frac": 1.0}, "valid_frac must be"),
])
def test_errors_name_the_argument(blocks, kw, match):
    with pytest.raises(ConfigError, match=match):
        tune(blocks, **kw)


def test_parse_metric():
    assert parse_metric(None, True) == ("ndcg", 20)
    assert parse_metric("Recall@10", True) == ("recall", 10)
    assert parse_metric(None, False) == ("rmse", 20)
    with pytest.raises(ConfigError, match="takes no cut-off"):
        parse_metric("rmse@5", False)


def test_public_name():
    assert collabkit.tune is tune


@pytest.mark.parametrize("kind", ["popularity", "itemknn", "ials", "ease", "gfcf", "bpr"])
def test_every_implicit_kind_tunes_in_its_declared_space(blocks, kind):
    """One trial of each ranker in its own declared space, on 120 users x 80 items."""
    fixed = {"epochs": 2} if kind in ("ials", "bpr") else {}
    res = tune(blocks, kind, trials=2, seed=0, params=fixed)
    assert (res.trials["state"] == "complete").any(), res.trials["error"].tolist()
    assert 0.0 <= res.best_value <= 1.0


@pytest.mark.parametrize("kind", ["mean", "bias", "als", "dot"])
def test_explicit_kinds_tune(kind):
    data = planted_low_rank(n_users=60, n_items=40, density=0.4, seed=2).data
    fixed = {"epochs": 2} if kind in ("als", "dot") else {}
    res = tune(data, kind, trials=2, seed=0, params=fixed)
    assert res.metric == "rmse" and 0.0 < res.best_value < 2.0


def test_a_failed_trial_is_kept_in_the_table_and_the_best_is_a_complete_one(blocks):
    res = tune(blocks, "itemknn", trials=6, seed=0, space={"n_neighbors": Choice(0, 20)})
    states = dict(zip(res.trials["n_neighbors"], res.trials["state"], strict=False))
    assert states == {0: "failed", 20: "complete"}
    failed = res.trials[res.trials["state"] == "failed"]
    assert failed["error"].str.contains("n_neighbors must be a positive integer").all()
    assert res.best_params == {"n_neighbors": 20}


def test_issue13_recency_is_searched_only_when_the_data_has_timestamps(blocks):
    """Untimed data: ``recency`` leaves the space (no trial fails for want of timestamps);
    timed data: it is searched."""
    res = tune(blocks, "itemknn", trials=3, seed=0)
    assert "recency" not in res.trials.columns and (res.trials["state"] == "complete").all()
    df = pd.DataFrame({"user": blocks.user_vocab.ids(blocks.users),
                       "item": blocks.item_vocab.ids(blocks.items),
                       "timestamp": np.arange(len(blocks))})
    timed = read_interactions(df, timestamp_col="timestamp")
    res = tune(timed, "itemknn", trials=6, seed=0)
    assert "recency" in res.trials.columns and (res.trials["state"] == "complete").all()
    assert "recency" in res.best_params


def test_issue13_a_rankers_carve_is_each_users_latest_rows_when_there_are_timestamps(blocks):
    """With timestamps the validation rows are each user's latest (what a ranker is asked
    to predict next); ``carve="random"`` keeps the random per-user share; ``"latest"``
    without timestamps is refused."""
    df = pd.DataFrame({"user": blocks.user_vocab.ids(blocks.users),
                       "item": blocks.item_vocab.ids(blocks.items),
                       "timestamp": np.random.default_rng(3).permutation(len(blocks))})
    timed = read_interactions(df, timestamp_col="timestamp")
    fit, valid, how = carve_validation(timed, True, 0.2, seed=0)
    assert "latest" in how and len(fit) + len(valid) == len(timed)
    last_fit = pd.Series(fit.timestamps).groupby(fit.users).max()
    first_valid = pd.Series(valid.timestamps).groupby(valid.users).min()
    assert (first_valid > last_fit.reindex(first_valid.index)).all()
    assert (pd.Series(valid.users).value_counts() == 2).all()  # 10 rows each: floor(0.2 * 10)
    _, rvalid, rhow = carve_validation(timed, True, 0.2, seed=0, carve="random")
    assert "latest" not in rhow and len(rvalid) == len(valid)
    assert not np.array_equal(np.sort(rvalid.timestamps), np.sort(valid.timestamps))
    with pytest.raises(ConfigError, match="needs timestamps"):
        carve_validation(blocks, True, 0.2, seed=0, carve="latest")
    _, _, untimed = carve_validation(blocks, True, 0.2, seed=0)
    assert "latest" not in untimed
