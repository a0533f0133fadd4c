"""SVDpp: known-answer recovery, persistence, scoring consistency, determinism."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from collabkit.data.interactions import Interactions
from collabkit.errors import ConfigError
from collabkit.models.persist import load_model
from collabkit.models.svdpp import SVDpp
from collabkit.recommend.foldin import fold_in_users
from collabkit.testing.synthetic import PlantedData, planted_low_rank

# little regularisation: the planted data has noise 0.1 and no outliers
FAST = {"n_factors": 3, "reg": 1e-3, "lr": 0.05, "epochs": 30, "batch_size": 2048}


@pytest.fixture(scope="module")
def planted() -> tuple[PlantedData, Interactions, Interactions]:
    """Planted rank-3 data (noise 0.1) split 90/10 into train and held-out rows."""
    p = planted_low_rank(n_users=300, n_items=200, k=3, density=0.2, noise=0.1, seed=0)
    perm = np.random.default_rng(0).permutation(len(p.data))
    n_test = len(p.data) // 10
    return p, p.data.take(perm[n_test:]), p.data.take(perm[:n_test])


@pytest.fixture(scope="module")
def fitted(planted: tuple[PlantedData, Interactions, Interactions]) -> SVDpp:
    return SVDpp(**FAST, random_state=0).fit(planted[1])


def _raw(data: Interactions) -> tuple[np.ndarray, np.ndarray]:
    return data.user_vocab.ids(data.users), data.item_vocab.ids(data.items)


def test_recovers_planted_factors_near_the_noise_floor(fitted: SVDpp, planted) -> None:
    p, _, test = planted
    pred, fallback = fitted.predict_ratings(*_raw(test))
    assert not fallback.any()
    assert float(np.sqrt(np.mean((pred - test.ratings) ** 2))) < 1.25 * p.noise


def test_implicit_term_is_used(fitted: SVDpp) -> None:
    z = fitted.user_factors_ - fitted.module_.p.detach()
    assert float(z.abs().max()) > 0.0
    # z_u = |N(u)|^-1/2 sum of y_j over the items u rated, checked for user 0
    items = fitted.seen_indices_[fitted.seen_indptr_[0] : fitted.seen_indptr_[1]]
    y = fitted.module_.y.detach()[items]
    np.testing.assert_allclose(z[0].numpy(), (y.sum(0) / len(items) ** 0.5).numpy(),
                               rtol=1e-5, atol=1e-6)


def test_save_load_gives_identical_predictions(fitted: SVDpp, planted, tmp_path) -> None:
    users, items = _raw(planted[2])
    loaded = load_model(fitted.save(str(tmp_path / "svdpp")))
    assert isinstance(loaded, SVDpp)
    np.testing.assert_array_equal(loaded.predict_ratings(users, items)[0],
                                  fitted.predict_ratings(users, items)[0])


def test_score_users_matches_predict_idx(fitted: SVDpp) -> None:
    u = np.array([0, 5, 17, 299])
    scores = fitted.score_users(u).double().numpy()
    n_items = len(fitted.item_vocab_)
    pairs = fitted._predict_idx(np.repeat(u, n_items), np.tile(np.arange(n_items), len(u)))
    np.testing.assert_allclose(scores, pairs.reshape(len(u), n_items), atol=1e-5)


@pytest.mark.filterwarnings("ignore::collabkit.errors.ModelFitWarning")  # 2 epochs, kept
def test_same_seed_same_model(planted) -> None:
    _, train, test = planted
    kw = {**FAST, "epochs": 2, "fallback": False}  # two epochs lose to the baseline
    a = SVDpp(**kw, random_state=3).fit(train).predict_ratings(*_raw(test))[0]
    b = SVDpp(**kw, random_state=3).fit(train).predict_ratings(*_raw(test))[0]
    c = SVDpp(**kw, random_state=4).fit(train).predict_ratings(*_raw(test))[0]
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_validation_history_is_recorded(planted) -> None:
    _, train, test = planted
    model = SVDpp(**{**FAST, "epochs": 3}, random_state=0).fit(train, valid=test)
    assert [h["epoch"] for h in model.history_] == [1, 2, 3]
    assert all(h["valid_rmse"] > 0 for h in model.history_)


def test_recommend_excludes_seen_items(fitted: SVDpp) -> None:
    user = fitted.user_vocab_.ids([0])[0]
    recs = fitted.recommend(user, n=5)
    seen = set(fitted.item_vocab_.ids(
        fitted.seen_indices_[fitted.seen_indptr_[0] : fitted.seen_indptr_[1]]).tolist())
    assert len(recs) == 5 and not seen & set(recs["item"].tolist())


@pytest.mark.parametrize("bad", [{"n_factors": 0}, {"epochs": 0}, {"lr": 0.0},
                                 {"reg": -1.0}, {"reg_bias": float("nan")},
                                 {"batch_size": 0}, {"init_std": 0.0}, {"n_threads": 0}])
def test_bad_parameters_raise_config_error(planted, bad: dict) -> None:
    with pytest.raises(ConfigError):
        SVDpp(**bad).fit(planted[1])


def test_fold_in_of_a_trained_user_predicts_like_the_trained_user(fitted: SVDpp) -> None:
    """fold_in sees SVD++ as the linear model (p_u + z_u, q_i, b_u, b_i) and refits p_u + z_u."""
    user = fitted.user_vocab_.ids([0])[0]
    rows = slice(fitted.seen_indptr_[0], fitted.seen_indptr_[1])
    rated = dict(zip(fitted.item_vocab_.ids(fitted.seen_indices_[rows]).tolist(),
                     fitted.seen_ratings_[rows].tolist(), strict=True))
    items = fitted.item_vocab_.all_ids
    folded = fitted.fold_in(rated).predict(items)["prediction"].to_numpy()
    trained = fitted.predict_ratings(np.full(len(items), user), items)[0]
    assert np.corrcoef(folded, trained)[0, 1] > 0.9


# --------------------------------------------------------------------------- issue 9
def _rated(model: SVDpp, user: int) -> tuple[np.ndarray, np.ndarray]:
    """Dense item indices and ratings of trained user ``user`` (dense index)."""
    s, e = model.seen_indptr_[user], model.seen_indptr_[user + 1]
    return model.seen_indices_[s:e], model.seen_ratings_[s:e].astype(np.float64)


@pytest.mark.filterwarnings("ignore::collabkit.errors.ModelFitWarning")  # 3 epochs, kept
def test_matched_fold_in_uses_svdpps_own_per_rating_l2(fitted: SVDpp) -> None:
    """issue 9: reg="matched" used an AdamW penalty with a made-up wd=0.1. SVD++ pays
    ``reg`` per rating on p_u and ``reg_bias`` on b_u, so for the effective vector
    v = p_u + z_u one row's problem is min sum_i (r_i - mu - b_i - q_i.v - b)^2
    + n (reg |v - z_u|^2 + reg_bias b^2), z_u = n^-1/2 sum of y_j: a known answer."""
    from collabkit.recommend.foldin import fold_in_user

    model = SVDpp(**{**FAST, "reg": 0.5, "reg_bias": 0.05, "epochs": 3}, clip=False,
                  fallback=False, random_state=0).fit(_train_of(fitted))
    idx, r = _rated(model, 3)
    q = model.item_factors_.double().numpy()[idx]
    bi = model.item_bias_.double().numpy()[idx]
    A = np.column_stack([q, np.ones(len(idx))])
    n, k = len(idx), q.shape[1]
    lam = n * np.diag(np.append(np.full(k, 0.5), 0.05))
    z = np.append(model.module_.y.detach().double().numpy()[idx].sum(0) / np.sqrt(n), 0.0)
    x = np.linalg.solve(A.T @ A + lam, A.T @ (r - bi - model.global_mean_) + lam @ z)
    fu = fold_in_user(model, dict(zip(model.item_vocab_.ids(idx).tolist(), r.tolist(),
                                      strict=True)), reg="matched", prior="zero")
    np.testing.assert_allclose(fu.vector, x[:k], atol=1e-5)
    assert fu.bias == pytest.approx(x[k], abs=1e-5)


def test_matched_fold_in_gives_back_converged_trained_users(planted) -> None:
    """With SVD++'s own objective, a trained user's training ratings fold back into their
    row once training has converged (was 0.1+ RMSE away with the AdamW stand-in)."""
    from collabkit.testing.contracts import _own_ratings

    model = SVDpp(n_factors=3, reg=0.05, reg_bias=0.01, lr=0.02, epochs=30,
                  random_state=0).fit(planted[0].data)
    folded = fold_in_users(model, _own_ratings(model, np.arange(20)), reg="matched")
    trained = model.score_users(model.user_vocab_.index(folded.users)).double().numpy()
    assert float(np.sqrt(np.mean((folded.scores() - trained) ** 2))) < 0.01


def _train_of(model: SVDpp) -> Interactions:
    import pandas as pd

    u = np.repeat(np.arange(len(model.user_vocab_)), np.diff(model.seen_indptr_))
    return Interactions.from_dataframe(pd.DataFrame({
        "user": model.user_vocab_.ids(u), "item": model.item_vocab_.ids(model.seen_indices_),
        "rating": model.seen_ratings_.astype(np.float64)}))


def test_fold_in_respects_clip_false(planted) -> None:
    """issue 9: fold-in clipped an SVDpp(clip=False) to the rating range anyway."""
    from collabkit.recommend.foldin import fold_in_user

    model = SVDpp(**{**FAST, "epochs": 3}, clip=False, random_state=0).fit(planted[1])
    lo, hi = model.rating_range_
    best = model.item_vocab_.ids(np.argsort(-model.item_bias_.numpy())[:15])
    fu = fold_in_user(model, dict.fromkeys(best.tolist(), hi), reg=1e-4)
    expect = (model.item_factors_.double().numpy() @ fu.vector + fu.bias
              + model.item_bias_.double().numpy() + model.global_mean_)
    np.testing.assert_allclose(fu.scores(), expect, atol=1e-6)
    assert fu.scores().max() > hi  # the unclipped model predicts past the range here
    clipped = SVDpp(**{**FAST, "epochs": 3}, random_state=0).fit(planted[1])
    assert fold_in_user(clipped, dict.fromkeys(best.tolist(), hi), reg=1e-4).scores().max() \
        <= hi


# issue 14: svdpp summed the implicit term of every user, over every rating, at every batch
def test_issue14_batches_sum_the_implicit_term_of_their_own_users_only(monkeypatch) -> None:
    from collabkit.models import svdpp

    rng = np.random.default_rng(0)
    n_users, per_user = 400, 5
    u = np.repeat(np.arange(n_users), per_user)
    i = np.concatenate([rng.choice(300, per_user, replace=False) for _ in range(n_users)])
    data = Interactions.from_dataframe(
        pd.DataFrame({"user": u, "item": i, "rating": rng.integers(1, 6, len(u)).astype(float)}))
    full_products, bag_items = [], []
    real_full, real_bags = svdpp.SVDppModule.implicit, svdpp._Bags.implicit

    def count_full(self, F, Ft):  # type: ignore[no-untyped-def]
        full_products.append(1)
        return real_full(self, F, Ft)

    def count_bags(self, m, users):  # type: ignore[no-untyped-def]
        bag_items.append(int(self.counts[users].sum()))
        return real_bags(self, m, users)

    monkeypatch.setattr(svdpp.SVDppModule, "implicit", count_full)
    monkeypatch.setattr(svdpp._Bags, "implicit", count_bags)
    SVDpp(n_factors=2, epochs=2, batch_size=64, valid_frac=0.0, random_state=0).fit(data)
    assert not full_products  # no batch summed over every user
    assert len(bag_items) == 2 * -(-len(u) // 64)
    assert max(bag_items) <= 64 * per_user  # a batch reads its own users' items only


def test_issue14_bag_sums_equal_the_sparse_product(fitted: SVDpp) -> None:
    from collabkit.models.svdpp import _Bags

    m = fitted.module_
    bags = _Bags(fitted.seen_indptr_, fitted.seen_indices_, fitted.implicit_matrix_,
                 fitted.implicit_matrix_t_)
    users = torch.tensor([3, 0, 17, 250])
    got = bags.implicit(m, users).detach()
    want = (fitted.implicit_matrix_ @ m.y.detach())[users]
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
